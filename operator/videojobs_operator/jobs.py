"""Pure core of the operator: Job manifests, run identity, status decisions and the queue.

Nothing here talks to the Kubernetes API or reads the clock: every function takes what was
observed (the resource, its Job, the Job's pods, "now") and returns what should be true
(a manifest, a status patch, events, actions). ``reconcile.py`` does the I/O around it.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from pydantic import ValidationError

from videojobs.errors import Problem
from videojobs.models import (
    API_VERSION,
    FINISHED_PHASES,
    INPUT_ENV,
    KIND,
    PERMANENT_EXIT_CODES,
    ExitCode,
    ResourceRef,
    VideoProcessingJobSpec,
    WorkerInput,
)
from videojobs.models.worker import COOKIES_MOUNT, OUTPUT_MOUNT, SCRATCH_MOUNT, TRANSCRIPT_MOUNT
from videojobs.validation import problems_from_validation_error
from videojobs_operator.settings import OperatorSettings

Body = Mapping[str, Any]
Patch = dict[str, Any]

# Labels ---------------------------------------------------------------------------------------

LABEL_NAME = "app.kubernetes.io/name"
LABEL_INSTANCE = "app.kubernetes.io/instance"
LABEL_COMPONENT = "app.kubernetes.io/component"
LABEL_MANAGED_BY = "app.kubernetes.io/managed-by"
LABEL_PART_OF = "app.kubernetes.io/part-of"
LABEL_JOB = "videojobs.io/job"
"""Name of the VideoProcessingJob a Job (and its pods) belongs to."""
LABEL_UID = "videojobs.io/uid"
"""UID of that VideoProcessingJob (a re-created namesake gets new Jobs)."""
LABEL_RUN = "videojobs.io/run"
"""Short hash of uid + rerunToken: one value per run."""
ANNOTATION_RERUN = "videojobs.io/rerun-token"

MANAGED_BY = "videojobs-operator"
WORKER_COMPONENT = "worker"
CONTAINER = "worker"
WORKER_UID = 10001

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
)
"""Status fields only the operator writes (``error`` is shared with the worker)."""

ACTIVE_PHASES = frozenset({"Pending", "Running"})
STUCK_WAITING_REASONS = frozenset(
    {"ImagePullBackOff", "ErrImagePull", "InvalidImageName", "CreateContainerConfigError"}
)


# Time -----------------------------------------------------------------------------------------


def format_time(moment: dt.datetime) -> str:
    """RFC 3339 in UTC with whole seconds, as Kubernetes writes timestamps."""
    return moment.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_time(value: str | None) -> dt.datetime | None:
    """Parse a Kubernetes timestamp (whole or fractional seconds); None stays None."""
    if not value:
        return None
    return dt.datetime.fromisoformat(value.replace("Z", "+00:00"))


# Run identity ---------------------------------------------------------------------------------


def run_id(uid: str, rerun_token: str | None) -> str:
    """A short, stable id of one run: the same resource and token always give the same id."""
    return hashlib.sha256(f"{uid}/{rerun_token or ''}".encode()).hexdigest()[:8]


def job_name(name: str, uid: str, rerun_token: str | None) -> str:
    """The Job name of the current run: resource name + run id, at most 63 characters.

    63 because the Job controller copies the name into a pod label value. A changed
    ``rerunToken`` gives a new name, so a new run never collides with the old Job.
    """
    base = re.sub(r"[^a-z0-9-]", "-", name.lower())[:54].strip("-") or "vpj"
    return f"{base}-{run_id(uid, rerun_token)}"


def resource_job_name(resource: Body) -> str:
    """:func:`job_name` for a resource body."""
    meta = resource.get("metadata", {})
    return job_name(meta["name"], meta["uid"], (resource.get("spec") or {}).get("rerunToken"))


# Validation -----------------------------------------------------------------------------------


def validate_spec(spec: Any) -> tuple[VideoProcessingJobSpec | None, list[Problem]]:
    """The spec as a model, or the problems that stop it from being one."""
    try:
        return VideoProcessingJobSpec.model_validate(spec or {}), []
    except ValidationError as exc:
        return None, problems_from_validation_error(exc)


# The Job manifest -----------------------------------------------------------------------------


def labels_for(resource: Body) -> dict[str, str]:
    """Labels of the Job and its pods."""
    meta = resource["metadata"]
    spec = resource.get("spec") or {}
    return {
        LABEL_NAME: "videojobs",
        LABEL_INSTANCE: meta["name"],
        LABEL_COMPONENT: WORKER_COMPONENT,
        LABEL_MANAGED_BY: MANAGED_BY,
        LABEL_PART_OF: "videojobs",
        LABEL_JOB: meta["name"],
        LABEL_UID: meta["uid"],
        LABEL_RUN: run_id(meta["uid"], spec.get("rerunToken")),
    }


def owner_reference(resource: Body) -> dict[str, Any]:
    """The controller owner reference to the resource (deleting it deletes the Job)."""
    meta = resource["metadata"]
    return {
        "apiVersion": API_VERSION,
        "kind": KIND,
        "name": meta["name"],
        "uid": meta["uid"],
        "controller": True,
        "blockOwnerDeletion": True,
    }


def build_worker_input(
    resource: Body, spec: VideoProcessingJobSpec, settings: OperatorSettings
) -> WorkerInput:
    """What the worker gets in ``VIDEOJOBS_INPUT`` (docs/worker-contract.md)."""
    meta = resource["metadata"]
    transcript_path = None
    if spec.transcript is not None and spec.transcript.config_map_key_ref is not None:
        transcript_path = f"{TRANSCRIPT_MOUNT}/transcript"
    return WorkerInput(
        spec=spec,
        resource=ResourceRef(
            namespace=meta["namespace"],
            name=meta["name"],
            uid=meta["uid"],
            generation=meta.get("generation"),
        ),
        transcript_path=transcript_path,
        allow_private_networks=settings.allow_private_networks,
        allowed_networks=list(settings.allowed_networks),
        progress_interval_seconds=settings.progress_interval_seconds,
    )


def _volumes(spec: VideoProcessingJobSpec, scratch_size: str) -> tuple[list[Any], list[Any]]:
    volumes: list[dict[str, Any]] = [{"name": "scratch", "emptyDir": {"sizeLimit": scratch_size}}]
    mounts: list[dict[str, Any]] = [{"name": "scratch", "mountPath": SCRATCH_MOUNT}]
    if spec.transcript is not None and spec.transcript.config_map_key_ref is not None:
        ref = spec.transcript.config_map_key_ref
        volumes.append(
            {
                "name": "transcript",
                "configMap": {"name": ref.name, "items": [{"key": ref.key, "path": "transcript"}]},
            }
        )
        mounts.append({"name": "transcript", "mountPath": TRANSCRIPT_MOUNT, "readOnly": True})
    if spec.source.cookies_secret_ref is not None:
        ref = spec.source.cookies_secret_ref
        volumes.append(
            {
                "name": "cookies",
                "secret": {
                    "secretName": ref.name,
                    "items": [{"key": ref.key, "path": "cookies.txt"}],
                    "defaultMode": 0o440,
                },
            }
        )
        mounts.append({"name": "cookies", "mountPath": COOKIES_MOUNT, "readOnly": True})
    if spec.output.storage.pvc is not None:
        volumes.append(
            {
                "name": "output",
                "persistentVolumeClaim": {"claimName": spec.output.storage.pvc.claim_name},
            }
        )
        mounts.append({"name": "output", "mountPath": OUTPUT_MOUNT})
    return volumes, mounts


def _env(worker_input: WorkerInput, spec: VideoProcessingJobSpec) -> list[dict[str, Any]]:
    env: list[dict[str, Any]] = [
        {
            "name": INPUT_ENV,
            "value": worker_input.model_dump_json(by_alias=True, exclude_none=True),
        },
        {"name": "TMPDIR", "value": SCRATCH_MOUNT},
        {"name": "HOME", "value": SCRATCH_MOUNT},
    ]
    s3 = spec.output.storage.s3
    if s3 is not None and s3.credentials_secret_ref is not None:
        for key in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
            env.append(
                {
                    "name": key,
                    "valueFrom": {
                        "secretKeyRef": {"name": s3.credentials_secret_ref.name, "key": key}
                    },
                }
            )
    return env


def build_job(
    resource: Body, spec: VideoProcessingJobSpec, settings: OperatorSettings
) -> dict[str, Any]:
    """The complete ``batch/v1`` Job of the resource's current run."""
    meta = resource["metadata"]
    labels = labels_for(resource)
    res = spec.resources
    cpu = (res.cpu if res else None) or settings.worker_cpu
    memory = (res.memory if res else None) or settings.worker_memory
    scratch = (res.scratch_size if res else None) or settings.worker_scratch_size
    volumes, mounts = _volumes(spec, scratch)
    container = {
        "name": CONTAINER,
        "image": settings.worker_image,
        "imagePullPolicy": settings.worker_image_pull_policy,
        "args": ["run"],
        "env": _env(build_worker_input(resource, spec, settings), spec),
        "resources": {
            "requests": {"cpu": cpu, "memory": memory},
            "limits": {"cpu": cpu, "memory": memory},
        },
        "volumeMounts": mounts,
        "securityContext": {
            "runAsNonRoot": True,
            "runAsUser": WORKER_UID,
            "runAsGroup": WORKER_UID,
            "readOnlyRootFilesystem": True,
            "allowPrivilegeEscalation": False,
            "capabilities": {"drop": ["ALL"]},
            "seccompProfile": {"type": "RuntimeDefault"},
        },
        "terminationMessagePath": "/dev/termination-log",
        "terminationMessagePolicy": "FallbackToLogsOnError",
    }
    annotations = {ANNOTATION_RERUN: spec.rerun_token} if spec.rerun_token else {}
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {
            "name": resource_job_name(resource),
            "namespace": meta["namespace"],
            "labels": labels,
            "annotations": annotations,
            "ownerReferences": [owner_reference(resource)],
        },
        "spec": {
            "backoffLimit": spec.backoff_limit,
            "activeDeadlineSeconds": spec.active_deadline_seconds
            or settings.default_active_deadline_seconds,
            "ttlSecondsAfterFinished": settings.job_ttl_seconds_after_finished,
            "podFailurePolicy": {
                "rules": [
                    {
                        "action": "FailJob",
                        "onExitCodes": {
                            "containerName": CONTAINER,
                            "operator": "In",
                            "values": list(PERMANENT_EXIT_CODES),
                        },
                    },
                    {
                        "action": "Ignore",
                        "onPodConditions": [{"type": "DisruptionTarget", "status": "True"}],
                    },
                ]
            },
            "template": {
                "metadata": {"labels": labels},
                "spec": {
                    "restartPolicy": "Never",
                    "serviceAccountName": settings.worker_service_account,
                    "automountServiceAccountToken": True,
                    "enableServiceLinks": False,
                    "terminationGracePeriodSeconds": 30,
                    "securityContext": {
                        "runAsNonRoot": True,
                        "runAsUser": WORKER_UID,
                        "runAsGroup": WORKER_UID,
                        "fsGroup": WORKER_UID,
                        "seccompProfile": {"type": "RuntimeDefault"},
                    },
                    "containers": [container],
                    "volumes": volumes,
                },
            },
        },
    }


