"""Progress reporting behind one small interface.

The runner calls a :class:`Reporter`; three implementations render it:

- :class:`TerminalReporter`: a one-line carriage-return progress bar on stderr (local runs). No
  tqdm/rich: one line of ANSI-free text needs no dependency.
- :class:`ClusterReporter`: JSON merge patches of the worker-owned ``.status`` fields of the
  resource (``docs/worker-contract.md``), rate-limited to ``progressIntervalSeconds`` except for
  stage changes and final writes. Patches are sent from a background thread, so a slow API server
  never stalls the download or the cutters, and so that the download thread's network guard
  (``guard.py``) never sees the API server's (private) address.
- :class:`NullReporter`: nothing (tests, ``--no-progress``).

:func:`write_termination_log` writes the one-line summary Kubernetes shows in
``kubectl describe pod``.
"""

from __future__ import annotations

import json
import logging
import os
import queue
import sys
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TextIO

from videojobs.models import (
    GROUP,
    PLURAL,
    VERSION,
    ErrorInfo,
    Progress,
    ResourceRef,
    SegmentResult,
    ShardProgress,
    SourceInfo,
)
from videojobs.models.status import status_notes
from videojobs_worker.errors import WorkerError

log = logging.getLogger(__name__)

TERMINATION_LOG = Path("/dev/termination-log")

SEGMENTS_STATUS_BUDGET = 512 * 1024
"""Most bytes of JSON ``status.segments`` may take. A resource (spec and status) must stay under
etcd's 1.5 MiB; 500 clips with long S3 prefixes, titles and four files each would need ~3.5 MB.
Past the budget the list keeps its first entries and ``manifest.json`` (``manifestUri``) holds
them all. A large spec (plus ``kubectl apply``'s copy of it and ``managedFields``) leaves less
room: when the API server answers that the object is too large, the reporter shrinks the list
(:meth:`ClusterReporter._send`) down to none; the manifest keeps every clip's detail."""


def too_large(exc: BaseException) -> bool:
    """The API server refused a write because the object would be too large: etcd's
    ``request is too large`` (a 500 from kube-apiserver), a 413, or a 422 about the size."""
    status = getattr(exc, "status", None)
    text = f"{getattr(exc, 'body', '') or ''} {getattr(exc, 'reason', '') or ''}".lower()
    if status == 413:
        return True
    return status in (500, 422) and (
        "too large" in text or "request entity too large" in text or "too long" in text
    )


def now_rfc3339() -> str:
    """The current time as Kubernetes writes it."""
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class EtaEstimator:
    """Seconds left of a piece of work from its done fraction and the time it has taken so far.

    No estimate until ``min_fraction`` of the work is done and ``min_seconds`` have passed (the
    first clips' start-up cost would make an early guess wild); then ``elapsed * (1 - f) / f``.
    Pure apart from the clock, which tests pass in.
    """

    def __init__(
        self,
        clock: Callable[[], float] = time.monotonic,
        *,
        min_fraction: float = 0.05,
        min_seconds: float = 2.0,
    ) -> None:
        self._clock = clock
        self._started = clock()
        self.min_fraction = min_fraction
        self.min_seconds = min_seconds

    def estimate(self, fraction: float) -> int | None:
        """Estimated whole seconds left at ``fraction`` (0..1) done, or None (not yet)."""
        elapsed = self._clock() - self._started
        if fraction >= 1.0:
            return 0
        if fraction < self.min_fraction or elapsed < self.min_seconds:
            return None
        return max(0, round(elapsed * (1.0 - fraction) / fraction))


