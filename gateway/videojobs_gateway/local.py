"""The local backend: jobs in SQLite under a data directory, run as worker subprocesses.

``DIR/videojobs.sqlite3`` holds one row per job (spec, status, idempotency key); the rows are
mirrored in memory, so reads never touch the database. ``DIR/jobs/<id>/`` holds the worker's
input, its log and the published clips (``clips/``). Up to ``concurrency`` jobs run at a time, in
submission order (FIFO); each is ``python -m videojobs_gateway.localworker``, the worker's own
:class:`~videojobs_worker.runner.Runner`, which streams its status patches as JSON lines.

A restart loses nothing: finished jobs stay; a job that was running when the gateway stopped is
queued again at its old place and resumes (the runner skips clips already published), unless it
was interrupted ``max_interrupts`` times already: then it ends ``failed`` with reason
``Interrupted``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import secrets
import shutil
import signal
import sqlite3
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from videojobs.models import ErrorInfo, ExitCode, Progress, VideoProcessingJobStatus, WorkerInput
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
from videojobs_gateway.convert import Submission, safe_file_name

log = logging.getLogger("videojobs_gateway.local")

SCHEMA = """
CREATE TABLE IF NOT EXISTS jobs (
    id TEXT PRIMARY KEY,
    seq INTEGER NOT NULL,
    namespace TEXT NOT NULL,
    owner TEXT,
    created_at TEXT NOT NULL,
    spec TEXT NOT NULL,
    status TEXT NOT NULL,
    idem_key TEXT,
    digest TEXT,
    interrupts INTEGER NOT NULL DEFAULT 0,
    pid INTEGER,
    notes TEXT,
    shape TEXT
);
CREATE UNIQUE INDEX IF NOT EXISTS jobs_idem ON jobs(namespace, idem_key);
"""
MIGRATIONS = (
    ("notes", "ALTER TABLE jobs ADD COLUMN notes TEXT"),
    ("shape", "ALTER TABLE jobs ADD COLUMN shape TEXT"),
)
"""Columns added since the first release: a data directory of an older version gains them."""

_EXIT_CATEGORY = {
    int(ExitCode.INTERNAL): "Internal",
    int(ExitCode.USAGE): "Usage",
    int(ExitCode.TERMINATED): "Terminated",
}


def _is_our_worker(pid: int) -> bool:
    """True when ``pid`` is still a local worker (not a recycled pid)."""
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return False
    return b"videojobs_gateway.localworker" in cmdline


def now_rfc3339() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class LocalBackend:
    """Jobs in SQLite, run by worker subprocesses; see the module docstring."""

    kind = "local"

    def __init__(
        self,
        data_dir: Path,
        *,
        concurrency: int = 1,
        allow_files: bool | Path = False,
        allow_private_networks: bool = False,
        base_dir: Path | None = None,
        active_deadline: float = 0.0,
        max_interrupts: int = 3,
        min_free_bytes: int = 256 * 2**20,
        python: str = sys.executable,
    ) -> None:
        self.data_dir = Path(data_dir).absolute()
        self.concurrency = max(1, concurrency)
        self.allow_files = allow_files
        """False: no local files; True: any; a folder: files under it only (symlinks resolved)."""
        self.allow_private_networks = allow_private_networks
        if base_dir is None:
            base_dir = allow_files if isinstance(allow_files, Path) else Path.cwd()
        self.base_dir = base_dir.absolute()
        self.active_deadline = active_deadline
        """Seconds a worker may run when the spec sets no activeDeadlineSeconds (0: none)."""
        self.max_interrupts = max_interrupts
        self.min_free_bytes = min_free_bytes
        self.python = python
        self._db: sqlite3.Connection | None = None
        self._jobs: dict[str, JobRecord] = {}
        self._idem: dict[tuple[str, str], tuple[str, str | None]] = {}
        self._interrupts: dict[str, int] = {}
        self._changed: dict[str, asyncio.Event] = {}
        self.feed = ChangeFeed()
        self._running: dict[str, asyncio.subprocess.Process | None] = {}
        """Jobs given a worker slot; None until their process has started."""
        self._tasks: set[asyncio.Task[None]] = set()
        self._cancelling: set[str] = set()
        self._overdue: set[str] = set()
        self._pids: dict[str, int | None] = {}
        self._unsaved: set[str] = set()
        """Jobs whose row could not be written (a full disk): written again until it works."""
        self._wake = asyncio.Event()
        self._stopping = False
        self._scheduler: asyncio.Task[None] | None = None
        self._seq = 0

    # -- lifecycle ---------------------------------------------------------------------------

    @property
    def db(self) -> sqlite3.Connection:
        if self._db is None:
            raise RuntimeError("the local backend is not started")
        return self._db

    async def start(self) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        (self.data_dir / "jobs").mkdir(exist_ok=True)
        self._db = sqlite3.connect(self.data_dir / "videojobs.sqlite3", isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.executescript(SCHEMA)
        columns = {row[1] for row in self._db.execute("PRAGMA table_info(jobs)")}
        for column, statement in MIGRATIONS:
            if column not in columns:
                self._db.execute(statement)
        rows = self._db.execute(
            "SELECT id, seq, namespace, owner, created_at, spec, status, idem_key, digest,"
            " interrupts, pid, notes, shape FROM jobs"
        ).fetchall()
        for (
            jid, seq, ns, owner, created, spec, status, key, digest, interrupts, pid, notes, shape
        ) in rows:  # fmt: skip
            job = JobRecord(
                id=jid,
                namespace=ns,
                created_at=created,
                seq=seq,
                spec=json.loads(spec),
                status=VideoProcessingJobStatus.model_validate_json(status),
                owner=owner,
                notes=json.loads(notes) if notes else [],
                shape=shape or "spec",
            )
            self._jobs[jid] = job
            self._interrupts[jid] = interrupts
            if key:
                self._idem[(ns, key)] = (jid, digest)
            self._seq = max(self._seq, seq)
            self._pids[jid] = pid
            if job.status.phase == "Running":
                self._recover(job, pid)
            shutil.rmtree(self.job_dir(jid) / "scratch", ignore_errors=True)  # a killed worker's
        self._scheduler = asyncio.create_task(self._schedule())
        self._wake.set()

    def _recover(self, job: JobRecord, pid: int | None) -> None:
        """A job that was running when the gateway stopped: resume it, or end it."""
        if pid and _is_our_worker(pid):
            with contextlib.suppress(OSError):
                os.killpg(pid, signal.SIGKILL)  # a worker that outlived a crashed gateway
        count = self._interrupts.get(job.id, 0) + 1
        self._interrupts[job.id] = count
        if count > self.max_interrupts:
            self._set(
                job,
                phase="Failed",
                stage=None,
                message=f"interrupted {count} times by gateway restarts",
                completion_time=now_rfc3339(),
                error=ErrorInfo(
                    category="Interrupted",
                    reason="Interrupted",
                    message=f"the gateway stopped while the job ran, {count} times; retry it",
                    permanent=False,
                ),
            )
        else:
            self._set(
                job,
                phase="Queued",
                stage=None,
                error=None,
                message="interrupted by a gateway restart; resumes where it stopped",
            )

    async def stop(self) -> None:
        self._stopping = True
        self._flush()
        if self._scheduler is not None:
            self._scheduler.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._scheduler
        for proc in list(self._running.values()):
            if proc is not None:
                with contextlib.suppress(OSError):
                    os.killpg(proc.pid, signal.SIGTERM)
        if self._tasks:
            await asyncio.wait(list(self._tasks), timeout=30)
        for task in list(self._tasks):
            task.cancel()
        self._flush()
        if self._db is not None:
            self._db.close()
            self._db = None

    # -- storage of records ------------------------------------------------------------------

    def _save(self, job: JobRecord, **extra: Any) -> None:
        """Write the job's row; a failed write (a full disk) is kept and retried, never raised:
        the scheduler must keep running, and what the API reported must reach the database
        before a restart reads it."""
        if "pid" in extra:
            self._pids[job.id] = extra["pid"]
        self._unsaved.add(job.id)
        self._flush()

    def _flush(self) -> None:
        """Write the rows not written yet, while the database takes them."""
        if self._db is None:
            return
        for jid in list(self._unsaved):
            job = self._jobs.get(jid)
            if job is None:
                self._unsaved.discard(jid)
                continue
            status = job.status.model_dump_json(by_alias=True, exclude_none=True)
            try:
                self._db.execute(
                    "UPDATE jobs SET status = ?, interrupts = ?, pid = ? WHERE id = ?",
                    (status, self._interrupts.get(jid, 0), self._pids.get(jid), jid),
                )
            except sqlite3.Error as exc:
                log.error("job %s: cannot save its state (%s); retrying", jid, exc)
                return
            self._unsaved.discard(jid)

    def _set(self, job: JobRecord, **fields: Any) -> None:
        job.status = job.status.model_copy(update=fields)
        self._bump(job)

    def _bump(self, job: JobRecord, **extra: Any) -> None:
        job.version += 1
        if self._db is not None:
            self._save(job, **extra)
        event = self._changed.pop(job.id, None)
        if event is not None:
            event.set()
        self.feed.notify(job.namespace)

    def job_dir(self, job_id: str) -> Path:
        return self.data_dir / "jobs" / job_id

    # -- the Backend interface ---------------------------------------------------------------

    def default_storage(self, identity: Identity) -> dict[str, Any]:
        # the worker publishes into the job's directory; the claim name is only a placeholder
        return {"pvc": {"claimName": "local", "path": ""}}

    async def submit(
        self,
        identity: Identity,
        submission: Submission,
        *,
        idempotency_key: str | None = None,
        digest: str | None = None,
    ) -> tuple[JobRecord, bool]:
        if idempotency_key is not None:
            seen = self._idem.get((identity.namespace, idempotency_key))
            if seen is not None:
                jid, old = seen
                if old != digest:
                    raise BackendError(
                        422,
                        "Idempotency-Key reused",
                        "this Idempotency-Key was used with a different request body",
                    )
                if jid in self._jobs:
                    return self._jobs[jid], False
        stem = submission.name or "job"
        jid = f"{stem}-{secrets.token_hex(4)}"
        while jid in self._jobs:
            jid = f"{stem}-{secrets.token_hex(4)}"
        self._seq += 1
        job = JobRecord(
            id=jid,
            namespace=identity.namespace,
            created_at=now_rfc3339(),
            seq=self._seq,
            spec=submission.spec,
            status=VideoProcessingJobStatus(
                phase="Queued", message="waiting for a free worker", queued_at=now_rfc3339()
            ),
            owner=identity.name,
            notes=bounded_notes(submission.notes),
            shape=submission.shape,
        )
        try:
            self.db.execute(
                "INSERT INTO jobs (id, seq, namespace, owner, created_at, spec, status, idem_key,"
                " digest, notes, shape) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    job.id,
                    job.seq,
                    job.namespace,
                    job.owner,
                    job.created_at,
                    json.dumps(job.spec),
                    job.status.model_dump_json(by_alias=True, exclude_none=True),
                    idempotency_key,
                    digest,
                    json.dumps(job.notes),
                    job.shape,
                ),
            )
        except sqlite3.Error as exc:
            raise BackendError(
                507, "Insufficient Storage", f"the job cannot be stored now ({exc}); try later"
            ) from None
        self._jobs[jid] = job
        if idempotency_key is not None:
            self._idem[(identity.namespace, idempotency_key)] = (jid, digest)
        self.feed.notify(job.namespace)
        self._wake.set()
        return job, True

    def get(self, identity: Identity, job_id: str) -> JobRecord:
        job = self._jobs.get(job_id)
        if job is None or job.namespace != identity.namespace:
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
        mine = [j for j in self._jobs.values() if j.namespace == identity.namespace]
        return page(mine, phase=phase, limit=limit, cursor=cursor, owner=owner)

    async def cancel(self, identity: Identity, job_id: str) -> JobRecord:
        job = self.get(identity, job_id)
        check_cancellable(job)
        if job_id in self._running:
            self._cancelling.add(job_id)
            proc = self._running[job_id]
            if proc is not None:  # else _run stops it as soon as it has started
                with contextlib.suppress(OSError):
                    os.killpg(proc.pid, signal.SIGTERM)
            self._set(job, message="cancelling")
        else:
            self._set(
                job,
                phase="Cancelled",
                stage=None,
                message="cancelled before it started",
                completion_time=now_rfc3339(),
            )
        return job

    async def retry(self, identity: Identity, job_id: str) -> JobRecord:
        job = self.get(identity, job_id)
        check_retryable(job)
        self._interrupts[job.id] = 0
        job.status = VideoProcessingJobStatus(
            phase="Queued",
            message="retry: waiting for a free worker (published clips are kept)",
            queued_at=now_rfc3339(),
        )
        self._bump(job)
        self._wake.set()
        return job

    async def delete(self, identity: Identity, job_id: str, *, files: bool) -> None:
        job = self.get(identity, job_id)
        check_deletable(job)
        try:
            self.db.execute("DELETE FROM jobs WHERE id = ?", (job_id,))
        except sqlite3.Error as exc:
            raise BackendError(
                507, "Insufficient Storage", f"the job cannot be deleted now ({exc})"
            ) from None
        del self._jobs[job_id]
        self._idem = {k: v for k, v in self._idem.items() if v[0] != job_id}
        if files:
            shutil.rmtree(self.job_dir(job_id), ignore_errors=True)
        self._bump(job)

    async def wait_change(
        self, identity: Identity, job_id: str, version: int, timeout: float
    ) -> JobRecord:
        job = self.get(identity, job_id)
        if job.version > version:
            return job
        event = self._changed.setdefault(job_id, asyncio.Event())
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(event.wait(), timeout)
        return self.get(identity, job_id)

    def file(
        self, identity: Identity, job_id: str, name: str, *, download: bool = False
    ) -> FileRef:
        # the local worker always publishes into the job's directory (never to S3)
        self.get(identity, job_id)
        if not safe_file_name(name):
            raise BackendError(400, "Bad Request", f"file name {name!r} is not a plain name")
        root = (self.job_dir(job_id) / "clips").resolve()
        path = (root / name).resolve()
        if path.parent != root or not path.is_file():
            raise BackendError(404, "Not Found", f"job {job_id} has no file {name!r}")
        return FileRef(path=path)

    async def checks(self) -> list[Check]:
        out = []
        try:
            self.db.execute("SELECT 1").fetchone()
            ok = not self._unsaved
            detail = "SQLite" if ok else f"SQLite: {len(self._unsaved)} job states not saved yet"
            out.append(Check("store", ok, detail))
        except (sqlite3.Error, RuntimeError) as exc:
            out.append(Check("store", False, f"SQLite: {exc}"))
        probe = self.data_dir / ".ready-probe"
        try:
            probe.write_bytes(b"ok")
            probe.unlink()
            free = shutil.disk_usage(self.data_dir).free
            ok = free >= self.min_free_bytes
            out.append(
                Check("storage", ok, f"{self.data_dir} writable, {free / 2**30:.1f} GiB free")
            )
        except OSError as exc:
            out.append(Check("storage", False, f"{self.data_dir} not writable: {exc}"))
        for tool in ("ffmpeg", "ffprobe"):
            found = shutil.which(tool)
            out.append(Check(tool, found is not None, found or f"{tool} is not on PATH"))
        return out

    def queue_positions(self) -> dict[tuple[str, str], int]:
        return queue_positions(self._jobs.values())

    def counts(self) -> dict[str, int]:
        return status_counts(self._jobs.values())

    # -- running -----------------------------------------------------------------------------

    async def _schedule(self) -> None:
        while True:
            # rows a full disk refused are retried every few seconds until they are written
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), 5.0 if self._unsaved else None)
            self._wake.clear()
            self._flush()
            queued = sorted(
                (j for j in self._jobs.values() if j.status.phase == "Queued"),
                key=lambda j: j.seq,
            )
            for job in queued:
                if len(self._running) >= self.concurrency or self._stopping:
                    break
                if job.id in self._running:
                    continue
                self._running[job.id] = None  # the slot is taken before the first await
                self._set(job, phase="Running", stage="Starting", message="starting")
                task = asyncio.create_task(self._run(job))
                self._tasks.add(task)
                task.add_done_callback(self._tasks.discard)

    async def _run(self, job: JobRecord) -> None:
        try:
            await self._run_worker(job)
        except Exception as exc:  # a bug or a full disk: the job fails, the slot is freed
            log.exception("job %s: cannot run the worker", job.id)
            self._running.pop(job.id, None)
            self._finish_failed(job, "Internal", type(exc).__name__, str(exc), None)
        finally:
            self._wake.set()  # whatever happened, the queue goes on
            await asyncio.to_thread(
                shutil.rmtree, self.job_dir(job.id) / "scratch", ignore_errors=True
            )

    async def _run_worker(self, job: JobRecord) -> None:
        directory = self.job_dir(job.id)
        (directory / "clips").mkdir(parents=True, exist_ok=True)
        worker_input = WorkerInput.model_validate(
            {"spec": job.spec, "allowPrivateNetworks": self.allow_private_networks}
        )
        (directory / "input.json").write_text(
            worker_input.model_dump_json(by_alias=True, exclude_none=True), encoding="utf-8"
        )
        argv = [
            self.python, "-m", "videojobs_gateway.localworker",
            "--input", str(directory / "input.json"),
            "--out", str(directory / "clips"),
            "--base-dir", str(self.base_dir),
            "--scratch", str(directory / "scratch"),
        ]  # fmt: skip
        if isinstance(self.allow_files, Path):
            argv += ["--files-root", str(self.allow_files), "--deny", str(self.data_dir)]
        elif self.allow_files:
            argv.append("--allow-files")
        with open(directory / "worker.log", "ab") as logfile:
            try:
                proc = await asyncio.create_subprocess_exec(
                    *argv,
                    stdin=asyncio.subprocess.DEVNULL,
                    stdout=asyncio.subprocess.PIPE,
                    stderr=logfile,
                    start_new_session=True,
                    limit=16 * 2**20,
                )
            except OSError as exc:
                self._running.pop(job.id, None)
                self._finish_failed(job, "Internal", "WorkerNotStarted", str(exc), None)
                return
        self._running[job.id] = proc
        if job.id in self._cancelling:  # cancelled while the process was starting
            with contextlib.suppress(OSError):
                os.killpg(proc.pid, signal.SIGTERM)
        job.status = job.status.model_copy(
            update={
                "phase": "Running",
                "stage": "Starting",
                "message": "running",
                "start_time": now_rfc3339(),
                "completion_time": None,
                "error": None,
            }
        )
        self._bump(job, pid=proc.pid)
        deadline = job.spec.get("activeDeadlineSeconds") or self.active_deadline
        timer = (
            asyncio.get_running_loop().call_later(float(deadline), self._stop_overdue, job.id, proc)
            if deadline
            else None
        )
        try:
            assert proc.stdout is not None
            async for line in proc.stdout:
                self._apply(job, line)
            code = await proc.wait()
        finally:
            self._running.pop(job.id, None)
            if timer is not None:
                timer.cancel()
        if self._stopping and job.id not in self._cancelling:
            return  # interrupted by the gateway's own stop: resumed at the next start
        self._finish(job, code)
        self._wake.set()

    def _stop_overdue(self, job_id: str, proc: asyncio.subprocess.Process) -> None:
        """The job ran past its deadline: stop its worker (SIGKILL if SIGTERM is ignored)."""
        if proc.returncode is not None:
            return
        self._overdue.add(job_id)
        with contextlib.suppress(OSError):
            os.killpg(proc.pid, signal.SIGTERM)

        def kill() -> None:
            if proc.returncode is None:
                with contextlib.suppress(OSError):
                    os.killpg(proc.pid, signal.SIGKILL)

        asyncio.get_running_loop().call_later(10, kill)

    def _apply(self, job: JobRecord, line: bytes) -> None:
        try:
            patch = json.loads(line)["status"]
            current = job.status.model_dump(by_alias=True, exclude_none=True)
            current.update(patch)
            status = VideoProcessingJobStatus.model_validate(current)
        except (ValueError, KeyError, TypeError) as exc:
            log.warning("job %s: unreadable worker line (%s)", job.id, exc)
            return
        if status.progress is not None and status.phase == "Running":
            status = status.model_copy(update={"stage": status.progress.stage})
        job.status = status
        self._bump(job)

    def _finish(self, job: JobRecord, code: int) -> None:
        self._pids[job.id] = None  # written with the final state
        if job.id in self._overdue and job.id not in self._cancelling:
            self._overdue.discard(job.id)
            deadline = job.spec.get("activeDeadlineSeconds") or self.active_deadline
            self._set(
                job,
                phase="Failed",
                stage=None,
                message=f"the job ran longer than {deadline:g} s and was stopped",
                completion_time=now_rfc3339(),
                error=ErrorInfo(
                    category="DeadlineExceeded",
                    reason="DeadlineExceeded",
                    message=f"the job ran longer than its deadline ({deadline:g} s; "
                    "spec.activeDeadlineSeconds): is the source stalling?",
                    permanent=True,
                    exit_code=code,
                ),
            )
        elif job.id in self._cancelling:
            self._overdue.discard(job.id)
            self._cancelling.discard(job.id)
            self._set(
                job,
                phase="Cancelled",
                stage=None,
                message="cancelled while running",
                completion_time=now_rfc3339(),
                error=None,
            )
        elif code == 0:
            progress = job.status.progress or Progress(stage="Finished")
            self._set(
                job,
                phase="Succeeded",
                stage="Finished",
                message=f"{len(job.status.segments)} clips published",
                completion_time=now_rfc3339(),
                progress=progress.model_copy(update={"percent": 100, "stage": "Finished"}),
            )
        else:
            err = job.status.error
            if err is None:
                category = _EXIT_CATEGORY.get(code, "Internal")
                self._finish_failed(
                    job, category, category, f"the worker exited with code {code}", code
                )
            else:
                self._set(
                    job,
                    phase="Failed",
                    stage=None,
                    message=err.message,
                    completion_time=now_rfc3339(),
                    error=err.model_copy(update={"exit_code": code}),
                )

    def _finish_failed(
        self, job: JobRecord, category: str, reason: str, message: str, code: int | None
    ) -> None:
        self._set(
            job,
            phase="Failed",
            stage=None,
            message=message,
            completion_time=now_rfc3339(),
            error=ErrorInfo(category=category, reason=reason, message=message, exit_code=code),
        )
