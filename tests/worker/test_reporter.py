"""Progress reporters: the cluster reporter against the kmock emulator, the terminal bar."""

from __future__ import annotations

import asyncio
import io
import time
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from tests.mockapi.emulator import Emulator
from videojobs.models import ErrorInfo, ResourceRef, SegmentResult, SourceInfo
from videojobs_worker.progress import ClusterReporter, TerminalReporter, write_termination_log

pytestmark = pytest.mark.mockapi

PATH = "/apis/videojobs.io/v1alpha1/namespaces/media/videoprocessingjobs"
BODY = {
    "apiVersion": "videojobs.io/v1alpha1",
    "kind": "VideoProcessingJob",
    "metadata": {"name": "lecture", "namespace": "media"},
    "spec": {
        "source": {"url": "https://example.com/v.mp4"},
        "segments": [{"start": 0, "end": 5, "title": "Intro"}],
        "output": {"storage": {"pvc": {"claimName": "clips"}}},
    },
}


CONDITION = {
    "type": "Progressing",
    "status": "True",
    "reason": "Running",
    "message": "the worker is running",
    "lastTransitionTime": "2026-11-25T13:00:00Z",
}


@pytest.fixture
def kmock_options(kmock_options: dict[str, Any]) -> dict[str, Any]:
    return {**kmock_options, "cls": Emulator}


async def _setup(
    emulator: Emulator,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    *,
    operator_status: bool = True,
) -> str:
    import kubernetes

    config = tmp_path / "kubeconfig"
    config.write_text(
        "apiVersion: v1\nkind: Config\ncurrent-context: kmock\n"
        f"clusters:\n- name: kmock\n  cluster:\n    server: {emulator.url}\n"
        "users:\n- name: kmock\n  user:\n    token: test-token\n"
        "contexts:\n- name: kmock\n  context:\n    cluster: kmock\n    user: kmock\n"
    )
    monkeypatch.setenv("KUBECONFIG", str(config))
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    monkeypatch.setattr(kubernetes.config.kube_config, "KUBE_CONFIG_DEFAULT_LOCATION", str(config))
    async with aiohttp.ClientSession(str(emulator.url)) as session:
        async with session.post(PATH, json=BODY) as resp:
            resp.raise_for_status()
            created = await resp.json()
        if operator_status:  # what the operator writes before it creates the Job
            patch = {"status": {"phase": "Running", "conditions": [CONDITION]}}
            headers = {"Content-Type": "application/merge-patch+json"}
            async with session.patch(f"{PATH}/lecture/status", json=patch, headers=headers) as resp:
                resp.raise_for_status()
    return created["metadata"]["uid"]


def _status(emulator: Emulator) -> dict[str, Any]:
    found = [o for o in emulator.live("videoprocessingjobs", "media")]
    return dict(found[0].get("status") or {})


def _segment(i: int) -> SegmentResult:
    return SegmentResult(index=i, title=f"Clip {i}", start=i, end=i + 1, stem=f"0{i}-clip",
                         precision="smart")  # fmt: skip


