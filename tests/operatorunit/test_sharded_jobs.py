"""Sharded runs in the operator's pure parts: the Indexed Job, its status, the summed progress."""

from __future__ import annotations

from typing import Any

from tests.chart.chartkit import validate_k8s
from videojobs.models import VideoProcessingJobSpec
from videojobs_operator.decide import aggregate_progress, fresh_shard_progress
from videojobs_operator.manifest import (
    ANNOTATION_COMPLETION_INDEX,
    build_job,
    build_worker_input,
    shard_count,
    shard_progress_interval,
)
from videojobs_operator.observe import observe_run, shards_summary
from videojobs_operator.settings import OperatorSettings

SEGMENTS = [{"start": i * 10, "end": i * 10 + 5, "title": f"c{i}"} for i in range(6)]


def _spec(**extra: Any) -> dict[str, Any]:
    return {
        "source": {"url": "https://example.org/a.mp4"},
        "segments": SEGMENTS,
        "output": {"storage": {"pvc": {"claimName": "c"}}},
        **extra,
    }


def _resource(**extra: Any) -> dict[str, Any]:
    return {"metadata": {"name": "lec", "namespace": "ns", "uid": "u-1"}, "spec": _spec(**extra)}


def test_shard_count_spec_default_and_cap() -> None:
    settings = OperatorSettings()
    assert shard_count(_spec(), settings) == 1
    assert shard_count(_spec(parallelism=4), settings) == 4
    assert shard_count(_spec(parallelism=16), settings) == 6  # no more shards than clips
    on = OperatorSettings(default_parallelism=4, parallelism_min_clips=2)
    assert shard_count(_spec(), on) == 3  # one shard per 2 clips, not defaultParallelism at once
    assert shard_count({**_spec(), "segments": SEGMENTS[:5]}, on) == 2
    assert shard_count({**_spec(), "segments": SEGMENTS[:3]}, on) == 1  # just over the threshold
    assert shard_count(_spec(parallelism=1), on) == 1  # the spec wins
    many = OperatorSettings(default_parallelism=4, parallelism_min_clips=1)
    assert shard_count(_spec(), many) == 4  # at most defaultParallelism
    budget = OperatorSettings(max_running_pods=2)
    assert shard_count(_spec(parallelism=4), budget) == 2  # never more than the pod budget
    chapters = {"source": {"url": "u"}, "segmentation": {"fromChapters": True}, "parallelism": 3}
    assert shard_count(chapters, settings) == 3  # clips unknown: not capped


def test_shards_report_less_often_as_they_multiply() -> None:
    """Each of k shards reports every interval * max(1, k/4): a run's shards write at most 4
    times per interval whatever k (issue 28); 0 restores one report per shard per interval."""
    settings = OperatorSettings(progress_interval_seconds=5)
    assert [shard_progress_interval(k, settings) for k in (1, 4, 8, 16)] == [5, 5, 10, 20]
    for k in range(1, 17):
        assert k / shard_progress_interval(k, settings) <= 4 / 5
    old = OperatorSettings(progress_interval_seconds=5, progress_shards_per_interval=0)
    assert shard_progress_interval(16, old) == 5
    resource = _resource(parallelism=6)
    spec = VideoProcessingJobSpec.model_validate(resource["spec"])
    assert build_worker_input(resource, spec, settings).progress_interval_seconds == 7.5


def test_indexed_job_is_valid_for_the_oldest_and_newest_kubernetes() -> None:
    resource = _resource(parallelism=3, backoffLimit=2)
    spec = VideoProcessingJobSpec.model_validate(resource["spec"])
    job = build_job(resource, spec, OperatorSettings())
    validate_k8s(job)  # 1.29 (backoffLimitPerIndex beta, on by default) and the newest
    js = job["spec"]
    assert (js["completionMode"], js["completions"], js["parallelism"]) == ("Indexed", 3, 3)
    assert (js["backoffLimitPerIndex"], js["maxFailedIndexes"], js["backoffLimit"]) == (2, 0, 6)
    assert build_worker_input(resource, spec, OperatorSettings()).shards == 3
    single = build_job(
        _resource(), VideoProcessingJobSpec.model_validate(_spec()), OperatorSettings()
    )
    assert "completionMode" not in single["spec"] and single["spec"]["backoffLimit"] == 3


