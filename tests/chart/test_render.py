"""Render the chart for the main value combinations and validate every object strictly."""

from __future__ import annotations

import re
from typing import Any

import helm_python as helm
import pytest
import yaml

from tests.chart.chartkit import (
    RELEASE_NAMESPACE,
    REPO,
    find,
    notes,
    objects,
    one,
    validate_k8s,
    validate_vpj,
)

FULLNAME = "vj-videojobs"

COMBINATIONS: dict[str, dict[str, Any]] = {
    "default": {},
    "namespaced": {
        "rbac": {"scope": "namespaced"},
        "operator": {"config": {"namespaces": ["media", "media-2"]}},
    },
    "cluster-with-namespaces": {"operator": {"config": {"namespaces": ["media"]}}},
    "s3": {
        "operator": {"config": {"namespaces": ["media"]}},
        "s3": {
            "existingSecret": "clips-s3",
            "bucket": "clips",
            "endpoint": "http://minio.storage.svc:9000",
            "region": "us-east-1",
            "forcePathStyle": True,
        },
    },
    "pvc": {
        "clipsPvc": {"create": True, "size": "5Gi", "storageClassName": "standard"},
        "operator": {"config": {"namespaces": ["media", "team-b"]}},
    },
    "pvc-cluster-wide": {"clipsPvc": {"create": True}},
    "metrics-off": {"metrics": {"enabled": False}},
    "service-monitor": {"metrics": {"serviceMonitor": {"enabled": True, "labels": {"r": "p"}}}},
    "network-policy": {
        "networkPolicy": {"enabled": True, "apiServer": {"cidrs": ["172.18.0.0/16"]}},
        "operator": {
            "config": {"namespaces": ["media"], "allowedNetworks": ["10.96.0.0/12"]},
        },
    },
    "replicas-2": {"replicaCount": 2},
    "gateway": {
        "gateway": {
            "enabled": True,
            "auth": {"apiKeys": {"existingSecret": "gateway-keys"}},
            "ingress": {"enabled": True, "className": "nginx"},
        },
        "clipsPvc": {"create": True},
        "networkPolicy": {"enabled": True, "workers": {"namespaces": ["lectures"]}},
    },
    "everything": {
        "replicaCount": 3,
        "rbac": {"scope": "namespaced"},
        "clipsPvc": {"create": True},
        "metrics": {"serviceMonitor": {"enabled": True}},
        "networkPolicy": {"enabled": True},
        "s3": {"existingSecret": "s3-creds", "bucket": "clips"},
        "imagePullSecrets": [{"name": "regcred"}],
        "workerRbac": {
            "imagePullSecrets": [{"name": "regcred"}],
            "serviceAccountAnnotations": {"eks.amazonaws.com/role-arn": "arn:aws:iam::1:role/x"},
            "ownResourcePolicy": True,
        },
        "operator": {
            "config": {
                "namespaces": ["a", "b", "c"],
                "defaultTtlSecondsAfterFinished": 86400,
                "leaderElectionNamespace": "a",
                "manageWorkerRbac": False,
            },
            "nodeSelector": {"kubernetes.io/os": "linux"},
            "tolerations": [{"key": "k", "operator": "Exists", "effect": "NoSchedule"}],
            "extraEnv": [{"name": "EXTRA", "value": "1"}],
        },
    },
}

NAMESPACED_KINDS = {
    "Deployment",
    "PodDisruptionBudget",
    "ServiceAccount",
    "Role",
    "RoleBinding",
    "Service",
    "NetworkPolicy",
    "PersistentVolumeClaim",
    "ServiceMonitor",
}


