"""The chart installed with the real ``helm`` into the real cluster, in a namespace where the real
Pod Security admission enforces ``restricted``: the operator runs as the chart's Deployment pod
(through the node agent), with the chart's ServiceAccount token and RBAC, and runs a job to
``Succeeded``."""

from __future__ import annotations

import json
import os
import subprocess
import uuid

import pytest

from tests.httpserver import MediaServer
from tests.realk8s.cluster import free_port
from tests.realk8s.conftest import REPO, WORKER_IMAGE, RealCluster
from tests.realk8s.test_lifecycle import served  # noqa: F401  (fixture)
from tests.realk8s.test_server_rules import GROUP, PLURAL, VERSION, vpj


def helm(real: RealCluster, *args: str) -> subprocess.CompletedProcess[str]:
    binary = real.plane.bin / "helm"
    if not os.access(binary, os.X_OK):
        pytest.fail(f"no helm next to the control plane ({binary}): run .ci/k8s/build.sh")
    home = real.plane.folder / "helm"
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(home),
        "HELM_CACHE_HOME": str(home / "cache"),
        "HELM_CONFIG_HOME": str(home / "config"),
        "HELM_DATA_HOME": str(home / "data"),
        "KUBECONFIG": str(real.plane.admin_kubeconfig),
    }
    proc = subprocess.run(
        [str(binary), *args], capture_output=True, text=True, env=env, timeout=180, check=False
    )
    assert proc.returncode == 0, f"helm {' '.join(args)}:\n{proc.stdout}\n{proc.stderr}"
    return proc


def test_helm_install_in_a_restricted_namespace_runs_a_job(
    real_cluster: RealCluster,
    ns: str,
    served: MediaServer,  # noqa: F811
) -> None:
    k8s = real_cluster.k8s
    release_ns = f"vj-chart-{uuid.uuid4().hex[:5]}"
    k8s.core.create_namespace(
        {
            "metadata": {
                "name": release_ns,
                "labels": {
                    "pod-security.kubernetes.io/enforce": "restricted",
                    "pod-security.kubernetes.io/enforce-version": "latest",
                },
            }
        }
    )
    folder = real_cluster.claim(ns, "clips")
    helm(
        real_cluster,
        "install",
        "vj",
        str(REPO / "charts" / "videojobs"),
        "--namespace",
        release_ns,
        "--wait",
        "--timeout",
        "120s",
        # the session installed the CRD already (the same file)
        "--set",
        "crds.install=false",
        # this test brings its own claim ("clips"); test_examples.py installs the chart's
        "--set",
        "clipsPvc.create=false",
        "--set",
        "image.repository=videojobs-operator",
        "--set",
        "image.tag=realk8s",
        "--set",
        f"operator.config.workerImage={WORKER_IMAGE}",
        "--set",
        f"operator.config.namespaces={{{ns}}}",
        "--set",
        "operator.config.allowedNetworks={127.0.0.0/8}",
        "--set",
        "operator.config.workerCpu=100m",
        "--set",
        "operator.config.workerMemory=512Mi",
        # the agent's pods share this machine's network: ports of their own
        "--set",
        f"operator.healthPort={free_port()}",
        "--set",
        f"operator.config.metricsPort={free_port()}",
    )
    try:
        body = {
            "source": {"url": served.url("sample.mp4")},
            "segments": [
                {"knowledgeId": "a", "title": "A", "start": "0", "end": "5"},
                {"knowledgeId": "b", "title": "B", "start": "5", "end": "10"},
            ],
            "output": {
                "formats": ["mp4"],
                "precision": "accurate",
                "storage": {"pvc": {"claimName": "clips", "path": "chart"}},
            },
        }
        k8s.custom.create_namespaced_custom_object(
            GROUP, VERSION, ns, PLURAL, vpj(ns, "via-chart", body)
        )

        def finished() -> dict | None:
            status = k8s.vpj(ns, "via-chart").get("status") or {}
            return status if status.get("phase") in ("Succeeded", "Failed") else None

        status = k8s.wait("the run to finish", finished, 180, interval=0.3)
        pods = k8s.core.list_namespaced_pod(release_ns).items
        operator_log = "\n".join(
            real_cluster.pod_log(release_ns, p.metadata.name, "operator") for p in pods
        )
        assert status["phase"] == "Succeeded", (
            json.dumps(status, indent=1)[:2000] + "\n" + operator_log[-4000:]
        )
        assert len(list((folder / "chart").glob("*.mp4"))) == 2
        assert (folder / "chart" / "manifest.json").exists()
        # the operator ran as the chart's pod, under the chart's ServiceAccount
        assert [p.spec.service_account_name for p in pods] == ["vj-videojobs"]
    finally:
        helm(real_cluster, "uninstall", "vj", "--namespace", release_ns, "--wait")
        k8s.core.delete_namespace(release_ns)
