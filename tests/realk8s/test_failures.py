"""Worker failures on cue, on the real control plane (moved from ``tests/mockapi``, where a fake
Job controller played them): the pods run ``scripted.py`` (the image
``videojobs-scripted:realk8s``), which asks the test what each attempt does; the Job
controller's retries, ``backoffLimit``, podFailurePolicy, the garbage collector and the pods'
status are the real cluster's, the operator is its own process with its ServiceAccount."""

from __future__ import annotations

import json
from typing import Any

from tests.realk8s.conftest import OperatorProcess, RealCluster
from tests.realk8s.scripted import SCRIPTED_IMAGE, Attempt, Cues, Script
from tests.realk8s.test_server_rules import GROUP, PLURAL, VERSION, vpj

FINAL = ("Succeeded", "Failed", "Cancelled")


def body(cues: Cues, name: str, **more: Any) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "source": {"url": cues.url(name)},
        "segments": [{"knowledgeId": "a", "title": "First", "start": "0", "end": "4"}],
        "output": {"formats": ["mp4"], "storage": {"pvc": {"claimName": "clips"}}},
    }
    spec.update(more)
    return spec


def start(real: RealCluster, ns: str, operator: OperatorProcess, **env: str) -> None:
    real.claim(ns, "clips")
    operator.start(VIDEOJOBS_WORKER_IMAGE=SCRIPTED_IMAGE, **env)


def create(real: RealCluster, ns: str, name: str, spec: dict[str, Any]) -> None:
    real.k8s.custom.create_namespaced_custom_object(GROUP, VERSION, ns, PLURAL, vpj(ns, name, spec))


def status_of(real: RealCluster, ns: str, name: str) -> dict[str, Any]:
    return dict(real.k8s.vpj(ns, name).get("status") or {})


def wait_phase(
    real: RealCluster, ns: str, name: str, phases: tuple[str, ...], timeout: float = 120
) -> dict[str, Any]:
    return dict(
        real.k8s.wait(
            f"{name} in {phases}",
            lambda: (s := status_of(real, ns, name)).get("phase") in phases and s,
            timeout,
            interval=0.5,
        )
    )


