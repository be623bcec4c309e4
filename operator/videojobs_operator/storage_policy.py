"""Where a tenant's clips may go: the platform's S3 rules applied to a spec (pure).

Every namespace that may create a ``VideoProcessingJob`` is a tenant. With the default settings a
tenant names its own S3 endpoint, bucket and credentials Secret (the worker's network guard still
refuses private and metadata endpoints). A platform can fix all of it instead:

- ``s3AllowedEndpoints``: the only endpoints a spec may name (an absent ``endpoint`` takes the
  first); the worker trusts these (they skip the network guard, e.g. an in-cluster MinIO);
- ``s3AllowedBuckets``: the only buckets, ``{namespace}`` standing for the resource's namespace
  (``clips-{namespace}``);
- ``s3CredentialsSecret``: the Secret, in each tenant namespace, the worker's S3 keys come from;
  a spec naming another Secret is refused;
- ``s3NamespacePrefix``: every key goes under ``<namespace>/``; the tenant's ``prefix`` (default
  its resource name) is relative to that.

:func:`storage_problems` says what a spec breaks (``InvalidSpec``, naming the field);
:func:`effective_spec` is the spec the worker gets, with the destination spelled out.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from videojobs.errors import Problem
from videojobs.models import VideoProcessingJobSpec
from videojobs_operator.settings import OperatorSettings

S3 = "spec.output.storage.s3"


def _endpoint(value: str | None) -> str:
    return (value or "").rstrip("/")


def allowed_buckets(settings: OperatorSettings, namespace: str) -> list[str]:
    """``s3AllowedBuckets`` with ``{namespace}`` filled in."""
    return [b.replace("{namespace}", namespace) for b in settings.s3_allowed_buckets]


def storage_problems(
    spec: VideoProcessingJobSpec, namespace: str, settings: OperatorSettings
) -> list[Problem]:
    """What the spec's storage breaks of the platform's S3 rules (empty when nothing)."""
    s3 = spec.output.storage.s3
    if s3 is None:
        return []
    problems = []
    endpoints = [_endpoint(e) for e in settings.s3_allowed_endpoints]
    if endpoints and s3.endpoint is not None and _endpoint(s3.endpoint) not in endpoints:
        problems.append(
            Problem(
                f"{S3}.endpoint",
                f"endpoint {s3.endpoint!r} is not allowed on this platform; use one of "
                f"{', '.join(endpoints)} (or leave it out)",
            )
        )
    buckets = allowed_buckets(settings, namespace)
    if buckets and s3.bucket not in buckets:
        problems.append(
            Problem(
                f"{S3}.bucket",
                f"bucket {s3.bucket!r} is not allowed for namespace {namespace!r}; use "
                + ", ".join(buckets),
            )
        )
    secret = settings.s3_credentials_secret
    ref = s3.credentials_secret_ref
    if secret and ref is not None and ref.name != secret:
        problems.append(
            Problem(
                f"{S3}.credentialsSecretRef",
                f"the platform provides S3 credentials (Secret {secret!r}); leave "
                "credentialsSecretRef out",
            )
        )
    return problems


def effective_spec(
    spec: VideoProcessingJobSpec, namespace: str, name: str, settings: OperatorSettings
) -> VideoProcessingJobSpec:
    """The spec with its destination spelled out (path/prefix, endpoint) for the worker."""
    storage = spec.output.storage
    if storage.pvc is not None:
        pvc = storage.pvc.model_copy(update={"path": storage.pvc.directory(namespace, name)})
        new_storage = storage.model_copy(update={"pvc": pvc})
    elif storage.s3 is not None:
        s3 = storage.s3
        prefix = s3.key_prefix(namespace, name)
        if settings.s3_namespace_prefix:
            own = s3.prefix if s3.prefix is not None else name
            prefix = "/".join(p for p in (namespace, own) if p)
        update: dict[str, object] = {"prefix": prefix}
        if s3.endpoint is None and settings.s3_allowed_endpoints:
            update["endpoint"] = _endpoint(settings.s3_allowed_endpoints[0])
        new_storage = storage.model_copy(update={"s3": s3.model_copy(update=update)})
    else:
        return spec
    output = spec.output.model_copy(update={"storage": new_storage})
    return spec.model_copy(update={"output": output})


def credentials_secret(spec: VideoProcessingJobSpec, settings: OperatorSettings) -> str | None:
    """The Secret the worker's ``AWS_*`` keys come from, if any."""
    s3 = spec.output.storage.s3
    if s3 is None:
        return None
    if settings.s3_credentials_secret:
        return settings.s3_credentials_secret
    return s3.credentials_secret_ref.name if s3.credentials_secret_ref is not None else None


SHARED_ACCESS_MODE = "ReadWriteMany"


def claim_sharing_problem(
    claim: Mapping[str, Any] | None, claim_name: str, shards: int
) -> Problem | None:
    """Why a sharded run cannot write to this claim, or None.

    The shards of a run are pods that the scheduler may put on different nodes, all mounting
    the claim read-write: only a ``ReadWriteMany`` volume allows that. A ``ReadWriteOnce`` claim
    leaves every shard pod on another node in ``ContainerCreating`` (Multi-Attach error) until
    the pending timeout; ``ReadWriteOncePod`` admits one pod at all. A claim that does not
    exist (yet) is not judged here: the pod waits for it as any pod does."""
    if shards <= 1 or claim is None:
        return None
    spec = claim.get("spec") or {}
    status = claim.get("status") or {}
    modes = list(status.get("accessModes") or spec.get("accessModes") or [])
    if SHARED_ACCESS_MODE in modes:
        return None
    return Problem(
        "spec.parallelism",
        f"{shards} shards write to PersistentVolumeClaim {claim_name!r} at once, from pods that "
        f"may run on different nodes, but its access modes are {', '.join(modes) or 'none'}: "
        "only a ReadWriteMany claim can be mounted by all of them; use a ReadWriteMany claim "
        "(NFS, CephFS, EFS, Filestore, ...) or S3 output, or leave parallelism at 1",
    )
