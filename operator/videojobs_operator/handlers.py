"""kopf handlers: a switchboard that hands every event to the reconciler.

Run with ``kopf run -m videojobs_operator.handlers`` or ``videojobs-operator``. The handlers are
*event* handlers plus in-memory indices, not kopf's create/update handlers: the operator is
level-triggered (each pass recomputes the next step from what the cluster shows), so kopf needs
no per-object progress or diff-base storage and writes nothing to the resources on its own.
Everything the operator remembers is in the resource's ``status`` (phase, jobName,
observedGeneration) and in the Job itself, found again by its deterministic name.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import kopf

from videojobs.models import GROUP, PLURAL, VERSION
from videojobs_operator import metrics
from videojobs_operator.decide import is_finished
from videojobs_operator.kube import Kube, make_api_client
from videojobs_operator.manifest import (
    LABEL_COMPONENT,
    LABEL_JOB,
    LABEL_MANAGED_BY,
    MANAGED_BY,
    WORKER_COMPONENT,
    resource_name_of,
)
from videojobs_operator.readiness import namespaces_or_cluster
from videojobs_operator.reconcile import Reconciler
from videojobs_operator.settings import OperatorSettings

JOB_SELECTOR = f"{LABEL_MANAGED_BY}={MANAGED_BY},{LABEL_JOB}"
POD_SELECTOR = f"{LABEL_MANAGED_BY}={MANAGED_BY},{LABEL_COMPONENT}={WORKER_COMPONENT},{LABEL_JOB}"
"""Server-side label selectors of the Job and Pod watches: only our objects stream in (the
handlers' ``labels=`` filters, which kopf applies client-side, stay as a second check)."""
JOB_LABELS: dict[str, Any] = {LABEL_MANAGED_BY: MANAGED_BY, LABEL_JOB: kopf.PRESENT}
POD_LABELS: dict[str, Any] = {
    LABEL_MANAGED_BY: MANAGED_BY,
    LABEL_COMPONENT: WORKER_COMPONENT,
    LABEL_JOB: kopf.PRESENT,
}


def _slim(body: kopf.Body, *, keep_spec: bool) -> dict[str, Any]:
    """The parts of an object the reconciler reads (Job specs carry the whole input: dropped)."""
    meta = dict(body.get("metadata") or {})
    meta.pop("managedFields", None)
    slim: dict[str, Any] = {
        "apiVersion": body.get("apiVersion"),
        "kind": body.get("kind"),
        "metadata": meta,
        "status": dict(body.get("status") or {}),
    }
    if keep_spec:
        slim["spec"] = dict(body.get("spec") or {})
    return slim


@kopf.on.startup()
async def configure(settings: kopf.OperatorSettings, memo: kopf.Memo, **kwargs: Any) -> None:
    """Read OperatorSettings, tune kopf, and start the reconciler and metrics endpoint."""
    config = OperatorSettings()
    # Our own events are posted by the reconciler; kopf posts only its warnings and errors.
    settings.posting.level = logging.WARNING
    # Watches that silently stop delivering are a known kopf/kube hazard (kopf #585, #698):
    # have the server end each watch after 5 minutes and the client give up shortly after.
    settings.watching.server_timeout = 300
    settings.watching.client_timeout = 330
    settings.watching.connect_timeout = 30
    # Watch only the resources and namespaces we were told about: no namespace/CRD listing,
    # so the operator needs no cluster-wide read rights beyond its own resources.
    settings.scanning.disabled = True
    # kopf's labels= filters are client-side: without these, every Job and Pod in the watched
    # namespaces would stream into the operator. The API server filters by these instead.
    settings.watching.label_selectors["batch", "v1", "jobs"] = JOB_SELECTOR
    settings.watching.label_selectors["", "v1", "pods"] = POD_SELECTOR
    # Nothing uses kopf's persistence (no change handlers), but if a future handler does,
    # keep its marks under our own prefix, in annotations (status is for people and workers).
    settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(prefix="videojobs.io")
    settings.persistence.diffbase_storage = kopf.AnnotationsDiffBaseStorage(
        prefix="videojobs.io", key="last-handled-configuration"
    )
    settings.persistence.finalizer = "videojobs.io/finalizer"

    registry = metrics.Metrics()
    kube = Kube(make_api_client(), registry)
    reconciler = Reconciler(config, kube, registry)
    reconciler.bind(kwargs["vpj_index"], kwargs["job_index"], kwargs["pod_index"])
    memo.reconciler = reconciler
    memo.resync = asyncio.create_task(reconciler.resync_forever())

    def restart() -> None:
        # The CRD appeared after the start: stop (exit 1 from videojobs-operator) so that
        # Kubernetes restarts the operator and kopf watches the CRD from the beginning.
        memo.setdefault("exit", {})["code"] = 1
        stop_flag = memo.get("stop_flag")
        if stop_flag is not None:
            stop_flag.set()

    scopes = namespaces_or_cluster(config.namespaces)
    memo.gate = asyncio.create_task(
        reconciler.readiness.gate(kube.crd_served, lambda: kube.count_resources(scopes), restart)
    )
    memo.http = None
    if config.metrics_port:
        memo.http = await metrics.serve(registry, config.metrics_port, lambda: reconciler.ready)


@kopf.on.cleanup()
async def shutdown(memo: kopf.Memo, **_: Any) -> None:
    """Stop the reconciler and the metrics endpoint."""
    memo.resync.cancel()
    memo.gate.cancel()
    await memo.reconciler.close()
    if memo.http is not None:
        await memo.http.cleanup()
    stop_flag = memo.get("stop_flag")
    if stop_flag is not None:
        # Stopped by a signal: release kopf's own wait for the stop flag, or it counts as a
        # hung task and delays the exit by 5 s (the standby would take over that much later).
        stop_flag.set()


FINISHED_SPEC = ("cancel", "rerunToken", "ttlSecondsAfterFinished")
"""What a finished run still needs of its spec: what ends it (TTL) or starts the next run."""
LAST_APPLIED = "kubectl.kubernetes.io/last-applied-configuration"


@kopf.index(GROUP, VERSION, PLURAL)
def vpj_index(namespace: str | None, name: str, body: kopf.Body, **_: Any) -> dict[Any, Any]:
    """VideoProcessingJobs by (namespace, name).

    A finished run is kept slim: its segments, transcript and plan are never read again (a new
    run, by rerunToken or a new generation of a failed spec, is not finished and comes in with
    the whole spec), so thousands of finished resources cost only their metadata and status."""
    slim = _slim(body, keep_spec=True)
    if is_finished(slim):
        slim["spec"] = {k: v for k, v in slim["spec"].items() if k in FINISHED_SPEC}
        if LAST_APPLIED in (slim["metadata"].get("annotations") or {}):
            annotations = dict(slim["metadata"]["annotations"])
            annotations.pop(LAST_APPLIED)
            slim["metadata"]["annotations"] = annotations
    return {(namespace, name): slim}


def _owner_key(namespace: str | None, body: kopf.Body) -> tuple[str, str] | None:
    name = resource_name_of(body)
    return (namespace, name) if namespace and name else None


@kopf.index("batch", "v1", "jobs", labels=JOB_LABELS)
def job_index(namespace: str | None, body: kopf.Body, **_: Any) -> dict[Any, Any]:
    """Our Jobs by the (namespace, name) of their VideoProcessingJob."""
    key = _owner_key(namespace, body)
    return {key: _slim(body, keep_spec=False)} if key else {}


@kopf.index("", "v1", "pods", labels=POD_LABELS)
def pod_index(namespace: str | None, body: kopf.Body, **_: Any) -> dict[Any, Any]:
    """Worker pods by the (namespace, name) of their VideoProcessingJob."""
    key = _owner_key(namespace, body)
    return {key: _slim(body, keep_spec=False)} if key else {}


@kopf.on.event(GROUP, VERSION, PLURAL)
async def videojob_event(namespace: str | None, name: str, memo: kopf.Memo, **_: Any) -> None:
    """A VideoProcessingJob appeared, changed or went away."""
    if namespace:  # always, for a namespaced resource; kopf's signature allows cluster-scoped
        await memo.reconciler.reconcile((namespace, name))


@kopf.on.event("batch", "v1", "jobs", labels=JOB_LABELS)
async def job_event(namespace: str | None, body: kopf.Body, memo: kopf.Memo, **_: Any) -> None:
    """One of our Jobs changed: look at its VideoProcessingJob."""
    key = _owner_key(namespace, body)
    if key is not None:
        await memo.reconciler.reconcile(key)


@kopf.on.event("", "v1", "pods", labels=POD_LABELS)
async def worker_pod_event(
    namespace: str | None, body: kopf.Body, memo: kopf.Memo, **_: Any
) -> None:
    """A worker pod changed (scheduling, image pulls, exits): look at its VideoProcessingJob."""
    key = _owner_key(namespace, body)
    if key is not None:
        await memo.reconciler.reconcile(key)