class Reporter:
    """Collects the worker's progress; subclasses decide how to show it.

    The runner calls :meth:`stage`, :meth:`update`, :meth:`source`, :meth:`segment`,
    :meth:`finish` or :meth:`fail`, then :meth:`close`. All methods are thread-safe (cutters
    report from their threads).
    """

    def __init__(self) -> None:
        self._lock = threading.RLock()
        self.progress = Progress(stage="Starting")
        self.source_info: SourceInfo | None = None
        self.segments: dict[int, SegmentResult] = {}
        self.manifest_uri: str | None = None
        self.error: ErrorInfo | None = None
        self.shard: int | None = None
        """Set by the runner for a shard of a sharded run: its progress goes to
        ``status.shardProgress.<shard>``, and the run-wide fields (``segments``, ``source``,
        ``segmentsSummary``, ``manifestUri``) only by the run's merge step."""
        self.merged_total: int | None = None
        self.merging = False
        """Set for a sharded run's merge step: it writes only the run-wide fields (the summed
        ``progress`` is the operator's, ``shardProgress`` the shards')."""
        self.notes: list[str] | None = None
        """The plan's notes (``status.notes``), once planned."""
        self.segments_budget = SEGMENTS_STATUS_BUDGET
        """Bytes ``status.segments`` may take now (shrunk when the server says too large)."""

    # -- what the runner calls ---------------------------------------------------------------

    def stage(self, stage: str, message: str = "") -> None:
        """Enter a new stage (always written)."""
        with self._lock:
            changed = stage != self.progress.stage
            self.progress = self.progress.model_copy(
                update={"stage": stage, "message": message or self.progress.message}
            )
        self._emit(force=changed)

    def update(self, **fields: Any) -> None:
        """Change progress fields (``percent``, ``segments_done``, ``bytes_done``, ...)."""
        with self._lock:
            if "percent" in fields and fields["percent"] is not None:
                fields["percent"] = max(0, min(100, int(fields["percent"])))
            self.progress = self.progress.model_copy(update=fields)
        self._emit(force=False)

    def source(self, info: SourceInfo) -> None:
        """The probed source."""
        with self._lock:
            self.source_info = info
        self._emit(force=True)

    def segment(self, result: SegmentResult, total: int) -> None:
        """A clip was published (or found already published)."""
        with self._lock:
            self.segments[result.index] = result
            done = len(self.segments)
            self.progress = self.progress.model_copy(
                update={"segments_done": done, "segments_total": total}
            )
        self._emit(force=False)

    def finish(self, manifest_uri: str) -> None:
        """Everything is published; ``manifest_uri`` was written last."""
        with self._lock:
            self.manifest_uri = manifest_uri
            self.progress = self.progress.model_copy(
                update={"stage": "Finished", "percent": 100, "eta_seconds": 0}
            )
        self._emit(force=True)

    def finish_shard(self) -> None:
        """This shard's clips and part are published; other shards are still at work."""
        with self._lock:
            self.progress = self.progress.model_copy(
                update={"stage": "Finished", "percent": 100, "eta_seconds": 0}
            )
        self._emit(force=True)

    def merged(self, segments: list[SegmentResult], source: SourceInfo, total: int) -> None:
        """The merge step merged every shard's part: the run-wide fields are its to write."""
        with self._lock:
            self.segments = {s.index: s for s in segments}
            self.source_info = source
            self.merged_total = total

    def plan_notes(self, notes: list[str]) -> None:
        """The notes of the plan being cut (the run's: clamps to the source's real duration
        show up only once it is known); written with the next update."""
        with self._lock:
            self.notes = status_notes(notes)

    def fail(self, error: ErrorInfo) -> None:
        """The job failed (written at once, just before the exit)."""
        with self._lock:
            self.error = error
        self._emit(force=True)

    def close(self) -> None:
        """Flush and release resources."""

    # -- for subclasses ----------------------------------------------------------------------

    def _emit(self, *, force: bool) -> None:
        """Show the current state; ``force`` for stage changes and final writes."""

    def status_patch(self) -> dict[str, Any]:
        """The JSON merge patch of the worker-owned status fields."""
        if self.shard is not None or self.merging:
            return self._shard_patch()
        with self._lock:
            progress = self.progress.model_copy(update={"updated_at": now_rfc3339()})
            status: dict[str, Any] = {"progress": progress.to_dict()}
            if self.source_info is not None:
                status["source"] = self.source_info.to_dict()
            segments = [self.segments[i] for i in sorted(self.segments)]
            status["segments"] = _within_budget(
                [s.to_dict() for s in segments], self.segments_budget
            )
            if progress.segments_total:
                status["segmentsSummary"] = f"{len(segments)}/{progress.segments_total}"
            if self.manifest_uri is not None:
                status["manifestUri"] = self.manifest_uri
            if self.notes is not None:
                status["notes"] = self.notes
            if self.error is not None:
                status["error"] = self.error.to_dict()
        return {"status": status}

    def _shard_patch(self) -> dict[str, Any]:
        """A shard's fields: its own ``shardProgress`` entry and its error; the merge step's:
        the run-wide ones and its error."""
        with self._lock:
            status: dict[str, Any] = {}
            p = self.progress
            mine = ShardProgress(
                stage=p.stage,
                percent=p.percent,
                segments_done=p.segments_done,
                segments_total=p.segments_total,
                bytes_done=p.bytes_done,
                updated_at=now_rfc3339(),
            )
            if self.shard is not None:
                status["shardProgress"] = {str(self.shard): mine.to_dict()}
            if self.merged_total is not None:
                if self.source_info is not None:
                    status["source"] = self.source_info.to_dict()
                segments = [self.segments[i] for i in sorted(self.segments)]
                status["segments"] = _within_budget(
                    [s.to_dict() for s in segments], self.segments_budget
                )
                status["segmentsSummary"] = f"{len(segments)}/{self.merged_total}"
                if self.notes is not None:
                    status["notes"] = self.notes
            if self.manifest_uri is not None:
                status["manifestUri"] = self.manifest_uri
            if self.error is not None:
                status["error"] = self.error.to_dict()
        return {"status": status}