def _check_service_monitor(sm: dict[str, Any], objs: list[dict[str, Any]]) -> None:
    """kubernetes-validate has no schema for monitoring.coreos.com: check what matters by hand."""
    assert set(sm) == {"apiVersion", "kind", "metadata", "spec"}
    assert sm["apiVersion"] == "monitoring.coreos.com/v1"
    assert set(sm["spec"]) == {"namespaceSelector", "selector", "endpoints"}
    service = one(objs, "Service")
    selector = sm["spec"]["selector"]["matchLabels"]
    assert selector.items() <= service["metadata"]["labels"].items()
    port_names = {p["name"] for p in service["spec"]["ports"]}
    for endpoint in sm["spec"]["endpoints"]:
        assert set(endpoint) <= {"port", "path", "interval", "scrapeTimeout"}
        assert endpoint["port"] in port_names
        assert re.fullmatch(r"[0-9]+(ms|s|m|h)", endpoint["interval"])


@pytest.mark.parametrize("combo", list(COMBINATIONS))
def test_every_rendered_object_validates(combo: str) -> None:
    objs = objects(COMBINATIONS[combo])
    assert objs
    seen: set[tuple[str, str, str]] = set()
    for obj in objs:
        key = (obj["kind"], obj["metadata"].get("namespace", ""), obj["metadata"]["name"])
        assert key not in seen, f"{key} rendered twice"
        seen.add(key)
        if obj["kind"] in NAMESPACED_KINDS:
            assert obj["metadata"].get("namespace"), f"{key} has no namespace"
        labels = obj["metadata"]["labels"]
        assert labels["app.kubernetes.io/instance"] == "vj"
        assert labels["app.kubernetes.io/managed-by"] == "Helm"
        assert labels["app.kubernetes.io/part-of"] == "videojobs"
        if obj["kind"] == "ServiceMonitor":
            _check_service_monitor(obj, objs)
        elif obj["kind"].startswith("ValidatingAdmissionPolicy"):
            validate_k8s(obj, ("1.37",))  # admissionregistration.k8s.io/v1: Kubernetes 1.30+
        else:
            validate_k8s(obj)


def test_strict_validation_catches_a_typo() -> None:
    """The check can fail: a misspelled field in a rendered object is rejected."""
    deployment = one(objects(), "Deployment")
    deployment["spec"]["template"]["spec"]["containers"][0]["imagePullPolcy"] = "Always"
    with pytest.raises(AssertionError, match="imagePullPolcy"):
        validate_k8s(deployment)


def test_the_crd_validates() -> None:
    from tests.chart.chartkit import crd

    validate_k8s(crd())


def _container(objs: list[dict[str, Any]]) -> dict[str, Any]:
    return one(objs, "Deployment")["spec"]["template"]["spec"]["containers"][0]


def test_operator_pod_is_locked_down() -> None:
    objs = objects()
    pod = one(objs, "Deployment")["spec"]["template"]["spec"]
    container = _container(objs)
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["runAsUser"] != 0
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    sc = container["securityContext"]
    assert sc["readOnlyRootFilesystem"] is True
    assert sc["allowPrivilegeEscalation"] is False
    assert sc["runAsNonRoot"] is True
    assert sc["capabilities"] == {"drop": ["ALL"]}
    assert sc["seccompProfile"] == {"type": "RuntimeDefault"}
    assert container["resources"]["requests"] and container["resources"]["limits"]
    assert {m["mountPath"] for m in container["volumeMounts"]} == {"/tmp"}


def test_probes_use_kopf_liveness_on_8080_and_readyz() -> None:
    container = _container(objects())
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    liveness = container["livenessProbe"]["httpGet"]
    assert (liveness["path"], ports[liveness["port"]]) == ("/healthz", 8080)
    assert container["command"] == ["videojobs-operator"]
    assert container["args"] == ["--liveness=http://0.0.0.0:8080/healthz"]
    moved = _container(objects({"operator": {"healthPort": 8181, "extraArgs": ["--x"]}}))
    assert moved["args"] == ["--liveness=http://0.0.0.0:8181/healthz", "--x"]
    assert {"name": "health", "containerPort": 8181, "protocol": "TCP"} in moved["ports"]
    readiness = container["readinessProbe"]["httpGet"]
    assert (readiness["path"], ports[readiness["port"]]) == ("/readyz", 9090)