async def test_cluster_reporter_patches_only_worker_fields(
    kmock: Emulator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    uid = await _setup(kmock, tmp_path, monkeypatch)
    ref = ResourceRef(namespace="media", name="lecture", uid=uid)

    def sent(reporter: ClusterReporter, n: int) -> None:
        deadline = time.monotonic() + 10
        while reporter.patches_sent < n:
            assert time.monotonic() < deadline, f"patch {n} never sent"
            time.sleep(0.01)

    def work() -> ClusterReporter:
        reporter = ClusterReporter(ref, interval=60.0)
        reporter.stage("Downloading", "fetching")  # a stage change is written at once
        sent(reporter, 1)
        for n in range(50):  # updates within the interval wait for the next write
            reporter.update(percent=n // 2, bytes_done=n * 1000)
        # The reporter's thread has taken every wake-up of the updates (it sends at once when
        # it takes one it should not hold), then a forced write: the next patch is that one.
        deadline = time.monotonic() + 10
        while not reporter._wake.empty():
            assert time.monotonic() < deadline, "the updates were never taken"
            time.sleep(0.01)
        reporter.source(SourceInfo(duration_seconds=90.0, video_codec="h264"))
        while not any("source" in s for s in _sends):
            assert time.monotonic() < deadline, "the source was never sent"
            time.sleep(0.01)
        assert reporter.patches_sent == 2 and len(_sends) == 2
        assert "source" not in _sends[0]
        assert _status_sync["progress"]["bytesDone"] == 49000
        reporter.stage("Cutting")
        sent(reporter, 3)
        reporter.segment(_segment(1), 2)
        reporter.segment(_segment(2), 2)
        reporter.finish("s3://b/manifest.json")  # the final write
        reporter.close()
        return reporter

    _status_sync: dict[str, Any] = {}
    _sends: list[dict[str, Any]] = []  # the status of every patch written, in order
    real_send = ClusterReporter._send

    def spy(self: ClusterReporter) -> None:
        status = self.status_patch()["status"]
        _status_sync.update(status)
        real_send(self)
        if self.patches_sent > len(_sends):  # it was written
            _sends.append(status)

    monkeypatch.setattr(ClusterReporter, "_send", spy)
    reporter = await asyncio.to_thread(work)
    assert reporter.patches_sent == 4
    status = _status(kmock)
    assert status["phase"] == "Running" and status["conditions"] == [CONDITION]
    assert status["progress"]["stage"] == "Finished" and status["progress"]["percent"] == 100
    assert status["segmentsSummary"] == "2/2" and status["manifestUri"] == "s3://b/manifest.json"
    assert [s["stem"] for s in status["segments"]] == ["01-clip", "02-clip"]
    assert status["source"]["durationSeconds"] == 90.0
    assert kmock.counts["UPDATE videoprocessingjobs/status"] >= reporter.patches_sent


async def test_cluster_reporter_never_writes_to_a_recreated_resource(
    kmock: Emulator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    await _setup(kmock, tmp_path, monkeypatch)
    before = _status(kmock)
    ref = ResourceRef(namespace="media", name="lecture", uid="uid-of-an-older-namesake")

    def work() -> ClusterReporter:
        reporter = ClusterReporter(ref, interval=0.01)
        reporter.stage("Downloading")
        reporter.fail(ErrorInfo(category="Network", reason="X", message="y", exit_code=20))
        reporter.close()
        return reporter

    reporter = await asyncio.to_thread(work)
    assert reporter.disabled and reporter.patches_sent == 0
    assert _status(kmock) == before  # not a single field written


async def test_cluster_reporter_creates_a_missing_status(
    kmock: Emulator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    uid = await _setup(kmock, tmp_path, monkeypatch, operator_status=False)
    ref = ResourceRef(namespace="media", name="lecture", uid=uid)

    def work() -> ClusterReporter:
        reporter = ClusterReporter(ref, interval=0.01)
        reporter.stage("Downloading")
        reporter.close()
        return reporter

    reporter = await asyncio.to_thread(work)
    assert not reporter.disabled and reporter.patches_sent == 1
    assert _status(kmock)["progress"]["stage"] == "Downloading"


def test_terminal_reporter_draws_a_bar() -> None:
    class Tty(io.StringIO):
        def isatty(self) -> bool:
            return True

    stream = Tty()
    reporter = TerminalReporter(stream, width=10, interval=0)
    reporter.stage("Cutting")
    reporter.update(percent=50, segments_total=4)
    reporter.segment(_segment(1), 4)
    reporter.close()
    text = stream.getvalue()
    assert "\rCutting     [#####-----]  50% clips 0/4" in text
    assert "clips 1/4" in text and text.endswith("\n")


def test_termination_log(tmp_path: Path) -> None:
    target = tmp_path / "termination-log"
    target.touch()
    write_termination_log(19, "PlanError", "clip 2 starts after the end", path=target)
    assert target.read_text() == (
        '{"exitCode": 19, "category": "PlanError", "message": "clip 2 starts after the end"}\n'
    )
