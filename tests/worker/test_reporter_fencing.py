"""The cluster reporter's writes are fenced by run (status.jobName), not only by uid: a worker of
an earlier run in its grace period never writes into the next run's status."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from tests.mockapi.emulator import Emulator
from tests.worker.test_reporter import PATH, _setup, _status
from videojobs.models import ErrorInfo, ResourceRef
from videojobs_worker.progress import ClusterReporter

pytestmark = pytest.mark.mockapi


@pytest.fixture
def kmock_options(kmock_options: dict[str, Any]) -> dict[str, Any]:
    return {**kmock_options, "cls": Emulator}


async def _write_job_name(emulator: Emulator, job_name: str) -> None:
    """What the operator writes when it starts a run."""
    async with aiohttp.ClientSession(str(emulator.url)) as session:
        headers = {"Content-Type": "application/merge-patch+json"}
        patch = {"status": {"jobName": job_name, "phase": "Pending"}}
        async with session.patch(f"{PATH}/lecture/status", json=patch, headers=headers) as resp:
            resp.raise_for_status()


def _wait(check: Any, what: str) -> None:
    deadline = time.monotonic() + 10
    while not check():
        assert time.monotonic() < deadline, what
        time.sleep(0.01)


async def test_a_worker_of_an_earlier_run_writes_nothing(
    kmock: Emulator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    uid = await _setup(kmock, tmp_path, monkeypatch)
    await _write_job_name(kmock, "lecture-newrun1")
    before = _status(kmock)
    ref = ResourceRef(namespace="media", name="lecture", uid=uid, job_name="lecture-oldrun0")

    def work() -> ClusterReporter:
        reporter = ClusterReporter(ref, interval=0.01)
        reporter.stage("Uploading")
        reporter.finish("s3://b/old/manifest.json")
        reporter.fail(ErrorInfo(category="Network", reason="X", message="y", exit_code=20))
        reporter.close()
        return reporter

    reporter = await asyncio.to_thread(work)
    assert reporter.patches_sent == 0 and reporter.fenced_out
    assert _status(kmock) == before, "not a single field of the new run's status written"


async def test_the_current_runs_worker_writes_once_its_run_is_in_status(
    kmock: Emulator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The pod may start before the operator's first status write of the run: the report is
    held, not lost, and lands once status.jobName names the run."""
    uid = await _setup(kmock, tmp_path, monkeypatch)
    ref = ResourceRef(namespace="media", name="lecture", uid=uid, job_name="lecture-run1")
    reporter = await asyncio.to_thread(ClusterReporter, ref, interval=0.01)
    try:
        reporter.stage("Downloading")
        await asyncio.to_thread(_wait, lambda: reporter.fenced_out, "the first write is held")
        assert "progress" not in _status(kmock)
        await _write_job_name(kmock, "lecture-run1")
        reporter.stage("Cutting")
        await asyncio.to_thread(_wait, lambda: reporter.patches_sent >= 1, "the write lands")
        assert _status(kmock)["progress"]["stage"] == "Cutting"
    finally:
        await asyncio.to_thread(reporter.close)
