// The plan preview: POST /plan, draw it on the timeline, let the user adjust it (drag a
// boundary onto a cue edge, rename a clip, drop a point), then run exactly the adjusted plan
// (as explicit segments) and go to the job page.
"use strict";
const PLAN = (() => {
  const { el, api, fmtTime } = TL;
  const state = { doc: null, clips: [], edges: [], input: null };

  function slug(text, n) {
    const s = text.toLowerCase().normalize("NFKD").replace(/[^a-z0-9]+/g, "-").replace(/^-+|-+$/g, "").slice(0, 40);
    return s || `point-${n}`;
  }

  function parsePoints(text) {
    const trimmed = text.trim();
    if (!trimmed) return [];
    if (trimmed.startsWith("[")) return JSON.parse(trimmed);
    return trimmed.split("\n").filter((l) => l.trim()).map((line, i) => {
      const m = line.trim().match(/^(\S+?)(?:\s*-\s*(\S+))?\s+(.+)$/);
      if (!m) throw new Error(`knowledge points, line ${i + 1}: expected "START[-END] Title"`);
      const point = { knowledge_id: slug(m[3], i + 1), title: m[3].trim(), start_time: m[1] };
      if (m[2]) point.end_time = m[2];
      return point;
    });
  }

  function seconds(id) {
    const v = document.getElementById(id).value.trim();
    return v === "" ? null : Number(v);
  }

  // What the form says: the source, the transcript (JSON entries or text), points, output.
  function readForm() {
    const text = document.getElementById("transcript").value.trim();
    let entries = null;
    if (text.startsWith("[")) { try { entries = JSON.parse(text); } catch (e) { entries = null; } }
    const auto = document.getElementById("auto").checked;
    const segmentation = {};
    if (auto) {
      segmentation.auto = { minDuration: seconds("min_duration") ?? 30, maxDuration: seconds("max_duration") ?? 600 };
      if (seconds("target_count") !== null) segmentation.auto.targetCount = seconds("target_count");
    }
    return {
      url: document.getElementById("video_url").value.trim(), text, entries,
      points: auto ? [] : parsePoints(document.getElementById("knowledge_points").value),
      output: { formats: document.getElementById("formats").value.split(","), precision: document.getElementById("precision").value },
      segmentation: auto ? segmentation : null,
    };
  }

  // POST /plan's body: the REST shape for JSON entries, else a spec (the format is detected).
  function planBody(input) {
    const extra = input.segmentation ? { segmentation: input.segmentation } : {};
    if (input.entries !== null) {
      return { video_url: input.url, transcript: input.entries, knowledge_points: input.points, output: input.output, ...extra };
    }
    const kps = input.points.map((p) => {
      const k = { id: p.knowledge_id, title: p.title, description: p.description || "" };
      if (p.start_time !== undefined) k.start = String(p.start_time);
      if (p.end_time !== undefined) k.end = String(p.end_time);
      if (p.quote) k.quote = p.quote;
      return k;
    });
    return { spec: { source: { url: input.url }, transcript: { inline: input.text + "\n", format: "auto" }, knowledgePoints: kps, output: input.output, ...extra } };
  }

  // The adjusted plan as a job: every clip a knowledge point with its start and end, cut as
  // they are (no snapping; an overlap is refused, a short clip kept). The transcript goes
  // with it (each clip's subtitles), as given.
  function runBody(input, clips) {
    const transcript = input.entries !== null
      ? { format: "seed-json", inline: JSON.stringify({ transcript: input.entries }) + "\n" }
      : { format: "auto", inline: input.text + "\n" };
    const used = new Set();
    const points = clips.map((c, i) => {
      let id = c.knowledge_id || `clip-${String(i + 1).padStart(2, "0")}`;
      while (used.has(id)) id = `${id}-${i + 1}`;
      used.add(id);
      return { id, title: c.title, description: c.description || "", start: String(c.start), end: String(c.end) };
    });
    const segmentation = { snapToCues: false, overlap: "reject", shortSegments: "keep" };
    return { spec: { source: { url: input.url }, transcript, knowledgePoints: points, segmentation, output: input.output } };
  }

  function moveEdge(edge, t, dir) {
    const { clips, edges } = state;
    const to = t !== null ? TL.nearestEdge(edges, t) : TL.stepEdge(edges, edge.t, dir);
    const left = edge.left === null ? null : clips[edge.left];
    const right = edge.right === null ? null : clips[edge.right];
    const lo = left ? left.start : (edge.right > 0 ? clips[edge.right - 1].end : 0);
    const hi = right ? right.end : (edge.left + 1 < clips.length ? clips[edge.left + 1].start : Infinity);
    if (to > lo && to < hi) {
      if (left) left.end = to;
      if (right) right.start = to;
    }
    redraw();
    const moved = document.querySelector(`.tl-handle[aria-valuenow="${to}"]`);
    if (moved && t === null) moved.focus();
  }

  function dropPoint(p) {
    const gone = p.clip;
    state.clips = state.clips.filter((c) => c.index !== gone);
    for (const q of state.doc.points) {
      if (q.clip === gone) { q.fate = "dropped"; q.notes = [...q.notes, "dropped here (no clip for it)"]; q.clip = null; }
    }
    redraw();
  }

  function clipsTable() {
    const tbody = document.querySelector("#clips_table tbody");
    tbody.replaceChildren(...state.clips.map((c) => {
      const title = el("input", { type: "text", value: c.title, "aria-label": `title of clip ${c.index}`, "data-clip": String(c.index), class: "tl-title-input" });
      title.addEventListener("input", () => { c.title = title.value; drawTimeline(); });
      const conf = c.confidence === null || c.confidence === undefined ? "–" : c.confidence.toFixed(2);
      return el("tr", { "data-clip": String(c.index) },
        el("td", { text: String(c.index) }), el("td", {}, title),
        el("td", { class: "start", text: fmtTime(c.start) }), el("td", { class: "end", text: fmtTime(c.end) }),
        el("td", { class: "confidence", text: conf }));
    }));
  }

  function play(cue) {
    const player = document.getElementById("player");
    if (player.hidden) return;
    player.currentTime = cue.start;
    player.play().catch(() => {});
  }

  function drawTimeline() {
    TL.draw(document.getElementById("timeline"), state.doc, state.clips, { onCue: play, onHandle: moveEdge });
  }

  function redraw() {
    drawTimeline();
    clipsTable();
    document.getElementById("points").replaceChildren(TL.pointsTable(state.doc, dropPoint));
    const total = state.clips.reduce((s, c) => s + (c.end - c.start), 0);
    document.getElementById("plan_summary").textContent = `${state.clips.length} clips, ${fmtTime(total)} in all`;
    document.getElementById("run_button").disabled = state.clips.length === 0;
  }

  function show(doc) {
    state.doc = doc;
    state.clips = doc.clips.map((c) => ({ ...c }));
    state.edges = TL.cueEdges(doc);
    document.getElementById("notes").replaceChildren(...doc.notes.map((n) => el("li", { text: n })));
    const player = document.getElementById("player");
    const playable = /^(https?:\/\/|\/)/.test(doc.source_url);
    player.hidden = !playable;
    if (playable && player.getAttribute("src") !== doc.source_url) player.src = doc.source_url;
    document.getElementById("plan_section").hidden = false;
    redraw();
  }

  async function preview(e) {
    e.preventDefault();
    const error = document.getElementById("plan_error");
    error.textContent = "";
    try { state.input = readForm(); } catch (err) { error.textContent = err.message; return; }
    const button = document.getElementById("preview_button");
    button.disabled = true;
    try { show(await api("POST", "/plan", planBody(state.input))); } catch (err) { error.textContent = TL.problemText(err); } finally { button.disabled = false; }
  }

  async function run() {
    const error = document.getElementById("run_error");
    error.textContent = "";
    const button = document.getElementById("run_button");
    button.disabled = true;
    try {
      const doc = await api("POST", "/process", runBody(state.input, state.clips));
      window.location.href = `/console/jobs/${doc.job_id}`;
    } catch (err) { error.textContent = TL.problemText(err); button.disabled = false; }
  }

  function page() {
    TL.credentialBox();
    document.getElementById("plan_form").addEventListener("submit", preview);
    document.getElementById("run_button").addEventListener("click", run);
    const auto = document.getElementById("auto");
    const settings = document.getElementById("auto_settings");
    const sync = () => { settings.hidden = !auto.checked; };
    auto.addEventListener("change", sync); sync();
    document.getElementById("transcript_file").addEventListener("change", async (e) => {
      const file = e.target.files[0];
      if (file) document.getElementById("transcript").value = await file.text();
    });
  }

  return { page, parsePoints, planBody, runBody, state };
})();
PLAN.page();
