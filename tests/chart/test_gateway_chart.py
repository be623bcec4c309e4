"""The chart's gateway (``gateway.enabled``): off by default; when on, a restricted pod with
probes, a Service, an optional Ingress, a NetworkPolicy, and RBAC exactly
``videojobs_gateway.rbac``'s rules for the auth mode (no Secret rights, impersonation only in
mode ``client``). Whether those rules cover every API call the gateway makes is tested against
the strict emulator in ``tests/gateway/test_cluster_rbac.py``."""

from __future__ import annotations

from typing import Any

import helm_python as helm
import pytest

from tests.chart.chartkit import RELEASE_NAMESPACE, REPO, find, objects, one, validate_k8s
from tests.chart.podsecurity import restricted_violations
from videojobs_gateway import rbac
from videojobs_gateway.settings import GatewaySettings

GW = "vj-videojobs-gateway"
KEYS = {"apiKeys": {"existingSecret": "gateway-keys"}}
MODES: dict[str, dict[str, Any]] = {
    "apikey": KEYS,
    "none": {"mode": "none"},
    "header": {"mode": "header", "trustedProxies": ["10.0.0.0/8"]},
    "client": {"mode": "client"},
}


POLICY_ON: dict[str, Any] = {"enabled": True, "workers": {"namespaces": ["lectures"]}}
"""NetworkPolicies on in cluster-wide mode (which needs the worker namespaces listed)."""


def gateway(auth: dict[str, Any] | None = None, **extra: Any) -> dict[str, Any]:
    """Values with the gateway enabled (auth mode apikey with a keys Secret by default)."""
    values: dict[str, Any] = {"gateway": {"enabled": True, "auth": auth or KEYS}}
    for key, value in extra.items():
        if key == "gw":
            values["gateway"].update(value)
        else:
            values[key] = value
    return values


