"""The local backend: ``videojobs serve``, FIFO, and restarts that lose nothing."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from tests.gateway.conftest import API, Gateway, rest_body, start_local
from tests.gateway.live import free_port
from tests.httpserver import MediaServer


def _stop(gw: Gateway) -> None:
    gw.client.close()
    gw.server.stop()


def test_finished_jobs_survive_a_restart_and_interrupted_ones_resume(
    tmp_path: Path, media_server: MediaServer
) -> None:
    data = tmp_path / "data"
    gw = start_local(data)
    try:
        done = gw.submit(rest_body(media_server.url("talk.mp4")))["job_id"]
        assert gw.wait(done)["status"] == "completed"
        results = gw.client.get(f"{API}/results/{done}").json()
        slow = gw.submit(rest_body(media_server.slow_url("talk.mp4", 30_000)))["job_id"]
        gw.wait(slow, "processing")
    finally:
        _stop(gw)  # stops the running worker; the job stays "processing" in the store
    gw = start_local(data)
    try:
        assert gw.client.get(f"{API}/results/{done}").json() == results
        st = gw.status(slow)
        assert st["status"] in ("queued", "processing")
        assert st["status"] == "processing" or "interrupted" in (st["message"] or ""), st
        assert gw.wait(slow)["status"] == "completed"
        assert len(gw.client.get(f"{API}/results/{slow}").json()["segments"]) == 3
    finally:
        _stop(gw)


def test_a_job_interrupted_too_often_ends_failed_with_a_reason(
    tmp_path: Path, media_server: MediaServer
) -> None:
    data = tmp_path / "data"
    gw = start_local(data)
    try:
        job_id = gw.submit(rest_body(media_server.slow_url("talk.mp4", 30_000)))["job_id"]
        gw.wait(job_id, "processing")
    finally:
        _stop(gw)
    gw = start_local(data, max_interrupts=0)
    try:
        st = gw.status(job_id)
        assert st["status"] == "failed"
        assert st["error"]["reason"] == "Interrupted" and "retry" in st["error"]["message"]
        assert gw.client.post(f"{API}/jobs/{job_id}/retry").status_code == 200
        assert gw.wait(job_id)["status"] == "completed"
    finally:
        _stop(gw)


def _serve(data: Path, port: int, *extra: str) -> subprocess.Popen[bytes]:
    cmd = [sys.executable, "-m", "videojobs_cli", "serve", "--data", str(data),
           "--port", str(port), *extra]  # fmt: skip
    return subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def _wait_up(base: str, proc: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(proc.stderr.read().decode() if proc.stderr else "exited")
        try:
            if httpx.get(base + "/readyz", timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            time.sleep(0.1)
    raise AssertionError("videojobs serve did not come up")


def test_videojobs_serve_survives_a_crash(tmp_path: Path, media_server: MediaServer) -> None:
    """SIGKILL the server mid-job: the orphaned worker is stopped, the job resumes."""
    data = tmp_path / "data"
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    proc = _serve(data, port)
    try:
        _wait_up(base, proc)
        body = rest_body(media_server.slow_url("talk.mp4", 30_000))
        job_id = httpx.post(base + f"{API}/process", json=body).json()["job_id"]
        deadline = time.monotonic() + 60
        while httpx.get(base + f"{API}/status/{job_id}").json()["status"] != "processing":
            assert time.monotonic() < deadline
            time.sleep(0.1)
    finally:
        proc.kill()
        proc.wait()
    with sqlite3.connect(data / "videojobs.sqlite3") as db:
        (pid,) = db.execute("SELECT pid FROM jobs WHERE id = ?", (job_id,)).fetchone()
    os.kill(pid, 0)  # the worker outlived the gateway
    proc = _serve(data, port)
    try:
        _wait_up(base, proc)
        deadline = time.monotonic() + 120
        while True:
            st = httpx.get(base + f"{API}/status/{job_id}").json()
            if st["status"] in ("completed", "failed"):
                break
            assert time.monotonic() < deadline, st
            time.sleep(0.2)
        assert st["status"] == "completed", st
        with pytest.raises(ProcessLookupError):
            for _ in range(100):  # the orphan got SIGKILL at the restart; reaped by init
                os.kill(pid, 0)
                time.sleep(0.05)
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=60)


def test_serve_refuses_an_unauthenticated_non_loopback_bind(tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "videojobs_cli", "serve", "--data", str(tmp_path),
         "--host", "0.0.0.0", "--port", str(free_port())],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert proc.returncode == 2
    assert "auth mode 'none' on a non-loopback address" in proc.stderr
    assert "Traceback" not in proc.stderr
