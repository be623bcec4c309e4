-- Argo CD health check for videojobs.io/VideoProcessingJob (see examples/gitops/README.md).
-- A finished job is Healthy, a failed one Degraded, a cancelled one Suspended; anything the
-- operator has not yet observed at the current generation is Progressing.
local hs = {}
local status = obj.status
if status == nil or status.phase == nil then
  hs.status = "Progressing"
  hs.message = "Waiting for the videojobs operator to accept the job"
  return hs
end
local generation = obj.metadata.generation
if generation ~= nil and status.observedGeneration ~= nil and status.observedGeneration < generation then
  hs.status = "Progressing"
  hs.message = "Waiting for the operator to observe generation " .. generation
  return hs
end
local function condition(kind)
  if status.conditions == nil then
    return nil
  end
  for _, c in ipairs(status.conditions) do
    if c.type == kind then
      return c
    end
  end
  return nil
end
local failed = condition("Failed")
local complete = condition("Complete")
if status.phase == "Failed" or (failed ~= nil and failed.status == "True") then
  hs.status = "Degraded"
  local reason = (status.error ~= nil and status.error.reason) or (failed ~= nil and failed.reason) or "Failed"
  local message = (status.error ~= nil and status.error.message) or (failed ~= nil and failed.message) or status.message or ""
  hs.message = reason .. ": " .. message
  return hs
end
if status.phase == "Succeeded" and (complete == nil or complete.status == "True") then
  hs.status = "Healthy"
  hs.message = "Clips published: " .. (status.segmentsSummary or "all")
  return hs
end
if status.phase == "Cancelled" then
  hs.status = "Suspended"
  hs.message = "Cancelled (spec.cancel); published clips are kept"
  return hs
end
hs.status = "Progressing"
local message = status.phase
if status.progress ~= nil and status.progress.percent ~= nil then
  message = message .. " " .. status.progress.percent .. "%"
end
if status.message ~= nil and status.message ~= "" then
  message = message .. ": " .. status.message
end
hs.message = message
return hs