def test_pod_identity_comes_from_the_downward_api() -> None:
    env = {e["name"]: e for e in _container(objects())["env"]}
    assert env["POD_NAME"]["valueFrom"] == {"fieldRef": {"fieldPath": "metadata.name"}}
    assert env["POD_NAMESPACE"]["valueFrom"] == {"fieldRef": {"fieldPath": "metadata.namespace"}}


def _env(objs: list[dict[str, Any]]) -> dict[str, str]:
    return {e["name"]: e.get("value", "") for e in _container(objs)["env"]}


def test_one_replica_by_default_and_leader_election_for_more() -> None:
    objs = objects()
    assert one(objs, "Deployment")["spec"]["replicas"] == 1
    # A surge pod would wait for the Lease held by the old pod: replace, do not surge.
    assert one(objs, "Deployment")["spec"]["strategy"] == {"type": "Recreate"}
    objs = objects(COMBINATIONS["replicas-2"])
    assert one(objs, "Deployment")["spec"]["replicas"] == 2
    assert one(objs, "Deployment")["spec"]["strategy"]["rollingUpdate"]["maxSurge"] == 0
    pdb = one(objs, "PodDisruptionBudget")
    pod_labels = one(objs, "Deployment")["spec"]["template"]["metadata"]["labels"]
    assert pdb["spec"]["selector"]["matchLabels"].items() <= pod_labels.items()
    assert not find(objects(), "PodDisruptionBudget")
    assert _env(objs)["VIDEOJOBS_LEADER_ELECTION"] == "true"
    lease_role = one(objs, "Role", f"{FULLNAME}-leader-election")
    assert lease_role["metadata"]["namespace"] == RELEASE_NAMESPACE
    binding = one(objs, "RoleBinding", f"{FULLNAME}-leader-election")
    assert binding["subjects"][0]["name"] == one(objs, "ServiceAccount")["metadata"]["name"]


def test_namespaced_mode_has_no_cluster_rights() -> None:
    objs = objects(COMBINATIONS["namespaced"])
    assert not find(objs, "ClusterRole") and not find(objs, "ClusterRoleBinding")
    operator_roles = find(objs, "Role", FULLNAME)
    assert sorted(r["metadata"]["namespace"] for r in operator_roles) == ["media", "media-2"]
    env = _env(objs)
    assert env["VIDEOJOBS_NAMESPACES"] == "media,media-2"
    # The chart provisions the worker identity, so the operator must not.
    assert env["VIDEOJOBS_MANAGE_WORKER_RBAC"] == "false"
    for ns in ("media", "media-2"):
        sa = [o for o in find(objs, "ServiceAccount") if o["metadata"]["namespace"] == ns]
        assert [s["metadata"]["name"] for s in sa] == [env["VIDEOJOBS_WORKER_SERVICE_ACCOUNT"]]
        binding = [
            o
            for o in find(objs, "RoleBinding", "videojobs-worker")
            if o["metadata"]["namespace"] == ns
        ][0]
        assert binding["subjects"] == [
            {"kind": "ServiceAccount", "name": "videojobs-worker", "namespace": ns}
        ]


def test_cluster_mode_without_namespaces_lets_the_operator_provision_workers() -> None:
    objs = objects()
    assert _env(objs)["VIDEOJOBS_MANAGE_WORKER_RBAC"] == "true"
    assert not [
        o for o in find(objs, "ServiceAccount") if o["metadata"]["name"] == "videojobs-worker"
    ]
    binding = one(objs, "ClusterRoleBinding")
    sa = one(objs, "ServiceAccount")
    assert binding["subjects"] == [
        {"kind": "ServiceAccount", "name": sa["metadata"]["name"], "namespace": RELEASE_NAMESPACE}
    ]
    assert binding["roleRef"]["name"] == one(objs, "ClusterRole")["metadata"]["name"]


