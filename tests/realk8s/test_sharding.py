"""Sharded cutting (``spec.parallelism``) on the real control plane: one Indexed Job, run by the
real Job controller (one pod per completion index, per-index retries with
``backoffLimitPerIndex``, ``completedIndexes``/``failedIndexes``), its pods by the node agent
(moved from ``tests/mockapi/test_sharding.py``, where a fake Job controller played it). The
shards are ``scripted.py`` on cue, except in the last test: the real worker in every shard,
publishing one manifest."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.httpserver import MediaServer
from tests.mediakit import make_video
from tests.realk8s.conftest import OperatorProcess, RealCluster
from tests.realk8s.scripted import Attempt, Cues
from tests.realk8s.test_failures import (
    FINAL,
    create,
    job_pods,
    jobs_created,
    start,
    status_of,
    wait_phase,
)
from videojobs_worker.publish import relative_uris

COMPLETION_INDEX = "batch.kubernetes.io/job-completion-index"
SEGMENTS = [
    {"start": "0", "end": "2", "title": "One"},
    {"start": "2", "end": "4", "title": "Two"},
    {"start": "4", "end": "5", "title": "Three"},
    {"start": "5", "end": "6", "title": "Four"},
]


def sharded(url: str, k: int = 3, **more: Any) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "source": {"url": url},
        "segments": SEGMENTS,
        "parallelism": k,
        "output": {"formats": ["mp4"], "storage": {"pvc": {"claimName": "clips"}}},
    }
    spec.update(more)
    return spec


def one_indexed_job(real: RealCluster, ns: str) -> None:
    """One Indexed Job for the shards was ever created (a merge Job, where the operator has one
    at the end of a sharded run, is not one of them)."""
    jobs = real.k8s.batch.list_namespaced_job(ns).items
    assert [j.spec.completion_mode for j in jobs].count("Indexed") == 1, jobs
    assert jobs_created(real, ns) == len(jobs)


def indexes(pods: list[Any]) -> list[int]:
    return sorted(int(p.metadata.annotations[COMPLETION_INDEX]) for p in pods)


def test_a_sharded_run_is_one_indexed_job(
    real_cluster: RealCluster, ns: str, operator: OperatorProcess
) -> None:
    with Cues(lambda _n, _i, _a: Attempt()).serving() as cues:
        start(real_cluster, ns, operator)
        create(real_cluster, ns, "lecture", sharded(cues.url("lecture")))
        status = wait_phase(real_cluster, ns, "lecture", FINAL)
    assert status["phase"] == "Succeeded", json.dumps(status)[:2000]
    job = real_cluster.k8s.batch.read_namespaced_job(status["jobName"], ns)
    assert job.spec.completion_mode == "Indexed"
    assert job.spec.completions == job.spec.parallelism == 3
    assert job.spec.backoff_limit_per_index == 3 and job.spec.max_failed_indexes == 0
    assert indexes(job_pods(real_cluster, ns, status["jobName"])) == [0, 1, 2]
    assert cues.attempts == {("lecture", 0): 1, ("lecture", 1): 1, ("lecture", 2): 1}
    assert status["shards"] == {
        "count": 3,
        "succeeded": 3,
        "completedIndexes": "0-2",
        "failedIndexes": "",
    }
    assert status["progress"]["message"] == "3/3 shards finished"
    one_indexed_job(real_cluster, ns)


def test_a_failing_shard_is_retried_alone(
    real_cluster: RealCluster, ns: str, operator: OperatorProcess
) -> None:
    def script(_name: str, index: int, attempt: int) -> Attempt:
        if index == 1 and attempt == 1:
            return Attempt(exit=20, category="Network", message="connection reset")
        return Attempt()

    with Cues(script).serving() as cues:
        start(real_cluster, ns, operator)
        create(real_cluster, ns, "flaky", sharded(cues.url("flaky")))
        status = wait_phase(real_cluster, ns, "flaky", FINAL)
    assert status["phase"] == "Succeeded", json.dumps(status)[:2000]
    assert cues.attempts == {("flaky", 0): 1, ("flaky", 1): 2, ("flaky", 2): 1}
    assert indexes(job_pods(real_cluster, ns, status["jobName"])) == [0, 1, 1, 2]
    assert status["shards"]["completedIndexes"] == "0-2"


def test_a_shard_that_keeps_failing_is_reported_with_its_index(
    real_cluster: RealCluster, ns: str, operator: OperatorProcess
) -> None:
    def script(_name: str, index: int, _attempt: int) -> Attempt:
        if index == 2:
            return Attempt(exit=20, category="Network", message="connection reset")
        return Attempt(hang=True)  # the others are still at work

    k8s = real_cluster.k8s
    with Cues(script).serving() as cues:
        start(real_cluster, ns, operator)
        create(real_cluster, ns, "broken", sharded(cues.url("broken"), backoffLimit=1))
        status = wait_phase(real_cluster, ns, "broken", FINAL)
        assert status["phase"] == "Failed", json.dumps(status)[:2000]
        # the Job failed as a whole (maxFailedIndexes 0): the running shards were stopped
        k8s.wait(
            "no shard running",
            lambda: all(
                p.status.phase in ("Failed", "Succeeded")
                for p in job_pods(real_cluster, ns, status["jobName"])
            ),
            60,
        )
    assert cues.attempts[("broken", 2)] == 2  # its own retry, then the index failed
    assert cues.attempts[("broken", 0)] == cues.attempts[("broken", 1)] == 1
    assert status["error"]["shard"] == 2
    assert status["error"]["message"].startswith("shard 2 of 3: "), status["error"]
    assert status["error"]["exitCode"] == 20
    assert status["shards"]["failedIndexes"] == "2"


def test_cancel_mid_run_removes_every_shard(
    real_cluster: RealCluster, ns: str, operator: OperatorProcess
) -> None:
    k8s = real_cluster.k8s
    with Cues(lambda _n, _i, _a: Attempt(hang=True)).serving() as cues:
        start(real_cluster, ns, operator)
        create(real_cluster, ns, "long", sharded(cues.url("long"), k=4))

        def running() -> bool:
            pods = k8s.core.list_namespaced_pod(ns).items
            return len(pods) == 4 and all(p.status.phase == "Running" for p in pods)

        k8s.wait("4 shard pods running", running, 90)
        k8s.wait("4 shards at work", lambda: len(cues.pods) == 4, 60)
        k8s.custom.patch_namespaced_custom_object(
            "videojobs.io",
            "v1alpha1",
            ns,
            "videoprocessingjobs",
            "long",
            {"spec": {"cancel": True}},
        )
        wait_phase(real_cluster, ns, "long", ("Cancelled",))
        k8s.wait(
            "the Job and every pod removed",
            lambda: (
                not k8s.batch.list_namespaced_job(ns).items
                and not k8s.core.list_namespaced_pod(ns).items
            ),
            60,
        )
    assert len(cues.pods) == 4


def test_an_operator_killed_mid_run_keeps_one_indexed_job(
    real_cluster: RealCluster, ns: str, operator: OperatorProcess
) -> None:
    with Cues(lambda _n, i, _a: Attempt(gate=f"shard-{i}")).serving() as cues:
        start(real_cluster, ns, operator)
        create(real_cluster, ns, "survivor", sharded(cues.url("survivor")))
        k8s = real_cluster.k8s
        k8s.wait("3 shards started", lambda: len(cues.pods) == 3, 90)
        wait_phase(real_cluster, ns, "survivor", ("Running",))
        assert operator.proc is not None
        operator.proc.kill()  # killed mid-run
        operator.proc.wait()
        operator.start(VIDEOJOBS_WORKER_IMAGE="videojobs-scripted:realk8s")
        cues.open("shard-0")
        # the new operator has taken over: it reports the first finished shard
        k8s.wait(
            "one shard done, seen by the new operator",
            lambda: (
                (status_of(real_cluster, ns, "survivor").get("shards") or {}).get("succeeded") == 1
            ),
            60,
        )
        assert status_of(real_cluster, ns, "survivor")["phase"] == "Running"
        cues.open("shard-1")
        cues.open("shard-2")
        status = wait_phase(real_cluster, ns, "survivor", FINAL)
    assert status["phase"] == "Succeeded", json.dumps(status)[:2000]
    one_indexed_job(real_cluster, ns)
    indexed = [
        j for j in k8s.batch.list_namespaced_job(ns).items if j.spec.completion_mode == "Indexed"
    ]
    assert [j.metadata.name for j in indexed] == [status["jobName"]]
    assert sum(cues.attempts.values()) == 3


@pytest.fixture
def lecture(tmp_path: Path) -> Iterator[MediaServer]:
    media = tmp_path / "media"
    media.mkdir()
    make_video(media / "lecture.mp4", duration=8.0)
    with MediaServer(media) as server:
        yield server


@pytest.mark.media
def test_the_real_workers_shards_publish_one_manifest(
    real_cluster: RealCluster, ns: str, operator: OperatorProcess, lecture: MediaServer
) -> None:
    folder = real_cluster.claim(ns, "clips")
    operator.start()
    body = sharded(lecture.url("lecture.mp4"), k=2)
    body["output"]["precision"] = "accurate"
    create(real_cluster, ns, "real", body)
    status = wait_phase(real_cluster, ns, "real", FINAL, timeout=240)
    assert status["phase"] == "Succeeded", json.dumps(status)[:3000]
    assert status["segmentsSummary"] == "4/4"
    assert status["manifestUri"].startswith("file:///output/"), status["manifestUri"]
    manifest_path = folder / status["manifestUri"].removeprefix("file:///output/")
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
        assert (manifest_path.parent / video["uri"]).stat().st_uid == 10001
    assert status["shards"]["completedIndexes"] == "0-1"
    one_indexed_job(real_cluster, ns)
