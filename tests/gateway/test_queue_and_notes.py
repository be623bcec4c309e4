"""Pure parts behind issue 26's items 2, 3 and 6: queue positions (first come, first served,
over every job the backend holds), the bounded notes a job keeps, the progress document's
counts, and ``Allow`` on a 405 naming every method of the path; and the rules both backends
share (issue 29): the jobs counted by status, which jobs may be cancelled, retried, deleted."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest

from videojobs.models import VideoProcessingJobStatus
from videojobs_gateway.backend import (
    BackendError,
    JobRecord,
    bounded_notes,
    check_cancellable,
    check_deletable,
    check_retryable,
    queue_positions,
    status_counts,
)
from videojobs_gateway.convert import progress_document


def _job(jid: str, seq: int, phase: str | None, namespace: str = "a") -> JobRecord:
    status = VideoProcessingJobStatus.model_validate({"phase": phase} if phase else {})
    return JobRecord(id=jid, namespace=namespace, created_at="", seq=seq, spec={}, status=status)


def test_queue_positions_are_first_come_first_served_across_namespaces() -> None:
    jobs = [
        _job("late", 9, "Queued"),
        _job("running", 1, "Running"),
        _job("early", 2, "Queued", namespace="b"),
        _job("middle", 5, "Queued"),
        _job("done", 3, "Succeeded"),
    ]
    assert queue_positions(jobs) == {("b", "early"): 1, ("a", "middle"): 2, ("a", "late"): 3}


def test_status_counts_by_rest_word() -> None:
    jobs = [_job("a", 1, "Queued"), _job("b", 2, "Running"), _job("c", 3, "Queued"),
            _job("d", 4, None), _job("e", 5, "Succeeded"), _job("f", 6, "Queued", "b")]  # fmt: skip
    assert status_counts(jobs) == {"queued": 3, "processing": 1, "pending": 1, "completed": 1}
    assert status_counts([]) == {}


@pytest.mark.parametrize(
    ("phase", "cancel", "retry", "delete"),
    [
        (None, None, "is pending; only failed or cancelled", "is pending; cancel it before"),
        ("Queued", None, "is queued; only failed", "is queued; cancel it before deleting"),
        ("Running", None, "is processing; only failed", "is processing; cancel it before"),
        ("Succeeded", "is already completed", "is completed; only failed", None),
        ("Failed", "is already failed", None, None),
        ("Cancelled", "is already cancelled", None, None),
    ],
)
def test_cancel_retry_delete_rules(
    phase: str | None, cancel: str | None, retry: str | None, delete: str | None
) -> None:
    """Each rule passes (None) or refuses with a 409 whose detail names the job's status."""
    job = _job("j-1", 1, phase)
    for check, refusal in ((check_cancellable, cancel), (check_retryable, retry),
                           (check_deletable, delete)):  # fmt: skip
        if refusal is None:
            check(job)
            continue
        with pytest.raises(BackendError) as caught:
            check(job)
        assert caught.value.status == 409, check.__name__
        assert f"job j-1 {refusal}" in caught.value.detail, check.__name__


def test_bounded_notes_keep_the_first_and_say_how_many_were_left_out() -> None:
    notes = [f"knowledge_points[{i}]: snapped to cue edges" for i in range(1000)]
    kept = bounded_notes(notes, budget=1000)
    assert sum(len(n.encode()) for n in kept) < 1100
    assert kept[:-1] == notes[: len(kept) - 1]
    assert kept[-1] == f"... and {1000 - len(kept) + 1} more notes (see manifest.json)"
    assert bounded_notes(notes[:3]) == notes[:3]


def test_progress_counts_clips_and_bytes_and_hides_a_stale_eta() -> None:
    status = VideoProcessingJobStatus.model_validate(
        {
            "phase": "Running",
            "progress": {"stage": "Cutting", "percent": 55, "segmentsDone": 1,
                         "segmentsTotal": 3, "bytesDone": 900, "bytesTotal": 900,
                         "etaSeconds": 12},
            "segments": [{"index": 1, "title": "A", "start": 0, "end": 1, "stem": "01-a",
                          "precision": "copy", "files": [
                              {"kind": "video", "format": "mp4", "uri": "file:///o/01-a.mp4",
                               "bytes": 300, "sha256": "0" * 64},
                              {"kind": "thumbnail", "format": "jpg", "uri": "file:///o/01-a.jpg",
                               "bytes": 20, "sha256": "0" * 64}]}],
        }
    )  # fmt: skip
    doc = progress_document("j", status)
    assert (doc["segments_done"], doc["segments_total"], doc["percent"]) == (1, 3, 55)
    assert (doc["bytes_done"], doc["bytes_total"], doc["published_bytes"]) == (900, 900, 320)
    assert doc["eta_seconds"] == 12
    failed = status.model_copy(update={"phase": "Failed"})
    assert progress_document("j", failed)["eta_seconds"] is None
    done = status.model_copy(update={"phase": "Succeeded"})
    assert progress_document("j", done)["eta_seconds"] == 0


