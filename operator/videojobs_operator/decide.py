"""The state machine: from a resource, its run's Job and pods, to the next step (pure).

:func:`decide` reads what was observed (the resource, its Job, the Job's pods, "now" and what
the reconciler found out: validation problems, queue admission) and returns a
:class:`Decision`: a status patch, events, and actions (create or delete the Job, delete the
resource, look again later). It never talks to the API or reads the clock; ``reconcile.py`` does
the I/O around it.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from videojobs.errors import Problem
from videojobs.models import FINISHED_PHASES
from videojobs_operator.manifest import resource_job_name, shard_count
from videojobs_operator.observe import (
    STUCK_WAITING_REASONS,
    WAITING_FOR_POD,
    RunState,
    job_finished,
    observe_run,
    reported_manifest,
    shard_total,
    shards_summary,
)
from videojobs_operator.settings import OperatorSettings
from videojobs_operator.timestamps import format_time, parse_time

Body = Mapping[str, Any]
Patch = dict[str, Any]

OPERATOR_STATUS_FIELDS = (
    "phase",
    "stage",
    "message",
    "observedGeneration",
    "conditions",
    "jobName",
    "attempts",
    "queuedAt",
    "startTime",
    "completionTime",
    "shards",
)
"""Status fields only the operator writes (``error`` is shared with the worker; ``progress`` is
the operator's in a sharded run, summed over ``shardProgress``)."""

ACTIVE_PHASES = frozenset({"Pending", "Running"})


# Conditions -----------------------------------------------------------------------------------


def set_condition(
    conditions: Iterable[Mapping[str, Any]],
    kind: str,
    status: str,
    reason: str,
    message: str,
    now: str,
    generation: int | None,
) -> list[dict[str, Any]]:
    """Conditions with ``kind`` set; lastTransitionTime moves only when ``status`` changes."""
    out: list[dict[str, Any]] = []
    found = False
    for cond in conditions:
        if cond.get("type") != kind:
            out.append(dict(cond))
            continue
        found = True
        same = cond.get("status") == status
        out.append(
            {
                "type": kind,
                "status": status,
                "reason": reason,
                "message": message,
                "lastTransitionTime": cond.get("lastTransitionTime", now) if same else now,
                "observedGeneration": generation,
            }
        )
    if not found:
        out.append(
            {
                "type": kind,
                "status": status,
                "reason": reason,
                "message": message,
                "lastTransitionTime": now,
                "observedGeneration": generation,
            }
        )
    order = {"Accepted": 0, "Progressing": 1, "Complete": 2, "Failed": 3}
    return sorted(out, key=lambda c: order.get(str(c.get("type")), 9))


def drop_condition(conditions: Iterable[Mapping[str, Any]], kind: str) -> list[dict[str, Any]]:
    """Conditions without ``kind``."""
    return [dict(c) for c in conditions if c.get("type") != kind]


# Decisions ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Event:
    """A Kubernetes Event to post about the resource."""

    type: str  # Normal or Warning
    reason: str
    message: str


@dataclass
class Decision:
    """What the reconciler should do for one resource."""

    status: Patch = field(default_factory=dict)
    """Status fields to set (None removes a field)."""
    events: list[Event] = field(default_factory=list)
    create_job: bool = False
    create_merge_job: bool = False
    """Every shard of a sharded run completed: create its merge Job."""
    delete_job: bool = False
    """Delete the run's Job (and its merge Job, when there is one)."""
    delete_resource: bool = False
    requeue_after: float | None = None
    """Look again after this many seconds (timeouts, TTL)."""


@dataclass(frozen=True)
class Context:
    """Everything the decision needs besides the resource."""

    now: dt.datetime
    settings: OperatorSettings
    problems: Sequence[Problem] = ()
    """Why the spec (or its transcript or plan) is invalid; empty when valid or not checked."""
    waiting_for: str | None = None
    """A reason the run cannot start yet (e.g. its transcript ConfigMap is missing)."""
    admitted: bool = False
    """The queue lets this resource start a Job now."""
    job_missing: bool = False
    """The run's Job was created before and is confirmed gone."""
    queue_limit: str = ""
    merge_job: Body | None = None
    """The merge Job of the current (sharded) run, when it exists."""
    merge_pods: Sequence[Body] = ()
    """The merge Job's pods."""


def is_finished(resource: Body) -> bool:
    """True when the status reports a finished phase for the current run and generation."""
    status = resource.get("status") or {}
    phase = status.get("phase")
    if phase not in FINISHED_PHASES:
        return False
    if status.get("jobName") not in (None, resource_job_name(resource)):
        return False  # rerunToken changed: a new run
    if phase == "Failed" and status.get("jobName") is None:
        # failed before a Job existed (invalid spec): look again when the spec changes
        gen = (resource.get("metadata") or {}).get("generation")
        return status.get("observedGeneration") == gen
    return True


def wants_to_start(resource: Body) -> bool:
    """True when the resource needs a Job for its current run (it may have to queue)."""
    if (resource.get("metadata") or {}).get("deletionTimestamp"):
        return False
    if (resource.get("spec") or {}).get("cancel") or is_finished(resource):
        return False
    status = resource.get("status") or {}
    return status.get("jobName") != resource_job_name(resource) or status.get("phase") is None


STAGE_ORDER = ("Starting", "Downloading", "Probing", "Cutting", "Uploading", "Finished")


def fresh_shard_progress(shards: int, current: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """``status.shardProgress`` for a new run (a JSON merge patch): one fresh entry per shard,
    every field spelled out so none of an earlier run's survives, and earlier runs' extra
    shards removed. ``None`` (removed) when the run is not sharded."""
    if shards <= 1:
        return None
    fresh = {
        "stage": "Starting",
        "percent": 0,
        "segmentsDone": 0,
        "segmentsTotal": 0,
        "bytesDone": None,
        "updatedAt": None,
    }
    patch: dict[str, Any] = {key: None for key in (current or {}) if not key.isdigit()}
    patch.update({key: None for key in (current or {}) if key.isdigit() and int(key) >= shards})
    patch.update({str(i): dict(fresh) for i in range(shards)})
    return patch


def aggregate_progress(
    shard_progress: Mapping[str, Any] | None, shards: int, completed: int
) -> dict[str, Any]:
    """``status.progress`` of a sharded run: the shards' entries summed (percent averaged, the
    stage of the least advanced shard); a shard that has not reported yet counts as Starting."""
    entries = [dict((shard_progress or {}).get(str(i)) or {}) for i in range(shards)]
    stages = [e.get("stage") if e.get("stage") in STAGE_ORDER else "Starting" for e in entries]
    stage = min(stages, key=STAGE_ORDER.index)
    byte_counts = [int(e["bytesDone"]) for e in entries if e.get("bytesDone") is not None]
    progress: dict[str, Any] = {
        "stage": stage,
        "percent": sum(int(e.get("percent") or 0) for e in entries) // shards,
        "segmentsDone": sum(int(e.get("segmentsDone") or 0) for e in entries),
        "segmentsTotal": sum(int(e.get("segmentsTotal") or 0) for e in entries),
        "message": f"{completed}/{shards} shards finished",
    }
    if byte_counts:
        progress["bytesDone"] = sum(byte_counts)
    stamps = [str(e["updatedAt"]) for e in entries if e.get("updatedAt")]
    if stamps:
        progress["updatedAt"] = max(stamps)
    return progress


def _shard_changes(status: Mapping[str, Any], job: Body) -> Patch:
    """``shards`` and the summed ``progress`` of a sharded run, where they changed."""
    summary = shards_summary(job)
    if summary is None:
        return {}
    patch = _changes(status, {"shards": summary})
    progress = aggregate_progress(
        status.get("shardProgress"), summary["count"], summary["succeeded"]
    )
    current = dict(status.get("progress") or {})
    current.pop("updatedAt", None)
    compare = {k: v for k, v in progress.items() if k != "updatedAt"}
    if {k: current.get(k) for k in compare} != compare:
        patch["progress"] = progress
    return patch


def _changes(current: Mapping[str, Any], wanted: Mapping[str, Any]) -> Patch:
    return {k: v for k, v in wanted.items() if current.get(k) != v}


def _finish(
    resource: Body,
    ctx: Context,
    phase: str,
    reason: str,
    message: str,
    *,
    error: dict[str, Any] | None,
    completion_time: str | None = None,
) -> Patch:
    status = resource.get("status") or {}
    gen = resource["metadata"].get("generation")
    now = format_time(ctx.now)
    conds = status.get("conditions") or []
    conds = set_condition(conds, "Progressing", "False", reason, message, now, gen)
    if phase == "Succeeded":
        conds = set_condition(conds, "Complete", "True", reason, message, now, gen)
        conds = drop_condition(conds, "Failed")
    elif phase == "Failed":
        conds = set_condition(conds, "Failed", "True", reason, message, now, gen)
        conds = set_condition(conds, "Complete", "False", reason, message, now, gen)
    else:  # Cancelled: neither complete nor failed
        conds = drop_condition(drop_condition(conds, "Complete"), "Failed")
    wanted: Patch = {
        "phase": phase,
        "stage": "Finished" if phase == "Succeeded" else None,
        "message": message,
        "observedGeneration": gen,
        "conditions": conds,
        "completionTime": status.get("completionTime") or completion_time or now,
        "error": error,
    }
    return _changes(status, wanted)


def ttl_seconds(resource: Body, settings: OperatorSettings) -> int | None:
    """How long a finished resource is kept (spec, else the operator default; None = forever)."""
    ttl = (resource.get("spec") or {}).get("ttlSecondsAfterFinished")
    return settings.default_ttl_seconds_after_finished if ttl is None else int(ttl)


def decide(
    resource: Body,
    job: Body | None,
    pods: Sequence[Body],
    ctx: Context,
) -> Decision:
    """The next step for one resource, given its current run's Job and pods."""
    if resource["metadata"].get("deletionTimestamp"):
        return Decision()
    if is_finished(resource):
        return _keep_finished(resource, job, ctx)
    if ctx.problems:
        return _reject_invalid_spec(resource, ctx)
    if (resource.get("spec") or {}).get("cancel"):
        return _cancel(resource, job, ctx)
    if job is None:
        return _before_job(resource, ctx)
    return _follow_job(resource, job, pods, ctx)


# The steps of decide --------------------------------------------------------------------------


def _is_new_run(resource: Body) -> bool:
    """The status describes an earlier run (the rerunToken changed since)."""
    status = resource.get("status") or {}
    return status.get("jobName") not in (None, resource_job_name(resource))


def _failure_error(reason: str, message: str) -> dict[str, Any]:
    """A permanent ``status.error`` whose category is its reason."""
    return {"category": reason, "reason": reason, "message": message, "permanent": True}


def _accepted_conditions(resource: Body, ctx: Context) -> list[dict[str, Any]]:
    """The conditions with Accepted=True (the spec validated)."""
    status = resource.get("status") or {}
    gen = resource["metadata"].get("generation")
    return set_condition(
        status.get("conditions") or [],
        "Accepted",
        "True",
        "Validated",
        "the spec is valid",
        format_time(ctx.now),
        gen,
    )


def _keep_finished(resource: Body, job: Body | None, ctx: Context) -> Decision:
    """A finished run: stop a Job still going, delete the resource once its TTL passed (else
    look again then), and record the generation seen."""
    status = resource.get("status") or {}
    gen = resource["metadata"].get("generation")
    decision = Decision()
    if job is not None and not job_finished(job):
        decision.delete_job = True  # e.g. cancelled while the Job was being created
    ttl = ttl_seconds(resource, ctx.settings)
    finished_at = parse_time(status.get("completionTime"))
    if ttl is not None and finished_at is not None:
        left = (finished_at + dt.timedelta(seconds=ttl) - ctx.now).total_seconds()
        if left <= 0:
            decision.delete_resource = True
        else:
            decision.requeue_after = left
    if status.get("observedGeneration") != gen:
        decision.status = {"observedGeneration": gen}
    return decision


def _reject_invalid_spec(resource: Body, ctx: Context) -> Decision:
    """The spec (or its transcript or plan) is invalid: fail with Accepted=False and no Job;
    :func:`is_finished` looks again when the generation changes."""
    status = resource.get("status") or {}
    gen = resource["metadata"].get("generation")
    text = "; ".join(str(p) for p in ctx.problems)
    error = _failure_error("InvalidSpec", text[:2048])
    patch = _finish(resource, ctx, "Failed", "InvalidSpec", text[:1024], error=error)
    patch["conditions"] = set_condition(
        patch.get("conditions", status.get("conditions") or []),
        "Accepted",
        "False",
        "InvalidSpec",
        text[:1024],
        format_time(ctx.now),
        gen,
    )
    patch["jobName"] = None
    return Decision(status=patch, events=[Event("Warning", "InvalidSpec", text[:1024])])


def _cancel(resource: Body, job: Body | None, ctx: Context) -> Decision:
    """spec.cancel: delete the Job, if any, and finish Cancelled."""
    message = "cancelled by spec.cancel; clips already published are kept"
    said = "cancelled; the Job was removed" if job is not None else "cancelled before it started"
    return Decision(
        status=_finish(resource, ctx, "Cancelled", "Cancelled", message, error=None),
        events=[Event("Normal", "Cancelled", said)],
        delete_job=job is not None,
    )


def _before_job(resource: Body, ctx: Context) -> Decision:
    """No Job of the current run: it vanished, or the run waits for its input, starts, or
    queues."""
    status = resource.get("status") or {}
    if ctx.merge_job is not None and status.get("jobName") == resource_job_name(resource):
        return _merge_step(resource, None, None, ctx)  # the shards' Job went first (its TTL)
    if ctx.job_missing and status.get("jobName") == resource_job_name(resource):
        return _job_vanished(resource, ctx)
    if ctx.waiting_for:
        return _wait_for_input(resource, ctx, ctx.waiting_for)
    if ctx.admitted:
        return _start_run(resource, ctx)
    return _queue(resource, ctx)


def _job_vanished(resource: Body, ctx: Context) -> Decision:
    """The run's Job is confirmed gone: Succeeded when the worker wrote its manifest, else
    Failed (JobDeleted)."""
    status = resource.get("status") or {}
    if status.get("manifestUri") and not status.get("error"):
        # The worker writes the manifest last, after every clip: the run succeeded and
        # its Job was removed afterwards (its own TTL while the operator was down).
        message = "all clips published (the Job is gone)"
        return Decision(
            status=_finish(resource, ctx, "Succeeded", "Succeeded", message, error=None),
            events=[Event("Normal", "Succeeded", message)],
        )
    message = (
        f"the Job {resource_job_name(resource)} was deleted before it finished; set a new "
        "spec.rerunToken to run again"
    )
    error = _failure_error("JobDeleted", message)
    return Decision(
        status=_finish(resource, ctx, "Failed", "JobDeleted", message, error=error),
        events=[Event("Warning", "JobDeleted", message)],
    )


def _wait_for_input(resource: Body, ctx: Context, why: str) -> Decision:
    """The run cannot start yet (e.g. its transcript ConfigMap is missing): Pending with
    Accepted=False (Waiting), and look again in 15 s."""
    status = resource.get("status") or {}
    gen = resource["metadata"].get("generation")
    now = format_time(ctx.now)
    conds = set_condition(
        _accepted_conditions(resource, ctx), "Accepted", "False", "Waiting", why, now, gen
    )
    wanted = {"phase": "Pending", "message": why, "conditions": conds, "observedGeneration": gen}
    decision = Decision(status=_changes(status, wanted), requeue_after=15.0)
    if decision.status.get("message"):
        decision.events.append(Event("Warning", "Waiting", why))
    return decision


def _start_run(resource: Body, ctx: Context) -> Decision:
    """The queue admitted the run: create its Job, with a fresh status for the run."""
    status = resource.get("status") or {}
    gen = resource["metadata"].get("generation")
    now = format_time(ctx.now)
    expected = resource_job_name(resource)
    conds = set_condition(
        _accepted_conditions(resource, ctx),
        "Progressing",
        "True",
        "JobCreated",
        WAITING_FOR_POD,
        now,
        gen,
    )
    conds = drop_condition(drop_condition(conds, "Complete"), "Failed")
    wanted = {
        "phase": "Pending",
        "stage": "Starting",
        "message": WAITING_FOR_POD,
        "observedGeneration": gen,
        "conditions": conds,
        "jobName": expected,
        "attempts": 1,
        "startTime": now,
        "completionTime": None,
    }
    if _is_new_run(resource):  # the previous run's live fields would be misleading now; its
        # manifestUri would even declare this run Succeeded should its Job disappear, and its
        # run-time notes would read as this run's until its worker plans
        wanted.update({"progress": None, "error": None, "manifestUri": None, "notes": None})
    decision = Decision(status=_changes(status, wanted), create_job=True)
    decision.status.update(_fresh_shard_fields(resource, ctx))
    if status.get("phase") != "Queued":
        # a run that queued announced itself with its Queued Event: with one Event per
        # wait and one at the end, every run stays at <= 8 writes (Job, ConfigMap, 4
        # status transitions, 2 Events)
        decision.events.append(Event("Normal", "JobCreated", f"created Job {expected}"))
    return decision


def _fresh_shard_fields(resource: Body, ctx: Context) -> Patch:
    """``shardProgress`` and ``shards`` of a starting run (removed when it is not sharded and
    an earlier run was)."""
    status = resource.get("status") or {}
    shards = shard_count(resource.get("spec") or {}, ctx.settings)
    if shards <= 1 and status.get("shardProgress") is None:
        return {}
    # each shard's pod writes only its own entry (a JSON patch under this map)
    return {
        "shardProgress": fresh_shard_progress(shards, status.get("shardProgress")),
        "shards": (
            {"count": shards, "succeeded": 0, "completedIndexes": "", "failedIndexes": ""}
            if shards > 1
            else None
        ),
    }


def _queue(resource: Body, ctx: Context) -> Decision:
    """No free slot: Queued (since the first time it queued), with one Event on entering."""
    status = resource.get("status") or {}
    gen = resource["metadata"].get("generation")
    now = format_time(ctx.now)
    message = (
        f"waiting for a free slot ({ctx.queue_limit})"
        if ctx.queue_limit
        else "waiting for a free slot"
    )
    conds = set_condition(
        _accepted_conditions(resource, ctx), "Progressing", "True", "Queued", message, now, gen
    )
    wanted = {
        "phase": "Queued",
        "message": message,
        "observedGeneration": gen,
        "conditions": conds,
        "queuedAt": status.get("queuedAt") or now,
    }
    if _is_new_run(resource):
        wanted.update({"jobName": None, "completionTime": None, "manifestUri": None, "notes": None})
    decision = Decision(status=_changes(status, wanted))
    if status.get("phase") != "Queued":
        decision.events.append(Event("Normal", "Queued", message))
    return decision


def _follow_job(resource: Body, job: Body, pods: Sequence[Body], ctx: Context) -> Decision:
    """The run's Job exists: finish with it, fail it when its pod never starts in time, else
    mirror its progress."""
    status = resource.get("status") or {}
    run = observe_run(job, pods, status.get("error"))
    if run.phase == "Succeeded" and shard_total(job) > 1:
        return _merge_step(resource, job, run, ctx)
    if run.phase == "Succeeded":
        return _run_succeeded(resource, job, run, ctx)
    if run.phase == "Failed":
        return _run_failed(resource, job, run, ctx)
    left = _pending_time_left(run, ctx)
    if left is not None and left <= 0:
        return _pending_timed_out(resource, run, ctx)
    decision = _run_progress(resource, job, run, ctx)
    decision.requeue_after = left
    return decision


MERGING_MESSAGE = "every shard finished; merging their parts into the manifest"


def _merge_step(resource: Body, job: Body | None, run: RunState | None, ctx: Context) -> Decision:
    """Every index of a sharded run's Indexed Job completed: the run ends with its merge Job.

    No merge Job yet: create it (Running, stage Uploading, reason Merging). The merge Job
    succeeded: Succeeded (its worker wrote ``manifestUri``). It failed (the parts stayed
    missing, the pod never started in time): Failed with its reason."""
    status = resource.get("status") or {}
    merge = ctx.merge_job
    if merge is None:
        decision = _merging(resource, job, ctx)
        decision.create_merge_job = True
        return decision
    merged = observe_run(merge, ctx.merge_pods, status.get("error"))
    uri = status.get("manifestUri") or reported_manifest(ctx.merge_pods)
    if merged.phase == "Succeeded" and not uri:
        return _manifest_not_reported(resource, job, merged, ctx)
    if merged.phase == "Succeeded":
        attempts = run.attempts if run is not None else merged.attempts
        done = RunState(
            "Succeeded", merged.reason, merged.message, attempts,
            completion_time=merged.completion_time,
        )  # fmt: skip
        decision = _run_succeeded(resource, job or merge, done, ctx)
        if not status.get("manifestUri"):  # its status write did not land: its exit message
            decision.status["manifestUri"] = uri
        return decision
    if merged.phase == "Failed":
        failed = RunState(
            "Failed", merged.reason, f"the merge step failed: {merged.message}"[:1024],
            merged.attempts, error=merged.error, completion_time=merged.completion_time,
        )  # fmt: skip
        decision = _run_failed(resource, job or merge, failed, ctx)
        decision.delete_job = decision.delete_job or not job_finished(merge)
        return decision
    left = _pending_time_left(merged, ctx)
    if left is not None and left <= 0:
        return _pending_timed_out(resource, merged, ctx)
    decision = _merging(resource, job, ctx)
    decision.requeue_after = left
    return decision


MANIFEST_REPORT_GRACE_SECONDS = 30.0
"""How long after its merge Job completed a run waits for the merge's ``manifestUri`` (its
status write and the Job's completion reach the operator through different watches)."""


def _manifest_not_reported(
    resource: Body, job: Body | None, merged: RunState, ctx: Context
) -> Decision:
    """The merge Job completed but no ``manifestUri`` arrived: wait a little for the watch, then
    fail (``ManifestNotReported``) rather than call a run without a manifest Succeeded (e.g. the
    worker's status writes were refused)."""
    done = parse_time(merged.completion_time) or ctx.now
    left = (done - ctx.now).total_seconds() + MANIFEST_REPORT_GRACE_SECONDS
    if left > 0:
        decision = _merging(resource, job, ctx)
        decision.requeue_after = left
        return decision
    message = (
        "the merge Job succeeded but its worker never reported the manifest (status.manifestUri); "
        "its status writes may have been refused (see the worker pod's log and the "
        "worker-own-resource admission policy)"
    )
    error = _failure_error("ManifestNotReported", message)
    patch = _finish(resource, ctx, "Failed", "ManifestNotReported", message, error=error)
    return Decision(status=patch, events=[Event("Warning", "ManifestNotReported", message)])


def _merging(resource: Body, job: Body | None, ctx: Context) -> Decision:
    """The run's status while its merge Job runs (one write on entering the step)."""
    status = resource.get("status") or {}
    gen = resource["metadata"].get("generation")
    conds = set_condition(
        _accepted_conditions(resource, ctx),
        "Progressing",
        "True",
        "Merging",
        MERGING_MESSAGE,
        format_time(ctx.now),
        gen,
    )
    wanted = {
        "phase": "Running",
        "stage": "Uploading",
        "message": MERGING_MESSAGE,
        "observedGeneration": gen,
        "conditions": conds,
    }
    decision = Decision(status=_changes(status, wanted))
    if job is not None:
        decision.status.update(_shard_changes(status, job))
    return decision


def _run_succeeded(resource: Body, job: Body, run: RunState, ctx: Context) -> Decision:
    """The Job completed: Succeeded."""
    status = resource.get("status") or {}
    summary = status.get("segmentsSummary")
    message = f"{summary} clips published" if summary else "all clips published"
    patch = _finish(
        resource,
        ctx,
        "Succeeded",
        "Succeeded",
        message,
        error=None,
        completion_time=run.completion_time,
    )
    patch.update(_changes(status, {"attempts": run.attempts}))
    patch.update(_shard_changes(status, job))
    return Decision(status=patch, events=[Event("Normal", "Succeeded", message)])


def _run_failed(resource: Body, job: Body, run: RunState, ctx: Context) -> Decision:
    """The run failed: Failed with the observed error, and the Job stopped if it still runs."""
    status = resource.get("status") or {}
    patch = _finish(
        resource,
        ctx,
        "Failed",
        run.reason,
        run.message,
        error=run.error,
        completion_time=run.completion_time,
    )
    patch.update(_changes(status, {"attempts": run.attempts}))
    patch.update(_shard_changes(status, job))
    return Decision(
        status=patch,
        events=[Event("Warning", run.reason, run.message)],
        # e.g. evicted for space while the Job controller would start another pod: stop it
        delete_job=not job_finished(job),
    )


def _pending_time_left(run: RunState, ctx: Context) -> float | None:
    """Seconds until a pending run's pod counts as never starting (None: no timeout runs)."""
    if run.phase != "Pending" or run.stuck_since is None:
        return None
    timeout = ctx.settings.pending_timeout_seconds
    return (run.stuck_since + dt.timedelta(seconds=timeout) - ctx.now).total_seconds()


def _pending_timed_out(resource: Body, run: RunState, ctx: Context) -> Decision:
    """The run's pod did not start within the pending timeout: fail and delete the Job."""
    timeout = ctx.settings.pending_timeout_seconds
    reason = run.timeout_reason or run.reason
    message = f"{run.timeout_message or run.message} (for more than {timeout}s)"[:1024]
    error = _failure_error(reason, message)
    return Decision(
        status=_finish(resource, ctx, "Failed", reason, message, error=error),
        events=[Event("Warning", reason, message)],
        delete_job=True,
    )


def _run_progress(resource: Body, job: Body, run: RunState, ctx: Context) -> Decision:
    """A pending or running run: mirror its phase, stage, attempts and shards."""
    status = resource.get("status") or {}
    gen = resource["metadata"].get("generation")
    sharded = _shard_changes(status, job) if shard_total(job) > 1 else {}
    stage = "Starting"
    if run.phase == "Running":
        progress = sharded.get("progress") or status.get("progress") or {}
        stage = progress.get("stage") or "Starting"
        if stage == "Finished":
            stage = "Uploading"
    conds = set_condition(
        _accepted_conditions(resource, ctx),
        "Progressing",
        "True",
        run.reason,
        run.message,
        format_time(ctx.now),
        gen,
    )
    wanted = {
        "phase": run.phase,
        "stage": stage,
        "message": run.message,
        "observedGeneration": gen,
        "conditions": conds,
        "jobName": resource_job_name(resource),
        "attempts": run.attempts,
    }
    decision = Decision(status=_changes(status, wanted))
    decision.status.update(sharded)
    if run.reason == "Retrying" and "attempts" in decision.status:
        # No Event for the pod starting: the phase says it (and a run's writes stay <= 8).
        decision.events.append(Event("Normal", run.reason, run.message))
    elif run.reason in STUCK_WAITING_REASONS | {"Unschedulable"} and "message" in decision.status:
        decision.events.append(Event("Warning", run.reason, run.message))
    return decision


def foreign_job_decision(resource: Body, ctx: Context, message: str) -> Decision:
    """The run's Job name is taken by a Job this resource does not own: fail with a reason."""
    error = {
        "category": "JobConflict",
        "reason": "JobConflict",
        "message": message,
        "permanent": True,
    }
    return Decision(
        status=_finish(resource, ctx, "Failed", "JobConflict", message, error=error),
        events=[Event("Warning", "JobConflict", message)],
    )


STARTUP_TIMEOUT_REASONS = frozenset({"PodNotCreated", "ContainerCreating", "PodNotStarted"})
"""Pending-timeout reasons whose cause only the Events tell (the reconciler reads them)."""

REJECTED_CREATE_CODES = frozenset({400, 403, 404, 422})
"""HTTP statuses of a refused Job create that a retry cannot fix (admission webhook, policy,
invalid object, missing namespace): the run fails with the server's message. Except a quota
(:func:`quota_exceeded`)."""


def quota_exceeded(code: int | None, message: str) -> bool:
    """A 403 from the ResourceQuota admission plugin (``exceeded quota: ...``): it clears by
    itself when other work in the namespace finishes or the quota is raised, so the create is
    retried with backoff instead of failing the run."""
    return code == 403 and "exceeded quota" in message


def create_failure_reason(code: int | None, message: str) -> str:
    """The Progressing condition's reason while a Job create is retried."""
    return "QuotaExceeded" if quota_exceeded(code, message) else "JobCreateFailed"


def job_rejected_decision(resource: Body, ctx: Context, code: int, message: str) -> Decision:
    """The API server refused the run's Job for good (403, 422, …): fail with its message."""
    text = f"the API server refused the Job ({code}): {message}"[:1024]
    error = {"category": "JobRejected", "reason": "JobRejected", "message": text, "permanent": True}
    patch = _finish(resource, ctx, "Failed", "JobRejected", text, error=error)
    patch["jobName"] = None  # no Job of this run exists
    return Decision(status=patch, events=[Event("Warning", "JobRejected", text)])


def job_create_retry_decision(
    resource: Body, ctx: Context, code: int | None, message: str, delay: float
) -> Decision:
    """Creating the Job failed for a reason that may pass (429, 5xx, no connection, a quota):
    keep the phase, say why in the Progressing condition (reason ``QuotaExceeded`` for a quota,
    else ``JobCreateFailed``), and try again after ``delay`` seconds."""
    status = resource.get("status") or {}
    gen = resource["metadata"].get("generation")
    what = f"{code}: {message}" if code else message
    text = f"creating the Job failed ({what}); retrying in {delay:.0f}s"[:1024]
    reason = create_failure_reason(code, message)
    conds = set_condition(
        status.get("conditions") or [],
        "Progressing",
        "True",
        reason,
        text,
        format_time(ctx.now),
        gen,
    )
    wanted = {"message": text, "conditions": conds, "observedGeneration": gen}
    if not status.get("phase"):
        wanted["phase"] = "Queued"
    decision = Decision(status=_changes(status, wanted), requeue_after=delay)
    previous: Mapping[str, Any] = next(
        (c for c in status.get("conditions") or [] if c.get("type") == "Progressing"), {}
    )
    if previous.get("reason") != reason:
        decision.events.append(Event("Warning", reason, text))
    return decision
