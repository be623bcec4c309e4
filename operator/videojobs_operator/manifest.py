"""The Job of a run: its name, labels, owner reference, worker input and manifest (pure).

Everything here is computed from the resource and the operator settings alone: the same resource
and ``rerunToken`` always give the same Job name, so a restarted operator finds the Job it created
before and never creates a second one.
"""

from __future__ import annotations

import base64
import gzip
import hashlib
import re
from collections.abc import Mapping
from typing import Any

from pydantic import ValidationError

from videojobs.errors import Problem
from videojobs.models import (
    API_VERSION,
    INPUT_FILE,
    INPUT_FILE_ENV,
    KIND,
    PERMANENT_EXIT_CODES,
    ResourceRef,
    VideoProcessingJobSpec,
    WorkerInput,
)
from videojobs.models.worker import (
    COOKIES_MOUNT,
    INPUT_KEY,
    INPUT_MOUNT,
    OUTPUT_MOUNT,
    SCRATCH_MOUNT,
    TRANSCRIPT_MOUNT,
)
from videojobs.validation import problems_from_validation_error
from videojobs_operator.settings import OperatorSettings
from videojobs_operator.storage_policy import credentials_secret, effective_spec

Body = Mapping[str, Any]

# Labels ---------------------------------------------------------------------------------------

LABEL_NAME = "app.kubernetes.io/name"
LABEL_INSTANCE = "app.kubernetes.io/instance"
LABEL_COMPONENT = "app.kubernetes.io/component"
LABEL_MANAGED_BY = "app.kubernetes.io/managed-by"
LABEL_PART_OF = "app.kubernetes.io/part-of"
LABEL_JOB = "videojobs.io/job"
"""Name of the VideoProcessingJob a Job (and its pods) belongs to, as a label value: names up to
63 characters as they are, longer ones truncated plus a short hash (:func:`label_value`)."""
ANNOTATION_RESOURCE = "videojobs.io/resource-name"
"""The full name of that VideoProcessingJob (names may have 253 characters, label values 63)."""
LABEL_UID = "videojobs.io/uid"
"""UID of that VideoProcessingJob (a re-created namesake gets new Jobs)."""
LABEL_RUN = "videojobs.io/run"
"""Short hash of uid + rerunToken: one value per run."""
ANNOTATION_RERUN = "videojobs.io/rerun-token"

MANAGED_BY = "videojobs-operator"
WORKER_COMPONENT = "worker"
CONTAINER = "worker"
WORKER_UID = 10001


# Run identity ---------------------------------------------------------------------------------


def run_id(uid: str, rerun_token: str | None) -> str:
    """A short, stable id of one run: the same resource and token always give the same id."""
    return hashlib.sha256(f"{uid}/{rerun_token or ''}".encode()).hexdigest()[:8]


MAX_SHARDS = 16
"""The most pods of one run (``spec.parallelism`` is at most 16): indexes 0..15."""
JOB_NAME_MAX = 63 - len(f"-{MAX_SHARDS - 1}")
"""60: an Indexed Job's pods are named (hostname) ``<job name>-<index>``, which must be a DNS
label of at most 63 characters; the API server refuses the Job otherwise (upstream
``ValidateJob``: "will not able to create pod with invalid DNS label")."""


def job_name(name: str, uid: str, rerun_token: str | None) -> str:
    """The Job name of the current run: resource name + run id, at most 60 characters.

    63 because the Job controller copies the name into a pod label value, less room for the
    ``-<index>`` of a sharded run's pod hostnames (:data:`JOB_NAME_MAX`). A changed
    ``rerunToken`` gives a new name, so a new run never collides with the old Job.
    """
    run = run_id(uid, rerun_token)
    keep = JOB_NAME_MAX - len(run) - 1
    base = re.sub(r"[^a-z0-9-]", "-", name.lower())[:keep].strip("-") or "vpj"
    return f"{base}-{run}"