async def test_405_names_every_method_of_the_path(tmp_path: Path) -> None:
    from videojobs_gateway.app import create_app
    from videojobs_gateway.local import LocalBackend

    app = create_app(LocalBackend(tmp_path / "data"))
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1") as client:
        for method in ("OPTIONS", "PUT"):
            r = await client.request(method, "/api/v1/videos/jobs/some-job")
            assert r.status_code == 405 and r.headers["allow"] == "DELETE, GET", r.headers
            r = await client.request(method, "/api/v1/videos/files/some-job/a.mp4")
            assert r.headers["allow"] == "GET, HEAD"
            assert r.headers["content-type"] == "application/problem+json"


async def test_an_older_data_folder_gains_the_notes_column(tmp_path: Path) -> None:
    """A data folder written before jobs kept their notes opens, and its jobs read as noteless."""
    import sqlite3

    from videojobs_gateway.local import LocalBackend

    data = tmp_path / "data"
    data.mkdir()
    db = sqlite3.connect(data / "videojobs.sqlite3")
    db.executescript(
        "CREATE TABLE jobs (id TEXT PRIMARY KEY, seq INTEGER NOT NULL, namespace TEXT NOT NULL,"
        " owner TEXT, created_at TEXT NOT NULL, spec TEXT NOT NULL, status TEXT NOT NULL,"
        " idem_key TEXT, digest TEXT, interrupts INTEGER NOT NULL DEFAULT 0, pid INTEGER);"
        "INSERT INTO jobs VALUES ('old-1', 1, 'default', 'me', '2026-01-01T00:00:00Z', '{}',"
        ' \'{"phase": "Succeeded"}\', NULL, NULL, 0, NULL);'
    )
    db.close()
    backend = LocalBackend(data)
    await backend.start()
    try:
        from videojobs_gateway.backend import Identity

        job = backend.get(Identity(name="me", namespace="default"), "old-1")
        assert job.notes == [] and job.status.phase == "Succeeded"
    finally:
        await backend.stop()


async def test_a_backend_error_is_no_end_of_the_progress_stream(tmp_path: Path) -> None:
    """A store that fails mid-stream sends a ``problem`` event and closes without ``end`` (a
    client reconnects); a job deleted mid-stream ends it with status ``deleted``."""
    from videojobs_gateway.app import create_app
    from videojobs_gateway.backend import BackendError, Identity
    from videojobs_gateway.local import LocalBackend

    backend = LocalBackend(tmp_path / "data")
    app = create_app(backend)
    await backend.start()
    try:
        me = Identity(name="local", namespace=app.state.settings.namespace)
        backend._jobs["j-1"] = _job("j-1", 1, "Running", namespace=me.namespace)
        failures = [BackendError(503, "Service Unavailable", "not listed yet")]

        async def wait_change(identity: Identity, job_id: str, version: int, t: float) -> Any:
            if failures:
                raise failures.pop()
            return backend.get(identity, job_id)

        backend.wait_change = wait_change  # type: ignore[method-assign]
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1") as client:
            r = await client.get("/api/v1/videos/progress/j-1/stream")
            assert r.status_code == 200, r.text
            assert r.headers["content-type"].startswith("text/event-stream")
            assert "event: problem" in r.text and "event: end" not in r.text, r.text
            assert '"status":503' in r.text.replace(" ", "") and "retry: 5000" in r.text
            failures.append(BackendError(404, "Not Found", "no job"))
            r = await client.get("/api/v1/videos/progress/j-1/stream")
            assert "event: end" in r.text and '"deleted"' in r.text, r.text
            r = await client.get("/api/v1/videos/progress/nope/stream")
            assert r.status_code == 404  # before the stream starts
    finally:
        await backend.stop()
