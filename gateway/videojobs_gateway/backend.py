"""The job store interface both backends implement (local SQLite, cluster resources).

Routes talk only to a :class:`Backend`. Reads (:meth:`Backend.get`, :meth:`Backend.list_jobs`)
are synchronous and served from memory (the local backend's table mirror, the cluster
backend's watch-fed cache): a status read costs no I/O. Writes are coroutines.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from videojobs.models import VideoProcessingJobStatus
from videojobs.models.status import FINISHED_PHASES
from videojobs_gateway.convert import Submission, rest_status


@dataclass(frozen=True)
class Identity:
    """Who is calling: the namespace their jobs live in, and how to act for them."""

    name: str
    namespace: str
    rate: float | None = None
    """Requests per second allowed to this identity (None: the gateway's default)."""
    token: str | None = None
    """The caller's bearer token (``client`` mode), for acting on their behalf."""
    groups: tuple[str, ...] = ()


@dataclass(frozen=True)
class UserInfo:
    """Who a bearer token belongs to, as the cluster's TokenReview says (``client`` mode)."""

    username: str
    groups: tuple[str, ...] = ()
    uid: str | None = None
    extra: tuple[tuple[str, tuple[str, ...]], ...] = ()
    """TokenReview's ``user.extra`` (e.g. the pod a ServiceAccount token is bound to), sorted."""


@dataclass
class JobRecord:
    """One job as the store holds it."""

    id: str
    namespace: str
    created_at: str
    seq: int
    """Creation order (newest first in lists; FIFO in the local queue)."""
    spec: dict[str, Any]
    status: VideoProcessingJobStatus = field(default_factory=VideoProcessingJobStatus)
    version: int = 0
    """Bumped on every change; progress streams wait for a newer one."""
    owner: str | None = None
    """Who submitted it: the authenticated identity's name, as the gateway recorded it."""
    notes: list[str] = field(default_factory=list)
    """The planner's notes at submission (what was snapped, merged, trimmed or dropped)."""
    shape: str = "spec"
    """How it was submitted: ``rest`` (its notes use the REST body's names) or ``spec``."""


@dataclass(frozen=True)
class FileRef:
    """Where a job's file is: a local path, or a (presigned) URL to redirect to."""

    path: Path | None = None
    url: str | None = None
    media_type: str | None = None


class BackendError(Exception):
    """A store refusal with its HTTP status (404, 409, 403...)."""

    def __init__(self, status: int, title: str, detail: str) -> None:
        super().__init__(detail)
        self.status = status
        self.title = title
        self.detail = detail


def not_found(job_id: str) -> BackendError:
    return BackendError(404, "Not Found", f"no job {job_id!r}")


@dataclass(frozen=True)
class Check:
    """One readiness check."""

    name: str
    ok: bool
    detail: str


class ChangeFeed:
    """Wakes whoever follows a namespace's whole job list (the console's one stream) when one
    of its jobs is created, changes or goes away. Waiters re-read the list from memory: a
    wake-up says only "look again", so a missed or merged one costs nothing but latency."""

    def __init__(self) -> None:
        self._events: dict[str, asyncio.Event] = {}

    def notify(self, namespace: str) -> None:
        event = self._events.pop(namespace, None)
        if event is not None:
            event.set()

    async def wait(self, namespace: str, timeout: float) -> bool:
        """True when a job of ``namespace`` changed within ``timeout`` seconds."""
        event = self._events.setdefault(namespace, asyncio.Event())
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(event.wait(), timeout)
        return event.is_set()


@runtime_checkable
class Backend(Protocol):
    """The job store."""

    kind: str
    """``local`` or ``cluster``."""

    feed: ChangeFeed
    """Notified on every change of any job (by namespace)."""

    def default_storage(self, identity: Identity) -> dict[str, Any]:
        """The ``output.storage`` of a REST submission."""
        ...

    async def start(self) -> None: ...

    async def stop(self) -> None: ...

    async def submit(
        self,
        identity: Identity,
        submission: Submission,
        *,
        idempotency_key: str | None = None,
        digest: str | None = None,
    ) -> tuple[JobRecord, bool]:
        """Create a job; with an idempotency key already used, the existing job and False.

        Raises:
            BackendError: 422 when the key was used with a different body.
        """
        ...

    def get(self, identity: Identity, job_id: str) -> JobRecord:
        """A job of the caller (from memory). Raises BackendError(404)."""
        ...

    def list_jobs(
        self,
        identity: Identity,
        *,
        phase: str | None,
        limit: int,
        cursor: str | None,
        owner: str | None = None,
    ) -> tuple[list[JobRecord], str | None]:
        """The caller's jobs (those ``owner`` submitted, when given), newest first, and the
        cursor of the next page."""
        ...

    async def cancel(self, identity: Identity, job_id: str) -> JobRecord: ...

    async def retry(self, identity: Identity, job_id: str) -> JobRecord: ...

    async def delete(self, identity: Identity, job_id: str, *, files: bool) -> None: ...

    async def wait_change(
        self, identity: Identity, job_id: str, version: int, timeout: float
    ) -> JobRecord:
        """The job once its version is above ``version`` (or after ``timeout``)."""
        ...

    def file(
        self, identity: Identity, job_id: str, name: str, *, download: bool = False
    ) -> FileRef:
        """A published file of the job by plain name. Raises BackendError(404).

        ``download``: the caller wants to save it (a presigned URL then asks the store for
        ``Content-Disposition: attachment``)."""
        ...

    async def checks(self) -> list[Check]:
        """Readiness: the store, storage writable with free space, ffmpeg where jobs run."""
        ...

    def counts(self) -> dict[str, int]:
        """Jobs by REST status, for /metrics."""
        ...

    def queue_positions(self) -> dict[tuple[str, str], int]:
        """(namespace, job id) -> place in the queue (1: starts next) of every queued job."""
        ...


NOTES_MAX_BYTES = 32 * 1024
"""Most bytes of notes a job keeps (a resource's annotations share 256 KiB)."""


def bounded_notes(notes: list[str], budget: int = NOTES_MAX_BYTES) -> list[str]:
    """The leading notes whose UTF-8 text fits in ``budget`` bytes, and a last note telling
    how many were left out (the submit response and the manifest have them all)."""
    kept: list[str] = []
    size = 0
    for note in notes:
        size += len(note.encode()) + 4
        if size > budget:
            kept.append(f"... and {len(notes) - len(kept)} more notes (see manifest.json)")
            break
        kept.append(note)
    return kept


def queue_positions(jobs: Iterable[JobRecord]) -> dict[tuple[str, str], int]:
    """The 1-based places of the queued jobs among ``jobs``: first come, first served (the
    order the local scheduler and the operator's admission both start them in)."""
    queued = sorted((j for j in jobs if j.status.phase == "Queued"), key=lambda j: (j.seq, j.id))
    return {(j.namespace, j.id): n for n, j in enumerate(queued, 1)}


def status_counts(jobs: Iterable[JobRecord]) -> dict[str, int]:
    """How many of ``jobs`` are in each REST status (``/metrics``)."""
    out: dict[str, int] = {}
    for job in jobs:
        word = rest_status(job.status.phase)
        out[word] = out.get(word, 0) + 1
    return out


def check_cancellable(job: JobRecord) -> None:
    """Raises BackendError(409) when the job has finished: nothing is left to cancel."""
    if job.status.phase in FINISHED_PHASES:
        raise BackendError(
            409, "Conflict", f"job {job.id} is already {rest_status(job.status.phase)}"
        )


def check_retryable(job: JobRecord) -> None:
    """Raises BackendError(409) unless the job failed or was cancelled."""
    if job.status.phase not in ("Failed", "Cancelled"):
        raise BackendError(
            409,
            "Conflict",
            f"job {job.id} is {rest_status(job.status.phase)}; only failed or cancelled "
            "jobs can be retried",
        )


def check_deletable(job: JobRecord) -> None:
    """Raises BackendError(409) while the job has not finished (it is cancelled first)."""
    if job.status.phase not in FINISHED_PHASES:
        raise BackendError(
            409,
            "Conflict",
            f"job {job.id} is {rest_status(job.status.phase)}; cancel it before deleting",
        )


def encode_cursor(seq: int, job_id: str) -> str:
    raw = json.dumps([seq, job_id], separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[int, str]:
    """The position a cursor names. Raises BackendError(400) for a malformed one."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        seq, job_id = json.loads(raw)
        if not isinstance(seq, int) or not isinstance(job_id, str):
            raise ValueError
    except (ValueError, TypeError, UnicodeDecodeError):
        raise BackendError(
            400, "Bad Request", "cursor: not a cursor from a previous page"
        ) from None
    return seq, job_id


def page(
    jobs: list[JobRecord],
    *,
    phase: str | None,
    limit: int,
    cursor: str | None,
    owner: str | None = None,
) -> tuple[list[JobRecord], str | None]:
    """Newest-first page of ``jobs`` after ``cursor``, filtered by phase and submitter."""
    ordered = sorted(jobs, key=lambda j: (j.seq, j.id), reverse=True)
    if cursor:
        after = decode_cursor(cursor)
        ordered = [j for j in ordered if (j.seq, j.id) < after]
    if phase is not None:
        ordered = [j for j in ordered if (j.status.phase or "Pending") == phase]
    if owner is not None:
        ordered = [j for j in ordered if j.owner == owner]
    chunk = ordered[: limit + 1]
    nxt = encode_cursor(chunk[limit - 1].seq, chunk[limit - 1].id) if len(chunk) > limit else None
    return chunk[:limit], nxt