def conditions(status: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {c["type"]: c for c in status.get("conditions") or []}


def reasons(real: RealCluster, ns: str, name: str) -> list[str]:
    events = real.k8s.core.list_namespaced_event(
        ns, field_selector=f"involvedObject.name={name},involvedObject.kind=VideoProcessingJob"
    ).items
    return [e.reason for e in sorted(events, key=lambda e: e.metadata.creation_timestamp)]


def jobs_created(real: RealCluster, ns: str) -> int:
    """Jobs the operator's ServiceAccount created in ``ns`` (the API server's audit log)."""
    return sum(
        1
        for e in real.plane.audit("system:serviceaccount:videojobs-system:")
        if e["verb"] == "create"
        and e["objectRef"]["resource"] == "jobs"
        and e["objectRef"].get("namespace") == ns
        and (e.get("responseStatus") or {}).get("code") == 201
    )


def job_pods(real: RealCluster, ns: str, job: str) -> list[Any]:
    return list(real.k8s.core.list_namespaced_pod(ns, label_selector=f"job-name={job}").items)


def scripted(**per_name: list[Attempt]) -> Script:
    """Each resource's attempts in order; the last one repeats."""

    def script(name: str, _index: int, attempt: int) -> Attempt:
        plan = per_name[name]
        return plan[min(attempt, len(plan)) - 1]

    return script


def test_a_transient_failure_is_retried_then_succeeds(
    real_cluster: RealCluster, ns: str, operator: OperatorProcess
) -> None:
    """Exit 20 (network) on the first pod: the real Job controller starts a second, which
    succeeds; the worker's error of attempt 1 is cleared (was test_lifecycle.py's)."""
    flaky = [Attempt(exit=20, category="Network", message="connection reset"), Attempt()]
    with Cues(scripted(flaky=flaky)).serving() as cues:
        start(real_cluster, ns, operator)
        create(real_cluster, ns, "flaky", body(cues, "flaky", backoffLimit=3))
        status = wait_phase(real_cluster, ns, "flaky", FINAL)
    assert status["phase"] == "Succeeded", json.dumps(status)[:2000]
    assert cues.attempts == {("flaky", 0): 2}
    assert len(job_pods(real_cluster, ns, status["jobName"])) == 2
    assert status["attempts"] == 2
    assert "error" not in status
    assert conditions(status)["Complete"]["status"] == "True"
    got = real_cluster.k8s.wait(
        "the Succeeded event",
        lambda: "Succeeded" in (r := reasons(real_cluster, ns, "flaky")) and r,
    )
    assert "Retrying" in got, got


def test_transient_failures_exhaust_the_backoff_limit(
    real_cluster: RealCluster, ns: str, operator: OperatorProcess
) -> None:
    """Exit 20 every time, ``backoffLimit: 1``: two pods, then the Job fails
    (``BackoffLimitExceeded``) and the run is ``Failed``, not permanent."""
    down = [Attempt(exit=20, category="Network", message="connection reset")]
    with Cues(scripted(down=down)).serving() as cues:
        start(real_cluster, ns, operator)
        create(real_cluster, ns, "down", body(cues, "down", backoffLimit=1))
        status = wait_phase(real_cluster, ns, "down", FINAL)
    assert status["phase"] == "Failed", json.dumps(status)[:2000]
    assert cues.attempts == {("down", 0): 2}
    assert status["error"]["category"] == "Network"
    assert status["error"]["permanent"] is False
    assert "gave up after 2 attempts" in status["error"]["message"]
    job = real_cluster.k8s.batch.read_namespaced_job(status["jobName"], ns)
    assert [c.reason for c in job.status.conditions if c.type == "Failed"] == [
        "BackoffLimitExceeded"
    ]


def test_the_operator_down_while_the_job_finishes(
    real_cluster: RealCluster, ns: str, operator: OperatorProcess
) -> None:
    """The operator stopped while its pod runs; the Job completes meanwhile; the next operator
    process reads the completed Job and ends the run ``Succeeded``, with one Job created."""
    with Cues(scripted(offline=[Attempt(gate="offline")])).serving() as cues:
        start(real_cluster, ns, operator)
        create(real_cluster, ns, "offline", body(cues, "offline"))
        job = wait_phase(real_cluster, ns, "offline", ("Running",))["jobName"]
        real_cluster.k8s.wait("its pod at work", lambda: cues.attempts["offline", 0], 60)
        assert operator.proc is not None
        operator.proc.kill()
        operator.proc.wait()
        cues.open("offline")
        real_cluster.k8s.wait(
            "the Job complete while the operator is down",
            lambda: any(
                c.type == "Complete" and c.status == "True"
                for c in real_cluster.k8s.batch.read_namespaced_job(job, ns).status.conditions or []
            ),
            60,
        )
        assert status_of(real_cluster, ns, "offline")["phase"] == "Running"
        operator.start(VIDEOJOBS_WORKER_IMAGE=SCRIPTED_IMAGE)
        status = wait_phase(real_cluster, ns, "offline", FINAL)
    assert status["phase"] == "Succeeded", json.dumps(status)[:2000]
    assert jobs_created(real_cluster, ns) == 1
    assert cues.attempts == {("offline", 0): 1}


def test_a_job_deleted_by_someone_else_fails_the_run_without_a_second_job(
    real_cluster: RealCluster, ns: str, operator: OperatorProcess
) -> None:
    """The run's Job deleted (foreground, as ``kubectl delete job``) while its pod runs: the
    run ends ``Failed``/``JobDeleted`` naming the Job, and no second Job is created."""
    k8s = real_cluster.k8s
    with Cues(scripted(orphan=[Attempt(hang=True)])).serving() as cues:
        start(real_cluster, ns, operator)
        create(real_cluster, ns, "orphan", body(cues, "orphan"))
        job = wait_phase(real_cluster, ns, "orphan", ("Running",))["jobName"]
        k8s.wait("its pod at work", lambda: cues.attempts["orphan", 0], 60)
        k8s.batch.delete_namespaced_job(job, ns, propagation_policy="Foreground")
        status = wait_phase(real_cluster, ns, "orphan", FINAL)
        assert status["phase"] == "Failed", json.dumps(status)[:2000]
        assert status["error"]["reason"] == "JobDeleted"
        assert job in status["error"]["message"]
        assert conditions(status)["Failed"]["reason"] == "JobDeleted"
        k8s.wait(
            "the JobDeleted event", lambda: "JobDeleted" in reasons(real_cluster, ns, "orphan")
        )
        k8s.wait("no Job left", lambda: not k8s.batch.list_namespaced_job(ns).items, 60)
    assert jobs_created(real_cluster, ns) == 1
    assert cues.attempts == {("orphan", 0): 1}


def test_a_rerun_while_running_replaces_the_job(
    real_cluster: RealCluster, ns: str, operator: OperatorProcess
) -> None:
    """``rerunToken`` changed while the first run's pod runs: its Job is deleted (the pod
    stopped by the node agent), a second Job runs to ``Succeeded``; two Jobs created in all."""
    k8s = real_cluster.k8s
    with Cues(scripted(restart=[Attempt(hang=True), Attempt()])).serving() as cues:
        start(real_cluster, ns, operator)
        create(real_cluster, ns, "restart", body(cues, "restart"))
        first = wait_phase(real_cluster, ns, "restart", ("Running",))["jobName"]
        k8s.wait("its pod at work", lambda: cues.attempts["restart", 0], 60)
        k8s.custom.patch_namespaced_custom_object(
            GROUP, VERSION, ns, PLURAL, "restart", {"spec": {"rerunToken": "now"}}
        )
        status = k8s.wait(
            "the second run done",
            lambda: (
                (s := status_of(real_cluster, ns, "restart")).get("jobName") not in (None, first)
                and s.get("phase") in FINAL
                and s
            ),
            120,
        )
        assert status["phase"] == "Succeeded", json.dumps(status)[:2000]
        k8s.wait(
            "the first Job removed",
            lambda: (
                [j.metadata.name for j in k8s.batch.list_namespaced_job(ns).items]
                == [status["jobName"]]
            ),
            60,
        )
    assert status["observedGeneration"] == 2
    assert jobs_created(real_cluster, ns) == 2
    assert cues.attempts == {("restart", 0): 2}