def is_owned_by(obj: Body, resource: Body) -> bool:
    """True when ``obj`` has a controller owner reference to this very resource (by uid)."""
    uid = resource["metadata"]["uid"]
    refs = (obj.get("metadata") or {}).get("ownerReferences") or []
    return any(ref.get("uid") == uid and ref.get("controller") for ref in refs)


# Observing a Job ------------------------------------------------------------------------------


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
    17: "the download is not a playable video (no video stream, truncated or empty)",
    18: "the URL resolves to a private or local address, which workers may not reach",
    19: "the segment plan does not fit the source (a range starts past its end)",
    20: "network failure while downloading or publishing",
    21: "a download or tool timed out",
    22: "the scratch or output volume is full: raise resources.scratchSize",
    23: "publishing the clips to storage failed",
    24: "ffmpeg failed unexpectedly",
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


_WAITING_FOR_POD = "waiting for the worker pod to start"


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
    """For Pending: since when a pod cannot be scheduled or pulled."""
    completion_time: str | None = None


def observe_run(
    job: Body, pods: Sequence[Body], worker_error: Mapping[str, Any] | None
) -> RunState:
    """Read a Job and its pods into a :class:`RunState` (pure; no timeouts applied here)."""
    status = job.get("status") or {}
    pods = sorted(pods, key=_pod_time)
    counted = int(status.get("failed") or 0) + int(status.get("succeeded") or 0)
    ran = [p for p in pods if (p.get("status") or {}).get("phase") in _STARTED_POD_PHASES]
    attempts = max(1, len(pods), counted)
    last_term = next((t for t in (_termination(p) for p in reversed(pods)) if t), None)

    done = job_condition(job, "Complete")
    if done:
        return RunState(
            "Succeeded",
            "Succeeded",
            "all clips published",
            attempts,
            completion_time=status.get("completionTime") or done.get("lastTransitionTime"),
        )
    failed = job_condition(job, "Failed")
    if failed:
        reason = str(failed.get("reason") or "JobFailed")
        when = failed.get("lastTransitionTime")
        if reason == "DeadlineExceeded":
            error = {
                "category": "Timeout",
                "reason": "DeadlineExceeded",
                "message": "the job ran longer than activeDeadlineSeconds; raise "
                "spec.activeDeadlineSeconds or use a smaller maxHeight",
                "permanent": True,
            }
        elif last_term is not None and last_term.get("exitCode") is not None:
            code = int(last_term["exitCode"])
            error = error_from_exit(code, _termination_detail(last_term))
            if worker_error and worker_error.get("exitCode") == code:
                error = {**error, **dict(worker_error)}
            if reason == "BackoffLimitExceeded":
                error["message"] = f"gave up after {attempts} attempts; last: {error['message']}"
        elif worker_error:
            error = dict(worker_error)
        else:
            error = {
                "category": "JobFailed",
                "reason": reason,
                "message": str(failed.get("message") or "the Job failed"),
                "permanent": True,
            }
        return RunState("Failed", error["reason"], error["message"], attempts, error, None, when)

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
    if ran or (not pods and int(status.get("ready") or 0) > 0):
        # Failures of earlier pods; the latest pod's own exit is news only once the Job
        # controller has decided about it (Complete/Failed above, or a new pod here).
        retried = [t for t in (_termination(p) for p in pods[:-1]) if t and t.get("exitCode")]
        if retried:
            code = int(retried[-1]["exitCode"])
            name = EXIT_CATEGORIES.get(code, str(code))
            message = f"attempt {len(pods)} after exit code {code} ({name})"
            return RunState("Running", "Retrying", message, attempts)
        return RunState("Running", "Running", "the worker is running", attempts)
    return RunState("Pending", "JobCreated", _WAITING_FOR_POD, attempts)


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
    delete_job: bool = False
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
    meta = resource["metadata"]
    spec = resource.get("spec") or {}
    status = resource.get("status") or {}
    gen = meta.get("generation")
    now = format_time(ctx.now)
    expected = resource_job_name(resource)
    decision = Decision()

    if meta.get("deletionTimestamp"):
        return decision

    if is_finished(resource):
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

    new_run = status.get("jobName") not in (None, expected)

    if ctx.problems:
        text = "; ".join(str(p) for p in ctx.problems)
        error = {
            "category": "InvalidSpec",
            "reason": "InvalidSpec",
            "message": text[:2048],
            "permanent": True,
        }
        patch = _finish(resource, ctx, "Failed", "InvalidSpec", text[:1024], error=error)
        conds = set_condition(
            patch.get("conditions", status.get("conditions") or []),
            "Accepted",
            "False",
            "InvalidSpec",
            text[:1024],
            now,
            gen,
        )
        patch["conditions"] = conds
        patch["jobName"] = None
        decision.status = patch
        decision.events.append(Event("Warning", "InvalidSpec", text[:1024]))
        return decision

    if spec.get("cancel"):
        decision.delete_job = job is not None
        decision.status = _finish(
            resource,
            ctx,
            "Cancelled",
            "Cancelled",
            "cancelled by spec.cancel; clips already published are kept",
            error=None,
        )
        decision.events.append(
            Event(
                "Normal",
                "Cancelled",
                "cancelled; the Job was removed"
                if job is not None
                else "cancelled before it started",
            )
        )
        return decision

    accepted = set_condition(
        status.get("conditions") or [],
        "Accepted",
        "True",
        "Validated",
        "the spec is valid",
        now,
        gen,
    )

    if job is None:
        if ctx.job_missing and not new_run and status.get("jobName") == expected:
            if status.get("manifestUri") and not status.get("error"):
                # The worker writes the manifest last, after every clip: the run succeeded and
                # its Job was removed afterwards (its own TTL while the operator was down).
                message = "all clips published (the Job is gone)"
                decision.status = _finish(
                    resource, ctx, "Succeeded", "Succeeded", message, error=None
                )
                decision.events.append(Event("Normal", "Succeeded", message))
                return decision
            message = (
                f"the Job {expected} was deleted before it finished; set a new "
                "spec.rerunToken to run again"
            )
            error = {
                "category": "JobDeleted",
                "reason": "JobDeleted",
                "message": message,
                "permanent": True,
            }
            decision.status = _finish(resource, ctx, "Failed", "JobDeleted", message, error=error)
            decision.events.append(Event("Warning", "JobDeleted", message))
            return decision
        if ctx.waiting_for:
            conds = set_condition(
                accepted, "Accepted", "False", "Waiting", ctx.waiting_for, now, gen
            )
            wanted = {
                "phase": "Pending",
                "message": ctx.waiting_for,
                "conditions": conds,
                "observedGeneration": gen,
            }
            decision.status = _changes(status, wanted)
            if decision.status.get("message"):
                decision.events.append(Event("Warning", "Waiting", ctx.waiting_for))
            decision.requeue_after = 15.0
            return decision
        if ctx.admitted:
            conds = set_condition(
                accepted, "Progressing", "True", "JobCreated", _WAITING_FOR_POD, now, gen
            )
            conds = drop_condition(drop_condition(conds, "Complete"), "Failed")
            wanted = {
                "phase": "Pending",
                "stage": "Starting",
                "message": _WAITING_FOR_POD,
                "observedGeneration": gen,
                "conditions": conds,
                "jobName": expected,
                "attempts": 1,
                "startTime": now,
                "completionTime": None,
            }
            if new_run:  # the previous run's live fields would be misleading now
                wanted.update({"progress": None, "error": None})
            decision.status = _changes(status, wanted)
            decision.create_job = True
            decision.events.append(Event("Normal", "JobCreated", f"created Job {expected}"))
            return decision
        message = (
            f"waiting for a free slot ({ctx.queue_limit})"
            if ctx.queue_limit
            else ("waiting for a free slot")
        )
        conds = set_condition(accepted, "Progressing", "True", "Queued", message, now, gen)
        wanted = {
            "phase": "Queued",
            "message": message,
            "observedGeneration": gen,
            "conditions": conds,
            "queuedAt": status.get("queuedAt") or now,
        }
        if new_run:
            wanted.update({"jobName": None, "completionTime": None})
        decision.status = _changes(status, wanted)
        if status.get("phase") != "Queued":
            decision.events.append(Event("Normal", "Queued", message))
        return decision

    run = observe_run(job, pods, status.get("error"))
    if run.phase == "Succeeded":
        summary = status.get("segmentsSummary")
        message = f"{summary} clips published" if summary else "all clips published"
        decision.status = _finish(
            resource,
            ctx,
            "Succeeded",
            "Succeeded",
            message,
            error=None,
            completion_time=run.completion_time,
        )
        decision.status.update(_changes(status, {"attempts": run.attempts}))
        decision.events.append(Event("Normal", "Succeeded", message))
        return decision
    if run.phase == "Failed":
        decision.status = _finish(
            resource,
            ctx,
            "Failed",
            run.reason,
            run.message,
            error=run.error,
            completion_time=run.completion_time,
        )
        decision.status.update(_changes(status, {"attempts": run.attempts}))
        decision.events.append(Event("Warning", run.reason, run.message))
        return decision
    if run.phase == "Pending" and run.stuck_since is not None:
        timeout = ctx.settings.pending_timeout_seconds
        left = (run.stuck_since + dt.timedelta(seconds=timeout) - ctx.now).total_seconds()
        if left <= 0:
            message = f"{run.message} (for more than {timeout}s)"
            error = {
                "category": run.reason,
                "reason": run.reason,
                "message": message,
                "permanent": True,
            }
            decision.status = _finish(resource, ctx, "Failed", run.reason, message, error=error)
            decision.delete_job = True
            decision.events.append(Event("Warning", run.reason, message))
            return decision
        decision.requeue_after = left

    stage = "Starting"
    if run.phase == "Running":
        stage = ((status.get("progress") or {}).get("stage")) or "Starting"
        if stage == "Finished":
            stage = "Uploading"
    conds = set_condition(accepted, "Progressing", "True", run.reason, run.message, now, gen)
    wanted = {
        "phase": run.phase,
        "stage": stage,
        "message": run.message,
        "observedGeneration": gen,
        "conditions": conds,
        "jobName": expected,
        "attempts": run.attempts,
    }
    decision.status = _changes(status, wanted)
    if decision.status.get("phase") == "Running" or (
        run.reason == "Retrying" and "attempts" in decision.status
    ):
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


