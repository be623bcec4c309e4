"""``videojobs serve``'s queue under faults (issue 24 item 6): a full disk, a killed worker, a
stalled source. The queue keeps running, a restart finds what the API reported, and no
scratch folder is left behind."""

from __future__ import annotations

import os
import signal
import sqlite3
import time
from pathlib import Path
from typing import Any

from tests.gateway.conftest import API, rest_body, start_local
from tests.httpserver import MediaServer


class FullDisk:
    """The backend's SQLite connection, refusing every write while ``full`` (SQLITE_FULL)."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn
        self.full = False
        self.refused = 0

    def execute(self, sql: str, *args: Any) -> Any:
        if self.full and not sql.lstrip().upper().startswith("SELECT"):
            self.refused += 1
            raise sqlite3.OperationalError("database or disk is full")
        return self.conn.execute(sql, *args)

    def close(self) -> None:
        self.conn.close()


def _wait(predicate: Any, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def test_a_full_disk_leaves_the_queue_running_and_a_restart_consistent(
    tmp_path: Path, media_server: MediaServer
) -> None:
    data = tmp_path / "data"
    gw = start_local(data, concurrency=1)
    try:
        disk = FullDisk(gw.backend._db)
        gw.backend._db = disk
        disk.full = True
        r = gw.client.post(f"{API}/process", json=rest_body(media_server.url("talk.mp4")))
        assert r.status_code == 507, r.text  # not stored: said so, not a 500
        disk.full = False
        failing = gw.submit(rest_body(media_server.url("missing.mp4")))
        good = gw.submit(rest_body(media_server.url("talk.mp4")))
        disk.full = True  # from here on, no write reaches the database
        assert gw.wait(failing["job_id"])["status"] == "failed"
        st = gw.wait(good["job_id"])  # the queue went on to the next job
        assert st["status"] == "completed", st
        assert disk.refused > 0
        assert gw.client.get("/readyz").status_code == 503  # states not saved yet
        disk.full = False  # space again: the states reach the database
        _wait(lambda: not gw.backend._unsaved, 15, "the states to be saved")
        assert gw.client.get("/readyz").status_code == 200
    finally:
        gw.client.close()
        gw.server.stop()
    gw = start_local(data, concurrency=1)  # a restart finds what the API said
    try:
        st = gw.status(failing["job_id"])
        assert st["status"] == "failed" and st["error"]["permanent"] is True, st
        time.sleep(1)
        assert gw.status(failing["job_id"])["status"] == "failed"  # not run again
        assert gw.status(good["job_id"])["status"] == "completed"
    finally:
        gw.client.close()
        gw.server.stop()
    assert not (data / "jobs" / failing["job_id"] / "scratch").exists()


def test_a_killed_worker_leaves_no_scratch_and_frees_its_slot(
    tmp_path: Path, media_server: MediaServer
) -> None:
    data = tmp_path / "data"
    gw = start_local(data, concurrency=1)
    try:
        slow = gw.submit(rest_body(media_server.slow_url("talk.mp4", 20_000)))["job_id"]
        scratch = data / "jobs" / slow / "scratch"
        _wait(lambda: any(scratch.glob("videojobs-job-*")), 60, "the worker's scratch")
        proc = gw.backend._running[slow]
        os.killpg(proc.pid, signal.SIGKILL)  # the OOM killer, say
        st = gw.wait(slow)
        assert st["status"] == "failed", st
        _wait(lambda: not scratch.exists(), 10, "the scratch folder to be removed")
        nxt = gw.submit(rest_body(media_server.url("talk.mp4")))["job_id"]
        assert gw.wait(nxt)["status"] == "completed"
    finally:
        gw.client.close()
        gw.server.stop()


def test_a_stalled_source_is_stopped_at_the_deadline(
    tmp_path: Path, media_server: MediaServer
) -> None:
    gw = start_local(tmp_path / "data", concurrency=1, active_deadline=3)
    try:
        t0 = time.monotonic()
        stalled = gw.submit(rest_body(media_server.slow_url("talk.mp4", 2_000)))["job_id"]
        st = gw.wait(stalled, timeout=60)
        took = time.monotonic() - t0
        assert st["status"] == "failed" and st["error"]["reason"] == "DeadlineExceeded", st
        assert took < 20, took
        gw.backend.active_deadline = 0  # a loaded machine may need more than 3 s for a job
        nxt = gw.submit(rest_body(media_server.url("talk.mp4")))["job_id"]
        assert gw.wait(nxt)["status"] == "completed"  # the slot is free again
    finally:
        gw.client.close()
        gw.server.stop()
    assert not list((tmp_path / "data" / "jobs" / stalled).glob("scratch"))
