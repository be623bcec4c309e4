"""Issue 28 on the real control plane: a sharded run on a claim several nodes cannot mount is
refused (the operator reads the claim under its real RBAC), ``maxRunningPods`` holds back a
run whose shards do not fit next to the running ones, and a sharded run ends with its merge Job
and exactly one manifest."""

from __future__ import annotations

import json
import time
from typing import Any

from tests.httpserver import MediaServer
from tests.realk8s.conftest import OperatorProcess, RealCluster
from tests.realk8s.test_lifecycle import served  # noqa: F401  (fixture)
from tests.realk8s.test_server_rules import GROUP, PLURAL, VERSION, vpj
from videojobs.sharding import parse_index_list


def _claim(real: RealCluster, ns: str, name: str, mode: str) -> None:
    """A claim bound to a hostPath volume that has only ``mode``."""
    folder = real.pvc_root / ns / name
    folder.mkdir(parents=True, exist_ok=True)
    folder.chmod(0o777)  # writable by the worker's uid, as RealCluster.volume makes its folders
    pv = f"pv-{ns}-{name}"[:253]
    real.k8s.core.create_persistent_volume(
        {
            "metadata": {"name": pv},
            "spec": {
                "capacity": {"storage": "1Gi"},
                "accessModes": [mode],
                "persistentVolumeReclaimPolicy": "Retain",
                "storageClassName": "",
                "hostPath": {"path": str(folder), "type": "DirectoryOrCreate"},
                "claimRef": {"namespace": ns, "name": name},
            },
        }
    )
    real.k8s.core.create_namespaced_persistent_volume_claim(
        ns,
        {
            "metadata": {"name": name},
            "spec": {
                "accessModes": [mode],
                "storageClassName": "",
                "volumeName": pv,
                "resources": {"requests": {"storage": "1Gi"}},
            },
        },
    )
    real.wait_bound(ns, name)


def _spec(claim: str, parallelism: int) -> dict[str, Any]:
    return {
        "source": {"url": "http://127.0.0.1:9/lecture.mp4"},
        "parallelism": parallelism,
        "segments": [
            {"title": f"Part {i}", "start": str(i * 10), "end": str(i * 10 + 5)} for i in range(4)
        ],
        "output": {"storage": {"pvc": {"claimName": claim}}},
    }


def test_a_sharded_run_on_a_read_write_once_claim_is_refused(
    real_cluster: RealCluster, ns: str, operator: OperatorProcess
) -> None:
    k8s = real_cluster.k8s
    _claim(real_cluster, ns, "clips", "ReadWriteOnce")
    operator.start()
    k8s.custom.create_namespaced_custom_object(
        GROUP, VERSION, ns, PLURAL, vpj(ns, "sharded", _spec("clips", 2))
    )

    def failed() -> dict[str, Any] | None:
        status = k8s.vpj(ns, "sharded").get("status") or {}
        return status if status.get("phase") == "Failed" else None

    status = k8s.wait("the sharded run refused", failed, 60, interval=0.5)
    error = status["error"]
    assert error["reason"] == "InvalidSpec" and error["permanent"]
    assert "spec.parallelism" in error["message"] and "ReadWriteMany" in error["message"]
    assert "ReadWriteOnce" in error["message"]
    accepted = next(c for c in status["conditions"] if c["type"] == "Accepted")
    assert (accepted["status"], accepted["reason"]) == ("False", "InvalidSpec")
    assert k8s.batch.list_namespaced_job(ns).items == []


