"""Reading a Job and its pods into a :class:`RunState` (pure; no timeouts applied here).

The Job controller and the kubelet say what happened to a run in conditions, pod phases, waiting
reasons and termination states; this module turns them into one phase, a reason and, for a
failed run, the ``status.error`` a user can act on.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from videojobs.models import PERMANENT_EXIT_CODES, ExitCode
from videojobs.sharding import format_index_list, parse_index_list
from videojobs_operator.manifest import ANNOTATION_COMPLETION_INDEX, ANNOTATION_SHARDS, CONTAINER
from videojobs_operator.timestamps import parse_time

Body = Mapping[str, Any]

STUCK_WAITING_REASONS = frozenset(
    {"ImagePullBackOff", "ErrImagePull", "InvalidImageName", "CreateContainerConfigError"}
)


def _exit_names() -> dict[int, str]:
    return {c.value: "".join(p.capitalize() for p in c.name.split("_")) for c in ExitCode}


EXIT_CATEGORIES = _exit_names()
"""Exit code -> category (the ExitCode name in CamelCase, as the worker reports it)."""

EXIT_HINTS: dict[int, str] = {
    1: "the worker hit an unexpected error (a bug); see the pod's log",
    2: "the worker could not read its input; check operator and worker versions match",
    10: "the spec or transcript does not validate",
    11: "the video is unavailable (removed or HTTP 404/410)",
    12: "the video is private",
    13: "the video needs a login: add source.cookiesSecretRef",
    14: "the video is not available in the cluster's region",
    15: "the video is age-restricted: supply cookies of an age-verified account",
    16: "no extractor supports the URL, or it points to a page without media",
    17: "the download is not playable media (no video or audio stream, truncated or empty)",
    18: "the URL resolves to a private or local address, which workers may not reach",
    19: "the segment plan does not fit the source (a range starts past its end)",
    20: "network failure while downloading or publishing",
    21: "a download or tool timed out",
    22: "the scratch or output volume is full: raise resources.scratchSize",
    23: "publishing the clips to storage failed",
    24: "ffmpeg failed unexpectedly",
    30: "a cut clip does not match its plan (the error names the clip, expected and found);"
    " cutting again gives the same clip: report the source kind",
    137: "the worker was killed (out of memory?): raise resources.memory",
    143: "the worker was terminated",
}


def error_from_exit(exit_code: int, detail: str = "") -> dict[str, Any]:
    """``status.error`` for a worker that exited with ``exit_code`` and said ``detail``."""
    category = EXIT_CATEGORIES.get(exit_code, "OOMKilled" if exit_code == 137 else "Unknown")
    hint = EXIT_HINTS.get(exit_code, f"the worker exited with code {exit_code}")
    message = f"{hint}: {detail}" if detail and detail not in hint else hint
    return {
        "category": category,
        "reason": category,
        "message": message[:1024],
        "exitCode": exit_code,
        "permanent": exit_code in PERMANENT_EXIT_CODES,
    }


def _termination(pod: Body) -> dict[str, Any] | None:
    for cs in (pod.get("status") or {}).get("containerStatuses") or []:
        if cs.get("name") == CONTAINER:
            term = (cs.get("state") or {}).get("terminated")
            if term:
                return dict(term)
    return None


def _waiting(pod: Body) -> tuple[str, str] | None:
    status = pod.get("status") or {}
    for cs in status.get("containerStatuses") or []:
        waiting = (cs.get("state") or {}).get("waiting") or {}
        if waiting.get("reason") in STUCK_WAITING_REASONS:
            return waiting["reason"], waiting.get("message", "")
    for cond in status.get("conditions") or []:
        if (
            cond.get("type") == "PodScheduled"
            and cond.get("status") == "False"
            and cond.get("reason") == "Unschedulable"
        ):
            return "Unschedulable", cond.get("message", "")
    return None


def _termination_detail(term: Mapping[str, Any]) -> str:
    text = (term.get("message") or "").strip()
    if not text:
        return str(term.get("reason") or "")
    try:  # the worker writes {"exitCode", "category", "message"} to /dev/termination-log
        data = json.loads(text.splitlines()[-1])
        return str(data.get("message") or text) if isinstance(data, dict) else text
    except ValueError:
        return text[-300:]


def reported_manifest(pods: Sequence[Body]) -> str | None:
    """The ``manifestUri`` a merge pod that exited 0 put in its termination message (the
    worker's one-line JSON), newest pod first; ``None`` when none did."""
    for pod in sorted(pods, key=_pod_time, reverse=True):
        term = _termination(pod)
        if not term or term.get("exitCode") != 0:
            continue
        lines = str(term.get("message") or "").strip().splitlines()
        try:
            data = json.loads(lines[-1]) if lines else None
        except ValueError:
            continue
        uri = data.get("manifestUri") if isinstance(data, dict) else None
        if isinstance(uri, str) and 0 < len(uri) <= 2048:
            return uri
    return None


_SPACE_WORDS = ("ephemeral", "emptydir", "storage", "disk")


def evicted_for_space(pod: Body) -> str | None:
    """The kubelet's message when it evicted the pod for using too much local storage (a
    scratch emptyDir over its ``sizeLimit``, or the node's disk pressure), else None.

    Such a pod is killed with exit code 137, which alone reads as out of memory."""
    status = pod.get("status") or {}
    texts = []
    if status.get("reason") == "Evicted":
        texts.append(str(status.get("message") or "evicted"))
    for cond in status.get("conditions") or []:
        if cond.get("type") == "DisruptionTarget" and cond.get("status") == "True":
            if cond.get("reason") == "TerminationByKubelet":
                texts.append(str(cond.get("message") or ""))
    for text in texts:
        if any(word in text.lower() for word in _SPACE_WORDS):
            return text
    return None


def _no_space_error(pod: Body, why: str) -> dict[str, Any]:
    name = (pod.get("metadata") or {}).get("name", "")
    error = error_from_exit(22, f"pod {name} was evicted: {why}")
    term = _termination(pod)
    if term is not None and term.get("exitCode") is not None:
        error["exitCode"] = int(term["exitCode"])
    error["permanent"] = True
    return error


def _pod_time(pod: Body) -> str:
    return (pod.get("metadata") or {}).get("creationTimestamp") or ""


_STARTED_POD_PHASES = frozenset({"Running", "Succeeded", "Failed"})


def job_condition(job: Body, kind: str) -> Mapping[str, Any] | None:
    """The Job's condition of this type when it is True."""
    for cond in (job.get("status") or {}).get("conditions") or []:
        if cond.get("type") == kind and cond.get("status") == "True":
            return dict(cond)
    return None


def job_finished(job: Body) -> bool:
    """True when the Job completed or failed (its pods are gone or going)."""
    return bool(job_condition(job, "Complete") or job_condition(job, "Failed"))


WAITING_FOR_POD = "waiting for the worker pod to start"


# Indexed Jobs (sharded runs) -------------------------------------------------------------------


def shard_total(job: Body) -> int:
    """Shards of the Job's run: its shards annotation, else its completions when it is an
    Indexed Job, else 1."""
    raw = ((job.get("metadata") or {}).get("annotations") or {}).get(ANNOTATION_SHARDS)
    if raw is not None and raw.isdigit():
        return max(1, int(raw))
    spec = job.get("spec") or {}
    if spec.get("completionMode") != "Indexed":
        return 1
    return max(1, int(spec.get("completions") or 1))


def pod_shard(pod: Body) -> int | None:
    """An Indexed Job pod's completion index (annotation, else label)."""
    meta = pod.get("metadata") or {}
    raw = (meta.get("annotations") or {}).get(ANNOTATION_COMPLETION_INDEX) or (
        meta.get("labels") or {}
    ).get(ANNOTATION_COMPLETION_INDEX)
    try:
        return int(raw) if raw is not None else None
    except ValueError:
        return None


def shards_summary(job: Body) -> dict[str, Any] | None:
    """``status.shards`` of a sharded run, from its Indexed Job's status (None otherwise)."""
    total = shard_total(job)
    if total <= 1:
        return None
    status = job.get("status") or {}
    done = parse_index_list(status.get("completedIndexes"))
    failed = parse_index_list(status.get("failedIndexes"))
    return {
        "count": total,
        "succeeded": len(done),
        "completedIndexes": format_index_list(done),
        "failedIndexes": format_index_list(failed),
    }


def _failed_shard(job: Body, pods: Sequence[Body]) -> tuple[int | None, Body | None]:
    """The shard that failed an Indexed Job and its last failed pod: an index in
    ``failedIndexes``, else the pod whose exit code failed the Job (podFailurePolicy), else the
    latest failed pod (its siblings are terminated when the Job fails: never blame them)."""
    failed = sorted(parse_index_list((job.get("status") or {}).get("failedIndexes")))

    def code(pod: Body) -> int | None:
        term = _termination(pod)
        value = term.get("exitCode") if term else None
        return int(value) if value is not None else None

    candidates = [p for p in pods if code(p)]
    if failed:
        mine = [p for p in candidates if pod_shard(p) == failed[0]]
        return failed[0], (mine[-1] if mine else None)
    permanent = [p for p in candidates if code(p) in PERMANENT_EXIT_CODES]
    pool = permanent or [p for p in candidates if code(p) != 143] or candidates
    pick = pool[-1] if pool else None
    return (pod_shard(pick) if pick is not None else None), pick


@dataclass(frozen=True)
class RunState:
    """What a Job and its pods say about a run."""

    phase: str
    """Pending, Running, Succeeded or Failed."""
    reason: str
    message: str
    attempts: int
    error: dict[str, Any] | None = None
    stuck_since: dt.datetime | None = None
    """For Pending: since when a pod cannot be scheduled or pulled, else since the Job's
    creation (the pending timeout applies to every run whose pod never started)."""
    completion_time: str | None = None
    timeout_reason: str | None = None
    """For Pending: the reason to report when the pending timeout passes (default ``reason``)."""
    timeout_message: str | None = None


def observe_run(
    job: Body, pods: Sequence[Body], worker_error: Mapping[str, Any] | None
) -> RunState:
    """Read a Job and its pods into a :class:`RunState` (pure; no timeouts applied here)."""
    pods = sorted(pods, key=_pod_time)
    attempts = _attempts(job, pods)
    done = job_condition(job, "Complete")
    if done:
        return _succeeded(job, done, attempts)
    failed = job_condition(job, "Failed")
    no_space = _out_of_space(pods, failed, attempts)
    if no_space is not None:
        return no_space
    if failed:
        return _failed(job, pods, failed, worker_error, attempts)
    return _unfinished(job, pods, attempts)


# The steps of observe_run ---------------------------------------------------------------------


def _attempts(job: Body, pods: Sequence[Body]) -> int:
    """Pods the run has had: those seen, or those the Job controller counted (at least 1)."""
    status = job.get("status") or {}
    counted = int(status.get("failed") or 0) + int(status.get("succeeded") or 0)
    return max(1, len(pods), counted)


def _succeeded(job: Body, done: Mapping[str, Any], attempts: int) -> RunState:
    """The Job completed."""
    status = job.get("status") or {}
    return RunState(
        "Succeeded",
        "Succeeded",
        "all clips published",
        attempts,
        completion_time=status.get("completionTime") or done.get("lastTransitionTime"),
    )


def _out_of_space(
    pods: Sequence[Body], failed: Mapping[str, Any] | None, attempts: int
) -> RunState | None:
    """Failed (NoSpace) when a pod was evicted for its scratch space and the Job failed or that
    pod is the latest: the same run would fill it again, and the Job controller may not even
    count it (podFailurePolicy ignores DisruptionTarget pods)."""
    evicted = next(
        ((p, why) for p in reversed(pods) if (why := evicted_for_space(p)) is not None), None
    )
    if evicted is None or not (failed or evicted[0] is pods[-1]):
        return None
    error = _no_space_error(*evicted)
    when = (failed or {}).get("lastTransitionTime")
    return RunState("Failed", "NoSpace", error["message"], attempts, error, None, when)


def _failed(
    job: Body,
    pods: Sequence[Body],
    failed: Mapping[str, Any],
    worker_error: Mapping[str, Any] | None,
    attempts: int,
) -> RunState:
    """The Job failed: the error of its last exit (of the failed shard, in a sharded run)."""
    last_term = next((t for t in (_termination(p) for p in reversed(pods)) if t), None)
    shards = shard_total(job)
    failed_shard: int | None = None
    if shards > 1:
        failed_shard, failed_pod = _failed_shard(job, pods)
        last_term = _termination(failed_pod) if failed_pod is not None else last_term
        if (
            failed_shard is not None
            and worker_error
            and worker_error.get("shard") not in (None, failed_shard)
        ):
            # another shard's report (killed when the Job failed); equivalent mutant: "" is as falsy
            worker_error = None  # pragma: no mutate
    error = _failure_error(failed, last_term, worker_error, attempts)
    if failed_shard is not None:
        error = _blame_shard(error, failed_shard, shards)
    when = failed.get("lastTransitionTime")
    return RunState("Failed", error["reason"], error["message"], attempts, error, None, when)


def _failure_error(
    failed: Mapping[str, Any],
    last_term: Mapping[str, Any] | None,
    worker_error: Mapping[str, Any] | None,
    attempts: int,
) -> dict[str, Any]:
    """``status.error`` of a failed Job: its deadline, else the last pod's exit code (with the
    worker's own report of that exit), else the worker's report, else the Job's condition."""
    reason = str(failed.get("reason") or "JobFailed")
    if reason == "DeadlineExceeded":
        return {
            "category": "Timeout",
            "reason": "DeadlineExceeded",
            "message": "the job ran longer than activeDeadlineSeconds; raise "
            "spec.activeDeadlineSeconds or use a smaller maxHeight",
            "permanent": True,
        }
    if last_term is not None and last_term.get("exitCode") is not None:
        code = int(last_term["exitCode"])
        error = error_from_exit(code, _termination_detail(last_term))
        if worker_error and worker_error.get("exitCode") == code:
            error = {**error, **dict(worker_error)}
        if reason == "BackoffLimitExceeded":
            error["message"] = f"gave up after {attempts} attempts; last: {error['message']}"
        return error
    if worker_error:
        return dict(worker_error)
    return {
        "category": "JobFailed",
        "reason": reason,
        "message": str(failed.get("message") or "the Job failed"),
        "permanent": True,
    }


def _blame_shard(error: Mapping[str, Any], shard: int, shards: int) -> dict[str, Any]:
    """The error with the failed shard named once at the start of its message."""
    text = str(error["message"])
    if text.startswith(f"shard {shard}: "):
        text = text[len(f"shard {shard}: ") :]
    return {**error, "shard": shard, "message": (f"shard {shard} of {shards}: " + text)[:1024]}


def _unfinished(job: Body, pods: Sequence[Body], attempts: int) -> RunState:
    """Neither complete nor failed: stuck waiting, running (maybe retrying), or not started."""
    status = job.get("status") or {}
    running = [p for p in pods if (p.get("status") or {}).get("phase") == "Running"]
    waiting = [(p, w) for p in pods if (w := _waiting(p)) is not None]
    if waiting and not running:
        pod, (why, detail) = waiting[-1]
        since = parse_time(_pod_time(pod)) or parse_time(status.get("startTime"))
        msg = f"pod {pod['metadata'].get('name', '')} waiting: {why}"
        msg = f"{msg}: {detail}" if detail else msg
        return RunState("Pending", why, msg, attempts, None, since)
    # Between two attempts (or before the Job controller marks it done) the run is still
    # Running: a pod has run, and nothing says it is over.
    ran = [p for p in pods if (p.get("status") or {}).get("phase") in _STARTED_POD_PHASES]
    if ran or (not pods and int(status.get("ready") or 0) > 0):
        return _running(job, pods, attempts)
    return _not_started(job, pods, attempts)


def _running(job: Body, pods: Sequence[Body], attempts: int) -> RunState:
    """A pod has run: Running, or Retrying after an earlier pod's exit."""
    # Failures of earlier pods; the latest pod's own exit is news only once the Job
    # controller has decided about it (Complete/Failed above, or a new pod here).
    shards = shard_total(job)
    if shards > 1:
        return _indexed_running(pods, shards, attempts)
    retried = [t for t in (_termination(p) for p in pods[:-1]) if t and t.get("exitCode")]
    if retried:
        code = int(retried[-1]["exitCode"])
        name = EXIT_CATEGORIES.get(code, str(code))
        message = f"attempt {len(pods)} after exit code {code} ({name})"
        return RunState("Running", "Retrying", message, attempts)
    return RunState("Running", "Running", "the worker is running", attempts)


def _not_started(job: Body, pods: Sequence[Body], attempts: int) -> RunState:
    """No pod has started: Pending, with the pending timeout counting from the Job's creation,
    whatever keeps the pod from starting (the Job controller's FailedCreate, a pod in
    ContainerCreating)."""
    status = job.get("status") or {}
    name = (job.get("metadata") or {}).get("name", "")
    created = parse_time((job.get("metadata") or {}).get("creationTimestamp")) or parse_time(
        status.get("startTime")
    )
    if not pods:
        return RunState(
            "Pending",
            "JobCreated",
            WAITING_FOR_POD,
            attempts,
            stuck_since=created,
            timeout_reason="PodNotCreated",
            timeout_message=(
                f"the Job controller created no worker pod for Job {name} (FailedCreate: a "
                "ResourceQuota or LimitRange, an admission policy or webhook, a missing "
                f"ServiceAccount); see kubectl describe job {name}"
            ),
        )
    pod = pods[-1]
    pod_name = (pod.get("metadata") or {}).get("name", "")
    creating = any(
        ((cs.get("state") or {}).get("waiting") or {}).get("reason") == "ContainerCreating"
        for cs in (pod.get("status") or {}).get("containerStatuses") or []
    )
    return RunState(
        "Pending",
        "ContainerCreating" if creating else "JobCreated",
        f"pod {pod_name} is being created (ContainerCreating)" if creating else WAITING_FOR_POD,
        attempts,
        stuck_since=created,
        timeout_reason="ContainerCreating" if creating else "PodNotStarted",
        timeout_message=(
            f"pod {pod_name} never left ContainerCreating: a Secret, ConfigMap or volume it "
            f"mounts may be missing; see kubectl describe pod {pod_name}"
            if creating
            else f"pod {pod_name} was never scheduled or started; see kubectl describe pod "
            f"{pod_name}"
        ),
    )


def _indexed_running(pods: Sequence[Body], shards: int, attempts: int) -> RunState:
    """A running Indexed Job: which shard is being retried, if any (each index retries alone)."""
    by_shard: dict[int, list[Body]] = {}
    for pod in pods:
        index = pod_shard(pod)
        if index is not None:
            by_shard.setdefault(index, []).append(pod)
    for index in sorted(by_shard):
        earlier = by_shard[index][:-1]
        retried = [t for t in (_termination(p) for p in earlier) if t and t.get("exitCode")]
        if retried:
            code = int(retried[-1]["exitCode"])
            name = EXIT_CATEGORIES.get(code, str(code))
            message = (
                f"shard {index} of {shards}: attempt {len(by_shard[index])} after exit code "
                f"{code} ({name})"
            )
            return RunState("Running", "Retrying", message, attempts)
    return RunState("Running", "Running", f"{shards} shards are running", attempts)
