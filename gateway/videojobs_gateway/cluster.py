"""The cluster backend: each job is a ``VideoProcessingJob``; the resource is the store.

Reads come from a cache fed by one list + watch per served namespace (or one cluster-wide), so a
status read costs no API request. Writes go to the API server (with the caller's own token in
auth mode ``client``): create, a merge patch of ``spec.cancel`` or ``spec.rerunToken``
(cancel, retry), delete. The answer of each write is put into the cache at once, so a read right
after a write sees it; the watch then keeps it current.

- **Idempotency-Key**: the resource's name is derived from the namespace and the key, so a
  retried POST collides on the API server (409 AlreadyExists) instead of creating a second job,
  even across gateway replicas; the body's digest is kept in an annotation to refuse the same key
  with another body.
- **Files**: published files are named by the status (``segments[].files[].uri``,
  ``manifestUri``); only those are served. ``file://`` URIs are the worker's view of the clips
  volume (``worker_root``, ``/output``); the gateway mounts the same claim read-only at
  ``clips_root``. ``s3://`` URIs are a 307 to a short-lived presigned URL, signed with the
  gateway's own credentials and only for allowed buckets and endpoints
  (:mod:`videojobs_gateway.presign`); tenants' Secrets are never read. Anything else is a 404
  with the reason.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import logging
import os
import secrets
from collections.abc import Iterable
from datetime import datetime
from pathlib import Path, PurePosixPath
from typing import Any
from urllib.parse import unquote, urlparse

from pydantic import ValidationError

from videojobs.models import API_VERSION, KIND, VideoProcessingJobStatus
from videojobs.models.status import FINISHED_PHASES
from videojobs_gateway.backend import (
    BackendError,
    ChangeFeed,
    Check,
    FileRef,
    Identity,
    JobRecord,
    bounded_notes,
    check_cancellable,
    check_deletable,
    check_retryable,
    not_found,
    page,
    queue_positions,
    status_counts,
)
from videojobs_gateway.convert import Submission, file_name_of, safe_file_name
from videojobs_gateway.kube import Caller, KubeApi, KubeError
from videojobs_gateway.presign import Presigner, Refused, decide

log = logging.getLogger("videojobs_gateway.cluster")

LABEL_MANAGED = "videojobs.io/submitted-via"
ANNOTATION_OWNER = "videojobs.io/submitted-by"
ANNOTATION_DIGEST = "videojobs.io/request-digest"
ANNOTATION_KEY = "videojobs.io/idempotency-key"
ANNOTATION_NOTES = "videojobs.io/plan-notes"
"""The planner's notes at submission, a JSON list (bounded: backend.NOTES_MAX_BYTES)."""
ANNOTATION_SHAPE = "videojobs.io/request-shape"
"""``rest`` when submitted as the REST body (its notes use that body's names)."""


def notes_of(annotations: dict[str, str]) -> list[str]:
    """The notes annotation's list (an unreadable one reads as none)."""
    try:
        notes = json.loads(annotations.get(ANNOTATION_NOTES) or "[]")
    except ValueError:
        return []
    return [str(n) for n in notes] if isinstance(notes, list) else []


def seq_of(timestamp: str | None) -> int:
    """Creation order from ``creationTimestamp`` (microseconds; 0 when absent)."""
    if not timestamp:
        return 0
    try:
        return int(datetime.fromisoformat(timestamp.replace("Z", "+00:00")).timestamp() * 1e6)
    except ValueError:
        return 0


def record_of(obj: dict[str, Any], version: int) -> JobRecord:
    """A cache record of a resource (an unreadable status reads as an empty one)."""
    meta = obj.get("metadata") or {}
    try:
        status = VideoProcessingJobStatus.model_validate(obj.get("status") or {})
    except ValidationError as exc:
        log.warning("%s/%s: unreadable status (%s)", meta.get("namespace"), meta.get("name"), exc)
        status = VideoProcessingJobStatus()
    annotations = meta.get("annotations") or {}
    spec = obj.get("spec") or {}
    if (
        status.phase in FINISHED_PHASES
        and spec.get("rerunToken")
        and int(meta.get("generation") or 0) > int(status.observed_generation or 0)
    ):
        # a retry the operator has not picked up yet (even if cancelled again since: its new
        # run may still start first): the status still tells of the last run
        status = status.model_copy(
            update={"phase": "Queued", "stage": None, "error": None,
                    "message": "retry requested; waiting for the operator"}
        )  # fmt: skip
    return JobRecord(
        id=str(meta.get("name", "")),
        namespace=str(meta.get("namespace", "")),
        created_at=str(meta.get("creationTimestamp", "")),
        seq=seq_of(meta.get("creationTimestamp")),
        spec=dict(obj.get("spec") or {}),
        status=status,
        version=version,
        owner=annotations.get(ANNOTATION_OWNER),
        notes=notes_of(annotations),
        shape="rest" if annotations.get(ANNOTATION_SHAPE) == "rest" else "spec",
    )