def _within_budget(
    entries: list[dict[str, Any]], budget: int = SEGMENTS_STATUS_BUDGET
) -> list[dict[str, Any]]:
    """The leading entries whose JSON fits in ``budget`` bytes."""
    kept: list[dict[str, Any]] = []
    size = 2
    for entry in entries:
        size += len(json.dumps(entry, ensure_ascii=False).encode()) + 1
        if size > budget:
            break
        kept.append(entry)
    return kept


class NullReporter(Reporter):
    """Reports nothing."""


class TerminalReporter(Reporter):
    """A one-line progress bar on a terminal (plain lines when not a terminal)."""

    def __init__(self, stream: TextIO | None = None, *, width: int = 28, interval: float = 0.1):
        super().__init__()
        self.stream = stream or sys.stderr
        self.width = width
        self.interval = interval
        self.tty = bool(getattr(self.stream, "isatty", lambda: False)())
        self._last = 0.0
        self._last_line = ""
        self._shown_stage: str | None = None

    def _line(self) -> str:
        p = self.progress
        filled = round(self.width * p.percent / 100)
        bar = "#" * filled + "-" * (self.width - filled)
        parts = [f"{p.stage:<11}", f"[{bar}]", f"{p.percent:3d}%"]
        if p.segments_total:
            parts.append(f"clips {p.segments_done}/{p.segments_total}")
        if p.bytes_done is not None and p.stage == "Downloading":
            total = f"/{p.bytes_total / 2**20:.1f}" if p.bytes_total else ""
            parts.append(f"{p.bytes_done / 2**20:.1f}{total} MiB")
        if p.eta_seconds:
            parts.append(f"ETA {p.eta_seconds}s")
        if p.message:
            parts.append(p.message[:60])
        return " ".join(parts)

    def _emit(self, *, force: bool) -> None:
        with self._lock:
            now = time.monotonic()
            stage_changed = self.progress.stage != self._shown_stage
            if not (force or stage_changed) and now - self._last < self.interval:
                return
            self._last = now
            line = self._line()
            if self.tty:
                if stage_changed and self._shown_stage is not None:
                    self.stream.write("\n")
                pad = max(0, len(self._last_line) - len(line))
                self.stream.write("\r" + line + " " * pad)
            elif stage_changed:
                self.stream.write(line + "\n")
            self._shown_stage = self.progress.stage
            self._last_line = line
            self.stream.flush()

    def close(self) -> None:
        with self._lock:
            if self.tty and self._last_line:
                self.stream.write("\n")
                self.stream.flush()
                self._last_line = ""


REQUEST_TIMEOUT = 10.0
"""Seconds a status request may take (connect and read): the API server may hang."""


