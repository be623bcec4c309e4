"""Issue 28 in the reconciler: runs weigh their shards against ``maxRunningPods``; a sharded
run's claim must be ReadWriteMany (read once per generation); the operator rewrites a sharded
run's summed progress at most every ``summedProgressIntervalSeconds`` whatever the shard count."""

from __future__ import annotations

import datetime as dt
from typing import Any

from tests.operatorunit.fakekube import FakeKube
from tests.operatorunit.test_queue_reconciler import running_job
from videojobs_operator.metrics import Metrics
from videojobs_operator.reconcile import Reconciler
from videojobs_operator.settings import OperatorSettings

NOW = dt.datetime(2026, 11, 25, 14, 0, 0, tzinfo=dt.UTC)


def sharded(name: str, uid: str, second: int, shards: int, claim: str = "clips") -> dict[str, Any]:
    return {
        "apiVersion": "videojobs.io/v1alpha1",
        "kind": "VideoProcessingJob",
        "metadata": {
            "name": name,
            "namespace": "media",
            "uid": uid,
            "generation": 1,
            "creationTimestamp": f"2026-11-25T13:00:{second:02d}Z",
        },
        "spec": {
            "source": {"url": "https://example.com/v.mp4"},
            "parallelism": shards,
            "segments": [
                {"start": i * 10, "end": i * 10 + 5, "title": f"Part {i}"} for i in range(8)
            ],
            "output": {"storage": {"pvc": {"claimName": claim}}},
        },
        "status": {},
    }


def claim(modes: list[str]) -> dict[str, Any]:
    return {"spec": {"accessModes": modes}, "status": {"phase": "Bound", "accessModes": modes}}


def created(kube: FakeKube) -> list[str]:
    return [c[1] for c in kube.calls if c[0] == "create_job"]


async def test_runs_weigh_their_shards_against_max_running_pods() -> None:
    settings = OperatorSettings(manage_worker_rbac=False, max_running_pods=5)
    big, small = sharded("big", "u-1", 1, 4), sharded("small", "u-2", 2, 2)
    kube = FakeKube()
    kube.claims[("media", "clips")] = claim(["ReadWriteMany"])
    rec = Reconciler(settings, kube, Metrics(), clock=lambda: NOW)  # type: ignore[arg-type]
    rec.bind({("media", "big"): [big], ("media", "small"): [small]}, {}, {})
    await rec.reconcile(("media", "small"))
    await rec.reconcile(("media", "big"))
    assert len(created(kube)) == 1 and created(kube)[0].startswith("big-"), created(kube)
    assert rec.queue.running_pods() == 4
    queued = [p for name, p in kube.status_patches if name == "small" and p.get("phase")]
    assert queued[-1]["phase"] == "Queued" and "5 worker pods" in queued[-1]["message"]
    await rec.close()


async def test_a_sharded_run_on_a_read_write_once_claim_is_refused_once() -> None:
    settings = OperatorSettings(manage_worker_rbac=False)
    run = sharded("lecture", "u-1", 1, 4)
    kube = FakeKube()
    kube.claims[("media", "clips")] = claim(["ReadWriteOnce"])
    rec = Reconciler(settings, kube, Metrics(), clock=lambda: NOW)  # type: ignore[arg-type]
    rec.bind({("media", "lecture"): [run]}, {}, {})
    await rec.reconcile(("media", "lecture"))
    assert created(kube) == []
    failed = [p for _, p in kube.status_patches if p.get("phase") == "Failed"]
    assert failed and failed[0]["error"]["reason"] == "InvalidSpec"
    assert "ReadWriteMany" in failed[0]["error"]["message"]
    run["status"] = {**run["status"], **failed[0]}
    await rec.reconcile(("media", "lecture"))
    assert [c for c in kube.calls if c[0] == "read_claim"] == [("read_claim", "clips")]
    await rec.close()


async def _progress_writes(summed_interval: float, changes: int) -> int:
    """A running 16-shard run whose shards report ``changes`` times in a row (no time passes):
    how many times the operator writes the summed progress."""
    settings = OperatorSettings(
        manage_worker_rbac=False, summed_progress_interval_seconds=summed_interval
    )
    run = sharded("lecture", "u-1", 1, 8)
    job = running_job(run, settings)
    job["status"] = {"active": 8}
    kube = FakeKube()
    kube.claims[("media", "clips")] = claim(["ReadWriteMany"])
    rec = Reconciler(settings, kube, Metrics(), clock=lambda: NOW)  # type: ignore[arg-type]
    rec.bind({("media", "lecture"): [run]}, {("media", "lecture"): [job]}, {})
    run["status"] = {"phase": "Running", "jobName": job["metadata"]["name"]}
    writes = 0
    for i in range(changes):
        run["status"]["shardProgress"] = {
            str(s): {"stage": "Cutting", "percent": i + s, "segmentsDone": 0, "segmentsTotal": 1}
            for s in range(8)
        }
        before = len(kube.status_patches)
        await rec.reconcile(("media", "lecture"))
        for _, patch in kube.status_patches[before:]:
            if "progress" in patch:
                writes += 1
                run["status"].update(patch)
    await rec.close()
    return writes


async def test_the_summed_progress_is_rewritten_at_most_every_interval() -> None:
    assert await _progress_writes(0, 10) == 10, "0: on every change (the old behaviour)"
    assert await _progress_writes(3600, 10) == 1, "the first, then none within the interval"