def test_metrics_service_on_and_off() -> None:
    objs = objects()
    service = one(objs, "Service")
    assert service["spec"]["ports"] == [
        {"name": "metrics", "port": 9090, "targetPort": "metrics", "protocol": "TCP"}
    ]
    pod_labels = one(objs, "Deployment")["spec"]["template"]["metadata"]["labels"]
    assert service["spec"]["selector"].items() <= pod_labels.items()
    assert not find(objs, "ServiceMonitor")
    assert not find(objects(COMBINATIONS["metrics-off"]), "Service")
    custom = objects({"operator": {"config": {"metricsPort": 9300}}})
    assert one(custom, "Service")["spec"]["ports"][0]["port"] == 9300
    assert _env(custom)["VIDEOJOBS_METRICS_PORT"] == "9300"
    assert {"name": "metrics", "containerPort": 9300, "protocol": "TCP"} in _container(custom)[
        "ports"
    ]


def test_network_policies() -> None:
    objs = objects(COMBINATIONS["network-policy"])
    pod_labels = one(objs, "Deployment")["spec"]["template"]["metadata"]["labels"]
    operator_np = one(objs, "NetworkPolicy", f"{FULLNAME}-operator")
    assert operator_np["spec"]["podSelector"]["matchLabels"].items() <= pod_labels.items()
    egress = operator_np["spec"]["egress"]
    assert len(egress) == 3, "operator egress: DNS (cluster and node-local) and the API server"
    assert {p["port"] for p in egress[0]["ports"]} == {53}
    assert egress[1]["to"] == [{"ipBlock": {"cidr": "169.254.20.10/32"}}]
    assert {p["port"] for p in egress[1]["ports"]} == {53}
    assert egress[2]["to"] == [{"ipBlock": {"cidr": "172.18.0.0/16"}}]

    worker_np = one(objs, "NetworkPolicy", f"{FULLNAME}-worker")
    assert worker_np["metadata"]["namespace"] == "media"
    assert worker_np["spec"]["policyTypes"] == ["Ingress", "Egress"]
    assert "ingress" not in worker_np["spec"], "no ingress to workers"
    internet = worker_np["spec"]["egress"][3]["to"]
    assert internet[0]["ipBlock"]["cidr"] == "0.0.0.0/0"
    assert "169.254.0.0/16" in internet[0]["ipBlock"]["except"]
    assert "10.0.0.0/8" in internet[0]["ipBlock"]["except"]
    assert worker_np["spec"]["egress"][4]["to"] == [{"ipBlock": {"cidr": "10.96.0.0/12"}}]
    assert not find(objects(), "NetworkPolicy")


def test_network_policies_allow_nodelocal_dns_only_on_port_53() -> None:
    """NodeLocal DNSCache answers on 169.254.20.10 on every node (outside any pod, inside the
    link-local range the worker policy denies): without a rule, every lookup times out."""
    for name in (f"{FULLNAME}-operator", f"{FULLNAME}-worker"):
        objs = objects(COMBINATIONS["network-policy"])
        rules = one(objs, "NetworkPolicy", name)["spec"]["egress"]
        local = [r for r in rules if {"ipBlock": {"cidr": "169.254.20.10/32"}} in r.get("to", [])]
        assert len(local) == 1, name
        assert sorted((p["protocol"], p["port"]) for p in local[0]["ports"]) == [
            ("TCP", 53),
            ("UDP", 53),
        ]
    values = {**COMBINATIONS["network-policy"]}
    values["networkPolicy"] = {**values["networkPolicy"], "dns": {"nodeLocalAddresses": []}}
    rules = one(objects(values), "NetworkPolicy", f"{FULLNAME}-operator")["spec"]["egress"]
    assert not any("169.254.20.10" in str(r) for r in rules)