class ClusterReporter(Reporter):
    """Patches the resource's ``.status`` through the Kubernetes API.

    Only the worker-owned fields are sent, so the operator's ``phase`` and ``conditions`` are
    never overwritten: a JSON patch (RFC 6902) that first *tests* ``metadata.uid`` and then sets
    each worker field, so a resource deleted and re-created under the same name is never
    written to (reporting stops). Should ``.status`` not exist yet, a JSON merge patch creates
    it, after a test-only patch has confirmed the UID.
    """

    def __init__(
        self,
        resource: ResourceRef,
        *,
        interval: float = 5.0,
        api: Any = None,
        request_timeout: float = REQUEST_TIMEOUT,
    ) -> None:
        super().__init__()
        self.resource = resource
        self.interval = interval
        self.request_timeout = request_timeout
        """Each status request's timeout: an API server that never answers costs this much."""
        self.api = api if api is not None else self._make_api()
        self.disabled = False
        self.fenced_out = False
        """The last write was held back: status.jobName named another run."""
        self._sent: dict[str, Any] = {}
        """The large fields as last written (not sent again while unchanged)."""
        self.patches_sent = 0
        self._last_sent = 0.0
        self._pending = False
        self._wake: queue.Queue[bool] = queue.Queue()
        self._thread = threading.Thread(target=self._run, name="status-reporter", daemon=True)
        self._thread.start()

    @staticmethod
    def _make_api() -> Any:
        from kubernetes import client, config

        if os.environ.get("KUBERNETES_SERVICE_HOST") and not os.environ.get("KUBECONFIG"):
            config.load_incluster_config()
        else:
            config.load_kube_config(config_file=os.environ.get("KUBECONFIG"))
        return client.CustomObjectsApi()

    def _emit(self, *, force: bool) -> None:
        with self._lock:
            self._pending = True
        self._wake.put(force)

    def _run(self) -> None:
        while True:
            item = self._wake.get()
            closing = item is None
            force = closing or bool(item)
            # Rate limit: an ordinary update waits for the interval to pass (or for a forced
            # write to arrive); whatever is latest then is sent, in one patch.
            while not force:
                wait = self.interval - (time.monotonic() - self._last_sent)
                if wait <= 0:
                    break
                try:
                    item = self._wake.get(timeout=wait)
                except queue.Empty:
                    break
                closing = item is None
                force = closing or bool(item)
            self._send()
            if closing:
                # The final write (manifestUri, error) waits briefly for the operator to write
                # this run's status.jobName, should it not have done so yet.
                for _ in range(3):
                    if not self.fenced_out or self.disabled:
                        break
                    time.sleep(1.0)
                    self._send()
                return

    def _patch(self, body: Any, content_type: str) -> Any:
        return self.api.patch_namespaced_custom_object_status(
            GROUP,
            VERSION,
            self.resource.namespace,
            PLURAL,
            self.resource.name,
            body,
            _content_type=content_type,
            _request_timeout=self.request_timeout,
        )

    def _send(self) -> None:
        """Write the latest status: a JSON patch fenced by the UID and the run, or, when that
        is refused, whatever the refusal calls for (:meth:`_after_refusal`)."""
        with self._lock:
            if not self._pending or self.disabled:
                return
            self._pending = False
            self._last_sent = time.monotonic()
        status = self._changed_status()
        # A JSON patch whose first operations test the UID and the run (status.jobName):
        # applied atomically, so a resource re-created under the same name, or the next run of
        # the same resource, is never written to. "add" replaces a member's value.
        fences = self._fences()
        ops = fences + [
            op
            for key, value in status.items()
            for op in (
                # a shard replaces only its own entry: the shards never overwrite each other
                [{"op": "add", "path": f"/status/{key}/{k}", "value": v} for k, v in value.items()]
                if key == "shardProgress"
                else [{"op": "add", "path": f"/status/{key}", "value": value}]
            )
        ]
        first_error = self._first_patch(ops, status)
        if first_error is not None:
            self._after_refusal(status, fences, first_error)

    def _changed_status(self) -> dict[str, Any]:
        """The status fields to write; the clip list (up to 512 KiB) and the source are left
        out while unchanged since the last write that landed."""
        status: dict[str, Any] = self.status_patch()["status"]
        for key in ("segments", "source"):
            if key in status and self._sent.get(key) == status[key]:
                del status[key]
        return status

    def _fences(self) -> list[dict[str, Any]]:
        """The JSON patch tests every write starts with: the UID, and the run when known."""
        fences = [{"op": "test", "path": "/metadata/uid", "value": self.resource.uid}]
        if self.resource.job_name:
            fences.append(
                {"op": "test", "path": "/status/jobName", "value": self.resource.job_name}
            )
        return fences

    def _first_patch(self, ops: list[dict[str, Any]], status: dict[str, Any]) -> Exception | None:
        """Send the fenced patch; the error when it was refused for a reason the resource's
        state must tell (a failed test, no ``.status``), else ``None`` (handled)."""
        try:
            self._patch(ops, "application/json-patch+json")
            self.patches_sent += 1
            self.fenced_out = False
            self._sent.update({k: status[k] for k in ("segments", "source") if k in status})
            return None
        except Exception as exc:  # reporting must never fail the job
            if getattr(exc, "status", None) == 404:
                log.warning("resource %s is gone; no more status reports", self.resource.name)
                self.disabled = True
                return None
            if too_large(exc) and self._shrink(exc):
                self._send()  # again at once, with fewer clips in status.segments
                return None
            if getattr(exc, "status", None) is None:  # no answer (timeout, refused): later
                log.warning("status patch failed: %s", exc)
                with self._lock:
                    self._pending = True
                return None
            return exc

    def _after_refusal(
        self, status: dict[str, Any], fences: list[dict[str, Any]], first_error: Exception
    ) -> None:
        """The fenced patch was refused: either the UID differs, or there is no ``.status``
        yet (the operator writes it first, so this is rare). A patch with only the UID test
        tells which, without writing anything."""
        try:
            self._patch(fences[:1], "application/json-patch+json")
        except Exception as exc:
            if getattr(exc, "status", None) in (404, 409, 422) or "test" in str(exc).lower():
                log.warning(
                    "resource %s is gone or was re-created (uid %s changed); no more status "
                    "reports",
                    self.resource.name,
                    self.resource.uid,
                )
                self.disabled = True
            else:
                log.warning("status patch failed: %s", exc)
            return
        if (
            self.resource.job_name
            and "shardProgress" in status
            and self._create_shard_progress(status, fences, first_error)
        ):
            return
        if self.resource.job_name:
            # Same resource, another run in status.jobName: the operator has not written this
            # run's status yet (a moment after creating the Job), or a newer run replaced it.
            # Either way this write must not land; keep the state and try again later.
            with self._lock:
                self._pending = True
            self.fenced_out = True
            log.info("status.jobName is not %s (yet); status report held", self.resource.job_name)
            return
        try:  # same resource, no .status yet: a merge patch creates it without touching others
            self._patch({"status": status}, "application/merge-patch+json")
            self.patches_sent += 1
        except Exception as exc:
            log.warning("status patch failed: %s (first: %s)", exc, first_error)

    def _create_shard_progress(
        self, status: dict[str, Any], fences: list[dict[str, Any]], first_error: Exception
    ) -> bool:
        """A shard: the run may pass the fence and only ``status.shardProgress`` be missing
        (the operator creates it with the run; an older operator does not). Writes it whole
        when the fence passes (True); False when another run holds the status."""
        try:
            self._patch(fences, "application/json-patch+json")
        except Exception:
            return False  # another run: held
        create = fences + [
            {"op": "add", "path": f"/status/{key}", "value": value} for key, value in status.items()
        ]
        try:
            self._patch(create, "application/json-patch+json")
            self.patches_sent += 1
            self.fenced_out = False
        except Exception as exc:
            log.warning("status patch failed: %s (first: %s)", exc, first_error)
        return True

    def _shrink(self, exc: BaseException) -> bool:
        """The object would be too large: keep a quarter of the clip list's budget (none below
        4 KiB), so that the next write fits. False when there is nothing left to shrink."""
        with self._lock:
            if self.segments_budget <= 0:
                log.error("status write refused as too large even without segments: %s", exc)
                return False
            self.segments_budget = self.segments_budget // 4
            if self.segments_budget < 4096:
                self.segments_budget = 0
            self._pending = True
            self._sent.pop("segments", None)
        log.warning(
            "the API server refused the status as too large; status.segments now keeps %d bytes "
            "(manifest.json has every clip)",
            self.segments_budget,
        )
        return True

    def close(self) -> None:
        self._wake.put(None)  # type: ignore[arg-type]
        # the last write's requests (a few, each bounded by request_timeout), fenced retries
        self._thread.join(timeout=4 * self.request_timeout + 5)


