"""Sharded cutting (``spec.parallelism``) against the strict emulator: one Indexed Job.

The fake runner plays the Job controller for Indexed Jobs (one pod per completion index,
per-index retries with ``backoffLimitPerIndex``, ``completedIndexes``/``failedIndexes``), then
the run's merge Job; the real-worker scenarios run the real worker in every shard and in the
merge step and check the one manifest it publishes, also when a part shows up late.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import pytest

from tests.httpserver import MediaServer
from tests.mediakit import make_video
from tests.mockapi.conftest import Api, Operator, RunnerFactory, eventually, manifest, phase_is
from tests.mockapi.emulator import Emulator
from tests.mockapi.jobrunner import COMPLETION_INDEX, Attempt, is_merge_job
from videojobs_worker.publish import relative_uris

pytestmark = pytest.mark.mockapi

SEGMENTS = [
    {"start": 0, "end": 2, "title": "One"},
    {"start": 2, "end": 4, "title": "Two"},
    {"start": 4, "end": 5, "title": "Three"},
    {"start": 5, "end": 6, "title": "Four"},
]


def sharded(name: str, k: int = 3, **spec: Any) -> dict[str, Any]:
    return manifest(name, segments=SEGMENTS, parallelism=k, **spec)


def indexes(api: Api) -> list[int]:
    return sorted(
        int(p["metadata"]["annotations"][COMPLETION_INDEX])
        for p in api.pods()
        if COMPLETION_INDEX in p["metadata"]["annotations"]
    )


def jobs_by_name(api: Api) -> dict[str, dict[str, Any]]:
    return {j["metadata"]["name"]: j for j in api.jobs()}


async def test_sharded_job_runs_as_one_indexed_job(
    api: Api, operator: Operator, runner_factory: RunnerFactory, emulator: Emulator
) -> None:
    runner = await runner_factory()
    await operator.start()
    await api.create(sharded("lecture"))
    await eventually(phase_is(api, "lecture", "Succeeded"), what="Succeeded")
    status = api.status("lecture")
    jobs = jobs_by_name(api)
    merge_name = f"{status['jobName']}-merge"
    assert set(jobs) == {status["jobName"], merge_name}  # the shards, then the merge step
    job, merge = jobs[status["jobName"]], jobs[merge_name]
    assert merge["spec"]["template"]["spec"]["containers"][0]["args"][0] == "merge"
    assert merge["metadata"]["ownerReferences"] == job["metadata"]["ownerReferences"]
    assert status["manifestUri"] == "file:///output/lecture/manifest.json"  # the merge's
    spec = job["spec"]
    assert spec["completionMode"] == "Indexed"
    assert spec["completions"] == spec["parallelism"] == 3
    assert spec["backoffLimitPerIndex"] == 3 and spec["maxFailedIndexes"] == 0
    assert indexes(api) == [0, 1, 2]
    assert status["shards"] == {
        "count": 3,
        "succeeded": 3,
        "completedIndexes": "0-2",
        "failedIndexes": "",
    }
    assert set(status["shardProgress"]) == {"0", "1", "2"}
    assert status["progress"]["message"] == "3/3 shards finished"
    assert emulator.counts["CREATE jobs"] == 2
    assert runner.stats.jobs_seen == [status["jobName"], merge_name]
    assert not emulator.refused, emulator.refused


async def test_a_failing_shard_is_retried_alone(
    api: Api, operator: Operator, runner_factory: RunnerFactory
) -> None:
    def shards(_name: str, _job: dict[str, Any], index: int) -> list[Attempt]:
        return (
            [Attempt(exit_code=20, message="connection reset"), Attempt()]
            if index == 1
            else [Attempt()]
        )

    runner = await runner_factory(shard_script=shards)
    await operator.start()
    await api.create(sharded("flaky"))
    await eventually(phase_is(api, "flaky", "Succeeded"), what="Succeeded")
    job = api.status("flaky")["jobName"]
    assert runner.stats.index_pods == {(job, 0): 1, (job, 1): 2, (job, 2): 1}
    assert api.status("flaky")["shards"]["completedIndexes"] == "0-2"


async def test_a_shard_that_keeps_failing_is_reported_with_its_index(
    api: Api, operator: Operator, runner_factory: RunnerFactory
) -> None:
    def shards(_name: str, _job: dict[str, Any], index: int) -> list[Attempt]:
        if index == 2:
            return [Attempt(exit_code=20, message="connection reset")]
        return [Attempt(gate=asyncio.Event())]  # the others are still at work

    runner = await runner_factory(shard_script=shards)
    await operator.start()
    await api.create(sharded("broken", backoffLimit=1))
    await eventually(phase_is(api, "broken", "Failed"), what="Failed")
    status = api.status("broken")
    job = status["jobName"]
    assert runner.stats.index_pods[(job, 2)] == 2  # its own retry, then the index failed
    assert runner.stats.index_pods[(job, 0)] == runner.stats.index_pods[(job, 1)] == 1
    assert status["error"]["shard"] == 2
    assert status["error"]["message"].startswith("shard 2 of 3: ")
    assert status["error"]["exitCode"] == 20
    assert status["shards"]["failedIndexes"] == "2"
    # the Job failed as a whole (maxFailedIndexes 0): the running shards were stopped
    await eventually(
        lambda: all(p["status"]["phase"] == "Failed" for p in api.pods()), what="no pod running"
    )


async def test_cancel_mid_run_removes_every_shard(
    api: Api, operator: Operator, runner_factory: RunnerFactory
) -> None:
    await runner_factory(lambda _n, _j: [Attempt(hang=True)])
    await operator.start()
    await api.create(sharded("long", k=4))
    await eventually(
        lambda: len(api.pods()) == 4 and all(p["status"]["phase"] == "Running" for p in api.pods()),
        what="4 shard pods running",
    )
    await api.patch_spec("long", {"cancel": True})
    await eventually(phase_is(api, "long", "Cancelled"), what="Cancelled")
    await eventually(lambda: not api.jobs() and not api.pods(), what="Job and every pod removed")


async def test_operator_restart_mid_run_keeps_one_indexed_job(
    api: Api, operator: Operator, runner_factory: RunnerFactory, emulator: Emulator
) -> None:
    gates = {i: asyncio.Event() for i in range(3)}
    runner = await runner_factory(shard_script=lambda _n, _j, i: [Attempt(gate=gates[i])])
    await operator.start()
    await api.create(sharded("survivor"))
    await eventually(
        lambda: len(api.pods()) == 3 and api.status("survivor").get("phase") == "Running",
        what="3 shards running",
    )
    await operator.stop()  # killed mid-run
    await operator.start()
    gates[0].set()
    # the new operator has taken over: it reports the first finished shard
    await eventually(
        lambda: (api.status("survivor").get("shards") or {}).get("succeeded") == 1,
        what="one shard done, seen by the restarted operator",
    )
    assert api.status("survivor")["phase"] == "Running"
    gates[1].set()
    gates[2].set()
    await eventually(phase_is(api, "survivor", "Succeeded"), what="Succeeded")
    job = api.status("survivor")["jobName"]
    assert set(jobs_by_name(api)) == {job, f"{job}-merge"}
    assert emulator.counts["CREATE jobs"] == 2
    assert runner.stats.jobs_seen == [job, f"{job}-merge"]
    assert sum(runner.stats.index_pods.values()) == 3


async def test_a_failing_merge_step_fails_the_run_with_its_reason(
    api: Api, operator: Operator, runner_factory: RunnerFactory
) -> None:
    """The shards succeed but the merge step cannot find every part: the run is Failed, not
    Succeeded without a manifest."""

    def merge_fails(_name: str, job: dict[str, Any]) -> list[Attempt]:
        if not is_merge_job(job):
            return [Attempt()]  # the shards succeed
        return [Attempt(exit_code=23, message="PartsMissing: 1.json: not visible")]

    runner = await runner_factory(merge_fails)
    await operator.start()
    await api.create(sharded("lost"))
    await eventually(phase_is(api, "lost", "Failed"), what="Failed")
    status = api.status("lost")
    assert status["message"].startswith("the merge step failed: ")
    assert status["error"]["exitCode"] == 23
    assert "manifestUri" not in status
    assert status["shards"]["completedIndexes"] == "0-2"
    merge = f"{status['jobName']}-merge"
    assert runner.stats.pods_created[merge] == 2  # backoffLimit 1: one retry, then Failed


@pytest.mark.media
async def test_real_worker_shards_publish_one_manifest(
    api: Api,
    operator: Operator,
    runner_factory: RunnerFactory,
    operator_env: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    media = tmp_path / "media"
    media.mkdir()
    make_video(media / "lecture.mp4", duration=8.0)
    output = tmp_path / "pvc"
    output.mkdir()
    with MediaServer(media) as server:
        runner = await runner_factory(
            real_worker=True, worker_env={"VIDEOJOBS_OUTPUT_ROOT": str(output)}
        )
        operator_env.setenv("VIDEOJOBS_ALLOW_PRIVATE_NETWORKS", "true")  # 127.0.0.1 media
        await operator.start()
        body = sharded("real", k=2, source={"url": server.url("lecture.mp4")})
        body["spec"]["output"]["precision"] = "accurate"
        await api.create(body)
        try:
            # the shards, then the merge step: three worker processes in all
            await eventually(phase_is(api, "real", "Succeeded"), timeout=300, what="Succeeded")
        except AssertionError:
            raise AssertionError(f"{api.status('real')}\n{runner.outputs}") from None

    status = api.status("real")
    assert status["segmentsSummary"] == "4/4"
    manifest_path = Path(urlparse(status["manifestUri"]).path)
    document = json.loads(manifest_path.read_text())
    assert [s["index"] for s in document["segments"]] == [1, 2, 3, 4]
    parts_dir = manifest_path.parent / ".videojobs-parts" / status["jobName"]
    parts = [json.loads((parts_dir / f"{i}.json").read_text()) for i in range(2)]
    union = sorted((s for p in parts for s in p["segments"]), key=lambda s: s["index"])
    # the manifest is the union of the shards' parts, its files named relative to itself
    assert (
        document["segments"]
        == relative_uris({"segments": union}, status["manifestUri"])["segments"]
    )
    assert all(p["segments"] for p in parts)  # both shards cut something
    assert [s["index"] for s in status["segments"]] == [1, 2, 3, 4]
    for segment in document["segments"]:
        video = next(f for f in segment["files"] if f["kind"] == "video")
        assert "://" not in video["uri"] and (manifest_path.parent / video["uri"]).is_file()
    assert status["shards"]["completedIndexes"] == "0-1"
    assert len(api.jobs()) == 2  # the Indexed Job and the merge Job


@pytest.mark.media
async def test_a_part_visible_late_still_ends_with_one_manifest(
    api: Api,
    operator: Operator,
    runner_factory: RunnerFactory,
    operator_env: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    """As an NFS client cache can: shard 1's part is invisible when the merge pod starts and
    shows up 3 s later. The merge step looks again with backoff; the run ends Succeeded with
    one manifest (before, each shard merged only if it saw every other part)."""
    media = tmp_path / "media"
    media.mkdir()
    make_video(media / "lecture.mp4", duration=8.0)
    output = tmp_path / "pvc"
    output.mkdir()
    hidden: list[Path] = []
    restored: list[asyncio.Task[None]] = []

    async def restore(part: Path, away: Path) -> None:
        await asyncio.sleep(3.0)
        away.rename(part)

    def hide_a_part(job: dict[str, Any], _pod: dict[str, Any]) -> None:
        if not is_merge_job(job) or hidden:
            return
        (part,) = output.rglob(".videojobs-parts/*/1.json")
        away = part.with_name("1.json.hidden")
        part.rename(away)
        hidden.append(part)
        restored.append(asyncio.get_running_loop().create_task(restore(part, away)))

    with MediaServer(media) as server:
        runner = await runner_factory(
            real_worker=True,
            worker_env={"VIDEOJOBS_OUTPUT_ROOT": str(output)},
            pod_started=hide_a_part,
        )
        operator_env.setenv("VIDEOJOBS_ALLOW_PRIVATE_NETWORKS", "true")  # 127.0.0.1 media
        await operator.start()
        body = sharded("late", k=2, source={"url": server.url("lecture.mp4")})
        body["spec"]["output"]["precision"] = "accurate"
        await api.create(body)
        try:
            await eventually(phase_is(api, "late", "Succeeded"), timeout=300, what="Succeeded")
        except AssertionError:
            raise AssertionError(f"{api.status('late')}\n{runner.outputs}") from None
    await asyncio.gather(*restored)
    assert hidden, "the merge pod never started"
    status = api.status("late")
    manifests = list(output.rglob("manifest.json"))
    assert [Path(urlparse(status["manifestUri"]).path)] == manifests  # exactly one
    document = json.loads(manifests[0].read_text())
    assert [s["index"] for s in document["segments"]] == [1, 2, 3, 4]
    assert [len(s["segments"]) > 0 for s in document["shards"]] == [True, True]
    merge_log = next(text for pod, text in runner.outputs.items() if "-merge-" in pod)
    assert "merged 4 clips from 2 parts" in merge_log