def resource_job_name(resource: Body) -> str:
    """:func:`job_name` for a resource body."""
    meta = resource.get("metadata", {})
    return job_name(meta["name"], meta["uid"], (resource.get("spec") or {}).get("rerunToken"))


# The merge step of a sharded run -----------------------------------------------------------------

MERGE_SUFFIX = "-merge"
LABEL_STEP = "videojobs.io/step"
"""On a sharded run's merge Job and its pod: ``merge`` (the shards' pods have no such label)."""
MERGE_STEP = "merge"
MERGE_JOB_NAME_MAX = 63
"""A plain Job's name: the Job controller copies it into its pods' ``job-name`` label (63)."""
MERGE_WAIT_SECONDS = 300
"""How long the merge pod looks again (with backoff) for parts not visible yet."""
MERGE_BACKOFF_LIMIT = 1
"""Retries of the merge pod (each waits up to :data:`MERGE_WAIT_SECONDS` for the parts)."""


def merge_job_name(name: str, uid: str, rerun_token: str | None) -> str:
    """The merge Job of the current run: :func:`job_name` + ``-merge`` when that fits in 63
    characters, else the resource name cut shorter (the run id keeps it unique per run)."""
    run = run_id(uid, rerun_token)
    keep = MERGE_JOB_NAME_MAX - len(MERGE_SUFFIX) - len(run) - 1
    base = re.sub(r"[^a-z0-9-]", "-", name.lower())[: JOB_NAME_MAX - len(run) - 1].strip("-")
    base = base[:keep].strip("-") or "vpj"
    return f"{base}-{run}{MERGE_SUFFIX}"


def resource_merge_job_name(resource: Body) -> str:
    """:func:`merge_job_name` for a resource body."""
    meta = resource.get("metadata", {})
    token = (resource.get("spec") or {}).get("rerunToken")
    return merge_job_name(meta["name"], meta["uid"], token)


def is_merge_step(obj: Body) -> bool:
    """True for a sharded run's merge Job or its pod (by label)."""
    return ((obj.get("metadata") or {}).get("labels") or {}).get(LABEL_STEP) == MERGE_STEP


# Shards ---------------------------------------------------------------------------------------

ANNOTATION_SHARDS = "videojobs.io/shards"
"""On a sharded run's Job: its shard count (the operator's Job index keeps no Job specs)."""
ANNOTATION_COMPLETION_INDEX = "batch.kubernetes.io/job-completion-index"
"""The Job controller's annotation (and, since 1.28, label) with an Indexed Job pod's index."""


