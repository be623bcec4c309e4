"""The worker's rights per resource (issue 24 item 12): RBAC gives the namespace's worker
ServiceAccount ``patch`` on every VideoProcessingJob's status there (it cannot name resources
that do not exist yet); the chart's ValidatingAdmissionPolicy narrows it to the worker's own
resource. Its CEL is evaluated here with cel-python on the requests the API server would
review."""

from __future__ import annotations

from typing import Any

import celpy
import pytest

from tests.chart.chartkit import find, objects, validate_k8s

SA = "system:serviceaccount:team-a:videojobs-worker"
POD = "authentication.kubernetes.io/pod-name"


def policy() -> dict[str, Any]:
    objs = objects({"workerRbac": {"ownResourcePolicy": True}})
    (vap,) = find(objs, "ValidatingAdmissionPolicy")
    (binding,) = find(objs, "ValidatingAdmissionPolicyBinding")
    assert binding["spec"]["policyName"] == vap["metadata"]["name"]
    assert binding["spec"]["validationActions"] == ["Deny"]
    for obj in (vap, binding):
        validate_k8s(obj, ("1.37",))  # admissionregistration.k8s.io/v1 since 1.30
    return vap


def _eval(expression: str, activation: dict[str, Any]) -> bool:
    env = celpy.Environment()
    program = env.program(env.compile(expression))
    result = program.evaluate({k: celpy.json_to_cel(v) for k, v in activation.items()})
    return bool(result)


def allowed(user: str, pods: list[str] | None, job_name: str | None) -> bool:
    """Whether the policy lets ``user`` (bound to ``pods``) update a status naming
    ``job_name``."""
    vap = policy()
    extra = {POD: pods} if pods is not None else {}
    status = {"jobName": job_name} if job_name else {"phase": "Pending"}
    activation = {
        "request": {"namespace": "team-a", "userInfo": {"username": user, "extra": extra}},
        "oldObject": {"metadata": {"name": "lesson"}, "status": status},
    }
    if not all(_eval(c["expression"], activation) for c in vap["spec"]["matchConditions"]):
        return True  # not the worker: the policy does not apply
    return all(_eval(v["expression"], activation) for v in vap["spec"]["validations"])


def test_auto_by_default_and_off_when_asked() -> None:
    # ``helm template`` (and this renderer) assume a current Kubernetes (1.36); on a 1.29
    # server ``auto`` leaves it out (tests/realk8s/test_worker_policy.py: the real server)
    assert len(find(objects(), "ValidatingAdmissionPolicy")) == 1
    assert not find(
        objects({"workerRbac": {"ownResourcePolicy": False}}), "ValidatingAdmissionPolicy"
    )
    assert (
        len(
            find(
                objects({"workerRbac": {"ownResourcePolicy": "auto"}}), "ValidatingAdmissionPolicy"
            )
        )
        == 1
    )


@pytest.mark.parametrize(
    ("pods", "job_name", "expected"),
    [
        (["lesson-3f2a9c01-x7k2p"], "lesson-3f2a9c01", True),  # its own Job's pod
        (["lesson-3f2a9c01-2-x7k2p"], "lesson-3f2a9c01", True),  # an indexed shard's pod
        (["lesson-3f2a9c01-merge-x7k2p"], "lesson-3f2a9c01", True),  # its merge Job's pod
        (["lesson-3f2a9c01-mergex-x7k2p"], "lesson-3f2a9c01", False),
        (["lesson-3f2a9c01-merge-x7k2p"], "lesson-9a8b7c6d", False),  # another run's merge
        (["other-9a8b7c6d-x7k2p"], "lesson-3f2a9c01", False),  # another job's worker
        # another tenant named its job so that its pods start with this job's Job name
        (["lesson-3f2a9c01-zz-11112222-x7k2p"], "lesson-3f2a9c01", False),
        (["lesson-3f2a9c01-x7k2p"], None, False),  # no run recorded yet
        (None, "lesson-3f2a9c01", False),  # a token bound to no pod
    ],
)
def test_a_worker_patches_its_own_resource_only(
    pods: list[str] | None, job_name: str | None, expected: bool
) -> None:
    assert allowed(SA, pods, job_name) is expected


def test_other_identities_are_not_judged() -> None:
    assert allowed("system:serviceaccount:videojobs-system:videojobs", None, None)
    assert allowed("system:serviceaccount:team-a:someone-else", None, None)
