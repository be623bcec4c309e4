"""Happy path with the real worker: the Job runner runs ``python -m videojobs_worker run``.

The worker downloads generated media from a local HTTP server, cuts it with ffmpeg, publishes to
a directory standing in for the PVC and patches the resource's status in the emulator; the
operator turns the Job's completion into ``Succeeded``.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from urllib.parse import urlparse

import pytest

from tests.httpserver import MediaServer
from tests.mediakit import make_video
from tests.mockapi.conftest import Api, Operator, RunnerFactory, eventually, manifest, phase_is

pytestmark = [pytest.mark.mockapi, pytest.mark.media]


async def test_happy_path_real_worker(
    api: Api,
    operator: Operator,
    runner_factory: RunnerFactory,
    operator_env: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    media = tmp_path / "media"
    media.mkdir()
    make_video(media / "lecture.mp4", duration=6.0)
    output = tmp_path / "pvc"
    output.mkdir()
    with MediaServer(media) as server:
        runner = await runner_factory(
            real_worker=True, worker_env={"VIDEOJOBS_OUTPUT_ROOT": str(output)}
        )
        operator_env.setenv("VIDEOJOBS_ALLOW_PRIVATE_NETWORKS", "true")  # 127.0.0.1 media
        await operator.start()
        body = manifest("real", source={"url": server.url("lecture.mp4")})
        body["spec"]["output"]["precision"] = "accurate"
        await api.create(body)
        try:
            await eventually(phase_is(api, "real", "Succeeded"), timeout=120, what="Succeeded")
        except AssertionError:
            raise AssertionError(f"{api.status('real')}\n{runner.outputs}") from None

    status = api.status("real")
    assert status["segmentsSummary"] == "2/2"
    assert [s["title"] for s in status["segments"]] == ["Intro", "Main part"]
    assert status["source"]["durationSeconds"] == pytest.approx(6.0, abs=0.1)
    assert status["manifestUri"].startswith("file://")
    for segment in status["segments"]:
        video = next(f for f in segment["files"] if f["kind"] == "video")
        path = Path(urlparse(video["uri"]).path)
        assert path.is_file() and path.is_relative_to(output / "lectures")
        assert hashlib.sha256(path.read_bytes()).hexdigest() == video["sha256"]
        assert video["durationSeconds"] == pytest.approx(2.0, abs=0.1)
    conds = {c["type"]: c for c in status["conditions"]}
    assert conds["Complete"]["status"] == "True"
    assert status["stage"] == "Finished"
    assert status["progress"]["segmentsDone"] == 2
    assert len(api.jobs()) == 1 and status["attempts"] == 1


async def test_missing_video_fails_fast_real_worker(
    api: Api,
    operator: Operator,
    runner_factory: RunnerFactory,
    operator_env: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    with MediaServer(tmp_path) as server:
        runner = await runner_factory(real_worker=True)
        operator_env.setenv("VIDEOJOBS_ALLOW_PRIVATE_NETWORKS", "true")
        await operator.start()
        await api.create(manifest("missing", source={"url": server.url("404")}, backoffLimit=3))
        await eventually(phase_is(api, "missing", "Failed"), timeout=120, what="Failed")
    status = api.status("missing")
    assert status["error"]["exitCode"] == 11
    assert status["error"]["permanent"] is True
    assert runner.stats.pods_created[status["jobName"]] == 1  # podFailurePolicy: no retries
    assert {c["type"]: c for c in status["conditions"]}["Failed"]["status"] == "True"