def test_clips_pvc_per_namespace() -> None:
    objs = objects(COMBINATIONS["pvc"])
    pvcs = find(objs, "PersistentVolumeClaim")
    assert sorted(p["metadata"]["namespace"] for p in pvcs) == ["media", "team-b"]
    for pvc in pvcs:
        assert pvc["metadata"]["name"] == "videojobs-clips"
        assert pvc["metadata"]["annotations"]["helm.sh/resource-policy"] == "keep"
        assert pvc["spec"]["resources"]["requests"]["storage"] == "5Gi"
        assert pvc["spec"]["accessModes"] == ["ReadWriteMany"]
        assert pvc["spec"]["storageClassName"] == "standard"
    wide = find(objects(COMBINATIONS["pvc-cluster-wide"]), "PersistentVolumeClaim")
    assert [p["metadata"]["namespace"] for p in wide] == [RELEASE_NAMESPACE]
    assert "storageClassName" not in wide[0]["spec"]
    # the default install makes the claim the examples and NOTES.txt use (issue 22)
    default = find(objects(), "PersistentVolumeClaim")
    assert [p["metadata"]["namespace"] for p in default] == [RELEASE_NAMESPACE]
    assert not find(objects({"clipsPvc": {"create": False}}), "PersistentVolumeClaim")


@pytest.mark.parametrize("combo", ["default", "namespaced", "pvc", "pvc-cluster-wide"])
def test_notes_send_the_first_job_where_the_chart_made_its_claim(combo: str) -> None:
    """NOTES.txt's first job names a claim the chart created in the namespace it is applied to."""
    values = COMBINATIONS[combo]
    text = notes(values)
    claim = _notes_job(values)["spec"]["output"]["storage"]["pvc"]["claimName"]
    ns = re.search(r"kubectl apply -n (\S+) -f -", text)
    assert ns, text
    pvcs = find(objects(values), "PersistentVolumeClaim")
    assert (ns.group(1), claim) in {
        (p["metadata"]["namespace"], p["metadata"]["name"]) for p in pvcs
    }, text


def test_every_example_writes_to_the_claim_of_a_default_install() -> None:
    """examples/*.yaml (kubectl apply after a default helm install) use the chart's claim."""
    default = find(objects(), "PersistentVolumeClaim")[0]["metadata"]["name"]
    claims = {}
    for path in sorted((REPO / "examples").glob("*.yaml")):
        for doc in yaml.safe_load_all(path.read_text()):
            if doc and doc.get("kind") == "VideoProcessingJob":
                pvc = doc["spec"]["output"]["storage"].get("pvc")
                if pvc:
                    claims[path.name] = pvc["claimName"]
    assert len(claims) >= 10
    assert {name: c for name, c in claims.items() if c != default} == {}


def _notes_job(values: dict[str, Any]) -> dict[str, Any]:
    text = notes(values)
    match = re.search(r"<<'YAML'.*?\n(.*?)\nYAML\n", text, re.S)
    assert match, text
    job: dict[str, Any] = yaml.safe_load(match.group(1))
    return job


@pytest.mark.parametrize("combo", ["default", "s3", "pvc", "everything"])
def test_notes_first_job_is_a_valid_resource(combo: str) -> None:
    job = _notes_job(COMBINATIONS[combo])
    validate_vpj(job)


def test_notes_refer_to_the_s3_secret() -> None:
    job = _notes_job(COMBINATIONS["s3"])
    s3 = job["spec"]["output"]["storage"]["s3"]
    assert s3["credentialsSecretRef"]["name"] == "clips-s3"
    assert s3["endpoint"] == "http://minio.storage.svc:9000"
    assert s3["forcePathStyle"] is True
    assert "kubectl -n media" in notes(COMBINATIONS["s3"])
    pvc_job = _notes_job(COMBINATIONS["pvc"])
    assert pvc_job["spec"]["output"]["storage"]["pvc"]["claimName"] == "videojobs-clips"


def test_template_rejects_equal_ports() -> None:
    import helm_python as helm

    with pytest.raises(helm.HelmError, match="must differ"):
        objects({"operator": {"healthPort": 9090}})


