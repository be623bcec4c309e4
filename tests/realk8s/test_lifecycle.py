"""A VideoProcessingJob from creation to Succeeded on the real control plane: the operator as
its own process with its ServiceAccount's token (RBAC from ``rbac.py``), the real Job
controller and scheduler, the worker run by the node agent with the pod's own projected token,
clips on the claim's folder."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.httpserver import MediaServer
from tests.realk8s.conftest import OperatorProcess, RealCluster
from tests.realk8s.test_server_rules import GROUP, PLURAL, VERSION, vpj

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def served(tmp_path: Path) -> Iterator[MediaServer]:
    root = tmp_path / "media"
    root.mkdir()
    shutil.copy(REPO / "examples" / "media" / "sample.mp4", root / "sample.mp4")
    with MediaServer(root) as server:
        yield server


def test_a_job_runs_to_succeeded_with_clips_on_the_claim(
    real_cluster: RealCluster, ns: str, operator: OperatorProcess, served: MediaServer
) -> None:
    k8s = real_cluster.k8s
    folder = real_cluster.claim(ns, "clips")
    operator.start(VIDEOJOBS_PENDING_TIMEOUT_SECONDS="60")  # a pod that never starts: fail soon
    body = {
        "source": {"url": served.url("sample.mp4")},
        "segments": [
            {"knowledgeId": "part-1", "title": "Part one", "start": "0", "end": "4"},
            {"knowledgeId": "part-2", "title": "Part two", "start": "4", "end": "9.5"},
            {"knowledgeId": "part-3", "title": "Part three", "start": "9.5", "end": "14"},
        ],
        "output": {
            "formats": ["mp4"],
            "precision": "accurate",
            "storage": {"pvc": {"claimName": "clips", "path": "local-sample"}},
        },
    }
    k8s.custom.create_namespaced_custom_object(GROUP, VERSION, ns, PLURAL, vpj(ns, "sample", body))

    def finished() -> dict | None:
        status = k8s.vpj(ns, "sample").get("status") or {}
        return status if status.get("phase") in ("Succeeded", "Failed") else None

    status = k8s.wait("the run to finish", finished, 180, interval=0.3)
    assert status["phase"] == "Succeeded", json.dumps(status, indent=1)[:3000]
    assert status["segmentsSummary"] == "3/3"
    assert [s["knowledgeId"] for s in status["segments"]] == ["part-1", "part-2", "part-3"]
    out = folder / "local-sample"
    manifest = json.loads((out / "manifest.json").read_text())
    clips = sorted(p.name for p in out.glob("*.mp4"))
    assert len(clips) == 3, clips
    assert status["manifestUri"].endswith("manifest.json")
    assert len(manifest["segments"]) == 3
    # the worker ran as the securityContext's user, on the real Job controller's pod
    assert all(p.stat().st_uid == 10001 for p in out.glob("*.mp4"))
    job = k8s.batch.read_namespaced_job(status["jobName"], ns)
    assert job.status.succeeded == 1
    # The operator's own requests (the API server's audit log): its Job watch (a server-side
    # label selector) showed it the Job, so it never had to look the Job up by name.
    asked = [
        e
        for e in real_cluster.plane.audit("system:serviceaccount:")
        if (e.get("objectRef") or {}).get("namespace") == ns
    ]
    assert any(e["verb"] == "watch" and e["objectRef"]["resource"] == "jobs" for e in asked)
    lookups = [
        e["requestURI"]
        for e in asked
        if e["verb"] == "get" and e["objectRef"]["resource"] == "jobs"
    ]
    assert not lookups, f"the operator's Job watch did not show it its Job: {lookups}"
    # and the worker patched the status as its own ServiceAccount, nothing else
    worker = {
        (e["verb"], e["objectRef"]["resource"], e["objectRef"].get("subresource"))
        for e in asked
        if e["user"]["username"] == f"system:serviceaccount:{ns}:videojobs-worker"
    }
    assert worker == {("patch", "videoprocessingjobs", "status")}, worker


def test_cancel_stops_the_worker_with_sigterm_and_removes_the_job(
    real_cluster: RealCluster, ns: str, operator: OperatorProcess, served: MediaServer
) -> None:
    """spec.cancel: the operator deletes the Job, the garbage collector its pod, and the node
    agent stops the worker (SIGTERM, SIGKILL after the grace period) and removes the pod."""
    k8s = real_cluster.k8s
    real_cluster.claim(ns, "clips")
    operator.start()
    body = {
        # 315 kB at 5 kB/s: a minute of downloading, cancelled long before
        "source": {"url": served.url("slow/5000/sample.mp4")},
        "segments": [{"knowledgeId": "all", "title": "All", "start": "0", "end": "14"}],
        "output": {"formats": ["mp4"], "storage": {"pvc": {"claimName": "clips"}}},
    }
    k8s.custom.create_namespaced_custom_object(GROUP, VERSION, ns, PLURAL, vpj(ns, "stop", body))

    def running_pod() -> tuple[str, str] | None:
        pods = k8s.core.list_namespaced_pod(ns).items
        running = [p for p in pods if p.status.phase == "Running"]
        return (running[0].metadata.name, running[0].metadata.uid) if running else None

    pod_name, pod_uid = k8s.wait("the worker pod running", running_pod, 120)
    k8s.wait(
        "the worker downloading",
        lambda: (
            ((k8s.vpj(ns, "stop").get("status") or {}).get("progress") or {}).get("stage")
            == "Downloading"
        ),
        60,
    )
    job = k8s.vpj(ns, "stop")["status"]["jobName"]
    k8s.custom.patch_namespaced_custom_object(
        GROUP, VERSION, ns, PLURAL, "stop", {"spec": {"cancel": True}}
    )
    status = k8s.wait(
        "Cancelled",
        lambda: (s := k8s.vpj(ns, "stop").get("status") or {}).get("phase") == "Cancelled" and s,
        60,
    )
    assert "cancel" in status["message"]
    k8s.wait("the Job gone", lambda: not k8s.batch.list_namespaced_job(ns).items, 60)
    # well before the download could have ended, and before the 30 s grace period
    k8s.wait("the pod gone", lambda: not k8s.core.list_namespaced_pod(ns).items, 25)
    said = real_cluster.pod_log(ns, pod_name) + real_cluster.pod_log(
        ns, pod_name, "worker", "termination-log"
    )
    assert "SIGTERM" in said, said
    # the worker's processes are gone with it (the agent names each pod's folder by its uid)
    left = []
    for proc in Path("/proc").iterdir():
        try:
            cmdline = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if pod_uid in cmdline:
            left.append(cmdline)
    assert not left, f"processes of the deleted pod remain: {left}"
    assert job


def test_an_operator_killed_mid_run_is_replaced_without_a_second_job(
    real_cluster: RealCluster, ns: str, operator: OperatorProcess, served: MediaServer
) -> None:
    """SIGKILL to the operator while its run downloads; a new operator process adopts the
    running Job (the audit log shows one Job created, ever) and the run reaches Succeeded."""
    k8s = real_cluster.k8s
    real_cluster.claim(ns, "clips")
    operator.start()
    body = {
        "source": {"url": served.url("slow/40000/sample.mp4")},
        "segments": [{"knowledgeId": "all", "title": "All", "start": "0", "end": "6"}],
        "output": {"formats": ["mp4"], "storage": {"pvc": {"claimName": "clips"}}},
    }
    k8s.custom.create_namespaced_custom_object(GROUP, VERSION, ns, PLURAL, vpj(ns, "kill", body))
    k8s.wait(
        "the worker downloading",
        lambda: (
            ((k8s.vpj(ns, "kill").get("status") or {}).get("progress") or {}).get("stage")
            == "Downloading"
        ),
        120,
    )
    assert operator.proc is not None
    operator.proc.kill()
    operator.proc.wait()
    operator.start()

    def finished() -> dict | None:
        status = k8s.vpj(ns, "kill").get("status") or {}
        return status if status.get("phase") in ("Succeeded", "Failed") else None

    status = k8s.wait("the run to finish", finished, 180, interval=0.3)
    assert status["phase"] == "Succeeded", json.dumps(status, indent=1)[:2000]
    created = [
        e
        for e in real_cluster.plane.audit("system:serviceaccount:videojobs-system:")
        if e["verb"] == "create"
        and e["objectRef"]["resource"] == "jobs"
        and e["objectRef"].get("namespace") == ns
        and (e.get("responseStatus") or {}).get("code") == 201
    ]
    assert len(created) == 1, [e["requestURI"] for e in created]
    assert [j.metadata.name for j in k8s.batch.list_namespaced_job(ns).items] == [status["jobName"]]
