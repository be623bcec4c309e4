"""Reading what the kubelet and the Job controller really report (issue 10): evictions for
space, pods that never start, and timeouts counted from the Job's creation."""

from __future__ import annotations

import datetime as dt
from typing import Any

from tests.operatorunit.test_decide_pure import NOW, ctx, job, resource, running_status
from videojobs_operator.decide import decide

SCRATCH_EVICTION = 'Usage of EmptyDir volume "scratch" exceeds the limit "20Gi". '


def evicted_pod(*, condition: bool = False, created: str = "2026-11-25T13:59:00Z") -> dict:
    status: dict[str, Any] = {
        "phase": "Failed",
        "reason": "Evicted",
        "message": SCRATCH_EVICTION,
        "containerStatuses": [
            {
                "name": "worker",
                "state": {"terminated": {"exitCode": 137, "reason": "ContainerStatusUnknown"}},
            }
        ],
    }
    if condition:
        status["conditions"] = [
            {
                "type": "DisruptionTarget",
                "status": "True",
                "reason": "TerminationByKubelet",
                "message": SCRATCH_EVICTION,
            }
        ]
    return {"metadata": {"name": "p-1", "creationTimestamp": created}, "status": status}


def test_eviction_for_scratch_space_is_no_space_not_out_of_memory() -> None:
    r = resource(status=running_status(resource()))
    failed = job([{"type": "Failed", "status": "True", "reason": "BackoffLimitExceeded"}], failed=1)
    d = decide(r, failed, [evicted_pod()], ctx())
    assert d.status["phase"] == "Failed"
    error = d.status["error"]
    assert error["category"] == "NoSpace" and error["reason"] == "NoSpace"
    assert "scratchSize" in error["message"] and "exceeds the limit" in error["message"]
    assert error["exitCode"] == 137 and error["permanent"] is True
    assert "memory" not in error["message"]


def test_ignored_eviction_fails_the_run_and_stops_the_job() -> None:
    """podFailurePolicy ignores DisruptionTarget pods, so the Job controller would start the same
    run again (and fill the same scratch volume): the operator fails it and deletes the Job."""
    r = resource(status=running_status(resource()))
    active = job([], active=0)
    d = decide(r, active, [evicted_pod(condition=True)], ctx())
    assert d.status["phase"] == "Failed" and d.status["error"]["reason"] == "NoSpace"
    assert d.delete_job


def test_an_eviction_followed_by_a_running_retry_keeps_running() -> None:
    r = resource(status=running_status(resource()))
    retry = {
        "metadata": {"name": "p-2", "creationTimestamp": "2026-11-25T13:59:30Z"},
        "status": {"phase": "Running", "containerStatuses": [{"name": "worker", "state": {}}]},
    }
    d = decide(r, job([], active=1), [evicted_pod(), retry], ctx(now=NOW + dt.timedelta(0)))
    assert d.status.get("phase", "Running") == "Running"
    assert not d.delete_job


def created_job(minutes_ago: int, **status: Any) -> dict[str, Any]:
    j = job([], **status)
    j["metadata"]["creationTimestamp"] = (NOW - dt.timedelta(minutes=minutes_ago)).strftime(
        "%Y-%m-%dT%H:%M:%SZ"
    )
    return j


def pending_status() -> dict[str, Any]:
    return {**running_status(resource()), "phase": "Pending"}


def test_a_job_without_pods_times_out_from_its_creation_with_the_reason() -> None:
    """FailedCreate (quota, admission webhook, missing ServiceAccount): no pod ever appears."""
    r = resource(status=pending_status())
    early = decide(r, created_job(2), [], ctx())
    assert early.status.get("phase", "Pending") == "Pending"
    assert early.requeue_after is not None and early.requeue_after <= 8 * 60 + 1
    late = decide(r, created_job(11), [], ctx())
    assert late.status["phase"] == "Failed" and late.delete_job
    assert late.status["error"]["reason"] == "PodNotCreated"
    assert "FailedCreate" in late.status["error"]["message"]
    assert "for more than 600s" in late.status["message"]


def test_a_pod_stuck_in_container_creating_times_out_with_the_reason() -> None:
    """A missing Secret volume keeps the pod in ContainerCreating forever."""
    r = resource(status=pending_status())
    pod = {
        "metadata": {"name": "p-1", "creationTimestamp": "2026-11-25T13:49:00Z"},
        "status": {
            "phase": "Pending",
            "containerStatuses": [
                {"name": "worker", "state": {"waiting": {"reason": "ContainerCreating"}}}
            ],
        },
    }
    shown = decide(r, created_job(3), [pod], ctx())
    assert "ContainerCreating" in shown.status["message"]
    late = decide(r, created_job(11), [pod], ctx())
    assert late.status["phase"] == "Failed" and late.delete_job
    assert late.status["error"]["reason"] == "ContainerCreating"
    assert "Secret" in late.status["error"]["message"]
