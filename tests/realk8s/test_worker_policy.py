"""The worker's rights per resource on the real API server (issue 24): the chart's
ValidatingAdmissionPolicy, evaluated by the real admission chain on a real pod-bound
ServiceAccount token, lets a worker patch the status of its own run only.

RBAC gives the namespace's worker ServiceAccount ``patch`` on every VideoProcessingJob's status
there; the policy narrows it to the resource whose ``status.jobName`` names the Job of the pod
the token is bound to (``authentication.kubernetes.io/pod-name``, set by the real TokenRequest
API). tests/chart/test_worker_policy.py evaluates the same CEL with cel-python; this test is the
server's own verdict."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from kubernetes import client, config
from kubernetes.client.exceptions import ApiException

from tests.chart.chartkit import find, objects
from tests.realk8s.conftest import K8s, RealCluster
from tests.realk8s.test_server_rules import GROUP, PLURAL, VERSION, spec, vpj
from videojobs.models import ResourceRef
from videojobs_operator.rbac import WORKER_RULES
from videojobs_worker.progress import ClusterReporter

WORKER_SA = "videojobs-worker"  # operator.config.workerServiceAccount's default


@pytest.fixture
def policy(real_cluster: RealCluster) -> Iterator[str]:
    """The chart's policy and binding (as ``ownResourcePolicy: auto`` renders them on 1.30+),
    created in the real cluster and removed after the test (they are cluster-scoped)."""
    adm = client.AdmissionregistrationV1Api(real_cluster.k8s.api)
    rendered = objects({"workerRbac": {"ownResourcePolicy": "auto"}})
    (vap,) = find(rendered, "ValidatingAdmissionPolicy")
    (binding,) = find(rendered, "ValidatingAdmissionPolicyBinding")
    name = f"{vap['metadata']['name']}-{uuid.uuid4().hex[:5]}"
    vap["metadata"]["name"] = binding["metadata"]["name"] = name
    binding["spec"]["policyName"] = name
    adm.create_validating_admission_policy(vap)
    adm.create_validating_admission_policy_binding(binding)
    try:
        yield name
    finally:
        adm.delete_validating_admission_policy_binding(name)
        adm.delete_validating_admission_policy(name)


def _worker_rbac(k8s: K8s, ns: str) -> None:
    k8s.core.create_namespaced_service_account(ns, {"metadata": {"name": WORKER_SA}})
    k8s.rbac.create_namespaced_role(ns, {"metadata": {"name": WORKER_SA}, "rules": WORKER_RULES})
    k8s.rbac.create_namespaced_role_binding(
        ns,
        {
            "metadata": {"name": WORKER_SA},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": WORKER_SA},
            "subjects": [{"kind": "ServiceAccount", "name": WORKER_SA, "namespace": ns}],
        },
    )


def _run(k8s: K8s, ns: str, name: str, job_name: str) -> str:
    """A resource whose status names ``job_name`` (as the operator writes it); its uid."""
    made = k8s.custom.create_namespaced_custom_object(
        GROUP, VERSION, ns, PLURAL, vpj(ns, name, spec())
    )
    k8s.custom.patch_namespaced_custom_object_status(
        GROUP, VERSION, ns, PLURAL, name, {"status": {"phase": "Running", "jobName": job_name}}
    )
    return str(made["metadata"]["uid"])


def _pod(k8s: K8s, ns: str, name: str) -> dict[str, Any]:
    """A worker pod that never runs (bound to no node of ours): only its token is wanted."""
    body = {
        "metadata": {"name": name},
        "spec": {
            "serviceAccountName": WORKER_SA,
            "nodeName": "no-such-node",
            "securityContext": {"runAsNonRoot": True, "runAsUser": 65532},
            "containers": [
                {
                    "name": "worker",
                    "image": "videojobs-worker:never-pulled",
                    "securityContext": {
                        "allowPrivilegeEscalation": False,
                        "capabilities": {"drop": ["ALL"]},
                        "seccompProfile": {"type": "RuntimeDefault"},
                    },
                }
            ],
        },
    }
    return k8s.plain(k8s.core.create_namespaced_pod(ns, body))


def _token(k8s: K8s, ns: str, pod: dict[str, Any] | None) -> str:
    body: dict[str, Any] = {"expirationSeconds": 3600}
    if pod is not None:
        body["boundObjectRef"] = {
            "apiVersion": "v1",
            "kind": "Pod",
            "name": pod["metadata"]["name"],
            "uid": pod["metadata"]["uid"],
        }
    resp = k8s.core.create_namespaced_service_account_token(WORKER_SA, ns, {"spec": body})
    return str(resp.status.token)


def _as(real: RealCluster, token: str) -> client.CustomObjectsApi:
    path = real.plane.token_kubeconfig(f"worker-{uuid.uuid4().hex[:6]}", token)
    return client.CustomObjectsApi(config.new_client_from_config(config_file=str(path)))


def _patch(api: client.CustomObjectsApi, ns: str, name: str) -> int:
    """The status code of a worker-style status patch of ``ns/name`` (valid for the CRD's
    schema, which the server checks before admission)."""
    try:
        api.patch_namespaced_custom_object_status(
            GROUP,
            VERSION,
            ns,
            PLURAL,
            name,
            {"status": {"progress": {"stage": "Cutting", "percent": 10}}},
        )
    except ApiException as exc:
        assert exc.status == 403, exc.body  # anything else is this test's mistake
        assert "its own VideoProcessingJob" in str(exc.body), exc.body
        return 403
    return 200


def test_a_worker_patches_its_own_runs_status_only(
    real_cluster: RealCluster, ns: str, policy: str
) -> None:
    k8s = real_cluster.k8s
    _worker_rbac(k8s, ns)
    mine_uid = _run(k8s, ns, "mine", "mine-3f2a9c01")
    _run(k8s, ns, "theirs", "theirs-77aa0b12")
    pod = _pod(k8s, ns, "mine-3f2a9c01-x7k2p")
    worker = _as(real_cluster, _token(k8s, ns, pod))

    # the policy takes effect once the API server's admission has loaded it (a second or so)
    deadline = time.monotonic() + 60
    while _patch(worker, ns, "theirs") != 403:
        assert time.monotonic() < deadline, f"{policy} never refused another run's status"
        time.sleep(0.5)  # (until then the worker's patches of "theirs" went through)
    theirs = k8s.vpj(ns, "theirs")["metadata"]["resourceVersion"]

    # the worker's own reporter, with its pod-bound token, still writes its own run's status
    reporter = ClusterReporter(
        ResourceRef(
            namespace=ns, name="mine", uid=mine_uid, generation=1, job_name="mine-3f2a9c01"
        ),
        interval=0.2,
        api=worker,
    )
    try:
        reporter.stage("Cutting")
    finally:
        reporter.close()
    status = k8s.vpj(ns, "mine")["status"]
    assert status["phase"] == "Running" and status.get("progress"), status
    assert _patch(worker, ns, "mine") == 200

    # RBAC alone allows both: the refusal is the policy's (same token, same verb, other resource)
    assert _patch(worker, ns, "theirs") == 403
    # a token of the worker ServiceAccount bound to no pod (a leaked or hand-made one) is refused
    # even on the resource a worker pod could write
    unbound = _as(real_cluster, _token(k8s, ns, None))
    assert _patch(unbound, ns, "mine") == 403
    # and since the policy was in force, the other run's resource was never written
    assert k8s.vpj(ns, "theirs")["metadata"]["resourceVersion"] == theirs
