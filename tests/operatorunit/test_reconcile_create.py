"""The reconciler around a failed Job create: the admitted slot is released on every outcome;
403/422 fail the run with the server's message, 429/5xx retry with backoff and say why."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from tests.operatorunit.fakekube import FakeKube, api_error
from videojobs_operator.manifest import resource_job_name
from videojobs_operator.metrics import Metrics
from videojobs_operator.reconcile import Reconciler
from videojobs_operator.settings import OperatorSettings

NOW = dt.datetime(2026, 11, 25, 14, 0, 0, tzinfo=dt.UTC)
KEY = ("media", "lecture")


def resource(name: str = "lecture", uid: str = "u-1", **status: Any) -> dict[str, Any]:
    return {
        "apiVersion": "videojobs.io/v1alpha1",
        "kind": "VideoProcessingJob",
        "metadata": {
            "name": name,
            "namespace": "media",
            "uid": uid,
            "generation": 1,
            "creationTimestamp": "2026-11-25T13:00:00Z",
        },
        "spec": {
            "source": {"url": "https://example.com/v.mp4"},
            "segments": [{"start": 0, "end": 5, "title": "Intro"}],
            "output": {"storage": {"pvc": {"claimName": "clips"}}},
        },
        "status": status,
    }


def reconciler(kube: FakeKube, *bodies: dict[str, Any], **settings: Any) -> Reconciler:
    rec = Reconciler(
        OperatorSettings(manage_worker_rbac=False, **settings),
        kube,  # type: ignore[arg-type]
        Metrics(),
        clock=lambda: NOW,
    )
    vpjs = {("media", b["metadata"]["name"]): [b] for b in bodies}
    rec.bind(vpjs, {}, {})
    return rec


def last_status(kube: FakeKube, name: str = "lecture") -> dict[str, Any]:
    merged: dict[str, Any] = {}
    for patched, patch in kube.status_patches:
        if patched == name:
            merged.update(patch)
    return merged


@pytest.mark.parametrize("code", [403, 422])
async def test_refused_create_fails_with_the_servers_message_and_frees_the_slot(
    code: int,
) -> None:
    kube = FakeKube()
    message = 'admission webhook "policy.example.com" denied the request: jobs are not allowed'
    kube.fail["create_job"].append(api_error(code, message))
    rec = reconciler(kube, resource(), max_running_jobs=1)
    await rec.reconcile(KEY)

    status = last_status(kube)
    assert status["phase"] == "Failed"
    assert status["error"]["reason"] == "JobRejected"
    assert message in status["error"]["message"] and str(code) in status["message"]
    assert status.get("jobName") is None
    assert ("Warning", "JobRejected") in [(t, r) for t, r, _ in kube.events]
    assert rec._running() == {}, "the admitted slot is released"
    await rec.close()


@pytest.mark.parametrize(
    ("error", "shown"),
    [
        (api_error(500, "etcdserver: request timed out"), "500: etcdserver: request timed out"),
        (api_error(429, "too many requests", retry_after="7"), "429: too many requests"),
        (ConnectionResetError("connection reset by peer"), "ConnectionResetError"),
        (
            api_error(
                403, 'jobs "j" is forbidden: exceeded quota: q, requested: count/jobs.batch=1'
            ),
            "403: jobs",
        ),
    ],
    ids=["500", "429", "connection", "quota"],
)
async def test_transient_create_failure_retries_with_backoff_and_says_why(
    error: BaseException, shown: str
) -> None:
    kube = FakeKube()
    kube.fail["create_job"].append(error)
    body = resource()
    other = resource("second", uid="u-2")
    rec = reconciler(kube, body, other, max_running_jobs=1)
    await rec.reconcile(KEY)

    status = last_status(kube)
    assert status.get("phase") in (None, "Queued")
    assert status.get("jobName") is None, "no Job of this run exists yet"
    progressing = {c["type"]: c for c in status["conditions"]}["Progressing"]
    assert progressing["reason"] == ("QuotaExceeded" if "403" in shown else "JobCreateFailed")
    assert shown in progressing["message"] and "retrying in" in progressing["message"]
    if "429" in shown:
        assert "retrying in 7s" in progressing["message"], "Retry-After is honoured"
    assert rec._running() == {}, "the slot is free while the create backs off"
    # the free slot goes to the next resource meanwhile
    await rec.reconcile(("media", "second"))
    assert ("create_job", resource_job_name(other)) in kube.calls

    # a pass during the backoff does not hammer the API server
    creates = sum(1 for c in kube.calls if c[0] == "create_job")
    await rec.reconcile(KEY)
    assert sum(1 for c in kube.calls if c[0] == "create_job") == creates
    await rec.close()


async def test_create_succeeds_after_the_backoff() -> None:
    kube = FakeKube()
    kube.fail["create_job"].append(api_error(503, "service unavailable"))
    rec = reconciler(kube, resource())
    await rec.reconcile(KEY)
    rec._states[KEY].create_retry_at = 0.0  # the backoff has passed
    await rec.reconcile(KEY)
    assert ("media", resource_job_name(resource())) in kube.jobs
    status = last_status(kube)
    assert status["phase"] == "Pending" and status["jobName"] == resource_job_name(resource())
    assert rec._running() == {"media": 1}
    await rec.close()


async def test_a_startup_timeout_reports_the_jobs_last_warning_event() -> None:
    """FailedCreate lives only in the Job controller's Events: the timeout message quotes it."""
    from videojobs.models import VideoProcessingJobSpec
    from videojobs_operator.manifest import build_job

    body = resource()
    name = resource_job_name(body)
    body["status"] = {"phase": "Pending", "jobName": name, "observedGeneration": 1}
    job = build_job(body, VideoProcessingJobSpec.model_validate(body["spec"]), OperatorSettings())
    job["metadata"].update({"uid": "job-uid", "creationTimestamp": "2026-11-25T13:40:00Z"})
    kube = FakeKube()
    kube.warnings[("Job", name)] = (
        'FailedCreate: pods "lecture-x" is forbidden: exceeded quota: compute, requested: cpu=1'
    )
    rec = Reconciler(
        OperatorSettings(manage_worker_rbac=False),
        kube,  # type: ignore[arg-type]
        Metrics(),
        clock=lambda: NOW,
    )
    rec.bind({KEY: [body]}, {KEY: [job]}, {})
    await rec.reconcile(KEY)
    status = last_status(kube)
    assert status["phase"] == "Failed" and status["error"]["reason"] == "PodNotCreated"
    assert "exceeded quota" in status["message"] and "exceeded quota" in status["error"]["message"]
    assert ("delete_job", name) in kube.calls
    assert any("exceeded quota" in m for t, r, m in kube.events if r == "PodNotCreated")
    await rec.close()