# Queue ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class QueueEntry:
    """A resource that wants to start a Job."""

    namespace: str
    name: str
    created: str
    """creationTimestamp (RFC 3339): first come, first served."""

    @property
    def key(self) -> tuple[str, str]:
        return (self.namespace, self.name)


def admit(
    waiting: Iterable[QueueEntry],
    running: Mapping[str, int],
    max_total: int,
    max_per_namespace: int,
) -> list[tuple[str, str]]:
    """Which waiting resources may start now, oldest first.

    ``running`` counts active Jobs per namespace. Limits of 0 mean unlimited. A namespace at its
    own limit does not block others (no head-of-line blocking across namespaces).
    """
    total = sum(running.values())
    per_ns = dict(running)
    admitted: list[tuple[str, str]] = []
    for entry in sorted(
        waiting,
        key=lambda e: (
            parse_time(e.created) or dt.datetime.min.replace(tzinfo=dt.UTC),
            e.namespace,
            e.name,
        ),
    ):
        if max_total and total >= max_total:
            break
        if max_per_namespace and per_ns.get(entry.namespace, 0) >= max_per_namespace:
            continue
        admitted.append(entry.key)
        total += 1
        per_ns[entry.namespace] = per_ns.get(entry.namespace, 0) + 1
    return admitted


def queue_limit_text(settings: OperatorSettings) -> str:
    """How the limits read in a Queued message."""
    parts = []
    if settings.max_running_jobs:
        parts.append(f"at most {settings.max_running_jobs} running")
    if settings.max_running_jobs_per_namespace:
        parts.append(f"{settings.max_running_jobs_per_namespace} per namespace")
    return ", ".join(parts)