def ours(objs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [o for o in objs if o["metadata"]["name"] == GW]


def pod(objs: list[dict[str, Any]]) -> dict[str, Any]:
    spec: dict[str, Any] = one(objs, "Deployment", GW)["spec"]["template"]["spec"]
    return spec


def env(objs: list[dict[str, Any]]) -> dict[str, str]:
    return {e["name"]: e["value"] for e in pod(objs)["containers"][0]["env"] if "value" in e}


def test_off_by_default() -> None:
    objs = objects()
    assert ours(objs) == []
    assert not [o for o in objs if "gateway" in o["metadata"]["name"]]


def test_rules_file_is_generated_from_rbac_py() -> None:
    path = REPO / "charts" / "videojobs" / "files" / "gateway-rbac.yaml"
    assert path.read_text() == rbac.render(), (
        "charts/videojobs/files/gateway-rbac.yaml is stale: run "
        "python -m videojobs_gateway.rbac > charts/videojobs/files/gateway-rbac.yaml"
    )


@pytest.mark.parametrize("mode", list(MODES))
def test_every_object_is_valid_and_the_pod_restricted(mode: str) -> None:
    objs = objects(gateway(MODES[mode], clipsPvc={"create": True}, networkPolicy=POLICY_ON))
    for obj in ours(objs):
        validate_k8s(obj)
    spec = pod(objs)
    assert restricted_violations(spec) == []
    container = spec["containers"][0]
    sc = container["securityContext"]
    assert sc["readOnlyRootFilesystem"] is True and sc["capabilities"]["drop"] == ["ALL"]
    assert sc["seccompProfile"]["type"] == "RuntimeDefault"
    assert spec["securityContext"]["runAsNonRoot"] is True
    assert container["resources"]["limits"]["memory"] and container["resources"]["requests"]
    assert container["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "http"}
    assert container["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "http"}
    assert container["ports"] == [{"name": "http", "containerPort": 8000, "protocol": "TCP"}]
    assert spec["serviceAccountName"] == GW
    assert env(objs)["VIDEOJOBS_GATEWAY_AUTH_MODE"] == mode


def test_image_value() -> None:
    spec = pod(objects(gateway(gw={"image": {"repository": "r.example/gw", "tag": "7"}})))
    assert spec["containers"][0]["image"] == "r.example/gw:7"
    digest = "sha256:" + "a" * 64
    spec = pod(objects(gateway(gw={"image": {"repository": "r.example/gw", "digest": digest}})))
    assert spec["containers"][0]["image"] == f"r.example/gw@{digest}"
    spec = pod(objects(gateway()))
    assert spec["containers"][0]["image"] == "ghcr.io/videojobs/videojobs-gateway:0.1.0"


def _rules(objs: list[dict[str, Any]], kind: str) -> dict[str | None, list[dict[str, Any]]]:
    return {o["metadata"].get("namespace"): o["rules"] for o in find(objs, kind, GW)}


@pytest.mark.parametrize("mode", list(MODES))
def test_rbac_is_rbac_py_for_the_mode_cluster_wide(mode: str) -> None:
    objs = objects(gateway(MODES[mode]))
    assert _rules(objs, "ClusterRole") == {
        None: rbac.namespace_rules(mode) + rbac.cluster_rules(mode)
    }
    assert _rules(objs, "Role") == {}
    binding = one(objs, "ClusterRoleBinding", GW)
    assert binding["subjects"] == [
        {"kind": "ServiceAccount", "name": GW, "namespace": RELEASE_NAMESPACE}
    ]


@pytest.mark.parametrize("mode", list(MODES))
def test_rbac_in_the_served_namespaces_only(mode: str) -> None:
    objs = objects(gateway(MODES[mode], operator={"config": {"namespaces": ["media", "b"]}}))
    assert _rules(objs, "Role") == {ns: rbac.namespace_rules(mode) for ns in ("media", "b")}
    for binding in find(objs, "RoleBinding", GW):
        assert binding["roleRef"] == {
            "apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": GW,
        }  # fmt: skip
    expected = {None: rbac.cluster_rules(mode)} if rbac.cluster_rules(mode) else {}
    assert _rules(objs, "ClusterRole") == expected
    assert bool(find(objs, "ClusterRoleBinding", GW)) == bool(expected)
    # gateway.namespaces wins over the operator's
    only = {"namespaces": ["only"]}
    objs = objects(gateway(MODES[mode], gw=only, operator={"config": {"namespaces": ["x"]}}))
    assert set(_rules(objs, "Role")) == {"only"}
    assert env(objs)["VIDEOJOBS_GATEWAY_NAMESPACES"] == '["only"]'


def test_least_privilege() -> None:
    for mode in MODES:
        for rule in rbac.namespace_rules(mode) + rbac.cluster_rules(mode):
            for field in ("apiGroups", "resources", "verbs"):
                assert "*" not in rule[field], rule
            assert "secrets" not in rule["resources"]  # the keys Secret is a mounted volume
            assert not {"escalate", "bind", "update", "deletecollection"} & set(rule["verbs"])
    # only client mode may review; it writes no jobs as itself and impersonates no one
    for mode in ("none", "apikey", "header"):
        assert rbac.cluster_rules(mode) == []
    client = rbac.namespace_rules("client")
    assert client == [
        {"apiGroups": ["videojobs.io"], "resources": ["videoprocessingjobs"],
         "verbs": ["get", "list", "watch"]},
    ]  # fmt: skip
    verbs = {v for r in rbac.cluster_rules("client") for v in r["verbs"]}
    assert verbs == {"create"}
    for mode in MODES:
        for rule in rbac.namespace_rules(mode) + rbac.cluster_rules(mode):
            assert "impersonate" not in rule["verbs"], (mode, rule)


def test_apikey_secret_is_mounted_and_required() -> None:
    objs = objects(gateway({"apiKeys": {"existingSecret": "keys", "key": "k.yaml"}}))
    spec = pod(objs)
    secret = next(v for v in spec["volumes"] if v["name"] == "api-keys")
    items = [{"key": "k.yaml", "path": "k.yaml"}]
    assert secret["secret"] == {"secretName": "keys", "items": items}
    mount = next(m for m in spec["containers"][0]["volumeMounts"] if m["name"] == "api-keys")
    assert mount["readOnly"] is True
    assert env(objs)["VIDEOJOBS_GATEWAY_API_KEYS_FILE"] == f"{mount['mountPath']}/k.yaml"
    with pytest.raises(helm.HelmError, match="existingSecret"):
        objects({"gateway": {"enabled": True}})
    with pytest.raises(helm.HelmError, match="trustedProxies"):
        objects(gateway({"mode": "header"}))
    assert not [v for v in pod(objects(gateway({"mode": "none"})))["volumes"] if "secret" in v]


def test_clips_pvc_is_mounted_read_only_when_storage_is_a_pvc() -> None:
    spec = pod(objects(gateway(clipsPvc={"create": True, "name": "clips"})))
    volume = next(v for v in spec["volumes"] if v["name"] == "clips")
    assert volume["persistentVolumeClaim"] == {"claimName": "clips", "readOnly": True}
    mount = next(m for m in spec["containers"][0]["volumeMounts"] if m["name"] == "clips")
    assert mount == {"name": "clips", "mountPath": "/clips", "readOnly": True}
    spec = pod(objects(gateway(gw={"clips": {"claimName": "shared", "mountPath": "/srv"}})))
    assert (
        next(v for v in spec["volumes"] if v["name"] == "clips")["persistentVolumeClaim"][
            "claimName"
        ]
        == "shared"
    )
    no_pvc = gateway(clipsPvc={"create": False})  # S3, or nothing to serve from a volume
    spec = pod(objects(no_pvc))
    assert not [v for v in spec["volumes"] if "persistentVolumeClaim" in v]
    assert "VIDEOJOBS_GATEWAY_CLIPS_ROOT" not in env(objects(no_pvc))


@pytest.mark.parametrize("namespaces", [[], ["media"], ["media", RELEASE_NAMESPACE]])
def test_the_gateway_mounts_only_a_claim_of_its_own_namespace(namespaces: list[str]) -> None:
    """A pod cannot mount another namespace's PVC (it would stay Pending): the chart's clips PVC
    is rendered in each watched namespace, so the gateway mounts it only when one of them is
    the release namespace."""
    objs = objects(
        gateway(clipsPvc={"create": True}, operator={"config": {"namespaces": namespaces}})
    )
    claims = {(o["metadata"]["namespace"], o["metadata"]["name"])
              for o in objs if o["kind"] == "PersistentVolumeClaim"}  # fmt: skip
    deployment = one(objs, "Deployment", GW)
    mounted = [v["persistentVolumeClaim"]["claimName"]
               for v in deployment["spec"]["template"]["spec"]["volumes"]
               if "persistentVolumeClaim" in v]  # fmt: skip
    home = deployment["metadata"]["namespace"]
    assert all((home, claim) in claims for claim in mounted), (mounted, claims)
    served = not namespaces or RELEASE_NAMESPACE in namespaces
    assert mounted == (["videojobs-clips"] if served else [])
    assert ("VIDEOJOBS_GATEWAY_CLIPS_ROOT" in env(objs)) is served


def test_the_rendered_environment_is_what_the_gateway_reads(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    values = gateway(
        {"mode": "header", "trustedProxies": ["10.1.0.0/16"], "userHeader": "X-User"},
        gw={"corsOrigins": ["https://app.example"], "ratePerSecond": 7.5, "rateBurst": 9,
            "clips": {"path": "rest"}, "maxBodyBytes": 2097152},
        clipsPvc={"create": True},
        operator={"config": {"namespaces": ["media", RELEASE_NAMESPACE]}},
    )  # fmt: skip
    for key, value in env(objects(values)).items():
        monkeypatch.setenv(key, value)
    settings = GatewaySettings()
    assert settings.auth_mode == "header" and settings.trusted_proxies == ["10.1.0.0/16"]
    assert settings.user_header == "X-User"
    assert settings.cors_origins == ["https://app.example"]
    assert (settings.rate_per_second, settings.rate_burst) == (7.5, 9)
    assert settings.max_body_bytes == 2 * 2**20
    assert settings.namespaces == ["media", RELEASE_NAMESPACE]
    assert (settings.claim_name, settings.claim_path) == ("videojobs-clips", "rest")
    assert str(settings.clips_root) == "/clips" and settings.port == 8000


def test_service_and_ingress() -> None:
    objs = objects(gateway())
    service = one(objs, "Service", GW)
    assert service["spec"]["ports"] == [
        {"name": "http", "port": 80, "targetPort": "http", "protocol": "TCP"}
    ]
    assert service["spec"]["selector"]["app.kubernetes.io/component"] == "gateway"
    assert not find(objs, "Ingress")
    tls = [{"secretName": "gw-tls", "hosts": ["jobs.example.org"]}]
    hosts = [{"host": "jobs.example.org", "paths": [{"path": "/", "pathType": "Prefix"}]}]
    objs = objects(gateway(gw={"ingress": {"enabled": True, "className": "nginx",
                                           "hosts": hosts, "tls": tls}}))  # fmt: skip
    ingress = one(objs, "Ingress", GW)
    validate_k8s(ingress)
    assert ingress["spec"]["ingressClassName"] == "nginx"
    assert ingress["spec"]["tls"] == tls
    rule = ingress["spec"]["rules"][0]
    assert rule["host"] == "jobs.example.org"
    backend = rule["http"]["paths"][0]["backend"]
    assert backend == {"service": {"name": GW, "port": {"name": "http"}}}


def test_network_policy() -> None:
    assert not find(objects(gateway()), "NetworkPolicy", GW)
    objs = objects(
        gateway(
            gw={"networkPolicyFrom": [{"namespaceSelector": {"matchLabels": {"ingress": "y"}}}]},
            networkPolicy={**POLICY_ON, "apiServer": {"cidrs": ["172.18.0.2/32"]}},
        )
    )
    policy = one(objs, "NetworkPolicy", GW)
    spec = policy["spec"]
    assert spec["podSelector"]["matchLabels"]["app.kubernetes.io/component"] == "gateway"
    assert spec["policyTypes"] == ["Ingress", "Egress"]
    assert spec["ingress"] == [
        {"from": [{"namespaceSelector": {"matchLabels": {"ingress": "y"}}}],
         "ports": [{"protocol": "TCP", "port": "http"}]},
    ]  # fmt: skip
    targets = [peer for rule in spec["egress"] for peer in rule.get("to", [])]
    cidrs = {p["ipBlock"]["cidr"] for p in targets if "ipBlock" in p}
    assert cidrs == {"169.254.20.10/32", "172.18.0.2/32"}  # NodeLocal DNS, the API server only
    assert any("podSelector" in p for p in targets)  # cluster DNS
    ports = {(p["protocol"], p["port"]) for rule in spec["egress"] for p in rule["ports"]}
    assert ports == {("UDP", 53), ("TCP", 53), ("TCP", 443), ("TCP", 6443)}


def test_s3_downloads_render_the_gateways_own_keys_and_allow_list(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    s3 = {
        "buckets": ["clips-{namespace}", "shared/{namespace}"],
        "endpoint": "https://s3.example.com",
        "jobEndpoints": ["http://minio.storage:9000"],
        "region": "eu-west-1",
        "addressingStyle": "path",
        "presignSeconds": 120,
        "credentials": {
            "existingSecret": "gw-s3",
            "accessKeyIdKey": "id",
            "secretAccessKeyKey": "sk",
        },
    }
    objs = objects(gateway(gw={"s3": s3}, networkPolicy=POLICY_ON))
    for obj in ours(objs):
        validate_k8s(obj)
    spec = pod(objs)
    assert restricted_violations(spec) == []
    volume = next(v for v in spec["volumes"] if v["name"] == "s3-credentials")
    assert volume["secret"] == {
        "secretName": "gw-s3",
        "items": [
            {"key": "id", "path": "access-key-id"},
            {"key": "sk", "path": "secret-access-key"},
        ],
    }
    mount = next(m for m in spec["containers"][0]["volumeMounts"] if m["name"] == "s3-credentials")
    assert mount["readOnly"] is True
    rendered = env(objs)
    assert rendered["VIDEOJOBS_GATEWAY_S3_CREDENTIALS_DIR"] == mount["mountPath"]
    for key, value in rendered.items():
        monkeypatch.setenv(key, value)
    settings = GatewaySettings().s3()
    assert settings.buckets == ("clips-{namespace}", "shared/{namespace}")
    assert settings.endpoint_url == "https://s3.example.com"
    assert settings.job_endpoints == ("http://minio.storage:9000",)
    assert (settings.region, settings.addressing_style) == ("eu-west-1", "path")
    assert settings.expires_seconds == 120 and settings.default_credentials is False
    assert str(settings.credentials_dir) == mount["mountPath"]
    # the keys come from a volume: the gateway's RBAC still has no Secret rule
    for role in [
        o
        for o in objs
        if o["kind"] in ("Role", "ClusterRole") and "gateway" in o["metadata"]["name"]
    ]:
        assert not [r for r in role["rules"] if "secrets" in r.get("resources", [])]

    # pod identity (IRSA): no Secret volume, boto3's default chain
    objs = objects(gateway(gw={"s3": {"buckets": ["clips"], "credentials": {"podIdentity": True}}}))
    assert not [v for v in pod(objs)["volumes"] if v["name"] == "s3-credentials"]
    assert env(objs)["VIDEOJOBS_GATEWAY_S3_DEFAULT_CREDENTIALS"] == "true"
    assert "VIDEOJOBS_GATEWAY_S3_CREDENTIALS_DIR" not in env(objs)
    # off by default; buckets without any credentials are refused at render time
    assert not [k for k in env(objects(gateway())) if k.startswith("VIDEOJOBS_GATEWAY_S3_")]
    with pytest.raises(helm.HelmError, match="gateway.s3.credentials"):
        objects(gateway(gw={"s3": {"buckets": ["clips"]}}))
    with pytest.raises(helm.HelmError):
        objects(gateway(gw={"s3": {"bucket": "clips"}}))  # unknown keys are refused