def shard_count(spec: Mapping[str, Any] | None, settings: OperatorSettings) -> int:
    """Shards of a run: ``spec.parallelism``, else the operator's default (one shard per
    ``parallelism_min_clips`` clips, at most ``default_parallelism``: a plan just over the
    threshold stays in one pod); capped at the number of clips when the spec tells it, and at
    ``max_running_pods`` (a run larger than the pod budget could never start)."""
    spec = spec or {}
    clips = len(spec.get("segments") or spec.get("knowledgePoints") or [])
    wanted = spec.get("parallelism")
    if wanted is None:
        wanted = min(settings.default_parallelism, clips // settings.parallelism_min_clips)
    count = max(1, int(wanted))
    if settings.max_running_pods:
        count = min(count, settings.max_running_pods)
    return min(count, clips) if clips else count


# Validation -----------------------------------------------------------------------------------


def validate_spec(spec: Any) -> tuple[VideoProcessingJobSpec | None, list[Problem]]:
    """The spec as a model, or the problems that stop it from being one."""
    try:
        return VideoProcessingJobSpec.model_validate(spec or {}), []
    except ValidationError as exc:
        return None, problems_from_validation_error(exc)


# The Job manifest -----------------------------------------------------------------------------


LABEL_VALUE_MAX = 63


def label_value(value: str) -> str:
    """``value`` as a valid label value: unchanged when it fits in 63 characters, else its first
    54 characters plus ``-`` and 8 hex digits of its sha256 (readable, and still unique)."""
    if len(value) <= LABEL_VALUE_MAX:
        return value
    digest = hashlib.sha256(value.encode()).hexdigest()[:8]
    head = value[: LABEL_VALUE_MAX - 9].rstrip("-_.")
    return f"{head}-{digest}"


def resource_name_of(obj: Body) -> str | None:
    """The VideoProcessingJob name a Job or worker pod belongs to (annotation, else label)."""
    meta = obj.get("metadata") or {}
    name = (meta.get("annotations") or {}).get(ANNOTATION_RESOURCE)
    return name or (meta.get("labels") or {}).get(LABEL_JOB)


def labels_for(resource: Body) -> dict[str, str]:
    """Labels of the Job and its pods (every value at most 63 characters)."""
    meta = resource["metadata"]
    spec = resource.get("spec") or {}
    return {
        LABEL_NAME: "videojobs",
        LABEL_INSTANCE: label_value(meta["name"]),
        LABEL_COMPONENT: WORKER_COMPONENT,
        LABEL_MANAGED_BY: MANAGED_BY,
        LABEL_PART_OF: "videojobs",
        LABEL_JOB: label_value(meta["name"]),
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
    """What the worker reads from its input ConfigMap (docs/worker-contract.md)."""
    meta = resource["metadata"]
    transcript_path = None
    if spec.transcript is not None and spec.transcript.config_map_key_ref is not None:
        transcript_path = f"{TRANSCRIPT_MOUNT}/transcript"
    shards = shard_count(resource.get("spec"), settings)
    return WorkerInput(
        # the destination spelled out (<namespace>/<name> defaults, the platform's S3 rules)
        spec=effective_spec(spec, meta["namespace"], meta["name"], settings),
        resource=ResourceRef(
            namespace=meta["namespace"],
            name=meta["name"],
            uid=meta["uid"],
            generation=meta.get("generation"),
            job_name=resource_job_name(resource),
        ),
        transcript_path=transcript_path,
        allow_private_networks=settings.allow_private_networks,
        allowed_networks=list(settings.allowed_networks),
        trusted_s3_endpoints=list(settings.s3_allowed_endpoints),
        progress_interval_seconds=shard_progress_interval(shards, settings),
        shards=shards,
    )


def shard_progress_interval(shards: int, settings: OperatorSettings) -> float:
    """How often each pod of a run of ``shards`` reports progress: every
    ``progress_interval_seconds``, stretched so that a run's shards together report at most
    ``progress_shards_per_interval`` times per interval (0: not stretched)."""
    base = settings.progress_interval_seconds
    per_interval = settings.progress_shards_per_interval
    if not per_interval or shards <= per_interval:
        return base
    return base * shards / per_interval


CONFIGMAP_DATA_MAX = 1024 * 1024 - 16 * 1024
"""What the input may take in a ConfigMap: the API server's 1 MiB limit, less room to spare."""


class InputTooLarge(ValueError):
    """The worker input does not fit in a ConfigMap, even compressed."""


def input_configmap_name(job: str) -> str:
    """The name of the run's input ConfigMap (the Job's name + ``-input``)."""
    return f"{job}-input"


def build_input_configmap(
    resource: Body, spec: VideoProcessingJobSpec, settings: OperatorSettings, job: Body
) -> dict[str, Any]:
    """The ConfigMap holding the worker input, owned by the run's (created) Job.

    The input is the whole spec, up to ~1.5 MiB for a CRD-valid resource: far over the 128 KiB
    Linux allows a single environment string, so it is a mounted file. Owned by the Job (not
    blocking its deletion), it goes away with it. JSON over the ConfigMap limit goes gzipped
    into ``binaryData``; :class:`InputTooLarge` when even that does not fit.
    """
    text = build_worker_input(resource, spec, settings).model_dump_json(
        by_alias=True, exclude_none=True
    )
    body: dict[str, Any] = {}
    raw = text.encode()
    if len(raw) <= CONFIGMAP_DATA_MAX:
        body["data"] = {INPUT_KEY: text}
    else:
        packed = gzip.compress(raw, mtime=0)
        if len(packed) > CONFIGMAP_DATA_MAX:  # the limit counts binaryData's decoded bytes
            raise InputTooLarge(
                f"the spec is too large to hand to the worker: {len(raw)} bytes of input, "
                f"{len(packed)} gzipped, over the ConfigMap limit of 1 MiB; move the transcript "
                "to a ConfigMap or a URL"
            )
        body["binaryData"] = {f"{INPUT_KEY}.gz": base64.b64encode(packed).decode()}
    job_meta = job["metadata"]
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {
            "name": input_configmap_name(job_meta["name"]),
            "namespace": job_meta["namespace"],
            "labels": labels_for(resource),
            "annotations": {ANNOTATION_RESOURCE: resource["metadata"]["name"]},
            "ownerReferences": [
                {
                    "apiVersion": "batch/v1",
                    "kind": "Job",
                    "name": job_meta["name"],
                    "uid": job_meta["uid"],
                    "controller": True,
                }
            ],
        },
        "immutable": True,
        **body,
    }


def _volumes(
    spec: VideoProcessingJobSpec, scratch_size: str, job: str
) -> tuple[list[Any], list[Any]]:
    volumes: list[dict[str, Any]] = [
        {"name": "scratch", "emptyDir": {"sizeLimit": scratch_size}},
        # the whole ConfigMap: input.json, or input.json.gz for a very large spec
        {"name": "input", "configMap": {"name": input_configmap_name(job)}},
    ]
    mounts: list[dict[str, Any]] = [
        {"name": "scratch", "mountPath": SCRATCH_MOUNT},
        {"name": "input", "mountPath": INPUT_MOUNT, "readOnly": True},
    ]
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
        secret_ref = spec.source.cookies_secret_ref
        volumes.append(
            {
                "name": "cookies",
                "secret": {
                    "secretName": secret_ref.name,
                    "items": [{"key": secret_ref.key, "path": "cookies.txt"}],
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


def _env(spec: VideoProcessingJobSpec, settings: OperatorSettings) -> list[dict[str, Any]]:
    env: list[dict[str, Any]] = [
        {"name": INPUT_FILE_ENV, "value": INPUT_FILE},
        {"name": "TMPDIR", "value": SCRATCH_MOUNT},
        {"name": "HOME", "value": SCRATCH_MOUNT},
    ]
    secret = credentials_secret(spec, settings)
    if secret is not None:
        for key in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
            env.append({"name": key, "valueFrom": {"secretKeyRef": {"name": secret, "key": key}}})
    return env


def build_job(
    resource: Body, spec: VideoProcessingJobSpec, settings: OperatorSettings
) -> dict[str, Any]:
    """The complete ``batch/v1`` Job of the resource's current run."""
    meta = resource["metadata"]
    labels = labels_for(resource)
    res = spec.resources
    scratch = (res.scratch_size if res else None) or settings.worker_scratch_size
    volumes, mounts = _volumes(spec, scratch, resource_job_name(resource))
    annotations = {ANNOTATION_RESOURCE: meta["name"]}
    if spec.rerun_token:
        annotations[ANNOTATION_RERUN] = spec.rerun_token
    shards = shard_count(resource.get("spec"), settings)
    if shards > 1:
        annotations[ANNOTATION_SHARDS] = str(shards)
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
            **_completion_counts(spec, shards),
            "activeDeadlineSeconds": spec.active_deadline_seconds
            or settings.default_active_deadline_seconds,
            "ttlSecondsAfterFinished": settings.job_ttl_seconds_after_finished,
            "podFailurePolicy": _pod_failure_policy(),
            "template": {
                "metadata": {
                    "labels": labels,
                    "annotations": {ANNOTATION_RESOURCE: meta["name"]},
                },
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
                    "containers": [_worker_container(spec, settings, mounts)],
                    "volumes": volumes,
                },
            },
        },
    }


def build_merge_job(
    resource: Body, spec: VideoProcessingJobSpec, settings: OperatorSettings
) -> dict[str, Any]:
    """The merge Job of a sharded run, created once every index of its Indexed Job completed:
    the shards' image, security context, volumes and service account, one pod running
    ``videojobs-worker merge`` with its own input ConfigMap (the same worker input), owned by
    the resource. Its deadline covers the retries of the bounded wait for the parts."""
    job = build_job(resource, spec, settings)
    name = resource_merge_job_name(resource)
    meta = job["metadata"]
    labels = {**meta["labels"], LABEL_STEP: MERGE_STEP}
    meta.update({"name": name, "labels": labels})
    meta["annotations"].pop(ANNOTATION_SHARDS, None)
    template = job["spec"]["template"]
    template["metadata"]["labels"] = labels
    pod = template["spec"]
    for volume in pod["volumes"]:
        if volume["name"] == "input":
            volume["configMap"]["name"] = input_configmap_name(name)
    pod["containers"][0]["args"] = ["merge", "--wait-seconds", str(MERGE_WAIT_SECONDS)]
    deadline = (MERGE_BACKOFF_LIMIT + 1) * (MERGE_WAIT_SECONDS + 300)
    job["spec"] = {
        "backoffLimit": MERGE_BACKOFF_LIMIT,
        "activeDeadlineSeconds": min(deadline, job["spec"]["activeDeadlineSeconds"]),
        "ttlSecondsAfterFinished": job["spec"]["ttlSecondsAfterFinished"],
        "podFailurePolicy": job["spec"]["podFailurePolicy"],
        "template": template,
    }
    return job


def _worker_container(
    spec: VideoProcessingJobSpec, settings: OperatorSettings, mounts: list[dict[str, Any]]
) -> dict[str, Any]:
    """The worker container: its image, resources (spec, else the operator's defaults as
    requests and limits alike) and a locked-down security context."""
    res = spec.resources
    cpu = (res.cpu if res else None) or settings.worker_cpu
    memory = (res.memory if res else None) or settings.worker_memory
    return {
        "name": CONTAINER,
        "image": settings.worker_image,
        "imagePullPolicy": settings.worker_image_pull_policy,
        "args": ["run"],
        "env": _env(spec, settings),
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


def _completion_counts(spec: VideoProcessingJobSpec, shards: int) -> dict[str, Any]:
    """The Job's completion fields: a plain Job with the spec's backoffLimit, or for a sharded
    run one Indexed Job where pod i cuts share i (JOB_COMPLETION_INDEX)."""
    if shards <= 1:
        return {"backoffLimit": spec.backoff_limit}
    # Retries count per index (backoffLimitPerIndex, beta and on by default since 1.29, GA in
    # 1.33), so a failing shard is retried alone; any index failing for good fails the Job at
    # once (maxFailedIndexes 0: the manifest needs every share). backoffLimit caps the retries
    # of all shards together should a cluster have the per-index feature turned off.
    return {
        "completionMode": "Indexed",
        "completions": shards,
        "parallelism": shards,
        "backoffLimitPerIndex": spec.backoff_limit,
        "maxFailedIndexes": 0,
        "backoffLimit": spec.backoff_limit * shards,
    }


def _pod_failure_policy() -> dict[str, Any]:
    """A permanent exit code fails the Job at once; a disrupted pod (eviction, preemption) is
    not counted against the backoff limit."""
    return {
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
    }


def is_owned_by(obj: Body, resource: Body) -> bool:
    """True when ``obj`` has a controller owner reference to this very resource (by uid)."""
    uid = resource["metadata"]["uid"]
    refs = (obj.get("metadata") or {}).get("ownerReferences") or []
    return any(ref.get("uid") == uid and ref.get("controller") for ref in refs)
