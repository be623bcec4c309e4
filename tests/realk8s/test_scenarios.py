"""Scenarios moved from the emulator (``tests/mockapi``) to the real control plane: a permanent
failure of the real worker without retries, the queue's limit and order, the TTL of a finished
resource. The operator is its own process with its ServiceAccount's token; the worker is the
real one, run by the node agent."""

from __future__ import annotations

import shutil
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.httpserver import MediaServer
from tests.realk8s.conftest import OperatorProcess, RealCluster
from tests.realk8s.test_server_rules import GROUP, PLURAL, VERSION, vpj

REPO = Path(__file__).resolve().parents[2]
FINAL = ("Succeeded", "Failed", "Cancelled")


@pytest.fixture
def served(tmp_path: Path) -> Iterator[MediaServer]:
    root = tmp_path / "media"
    root.mkdir()
    shutil.copy(REPO / "examples" / "media" / "sample.mp4", root / "sample.mp4")
    with MediaServer(root) as server:
        yield server


def spec(url: str, **more: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "source": {"url": url},
        "segments": [{"knowledgeId": "a", "title": "First", "start": "0", "end": "4"}],
        "output": {
            "formats": ["mp4"],
            "precision": "copy",
            "storage": {"pvc": {"claimName": "clips"}},
        },
    }
    body.update(more)
    return body


def finished(real: RealCluster, ns: str, name: str, timeout: float = 180) -> dict[str, Any]:
    k8s = real.k8s
    return dict(
        k8s.wait(
            f"{name} finished",
            lambda: (s := k8s.vpj(ns, name).get("status") or {}).get("phase") in FINAL and s,
            timeout,
            interval=0.3,
        )
    )


def test_a_missing_video_fails_fast_without_retries(
    real_cluster: RealCluster, ns: str, operator: OperatorProcess, served: MediaServer
) -> None:
    """The real worker exits 11 (permanent) on a 404; the Job's podFailurePolicy ends it at the
    first pod although ``backoffLimit`` allows three (was tests/mockapi/test_real_worker.py)."""
    k8s = real_cluster.k8s
    real_cluster.claim(ns, "clips")
    operator.start()
    body = spec(served.url("404"), backoffLimit=3)
    k8s.custom.create_namespaced_custom_object(GROUP, VERSION, ns, PLURAL, vpj(ns, "missing", body))
    status = finished(real_cluster, ns, "missing")
    assert status["phase"] == "Failed", status
    assert status["error"]["exitCode"] == 11, status["error"]
    assert status["error"]["permanent"] is True
    assert status["error"]["category"] == "Unavailable"
    assert status["attempts"] == 1
    conditions = {c["type"]: c for c in status["conditions"]}
    assert conditions["Failed"]["status"] == "True"
    assert conditions["Complete"]["status"] == "False"
    job = k8s.batch.read_namespaced_job(status["jobName"], ns)
    assert (job.status.failed or 0) == 1, job.status
    assert [c.reason for c in job.status.conditions if c.type == "Failed"] == ["PodFailurePolicy"]

    def last_event() -> Any:
        events = k8s.core.list_namespaced_event(
            ns, field_selector="involvedObject.name=missing,involvedObject.kind=VideoProcessingJob"
        ).items
        return next((e for e in events if e.reason == status["error"]["reason"]), None)

    assert k8s.wait("the run's Warning event", last_event, 30).type == "Warning"
    pods = k8s.core.list_namespaced_pod(ns, label_selector=f"job-name={status['jobName']}").items
    assert len(pods) == 1, [p.metadata.name for p in pods]