def test_max_running_pods_holds_back_a_run_whose_shards_do_not_fit(
    real_cluster: RealCluster,
    ns: str,
    operator: OperatorProcess,
    served: MediaServer,  # noqa: F811
) -> None:
    k8s = real_cluster.k8s
    _claim(real_cluster, ns, "clips", "ReadWriteMany")
    operator.start(VIDEOJOBS_MAX_RUNNING_PODS="5", VIDEOJOBS_PENDING_TIMEOUT_SECONDS="600")
    # the first run's 4 shards must still hold their pods when the second arrives: its source
    # trickles (1 kB/s; an unreachable one failed them at once on a quiet machine)
    first = _spec("clips", 4)
    first["source"]["url"] = served.slow_url("sample.mp4", 1000)
    first["segments"] = [
        {"title": f"Part {i}", "start": str(i * 3), "end": str(i * 3 + 2)} for i in range(4)
    ]
    k8s.custom.create_namespaced_custom_object(GROUP, VERSION, ns, PLURAL, vpj(ns, "first", first))
    k8s.wait("the first run's Job", lambda: k8s.batch.list_namespaced_job(ns).items, 60)
    time.sleep(1)
    k8s.custom.create_namespaced_custom_object(
        GROUP, VERSION, ns, PLURAL, vpj(ns, "second", _spec("clips", 2))
    )

    def queued() -> dict[str, Any] | None:
        status = k8s.vpj(ns, "second").get("status") or {}
        return status if status.get("phase") == "Queued" else None

    status = k8s.wait("the second run queued", queued, 60, interval=0.5)
    assert "5 worker pods" in status["message"], status["message"]
    time.sleep(5)  # it stays queued while the first run's 4 pods are asked for
    jobs = k8s.batch.list_namespaced_job(ns).items
    assert [j.metadata.annotations["videojobs.io/shards"] for j in jobs] == ["4"], k8s.vpj(
        ns, "first"
    ).get("status")
    assert (k8s.vpj(ns, "second").get("status") or {}).get("phase") == "Queued"
    # the first run ends (cancelled): its pods are released and the second starts
    k8s.custom.patch_namespaced_custom_object(
        GROUP, VERSION, ns, PLURAL, "first", {"spec": {"cancel": True}}
    )
    k8s.wait(
        "the second run's Job",
        lambda: any(
            j.metadata.annotations["videojobs.io/shards"] == "2"
            for j in k8s.batch.list_namespaced_job(ns).items
        ),
        60,
    )


def test_a_sharded_run_ends_succeeded_with_its_merge_job_and_one_manifest(
    real_cluster: RealCluster,
    ns: str,
    operator: OperatorProcess,
    served: MediaServer,  # noqa: F811
) -> None:
    """The shards (an Indexed Job) publish only their parts; the operator then creates the
    run's merge Job, and the run is Succeeded only when it published the manifest."""
    k8s = real_cluster.k8s
    _claim(real_cluster, ns, "clips", "ReadWriteMany")
    operator.start(VIDEOJOBS_PENDING_TIMEOUT_SECONDS="120")
    body = _spec("clips", 2)
    body["source"]["url"] = served.url("sample.mp4")
    body["segments"] = [
        {"title": f"Part {i}", "start": str(i * 3), "end": str(i * 3 + 2)} for i in range(4)
    ]
    body["output"].update({"formats": ["mp4"], "precision": "accurate", "thumbnails": False})
    body["output"]["storage"]["pvc"]["path"] = "sharded"
    k8s.custom.create_namespaced_custom_object(GROUP, VERSION, ns, PLURAL, vpj(ns, "split", body))

    def finished() -> dict[str, Any] | None:
        status = k8s.vpj(ns, "split").get("status") or {}
        return status if status.get("phase") in ("Succeeded", "Failed") else None

    status = k8s.wait("the sharded run to finish", finished, 300, interval=1)
    assert status["phase"] == "Succeeded", json.dumps(status, indent=1)[:3000]
    jobs = {j.metadata.name: j for j in k8s.batch.list_namespaced_job(ns).items}
    merge = f"{status['jobName']}-merge"
    assert set(jobs) == {status["jobName"], merge}
    assert jobs[merge].status.succeeded == 1
    assert jobs[merge].spec.template.spec.containers[0].args[0] == "merge"
    assert parse_index_list(jobs[status["jobName"]].status.completed_indexes) == {0, 1}
    out = real_cluster.pvc_root / ns / "clips" / "sharded"
    manifests = list((real_cluster.pvc_root / ns / "clips").rglob("manifest.json"))
    assert manifests == [out / "manifest.json"]  # exactly one
    document = json.loads(manifests[0].read_text())
    assert [s["index"] for s in document["segments"]] == [1, 2, 3, 4]
    assert len(document["shards"]) == 2
    assert status["manifestUri"].endswith("sharded/manifest.json")
    assert status["segmentsSummary"] == "4/4"
    # Succeeded no earlier than the merge Job's completion
    assert status["completionTime"] >= jobs[status["jobName"]].status.completion_time.strftime(
        "%Y-%m-%dT%H:%M:%SZ"
    )