def write_termination_log(
    exit_code: int,
    category: str,
    message: str,
    path: Path | None = None,
    *,
    manifest_uri: str | None = None,
) -> None:
    """Write the one-line JSON summary to ``/dev/termination-log`` when it exists (the merge
    step adds its ``manifestUri``: the operator's fallback should the status write not land)."""
    target = path or TERMINATION_LOG
    if not target.exists() and path is None:
        return
    doc: dict[str, Any] = {"exitCode": exit_code, "category": category, "message": message[:3000]}
    if manifest_uri is not None and len(manifest_uri) <= 2048:
        doc["manifestUri"] = manifest_uri
    line = json.dumps(doc)
    try:
        target.write_text(line + "\n")
    except OSError as exc:
        log.debug("cannot write %s: %s", target, exc)


def report_failure(reporter: Reporter, err: WorkerError) -> None:
    """A run (or step) that ends with ``err``: logged, reported to the status (a shard's error
    names its shard) and written to the termination log the operator reads."""
    log.error("%s (exit %d): %s", err.category, int(err.exit_code), err.message)
    info = err.to_error_info()
    if reporter.shard is not None:
        info = info.model_copy(
            update={"shard": reporter.shard, "message": f"shard {reporter.shard}: {info.message}"}
        )
    reporter.fail(info)
    write_termination_log(int(err.exit_code), err.category, err.message)