def test_every_template_renders_something_in_some_combination() -> None:
    from tests.chart.chartkit import render

    produced: set[str] = set()
    for values in COMBINATIONS.values():
        produced |= {path for path, text in render(values).items() if text.strip()}
    templates = {
        f"videojobs/templates/{p.name}"
        for p in (REPO / "charts" / "videojobs" / "templates").iterdir()
        if not p.name.startswith("_")
    }
    assert templates - produced == set(), "a template no combination exercises"


def test_existing_operator_service_account() -> None:
    import helm_python as helm

    with pytest.raises(helm.HelmError, match="serviceAccount.name is required"):
        objects({"serviceAccount": {"create": False}})
    objs = objects({"serviceAccount": {"create": False, "name": "ops-sa"}})
    assert not [o for o in find(objs, "ServiceAccount") if o["metadata"]["name"] == "ops-sa"]
    pod = one(objs, "Deployment")["spec"]["template"]["spec"]
    assert pod["serviceAccountName"] == "ops-sa"
    for binding in find(objs, "ClusterRoleBinding") + find(objs, "RoleBinding"):
        assert binding["subjects"][0]["name"] == "ops-sa"


def test_rbac_create_false_renders_no_operator_rbac() -> None:
    objs = objects({"rbac": {"create": False}})
    assert not find(objs, "ClusterRole") and not find(objs, "ClusterRoleBinding")
    assert not find(objs, "Role")


# -- worker and gateway NetworkPolicies in cluster-wide mode (issue 28 item 6) -------------------


def test_cluster_wide_network_policy_needs_the_worker_namespaces() -> None:
    """Workers fetch user-supplied URLs: with networkPolicy.enabled, the chart refuses to render
    a cluster-wide install that would silently leave them without a policy."""
    with pytest.raises(helm.HelmError, match=r"networkPolicy\.workers\.namespaces"):
        objects({"networkPolicy": {"enabled": True}})
    listed = objects({"networkPolicy": {"enabled": True, "workers": {"namespaces": ["a", "b"]}}})
    workers = [
        p for p in find(listed, "NetworkPolicy") if p["metadata"]["name"].endswith("-worker")
    ]
    assert sorted(p["metadata"]["namespace"] for p in workers) == ["a", "b"]
    for policy in workers:
        assert policy["spec"]["policyTypes"] == ["Ingress", "Egress"]
        assert "ingress" not in policy["spec"]  # nothing reaches a worker
    # an explicit opt-out renders the operator's policy and none for workers
    without = objects({"networkPolicy": {"enabled": True, "workers": {"create": False}}})
    names = [p["metadata"]["name"] for p in find(without, "NetworkPolicy")]
    assert names == [f"{FULLNAME}-operator"]
    # in namespaced mode operator.config.namespaces wins over workers.namespaces
    both = objects(
        {
            "networkPolicy": {"enabled": True, "workers": {"namespaces": ["ignored"]}},
            "operator": {"config": {"namespaces": ["media"]}},
        }
    )
    workers = [p for p in find(both, "NetworkPolicy") if p["metadata"]["name"].endswith("-worker")]
    assert [p["metadata"]["namespace"] for p in workers] == ["media"]


def test_gateway_network_policy_extra_egress_for_pod_identity() -> None:
    agent = {
        "to": [{"ipBlock": {"cidr": "169.254.170.23/32"}}],
        "ports": [{"protocol": "TCP", "port": 80}],
    }
    values = {
        "gateway": {**COMBINATIONS["gateway"]["gateway"], "networkPolicyExtraEgress": [agent]},
        "networkPolicy": {"enabled": True, "workers": {"create": False}},
    }
    gateway = [
        p
        for p in find(objects(values), "NetworkPolicy")
        if p["metadata"]["name"].endswith("gateway")
    ]
    (policy,) = gateway
    assert policy["spec"]["egress"][-1] == agent
    plain = {**values, "gateway": COMBINATIONS["gateway"]["gateway"]}
    (policy,) = [
        p
        for p in find(objects(plain), "NetworkPolicy")
        if p["metadata"]["name"].endswith("gateway")
    ]
    assert agent not in policy["spec"]["egress"]
