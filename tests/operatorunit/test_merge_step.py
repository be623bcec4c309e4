"""A sharded run ends with its merge Job (issue 28): the pure decisions and the Job itself.

The shards no longer merge (on NFS-like storage each could miss the others' parts and the run
would succeed without a manifest); once every index of the Indexed Job completed, the operator
creates one deterministic ``<job>-merge`` Job, and the run is Succeeded only when it succeeds.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from tests.chart.chartkit import validate_k8s
from videojobs.models import VideoProcessingJobSpec
from videojobs_operator.decide import MERGING_MESSAGE, Context, decide
from videojobs_operator.manifest import (
    JOB_NAME_MAX,
    LABEL_STEP,
    build_job,
    build_merge_job,
    is_merge_step,
    job_name,
    merge_job_name,
    resource_job_name,
    resource_merge_job_name,
)
from videojobs_operator.settings import OperatorSettings

NOW = dt.datetime(2026, 1, 1, 12, 0, tzinfo=dt.UTC)
SEGMENTS = [{"start": i * 10, "end": i * 10 + 5, "title": f"c{i}"} for i in range(6)]


def _resource(status: dict[str, Any] | None = None, name: str = "lec") -> dict[str, Any]:
    resource: dict[str, Any] = {
        "metadata": {"name": name, "namespace": "ns", "uid": "u-1", "generation": 1},
        "spec": {
            "source": {"url": "https://example.org/a.mp4"},
            "segments": SEGMENTS,
            "parallelism": 3,
            "output": {"storage": {"pvc": {"claimName": "c"}}},
        },
    }
    resource["status"] = {
        "phase": "Running",
        "jobName": resource_job_name(resource),
        "startTime": "2026-01-01T11:00:00Z",
        **(status or {}),
    }
    return resource


def _cond(kind: str) -> dict[str, Any]:
    return {"type": kind, "status": "True", "reason": "x", "message": "m"}


def _shard_job(resource: dict[str, Any], done: bool = True) -> dict[str, Any]:
    status: dict[str, Any] = {"completedIndexes": "0-2" if done else "0,2"}
    if done:
        status.update({"succeeded": 3, "conditions": [_cond("Complete")],
                       "completionTime": "2026-01-01T11:50:00Z"})  # fmt: skip
    else:
        status["active"] = 1
    return {
        "metadata": {"name": resource_job_name(resource), "namespace": "ns",
                     "annotations": {"videojobs.io/shards": "3"}},
        "spec": {"completionMode": "Indexed", "completions": 3},
        "status": status,
    }  # fmt: skip


def _merge_job(resource: dict[str, Any], state: str) -> dict[str, Any]:
    status: dict[str, Any] = {"active": 1}
    if state == "Complete":
        status = {"succeeded": 1, "conditions": [_cond("Complete")],
                  "completionTime": "2026-01-01T11:55:00Z"}  # fmt: skip
    elif state == "Failed":
        failed = {**_cond("Failed"), "reason": "BackoffLimitExceeded"}
        status = {"failed": 2, "conditions": [failed]}
    return {
        "metadata": {"name": resource_merge_job_name(resource), "namespace": "ns",
                     "creationTimestamp": "2026-01-01T11:50:01Z",
                     "labels": {LABEL_STEP: "merge"}},
        "status": status,
    }  # fmt: skip


def _merge_pod(code: int | None, message: str = "") -> dict[str, Any]:
    state: dict[str, Any] = (
        {"running": {}} if code is None else {"terminated": {"exitCode": code, "message": message}}
    )
    phase = "Running" if code is None else ("Succeeded" if code == 0 else "Failed")
    return {
        "metadata": {"name": "m-1", "creationTimestamp": "2026-01-01T11:50:02Z",
                     "labels": {LABEL_STEP: "merge"}},
        "status": {"phase": phase, "containerStatuses": [{"name": "worker", "state": state}]},
    }  # fmt: skip


def _ctx(**extra: Any) -> Context:
    return Context(now=NOW, settings=OperatorSettings(), **extra)


def test_every_shard_done_creates_the_merge_job_and_the_run_is_not_succeeded_yet() -> None:
    resource = _resource()
    decision = decide(resource, _shard_job(resource), [], _ctx())
    assert decision.create_merge_job and not decision.create_job
    status = {**resource["status"], **decision.status}
    assert status["phase"] == "Running" and status["stage"] == "Uploading"
    assert status["message"] == MERGING_MESSAGE
    progressing = [c for c in decision.status["conditions"] if c["type"] == "Progressing"]
    assert progressing[0]["reason"] == "Merging"
    assert decision.status["shards"]["succeeded"] == 3
    assert "Complete" not in {c["type"] for c in decision.status["conditions"]}


def test_shards_still_running_create_no_merge_job() -> None:
    resource = _resource()
    decision = decide(resource, _shard_job(resource, done=False), [], _ctx())
    assert not decision.create_merge_job and decision.status.get("phase") != "Succeeded"


def test_a_running_merge_job_keeps_the_run_running_and_writes_nothing_new() -> None:
    resource = _resource()
    first = decide(resource, _shard_job(resource), [], _ctx())
    resource["status"].update(first.status)
    merge = _merge_job(resource, "Running")
    again = decide(resource, _shard_job(resource), [], _ctx(merge_job=merge,
                   merge_pods=[_merge_pod(None)]))  # fmt: skip
    assert not again.create_merge_job
    assert again.status == {}  # level-triggered: the same state, no write


def test_the_run_succeeds_only_when_the_merge_job_succeeds() -> None:
    resource = _resource({"manifestUri": "file:///o/manifest.json", "segmentsSummary": "6/6"})
    merge = _merge_job(resource, "Complete")
    decision = decide(
        resource, _shard_job(resource), [], _ctx(merge_job=merge, merge_pods=[_merge_pod(0)])
    )
    assert decision.status["phase"] == "Succeeded"
    assert decision.status["completionTime"] == "2026-01-01T11:55:00Z"  # the merge's
    assert not decision.create_merge_job and not decision.delete_job
    assert [e.reason for e in decision.events] == ["Succeeded"]


def test_a_failed_merge_fails_the_run_with_its_reason() -> None:
    error = {"category": "Storage", "reason": "PartsMissing", "exitCode": 23,
             "message": "every shard finished but ... .videojobs-parts/j/1.json: not visible",
             "permanent": False}  # fmt: skip
    resource = _resource({"error": error})
    merge = _merge_job(resource, "Failed")
    pods = [_merge_pod(23, "parts missing"), _merge_pod(23, "parts missing")]
    decision = decide(resource, _shard_job(resource), [], _ctx(merge_job=merge, merge_pods=pods))
    assert decision.status["phase"] == "Failed"
    assert decision.status["message"].startswith("the merge step failed: ")
    assert decision.status["error"]["reason"] == "PartsMissing"
    assert decision.events[0].type == "Warning"


def test_the_merge_job_is_followed_when_the_shards_job_is_gone() -> None:
    resource = _resource({"manifestUri": "file:///o/manifest.json"})
    merge = _merge_job(resource, "Complete")
    decision = decide(resource, None, [], _ctx(merge_job=merge, job_missing=True))
    assert decision.status["phase"] == "Succeeded"
    running = decide(resource, None, [], _ctx(merge_job=_merge_job(resource, "Running")))
    assert running.status.get("phase") in (None, "Running") and not running.create_merge_job


def test_merge_job_name_fits_63_characters_and_is_per_run() -> None:
    for name in ("lec", "a" * 60, "x" * 253, "Mixed.Case_name-" * 10):
        job = job_name(name, "u-1", None)
        merge = merge_job_name(name, "u-1", None)
        assert len(job) <= JOB_NAME_MAX and len(merge) <= 63
        assert merge.endswith("-merge") and merge != job
        assert merge_job_name(name, "u-1", "again") != merge  # a new run, a new merge Job
    assert merge_job_name("lec", "u-1", None) == f"{job_name('lec', 'u-1', None)}-merge"


def test_the_merge_job_is_the_shards_pod_with_the_merge_command() -> None:
    resource = _resource()
    spec = VideoProcessingJobSpec.model_validate(resource["spec"])
    shards = build_job(resource, spec, OperatorSettings())
    merge = build_merge_job(resource, spec, OperatorSettings())
    validate_k8s(merge)
    assert merge["metadata"]["name"] == resource_merge_job_name(resource)
    assert merge["metadata"]["ownerReferences"] == shards["metadata"]["ownerReferences"]
    assert is_merge_step(merge) and is_merge_step(merge["spec"]["template"])
    assert not is_merge_step(shards)
    assert "completionMode" not in merge["spec"] and merge["spec"]["backoffLimit"] == 1
    pod, shard_pod = merge["spec"]["template"]["spec"], shards["spec"]["template"]["spec"]
    assert pod["securityContext"] == shard_pod["securityContext"]
    assert pod["serviceAccountName"] == shard_pod["serviceAccountName"]
    container, shard_container = pod["containers"][0], shard_pod["containers"][0]
    assert container["args"][0] == "merge" and shard_container["args"] == ["run"]
    assert container["image"] == shard_container["image"]
    assert container["securityContext"] == shard_container["securityContext"]
    inputs = {v["name"]: v for v in pod["volumes"]}
    assert inputs["input"]["configMap"]["name"] == f"{merge['metadata']['name']}-input"
    assert inputs["output"] == {v["name"]: v for v in shard_pod["volumes"]}["output"]
    assert "videojobs.io/shards" not in merge["metadata"]["annotations"]


def test_a_merge_without_a_reported_manifest_waits_then_fails() -> None:
    """The merge Job completed but ``manifestUri`` did not arrive: the run waits 30 s for the
    watch, then fails loudly instead of reading Succeeded without a manifest."""
    resource = _resource()
    merge = _merge_job(resource, "Complete")  # completed 11:55:00
    soon = Context(now=dt.datetime(2026, 1, 1, 11, 55, 10, tzinfo=dt.UTC),
                   settings=OperatorSettings(), merge_job=merge)  # fmt: skip
    waiting = decide(resource, _shard_job(resource), [], soon)
    assert waiting.status.get("phase") != "Succeeded" and waiting.requeue_after == 20.0
    late = decide(resource, _shard_job(resource), [], _ctx(merge_job=merge))
    assert late.status["phase"] == "Failed"
    assert late.status["error"]["reason"] == "ManifestNotReported"


def test_the_manifest_from_the_merge_pods_exit_message_when_its_status_write_did_not_land() -> None:
    resource = _resource()
    merge = _merge_job(resource, "Complete")
    line = '{"exitCode": 0, "category": "Ok", "message": "6 clips", "manifestUri": "s3://b/m.json"}'
    pod = _merge_pod(0, line)
    decision = decide(resource, _shard_job(resource), [], _ctx(merge_job=merge, merge_pods=[pod]))
    assert decision.status["phase"] == "Succeeded"
    assert decision.status["manifestUri"] == "s3://b/m.json"
    failed_pod = _merge_pod(23, line.replace('"exitCode": 0', '"exitCode": 23'))
    late = decide(
        resource, _shard_job(resource), [], _ctx(merge_job=merge, merge_pods=[failed_pod])
    )
    assert late.status["phase"] == "Failed"  # only a pod that exited 0 is believed