def test_the_queue_holds_runs_beyond_the_limit_and_starts_the_oldest_first(
    real_cluster: RealCluster, ns: str, operator: OperatorProcess, served: MediaServer
) -> None:
    """``VIDEOJOBS_MAX_RUNNING_JOBS=1``: while one run goes, the others are ``Queued`` (with
    ``queuedAt``) and have no Job; they start one at a time in creation order (was
    tests/mockapi/test_lifecycle.py::test_queue_limits_and_fifo)."""
    k8s = real_cluster.k8s
    real_cluster.claim(ns, "clips")
    operator.start(VIDEOJOBS_MAX_RUNNING_JOBS="1")
    names = ["echo", "delta", "charlie"]  # created in this order
    for name in names:
        # creationTimestamp has whole seconds: within one second the queue goes by name (the
        # emulator's finer timestamps hid that), so the three are a second apart
        time.sleep(1.1)
        # the first is slow (315 kB at 10 kB/s): the others must wait for it
        url = served.url("slow/10000/sample.mp4" if name == "echo" else "sample.mp4")
        body = spec(url)
        body["output"]["storage"]["pvc"]["path"] = name
        k8s.custom.create_namespaced_custom_object(GROUP, VERSION, ns, PLURAL, vpj(ns, name, body))
    k8s.wait(
        "echo running",
        lambda: (k8s.vpj(ns, "echo").get("status") or {}).get("phase") == "Running",
        120,
    )
    for name in names[1:]:
        # (the operator may not have seen the last one yet when echo is already running)
        status = k8s.wait(
            f"{name} queued",
            lambda name=name: (
                (k8s.vpj(ns, name).get("status") or {}).get("phase") == "Queued"
                and k8s.vpj(ns, name)["status"]
            ),
            30,
        )
        assert status.get("queuedAt") and not status.get("jobName"), (name, status)
        assert (k8s.vpj(ns, "echo").get("status") or {}).get("phase") == "Running"
    statuses = {name: finished(real_cluster, ns, name, 240) for name in names}
    assert {n: s["phase"] for n, s in statuses.items()} == dict.fromkeys(names, "Succeeded")
    jobs = {j.metadata.name: j for j in k8s.batch.list_namespaced_job(ns).items}
    runs = [jobs[statuses[n]["jobName"]] for n in names]
    # one at a time: each Job was created after the previous one completed, oldest first
    for before, after in zip(runs, runs[1:], strict=False):
        assert before.status.completion_time <= after.metadata.creation_timestamp, (
            before.metadata.name,
            after.metadata.name,
        )


def test_ttl_deletes_a_finished_resource_and_keeps_one_without(
    real_cluster: RealCluster, ns: str, operator: OperatorProcess, served: MediaServer
) -> None:
    """``ttlSecondsAfterFinished``: the resource is deleted (its Job and input with it, by the
    real garbage collector) a few seconds after ``Succeeded``; one without a TTL stays (was
    tests/mockapi/test_lifecycle.py::test_ttl_deletes_finished_resource)."""
    k8s = real_cluster.k8s
    real_cluster.claim(ns, "clips")
    operator.start()
    url = served.url("sample.mp4")
    short = spec(url, ttlSecondsAfterFinished=5)
    short["output"]["storage"]["pvc"]["path"] = "shortlived"
    keep = spec(url)
    keep["output"]["storage"]["pvc"]["path"] = "keeper"
    k8s.custom.create_namespaced_custom_object(
        GROUP, VERSION, ns, PLURAL, vpj(ns, "shortlived", short)
    )
    k8s.custom.create_namespaced_custom_object(GROUP, VERSION, ns, PLURAL, vpj(ns, "keeper", keep))
    status = finished(real_cluster, ns, "shortlived")
    assert status["phase"] == "Succeeded", status
    job = status["jobName"]

    def gone() -> bool:
        listed = k8s.custom.list_namespaced_custom_object(GROUP, VERSION, ns, PLURAL)["items"]
        return "shortlived" not in {o["metadata"]["name"] for o in listed}

    k8s.wait("the TTL deletion", gone, 60)
    k8s.wait(
        "its Job garbage-collected",
        lambda: job not in {j.metadata.name for j in k8s.batch.list_namespaced_job(ns).items},
        60,
    )
    assert finished(real_cluster, ns, "keeper")["phase"] == "Succeeded"
    assert k8s.vpj(ns, "keeper")["metadata"]["name"] == "keeper"