def idempotent_name(stem: str, namespace: str, key: str) -> str:
    """The resource name of a submission with an Idempotency-Key (the same for a retry)."""
    return f"{stem}-{hashlib.sha256(f'{namespace}/{key}'.encode()).hexdigest()[:8]}"


def published_uris(status: VideoProcessingJobStatus) -> Iterable[str]:
    for seg in status.segments:
        for f in seg.files:
            yield f.uri
    if status.manifest_uri:
        yield status.manifest_uri


def local_path(uri: str, worker_root: str, clips_root: Path) -> Path | None:
    """Where a worker's ``file://`` URI is under the gateway's read-only mount (None: outside)."""
    parsed = urlparse(uri)
    if parsed.scheme != "file":
        return None
    path = PurePosixPath(unquote(parsed.path))
    root = PurePosixPath(worker_root)
    if not path.is_relative_to(root) or ".." in path.parts:
        return None
    return clips_root / path.relative_to(root)


def _key_reused() -> BackendError:
    return BackendError(
        422,
        "Idempotency-Key reused",
        "this Idempotency-Key was used with a different request body",
    )


class ClusterBackend:
    """VideoProcessingJobs as the job store; see the module docstring."""

    kind = "cluster"

    def __init__(
        self,
        kube: KubeApi,
        *,
        namespaces: list[str] | None = None,
        as_caller: bool = False,
        claim_name: str = "videojobs-clips",
        claim_path: str = "",
        clips_root: Path | None = None,
        worker_root: str = "/output",
        relist_backoff: float = 1.0,
        presigner: Presigner | None = None,
    ) -> None:
        self.kube = kube
        self.namespaces: list[str | None] = list(namespaces) if namespaces else [None]
        self.as_caller = as_caller
        """Write with the caller's own token (auth mode client), never as the gateway."""
        self.claim_name = claim_name
        self.claim_path = claim_path
        self.clips_root = clips_root
        self.worker_root = worker_root
        self.relist_backoff = relist_backoff
        self.presigner = presigner
        self._jobs: dict[tuple[str, str], JobRecord] = {}
        self._rvs: dict[tuple[str, str], str] = {}
        self._idem: dict[tuple[str, str], tuple[str, str | None]] = {}
        """(namespace, Idempotency-Key) -> (job name, body digest), from the annotations."""
        self._changed: dict[tuple[str, str], asyncio.Event] = {}
        self.feed = ChangeFeed()
        self._synced: dict[str | None, bool] = dict.fromkeys(self.namespaces, False)
        self._errors: dict[str | None, str] = {}
        self._tasks: list[asyncio.Task[None]] = []
        self._version = 0
        self._first_sync = asyncio.Event()

    # -- lifecycle ---------------------------------------------------------------------------

    async def start(self) -> None:
        self._first_sync = asyncio.Event()
        self._tasks = [asyncio.create_task(self._follow(ns)) for ns in self.namespaces]
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._first_sync.wait(), 10)

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        await self.kube.close()

    # -- the cache ---------------------------------------------------------------------------

    def _put(self, obj: dict[str, Any]) -> None:
        meta = obj.get("metadata") or {}
        key = (str(meta.get("namespace", "")), str(meta.get("name", "")))
        if not key[1]:
            return
        rv = str(meta.get("resourceVersion") or "")
        old = self._rvs.get(key, "")
        if rv.isdigit() and old.isdigit() and int(rv) < int(old):
            return  # a watch event older than a write's answer already cached
        self._version += 1
        record = record_of(obj, self._version)
        self._rvs[key] = rv
        self._jobs[key] = record
        annotations = meta.get("annotations") or {}
        if ANNOTATION_KEY in annotations:
            idem = (key[0], annotations[ANNOTATION_KEY])
            self._idem[idem] = (key[1], annotations.get(ANNOTATION_DIGEST))
        self._notify(key)

    def _drop(self, namespace: str, name: str) -> None:
        self._rvs.pop((namespace, name), None)
        self._idem = {k: v for k, v in self._idem.items() if (k[0], v[0]) != (namespace, name)}
        if self._jobs.pop((namespace, name), None) is not None:
            self._notify((namespace, name))

    def _notify(self, key: tuple[str, str]) -> None:
        event = self._changed.pop(key, None)
        if event is not None:
            event.set()
        self.feed.notify(key[0])

    async def _follow(self, namespace: str | None) -> None:
        """List (in pages), then watch from the list's resourceVersion. A watch that ends or
        fails resumes from the last resourceVersion it saw (a bookmark's included); only 410
        Gone (that version compacted away) or a failed listing lists again."""
        while True:
            try:
                rv = await self._relist(namespace)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                self._failed(namespace, "listing", exc)
                await asyncio.sleep(self.relist_backoff)
                continue
            await self._watch_from(namespace, rv)

    async def _relist(self, namespace: str | None) -> str | None:
        """One listing into the cache (dropping what is gone); its resourceVersion."""
        listed = await self.kube.list_vpjs(namespace)
        seen = set()
        for obj in listed.get("items") or []:
            obj.setdefault("apiVersion", API_VERSION)
            self._put(obj)
            meta = obj.get("metadata") or {}
            seen.add((meta.get("namespace"), meta.get("name")))
        for key in [k for k in self._jobs if namespace in (None, k[0])]:
            if key not in seen:
                self._drop(*key)
        self._synced[namespace] = True
        self._errors.pop(namespace, None)
        if all(self._synced.values()):
            self._first_sync.set()
        rv: str | None = (listed.get("metadata") or {}).get("resourceVersion")
        return rv

    async def _watch_from(self, namespace: str | None, rv: str | None) -> None:
        """Watch from ``rv``, resuming from the last version seen after each end or error,
        until the server answers 410 Gone."""
        progress = {"rv": rv}
        while True:
            try:
                if not await self._watch(namespace, progress):
                    return  # 410 Gone: relist
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                if isinstance(exc, KubeError) and exc.status == 410:
                    return  # answered 410 before any event
                self._failed(namespace, "watch", exc)
                await asyncio.sleep(self.relist_backoff)

    def _failed(self, namespace: str | None, what: str, exc: Exception) -> None:
        self._errors[namespace] = f"{type(exc).__name__}: {exc}"
        log.warning("%s of %s failed: %s", what, namespace or "all namespaces", exc)

    async def _watch(self, namespace: str | None, progress: dict[str, str | None]) -> bool:
        """One watch request from ``progress["rv"]``, which it advances with every event;
        False when it must relist (410 Gone)."""
        async for event in self.kube.watch_vpjs(namespace, progress["rv"]):
            kind = event.get("type")
            obj = event.get("object") or {}
            if kind == "ERROR":
                if obj.get("code") == 410:
                    return False
                raise KubeError(int(obj.get("code") or 500), str(obj.get("message")))
            self._errors.pop(namespace, None)
            meta = obj.get("metadata") or {}
            progress["rv"] = meta.get("resourceVersion") or progress["rv"]
            if kind in ("ADDED", "MODIFIED"):
                self._put(obj)
            elif kind == "DELETED":
                self._drop(str(meta.get("namespace")), str(meta.get("name")))
        return True

    # -- helpers -----------------------------------------------------------------------------

    def _served(self, identity: Identity) -> None:
        """403 for a namespace this gateway does not watch: a job created there would never
        reach the cache (its status would read 404 for ever)."""
        if None not in self.namespaces and identity.namespace not in self.namespaces:
            served = ", ".join(ns for ns in self.namespaces if ns)
            raise BackendError(
                403,
                "Forbidden",
                f"this gateway serves VideoProcessingJobs in {served} only, "
                f"not in namespace {identity.namespace!r}",
            )

    def _as(self, identity: Identity) -> Caller | None:
        if not self.as_caller:
            return None
        if not identity.token:
            raise BackendError(401, "Unauthorized", "this request carries no caller token")
        return Caller(identity.token)

    @staticmethod
    def _refusal(exc: KubeError, job_id: str) -> BackendError:
        if exc.status == 404:
            return not_found(job_id)
        if exc.status == 403:
            return BackendError(403, "Forbidden", f"the Kubernetes API refused: {exc.message}")
        if exc.status == 409:
            return BackendError(409, "Conflict", f"the Kubernetes API refused: {exc.message}")
        if exc.status == 422:
            return BackendError(422, "Invalid", f"the Kubernetes API refused: {exc.message}")
        return BackendError(502, "Bad Gateway", f"the Kubernetes API answered {exc}")

    # -- the Backend interface ---------------------------------------------------------------

    def default_storage(self, identity: Identity) -> dict[str, Any]:
        return {"pvc": {"claimName": self.claim_name, "path": self.claim_path}}

    async def submit(
        self,
        identity: Identity,
        submission: Submission,
        *,
        idempotency_key: str | None = None,
        digest: str | None = None,
    ) -> tuple[JobRecord, bool]:
        self._served(identity)
        stem = (submission.name or "job")[:50].rstrip("-") or "job"
        if idempotency_key is not None:
            seen = self._idem.get((identity.namespace, idempotency_key[:200]))
            if seen is not None and (identity.namespace, seen[0]) in self._jobs:
                if seen[1] != digest:
                    raise _key_reused()
                return self._jobs[(identity.namespace, seen[0])], False
            name = idempotent_name(stem, identity.namespace, idempotency_key)
        else:
            name = f"{stem}-{secrets.token_hex(4)}"
        annotations = {ANNOTATION_OWNER: identity.name[:250]}
        if digest:
            annotations[ANNOTATION_DIGEST] = digest
        if idempotency_key is not None:
            annotations[ANNOTATION_KEY] = idempotency_key[:200]
        if submission.notes:
            annotations[ANNOTATION_NOTES] = json.dumps(bounded_notes(submission.notes))
        if submission.shape == "rest":
            annotations[ANNOTATION_SHAPE] = "rest"
        body = {
            "apiVersion": API_VERSION,
            "kind": KIND,
            "metadata": {
                "name": name,
                "namespace": identity.namespace,
                "labels": {LABEL_MANAGED: "gateway"},
                "annotations": annotations,
            },
            "spec": submission.spec,
        }
        as_user = self._as(identity)
        try:
            created = await self.kube.create_vpj(identity.namespace, body, as_user)
        except KubeError as exc:
            if exc.status != 409 or idempotency_key is None:
                raise self._refusal(exc, name) from None
            try:
                existing = await self.kube.get_vpj(identity.namespace, name, as_user)
            except KubeError as again:
                raise self._refusal(again, name) from None
            old = ((existing.get("metadata") or {}).get("annotations") or {}).get(ANNOTATION_DIGEST)
            if old != digest:
                raise _key_reused() from None
            self._put(existing)
            return self._jobs[(identity.namespace, name)], False
        self._put(created)
        return self._jobs[(identity.namespace, name)], True

    def _listed(self, identity: Identity) -> None:
        """503 until the namespace's first listing reached the cache: an empty cache then
        says nothing (it answered 200 ``{"jobs": []}`` before its first sync, issue 25)."""
        scope = identity.namespace if identity.namespace in self._synced else None
        if not self._synced.get(scope):
            where = scope or "all namespaces"
            raise BackendError(
                503,
                "Service Unavailable",
                f"VideoProcessingJobs in {where} are not listed yet: "
                f"{self._errors.get(scope, 'the first listing has not answered')}",
            )

    def get(self, identity: Identity, job_id: str) -> JobRecord:
        job = self._jobs.get((identity.namespace, job_id))
        if job is None:
            self._served(identity)
            self._listed(identity)
            raise not_found(job_id)
        return job

    def list_jobs(
        self,
        identity: Identity,
        *,
        phase: str | None,
        limit: int,
        cursor: str | None,
        owner: str | None = None,
    ) -> tuple[list[JobRecord], str | None]:
        self._served(identity)
        self._listed(identity)
        mine = [j for (ns, _), j in self._jobs.items() if ns == identity.namespace]
        return page(mine, phase=phase, limit=limit, cursor=cursor, owner=owner)

    async def _patch(self, identity: Identity, job_id: str, spec: dict[str, Any]) -> JobRecord:
        try:
            patched = await self.kube.patch_vpj(
                identity.namespace, job_id, {"spec": spec}, self._as(identity)
            )
        except KubeError as exc:
            raise self._refusal(exc, job_id) from None
        self._put(patched)
        return self.get(identity, job_id)

    async def cancel(self, identity: Identity, job_id: str) -> JobRecord:
        job = self.get(identity, job_id)
        check_cancellable(job)
        return await self._patch(identity, job_id, {"cancel": True})

    async def retry(self, identity: Identity, job_id: str) -> JobRecord:
        job = self.get(identity, job_id)
        check_retryable(job)
        return await self._patch(
            identity, job_id, {"cancel": False, "rerunToken": secrets.token_hex(8)}
        )

    async def delete(self, identity: Identity, job_id: str, *, files: bool) -> None:
        job = self.get(identity, job_id)
        check_deletable(job)
        if files:
            raise BackendError(
                400,
                "Bad Request",
                "files=true: the cluster gateway mounts the clips volume read-only, so it cannot "
                "remove published files; delete without files=true (the clips stay on the "
                "volume or bucket, under its own retention)",
            )
        try:
            await self.kube.delete_vpj(identity.namespace, job_id, self._as(identity))
        except KubeError as exc:
            if exc.status != 404:
                raise self._refusal(exc, job_id) from None
        self._drop(identity.namespace, job_id)

    async def wait_change(
        self, identity: Identity, job_id: str, version: int, timeout: float
    ) -> JobRecord:
        job = self.get(identity, job_id)
        if job.version > version:
            return job
        event = self._changed.setdefault((identity.namespace, job_id), asyncio.Event())
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(event.wait(), timeout)
        return self.get(identity, job_id)

    def file(
        self, identity: Identity, job_id: str, name: str, *, download: bool = False
    ) -> FileRef:
        job = self.get(identity, job_id)
        if not safe_file_name(name):
            raise BackendError(400, "Bad Request", f"file name {name!r} is not a plain name")
        uri = next((u for u in published_uris(job.status) if file_name_of(u) == name), None)
        if uri is None:
            raise BackendError(404, "Not Found", f"job {job_id} has no file {name!r}")
        if uri.startswith("s3://"):
            return self._presigned(job, uri, name, download)
        if self.clips_root is None:
            raise BackendError(
                404, "Not Found", f"{name}: this gateway has no clips volume mounted"
            )
        path = local_path(uri, self.worker_root, self.clips_root)
        if path is None:
            raise BackendError(
                404, "Not Found", f"{name} is stored at {urlparse(uri).scheme}://, not served here"
            )
        root = self.clips_root.resolve()
        resolved = path.resolve()
        if not resolved.is_relative_to(root) or not resolved.is_file():
            raise BackendError(404, "Not Found", f"job {job_id}: {name} is not on the volume")
        return FileRef(path=resolved)

    def _presigned(self, job: JobRecord, uri: str, name: str, download: bool) -> FileRef:
        """A presigned URL of an ``s3://`` file, or 404 with the reason (never a tenant's keys)."""
        if self.presigner is None:
            raise BackendError(
                404, "Not Found", f"{name} is stored on S3; this gateway serves no S3 files"
            )
        storage = ((job.spec.get("output") or {}).get("storage") or {}).get("s3")
        try:
            loc = decide(self.presigner.settings, uri, job.namespace, storage)
            url = self.presigner.url(loc, name, download=download)
        except Refused as exc:
            raise BackendError(404, "Not Found", f"{name}: {exc}") from None
        return FileRef(url=url)

    async def checks(self) -> list[Check]:
        out = []
        for ns in self.namespaces:
            where = ns or "all namespaces"
            if ns in self._errors:
                out.append(Check("store", False, f"watch of {where}: {self._errors[ns]}"))
            elif not self._synced.get(ns):
                out.append(Check("store", False, f"{where}: not listed yet"))
            else:
                out.append(Check("store", True, f"VideoProcessingJobs in {where} (watch)"))
        if self.clips_root is not None:
            ok = os.access(self.clips_root, os.R_OK | os.X_OK)
            detail = f"{self.clips_root} {'readable' if ok else 'not readable'} (read-only mount)"
            out.append(Check("storage", ok, detail))
        if self.presigner is not None:
            out.append(Check("s3", *self.presigner.ready()))
        return out

    def queue_positions(self) -> dict[tuple[str, str], int]:
        return queue_positions(self._jobs.values())

    def counts(self) -> dict[str, int]:
        return status_counts(self._jobs.values())