def _pod(index: int, code: int | None, created: str, message: str = "") -> dict[str, Any]:
    state: dict[str, Any] = (
        {"running": {}} if code is None else {"terminated": {"exitCode": code, "message": message}}
    )
    phase = "Running" if code is None else ("Succeeded" if code == 0 else "Failed")
    return {
        "metadata": {
            "name": f"j-{index}-{created[-3:]}",
            "creationTimestamp": created,
            "annotations": {ANNOTATION_COMPLETION_INDEX: str(index)},
        },
        "status": {"phase": phase, "containerStatuses": [{"name": "worker", "state": state}]},
    }


def _job(status: dict[str, Any]) -> dict[str, Any]:
    return {
        "metadata": {"name": "j", "annotations": {"videojobs.io/shards": "3"}},
        "status": status,
    }


def test_failed_shard_is_named_not_the_sibling_killed_after_it() -> None:
    failed = {"type": "Failed", "status": "True", "reason": "MaxFailedIndexesExceeded"}
    job = _job({"failedIndexes": "1", "completedIndexes": "0", "conditions": [failed]})
    pods = [
        _pod(0, 0, "2026-01-01T00:00:01Z"),
        _pod(1, 20, "2026-01-01T00:00:02Z", "reset"),
        _pod(1, 20, "2026-01-01T00:00:03Z", "reset again"),
        _pod(2, 143, "2026-01-01T00:00:04Z"),  # terminated when the Job failed
    ]
    run = observe_run(job, pods, {"exitCode": 143, "shard": 2, "message": "shard 2: stopped"})
    assert run.phase == "Failed"
    assert run.error is not None and run.error["shard"] == 1
    assert run.error["exitCode"] == 20
    assert run.message.startswith("shard 1 of 3: ") and "reset again" in run.message
    assert shards_summary(job) == {
        "count": 3,
        "succeeded": 1,
        "completedIndexes": "0",
        "failedIndexes": "1",
    }


def test_a_permanent_exit_names_its_shard() -> None:
    failed = {"type": "Failed", "status": "True", "reason": "PodFailurePolicy"}
    pods = [_pod(2, 11, "2026-01-01T00:00:01Z"), _pod(0, 143, "2026-01-01T00:00:02Z")]
    run = observe_run(_job({"conditions": [failed]}), pods, None)
    assert run.error is not None and run.error["shard"] == 2 and run.error["exitCode"] == 11


def test_running_names_the_shard_being_retried() -> None:
    pods = [
        _pod(0, None, "2026-01-01T00:00:01Z"),
        _pod(1, 20, "2026-01-01T00:00:02Z"),
        _pod(1, None, "2026-01-01T00:00:03Z"),
    ]
    run = observe_run(_job({"active": 2}), pods, None)
    assert (run.phase, run.reason) == ("Running", "Retrying")
    assert run.message.startswith("shard 1 of 3: attempt 2 after exit code 20")


def test_progress_is_summed_over_shards() -> None:
    entries = {
        "0": {"stage": "Finished", "percent": 100, "segmentsDone": 2, "segmentsTotal": 2},
        "1": {"stage": "Cutting", "percent": 50, "segmentsDone": 1, "segmentsTotal": 2,
              "bytesDone": 10, "updatedAt": "2026-01-01T00:00:05Z"},
    }  # fmt: skip
    progress = aggregate_progress(entries, 3, 1)
    assert progress["stage"] == "Starting"  # shard 2 has not reported yet
    assert progress["percent"] == 50 and progress["segmentsDone"] == 3
    assert progress["segmentsTotal"] == 4 and progress["bytesDone"] == 10
    assert progress["message"] == "1/3 shards finished"


def test_a_new_run_resets_every_shard_entry() -> None:
    old = {"0": {"stage": "Finished", "percent": 100}, "3": {"stage": "Finished"}}
    patch = fresh_shard_progress(2, old)
    assert patch is not None
    assert patch["3"] is None  # an earlier run's extra shard goes
    assert patch["0"]["percent"] == 0 and patch["0"]["stage"] == "Starting"
    assert set(patch) == {"0", "1", "3"}
    assert fresh_shard_progress(1, old) is None
