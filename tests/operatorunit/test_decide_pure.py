"""The operator's pure core: Job names and manifests, status decisions, conditions, the queue."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import pytest

from videojobs.models import PERMANENT_EXIT_CODES, VideoProcessingJobSpec, WorkerInput
from videojobs_operator.decide import Context, decide, is_finished, set_condition, wants_to_start
from videojobs_operator.manifest import (
    LABEL_RUN,
    build_input_configmap,
    build_job,
    job_name,
    resource_job_name,
    run_id,
    validate_spec,
)
from videojobs_operator.queue import QueueEntry, admit
from videojobs_operator.settings import OperatorSettings

NOW = dt.datetime(2026, 11, 25, 14, 0, 0, tzinfo=dt.UTC)
UID = "0c7d1a4e-1111-2222-3333-444455556666"


def settings(**kw: Any) -> OperatorSettings:
    return OperatorSettings(**kw)


def resource(name: str = "lecture", status: dict[str, Any] | None = None, **spec: Any) -> dict:
    body: dict[str, Any] = {
        "source": {"url": "https://example.com/v.mp4"},
        "segments": [{"start": 0, "end": 5, "title": "Intro"}],
        "output": {"storage": {"pvc": {"claimName": "clips", "path": "out"}}},
    }
    body.update(spec)
    return {
        "apiVersion": "videojobs.io/v1alpha1",
        "kind": "VideoProcessingJob",
        "metadata": {
            "name": name,
            "namespace": "media",
            "uid": UID,
            "generation": 1,
            "creationTimestamp": "2026-11-25T13:00:00Z",
        },
        "spec": body,
        "status": status or {},
    }


def ctx(**kw: Any) -> Context:
    kw.setdefault("settings", settings())
    return Context(now=kw.pop("now", NOW), **kw)


def running_status(r: dict[str, Any]) -> dict[str, Any]:
    return {
        "phase": "Running",
        "jobName": resource_job_name(r),
        "observedGeneration": 1,
        "startTime": "2026-11-25T13:00:00Z",
    }


def job(conditions: list[dict[str, Any]] | None = None, **status: Any) -> dict[str, Any]:
    return {
        "metadata": {"name": "j", "namespace": "media"},
        "status": {**status, "conditions": conditions or []},
    }


def pod(
    phase: str,
    *,
    exit_code: int | None = None,
    message: str = "",
    waiting: str | None = None,
    created: str = "2026-11-25T13:59:00Z",
) -> dict[str, Any]:
    state: dict[str, Any] = {}
    if exit_code is not None:
        state = {"terminated": {"exitCode": exit_code, "message": message}}
    elif waiting:
        state = {"waiting": {"reason": waiting, "message": "Back-off pulling image"}}
    return {
        "metadata": {"name": f"p-{created[-3:-1]}", "creationTimestamp": created},
        "status": {"phase": phase, "containerStatuses": [{"name": "worker", "state": state}]},
    }


# Names ----------------------------------------------------------------------------------------


def test_job_name_is_deterministic_short_and_per_run() -> None:
    assert job_name("lecture", UID, None) == job_name("lecture", UID, None)
    assert job_name("lecture", UID, None) != job_name("lecture", UID, "2")
    assert job_name("lecture", UID, None) != job_name("lecture", UID + "x", None)
    long = job_name("a." + "b" * 250, UID, "t")
    assert len(long) <= 63
    assert all(c.isalnum() or c == "-" for c in long)
    assert not long.startswith("-")


# The manifest ---------------------------------------------------------------------------------


def test_job_manifest_mounts_inputs_and_defaults() -> None:
    r = resource(
        transcript={"configMapKeyRef": {"name": "cm", "key": "t.vtt"}},
        segments=None,
        knowledgePoints=[{"id": "a", "title": "A", "start": 0}],
    )
    del r["spec"]["segments"]
    r["spec"]["source"]["cookiesSecretRef"] = {"name": "cookies", "key": "c.txt"}
    spec = VideoProcessingJobSpec.model_validate(r["spec"])
    s = settings(worker_cpu="3", worker_memory="5Gi", worker_scratch_size="9Gi")
    manifest = build_job(r, spec, s)
    pod_spec = manifest["spec"]["template"]["spec"]
    volumes = {v["name"]: v for v in pod_spec["volumes"]}
    assert volumes["transcript"]["configMap"]["items"] == [{"key": "t.vtt", "path": "transcript"}]
    assert volumes["cookies"]["secret"]["items"] == [{"key": "c.txt", "path": "cookies.txt"}]
    assert volumes["output"]["persistentVolumeClaim"] == {"claimName": "clips"}
    assert volumes["scratch"]["emptyDir"] == {"sizeLimit": "9Gi"}
    mounts = {m["name"]: m for m in pod_spec["containers"][0]["volumeMounts"]}
    assert mounts["output"]["mountPath"] == "/output"
    assert mounts["transcript"]["readOnly"] is True
    container = pod_spec["containers"][0]
    assert container["resources"]["limits"] == {"cpu": "3", "memory": "5Gi"}
    env = {e["name"]: e.get("value") for e in container["env"]}
    assert env["TMPDIR"] == env["HOME"] == "/scratch"
    assert env["VIDEOJOBS_INPUT_FILE"] == "/var/run/videojobs/input/input.json"
    assert mounts["input"] == {
        "name": "input",
        "mountPath": "/var/run/videojobs/input",
        "readOnly": True,
    }
    created = {**manifest, "metadata": {**manifest["metadata"], "uid": "job-uid"}}
    cm = build_input_configmap(r, spec, s, created)
    assert volumes["input"]["configMap"]["name"] == cm["metadata"]["name"]
    data = WorkerInput.model_validate_json(cm["data"]["input.json"])
    assert data.transcript_path == "/var/run/videojobs/transcript/transcript"
    assert data.resource is not None and data.resource.uid == UID
    assert data.allow_private_networks is False
    assert manifest["spec"]["activeDeadlineSeconds"] == s.default_active_deadline_seconds
    assert manifest["spec"]["template"]["metadata"]["labels"] == manifest["metadata"]["labels"]
    assert manifest["metadata"]["labels"][LABEL_RUN] == run_id(UID, None)
    codes = manifest["spec"]["podFailurePolicy"]["rules"][0]["onExitCodes"]["values"]
    assert codes == list(PERMANENT_EXIT_CODES) and 2 in codes and 20 not in codes
    assert 30 in codes  # CLIP_MISMATCH: the same source cuts to the same wrong clip (issue 23)
    json.dumps(manifest)  # plain JSON all the way down


# Conditions -----------------------------------------------------------------------------------


def test_condition_keeps_transition_time_while_status_unchanged() -> None:
    first = set_condition([], "Progressing", "True", "Running", "a", "T1", 1)
    same = set_condition(first, "Progressing", "True", "Retrying", "b", "T2", 2)
    assert same[0]["lastTransitionTime"] == "T1"
    assert same[0]["reason"] == "Retrying" and same[0]["observedGeneration"] == 2
    flipped = set_condition(same, "Progressing", "False", "Succeeded", "c", "T3", 2)
    assert flipped[0]["lastTransitionTime"] == "T3"


# Queue ----------------------------------------------------------------------------------------


def entry(ns: str, name: str, minute: int) -> QueueEntry:
    return QueueEntry(ns, name, f"2026-11-25T13:{minute:02d}:00Z")


def test_admit_is_fifo_within_the_global_limit() -> None:
    waiting = [entry("a", "late", 9), entry("a", "early", 1), entry("a", "mid", 5)]
    assert admit(waiting, {}, 2, 0) == [("a", "early"), ("a", "mid")]
    assert admit(waiting, {"a": 1}, 2, 0) == [("a", "early")]
    assert admit(waiting, {"b": 2}, 2, 0) == []
    assert len(admit(waiting, {"a": 50}, 0, 0)) == 3  # 0 = unlimited


def test_admit_per_namespace_does_not_block_other_namespaces() -> None:
    waiting = [entry("a", "a1", 1), entry("a", "a2", 2), entry("b", "b1", 3)]
    assert admit(waiting, {"a": 1}, 0, 1) == [("b", "b1")]
    assert admit(waiting, {}, 0, 1) == [("a", "a1"), ("b", "b1")]
    assert admit(waiting, {}, 1, 1) == [("a", "a1")]


def test_ties_in_creation_time_break_by_name() -> None:
    waiting = [entry("a", "b", 1), entry("a", "a", 1)]
    assert admit(waiting, {}, 1, 0) == [("a", "a")]


# Decisions ------------------------------------------------------------------------------------


def test_new_resource_is_created_when_admitted_and_queued_otherwise() -> None:
    r = resource()
    started = decide(r, None, [], ctx(admitted=True))
    assert started.create_job
    assert started.status["phase"] == "Pending"
    assert started.status["jobName"] == resource_job_name(r)
    queued = decide(r, None, [], ctx(admitted=False, queue_limit="at most 2 running"))
    assert not queued.create_job
    assert queued.status["phase"] == "Queued"
    assert "at most 2 running" in queued.status["message"]
    assert [e.reason for e in queued.events] == ["Queued"]
    again = decide(
        resource(status=queued.status),
        None,
        [],
        ctx(admitted=False, queue_limit="at most 2 running", now=NOW + dt.timedelta(seconds=9)),
    )
    assert again.status == {} and again.events == []  # no write, no event while still queued
    admitted = decide(resource(status=queued.status), None, [], ctx(admitted=True))
    assert admitted.create_job and admitted.status["phase"] == "Pending"
    assert admitted.events == [], "its Queued Event announced it: no JobCreated (<= 8 writes)"
    assert [e.reason for e in started.events] == ["JobCreated"]


def test_invalid_spec_fails_with_the_field() -> None:
    r = resource()
    spec, problems = validate_spec({**r["spec"], "backoffLimit": 99})
    assert spec is None
    d = decide(r, None, [], ctx(problems=problems))
    assert d.status["phase"] == "Failed"
    assert "spec.backoffLimit" in d.status["error"]["message"]
    assert d.events[0].type == "Warning" and d.events[0].reason == "InvalidSpec"
    assert not d.create_job


def test_permanent_exit_code_becomes_an_actionable_error() -> None:
    r = resource(status={})
    r["status"] = running_status(r)
    failed = job([{"type": "Failed", "status": "True", "reason": "PodFailurePolicy"}], failed=1)
    d = decide(r, failed, [pod("Failed", exit_code=13, message='{"message": "sign in"}')], ctx())
    err = d.status["error"]
    assert d.status["phase"] == "Failed"
    assert err["category"] == "LoginRequired" and err["exitCode"] == 13 and err["permanent"]
    assert "cookiesSecretRef" in err["message"] and "sign in" in err["message"]


def test_worker_error_is_preferred_when_it_matches_the_exit_code() -> None:
    r = resource()
    r["status"] = running_status(r) | {
        "error": {
            "category": "Unavailable",
            "reason": "VideoRemoved",
            "message": "removed by uploader",
            "exitCode": 11,
            "permanent": True,
        }
    }
    failed = job([{"type": "Failed", "status": "True", "reason": "PodFailurePolicy"}])
    d = decide(r, failed, [pod("Failed", exit_code=11)], ctx())
    assert "error" not in d.status  # the worker's own error stays as it is
    assert d.status["phase"] == "Failed"
    assert d.status["message"] == "removed by uploader"
    assert [e.reason for e in d.events] == ["VideoRemoved"]


def test_deadline_exceeded_is_a_timeout() -> None:
    r = resource()
    r["status"] = running_status(r)
    failed = job([{"type": "Failed", "status": "True", "reason": "DeadlineExceeded"}])
    d = decide(r, failed, [pod("Failed", exit_code=143)], ctx())
    assert d.status["phase"] == "Failed"
    assert d.status["error"]["category"] == "Timeout"
    assert d.status["error"]["reason"] == "DeadlineExceeded"
    assert "activeDeadlineSeconds" in d.status["error"]["message"]


def test_backoff_limit_exceeded_mentions_attempts() -> None:
    r = resource()
    r["status"] = running_status(r)
    failed = job([{"type": "Failed", "status": "True", "reason": "BackoffLimitExceeded"}], failed=3)
    pods = [pod("Failed", exit_code=21, created=f"2026-11-25T13:5{i}:00Z") for i in range(3)]
    d = decide(r, failed, pods, ctx())
    assert d.status["error"]["category"] == "Timeout"
    assert d.status["error"]["permanent"] is False
    assert d.status["error"]["message"].startswith("gave up after 3 attempts")


@pytest.mark.parametrize("reason", ["ImagePullBackOff", "Unschedulable"])
def test_stuck_pod_waits_then_fails(reason: str) -> None:
    r = resource()
    r["status"] = running_status(r) | {"phase": "Pending"}
    if reason == "Unschedulable":
        p = {
            "metadata": {"name": "p", "creationTimestamp": "2026-11-25T13:59:00Z"},
            "status": {
                "phase": "Pending",
                "conditions": [
                    {"type": "PodScheduled", "status": "False", "reason": "Unschedulable"}
                ],
            },
        }
    else:
        p = pod("Pending", waiting=reason)
    s = settings(pending_timeout_seconds=120)
    early = decide(r, job(active=1), [p], ctx(settings=s))
    assert early.status.get("phase", "Pending") == "Pending"
    assert reason in early.status["message"]
    assert early.requeue_after == pytest.approx(60)
    assert not early.delete_job
    late = decide(r, job(active=1), [p], ctx(settings=s, now=NOW + dt.timedelta(minutes=2)))
    assert late.status["phase"] == "Failed"
    assert late.status["error"]["reason"] == reason
    assert late.delete_job


def test_job_gone_fails_with_job_deleted() -> None:
    r = resource()
    r["status"] = running_status(r)
    d = decide(r, None, [], ctx(job_missing=True, admitted=True))
    assert d.status["phase"] == "Failed"
    assert d.status["error"]["reason"] == "JobDeleted"
    assert not d.create_job  # never a second Job for one run


def test_ttl_after_finish() -> None:
    r = resource(ttlSecondsAfterFinished=600)
    r["status"] = {
        "phase": "Succeeded",
        "jobName": resource_job_name(r),
        "observedGeneration": 1,
        "completionTime": "2026-11-25T13:55:00Z",
    }
    soon = decide(r, None, [], ctx())
    assert not soon.delete_resource and soon.requeue_after == pytest.approx(300)
    assert soon.status == {}
    due = decide(r, None, [], ctx(now=NOW + dt.timedelta(minutes=5)))
    assert due.delete_resource
    r["spec"].pop("ttlSecondsAfterFinished")
    assert decide(r, None, [], ctx()).requeue_after is None  # kept forever by default
    default = decide(r, None, [], ctx(settings=settings(default_ttl_seconds_after_finished=0)))
    assert default.delete_resource


def test_rerun_token_makes_a_finished_resource_start_again() -> None:
    r = resource()
    r["status"] = {
        "phase": "Succeeded",
        "jobName": resource_job_name(r),
        "observedGeneration": 1,
        "progress": {"stage": "Uploading", "percent": 100},
    }
    assert is_finished(r) and not wants_to_start(r)
    r["spec"]["rerunToken"] = "again"
    r["metadata"]["generation"] = 2
    assert not is_finished(r) and wants_to_start(r)
    d = decide(r, None, [], ctx(admitted=True))
    assert d.create_job and d.status["jobName"] == resource_job_name(r)
    assert d.status["progress"] is None  # the last run's progress is reset


def test_cancel_deletes_the_job_and_keeps_outputs() -> None:
    r = resource(cancel=True)
    r["status"] = running_status(r) | {"segments": [{"index": 1}]}
    d = decide(r, job(active=1), [pod("Running")], ctx())
    assert d.delete_job
    assert d.status["phase"] == "Cancelled"
    assert "segments" not in d.status


def test_retry_is_reported_once_a_new_pod_runs() -> None:
    r = resource()
    r["status"] = running_status(r) | {"attempts": 1}
    first = pod("Failed", exit_code=20, created="2026-11-25T13:50:00Z")
    between = decide(r, job(failed=1), [first], ctx())
    assert between.status.get("phase") is None  # still Running, nothing new to say
    second = pod("Running", created="2026-11-25T13:51:00Z")
    retry = decide(r, job(failed=1, active=1), [first, second], ctx())
    assert retry.status["attempts"] == 2
    assert "exit code 20 (Network)" in retry.status["message"]


def test_job_gone_after_the_worker_published_everything_is_a_success() -> None:
    r = resource()
    r["status"] = running_status(r) | {"manifestUri": "s3://clips/lecture/manifest.json"}
    d = decide(r, None, [], ctx(job_missing=True))
    assert d.status["phase"] == "Succeeded"
    assert "error" not in d.status
