"""The auth matrix on the cluster backend, against the strict emulator with the chart's RBAC.

- ``client``: the token is reviewed (a test reviewer answers TokenReviews from a table and
  SubjectAccessReviews with the emulator's own RBAC engine over the same objects); writes are
  made with the caller's own token (the callers are ServiceAccounts, ``kubectl create token``,
  whose tokens the emulator authenticates itself), never by impersonation: the gateway's rules
  have no write verb and no ``impersonate``, and a caller without a RoleBinding in a namespace
  gets 403 from the API server itself;
- ``apikey``: a removed key is 401 at once, a key works in its namespace only;
- ``header``: identity headers from an address that is not the proxy's are ignored;
- the rate limit answers 429 with Retry-After; reads make no API request at all.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.gateway.cluster import ClusterStack, chart_rbac, gateway_values
from tests.gateway.conftest import API, start_cluster_gateway
from tests.gateway.live import LiveServer
from tests.mockapi.strict import rules
from videojobs_gateway.auth import hash_key
from videojobs_gateway.backend import UserInfo
from videojobs_gateway.settings import GatewaySettings

pytestmark = [pytest.mark.mockapi]

SPEC = {
    "source": {"url": "http://127.0.0.1:9/never.mp4"},
    "segments": [{"knowledgeId": "a", "title": "A", "start": "0", "end": "1"}],
    "output": {"formats": ["mp4"]},
}
SA_GROUPS = ("system:serviceaccounts", "system:serviceaccounts:team-a", "system:authenticated")
ALICE, BOB, MALLORY = "sa:team-a:alice", "sa:team-a:bob", "sa:team-a:mallory"
TOKENS = {
    # what a TokenReview says of `kubectl create token alice -n team-a --audience ...`; the
    # emulator reads the same token as that ServiceAccount when the gateway writes with it
    ALICE: UserInfo("system:serviceaccount:team-a:alice", SA_GROUPS, uid="uid-alice"),
    BOB: UserInfo("system:serviceaccount:team-a:bob", SA_GROUPS, uid="uid-bob"),
    MALLORY: UserInfo("system:serviceaccount:team-a:mallory", SA_GROUPS, uid="uid-mallory"),
}


def editor_rbac(user: str, namespace: str) -> list[dict[str, Any]]:
    """A Role on VideoProcessingJobs in ``namespace`` bound to ServiceAccount team-a/``user``."""
    role = {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "Role",
        "metadata": {"name": "vpj-editor", "namespace": namespace},
        "rules": [{"apiGroups": ["videojobs.io"], "resources": ["videoprocessingjobs"],
                   "verbs": ["get", "list", "watch", "create", "patch", "delete"]}],
    }  # fmt: skip
    binding = {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "RoleBinding",
        "metadata": {"name": f"vpj-editor-{user}", "namespace": namespace},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "vpj-editor"},
        "subjects": [{"kind": "ServiceAccount", "name": user, "namespace": "team-a"}],
    }
    return [role, binding]


class RbacReviewer:
    """TokenReview from ``TOKENS``; SubjectAccessReview by the emulator's RBAC engine, except
    for the users in ``lenient`` (a stale or wrong review: the API server must still refuse)."""

    def __init__(self, stack: ClusterStack) -> None:
        self.stack = stack
        self.lenient: set[str] = set()
        self.asked: list[tuple[str, str | None, str, str | None]] = []

    async def token_review(self, token: str) -> UserInfo | None:
        return TOKENS.get(token)

    async def access_review(
        self, user: UserInfo, namespace: str, verb: str, resource: str, name: str | None = None
    ) -> bool:
        self.asked.append((user.username, user.uid, verb, name))
        if user.username in self.lenient:
            return True
        assert self.stack.emulator is not None
        attrs = rules.RequestAttributes(
            verb=verb, group="videojobs.io", resource=resource, namespace=namespace, name=name
        )
        sa_ns, _, sa_name = user.username.removeprefix("system:serviceaccount:").partition(":")
        who = rules.ServiceAccount(sa_ns, sa_name)
        return rules.authorize(self.stack.emulator.rbac_objects(), who, attrs)


def use_rbac(stack: ClusterStack, mode: str, *extra: dict[str, Any]) -> None:
    assert stack.emulator is not None
    stack.emulator.rbac_source = chart_rbac(gateway_values(mode)) + tuple(extra)


@pytest.fixture
def served(cluster_stack: ClusterStack) -> Iterator[list[LiveServer]]:
    servers: list[LiveServer] = []
    yield servers
    for server in servers:
        server.stop()
    use_rbac(cluster_stack, "header")


def start(
    stack: ClusterStack, servers: list[LiveServer], settings: GatewaySettings, **kw: Any
) -> Any:
    server, backend = start_cluster_gateway(stack, settings, **kw)
    servers.append(server)
    return httpx.Client(base_url=server.base_url, timeout=30), backend


def test_client_mode_writes_with_the_callers_token_and_rbac_decides(
    cluster_stack: ClusterStack, served: list[LiveServer]
) -> None:
    stack = cluster_stack
    assert stack.emulator is not None
    use_rbac(stack, "client", *editor_rbac("alice", "team-a"))
    reviewer = RbacReviewer(stack)
    settings = GatewaySettings(auth_mode="client", namespace="team-a")
    client, _ = start(stack, served, settings, reviewer=reviewer, as_caller=True)
    alice = {"Authorization": f"Bearer {ALICE}"}
    impersonated = len(stack.emulator.impersonated)

    assert client.get(f"{API}/jobs").status_code == 401  # no token
    assert client.get(f"{API}/jobs", headers={"Authorization": "Bearer nope"}).status_code == 401
    r = client.post(f"{API}/process", json={"spec": SPEC}, headers=alice)
    assert r.status_code == 202, r.text
    job_id = r.json()["job_id"]
    # written with alice's own token: the gateway's rules have no write verb, and nothing was
    # impersonated
    assert len(stack.emulator.impersonated) == impersonated
    vpj = next(
        o for o in stack.live("videoprocessingjobs", "team-a") if o["metadata"]["name"] == job_id
    )
    assert vpj["metadata"]["annotations"]["videojobs.io/submitted-by"] == (
        "system:serviceaccount:team-a:alice"
    )
    assert client.get(f"{API}/status/{job_id}", headers=alice).status_code == 200
    # the SubjectAccessReview named the job and the user's uid
    assert ("system:serviceaccount:team-a:alice", "uid-alice", "get", job_id) in reviewer.asked
    # another namespace: alice has no RoleBinding there
    r = client.post(f"{API}/process", params={"namespace": "team-b"}, json={"spec": SPEC},
                    headers=alice)  # fmt: skip
    assert r.status_code == 403, r.text
    assert (
        client.get(f"{API}/jobs", params={"namespace": "team-b"}, headers=alice).status_code == 403
    )
    bob = {"Authorization": f"Bearer {BOB}"}
    assert client.get(f"{API}/jobs", headers=bob).status_code == 403

    # a review that says yes does not get past RBAC: the API server refuses the caller's token
    reviewer.lenient.add("system:serviceaccount:team-a:mallory")
    mallory = {"Authorization": f"Bearer {MALLORY}"}
    before = len(stack.emulator.refused)
    r = client.post(f"{API}/process", json={"spec": SPEC}, headers=mallory)
    assert r.status_code == 403, r.text
    assert "mallory" in r.json()["detail"] and "cannot create" in r.json()["detail"]
    assert client.post(f"{API}/jobs/{job_id}/cancel", headers=mallory).status_code == 403
    refused = stack.emulator.refused[before:]
    assert [(x.code, x.what) for x in refused] == [(403, "videoprocessingjobs")] * 2
    assert not vpj["spec"].get("cancel")
    stack.emulator.refused[before:] = []


def test_client_mode_needs_no_impersonate_right(
    cluster_stack: ClusterStack, served: list[LiveServer]
) -> None:
    """The chart's client-mode rules grant no impersonation and no job writes; writes still
    work, because they carry the caller's token."""
    gateway_roles = [
        o for o in chart_rbac(gateway_values("client")) if "gateway" in o["metadata"]["name"]
    ]
    assert gateway_roles
    for obj in gateway_roles:
        for rule in obj.get("rules") or []:
            assert "impersonate" not in rule["verbs"], (obj["metadata"]["name"], rule)
            if "videoprocessingjobs" in rule["resources"]:
                assert set(rule["verbs"]) <= {"get", "list", "watch"}, rule


def test_apikey_matrix_on_the_cluster(
    cluster_stack: ClusterStack, served: list[LiveServer], tmp_path: Path
) -> None:
    use_rbac(cluster_stack, "apikey")
    keys = tmp_path / "keys.json"
    entries = [
        {"name": "alice", "sha256": hash_key("key-alice"), "namespace": "team-k"},
        {"name": "bob", "sha256": hash_key("key-bob"), "namespace": "team-k"},
    ]
    keys.write_text(json.dumps(entries))
    settings = GatewaySettings(auth_mode="apikey", api_keys_file=keys)
    client, _ = start(cluster_stack, served, settings)
    alice, bob = {"X-Api-Key": "key-alice"}, {"Authorization": "Bearer key-bob"}
    assert client.get(f"{API}/jobs").status_code == 401
    r = client.post(f"{API}/process", json={"spec": SPEC}, headers=alice)
    assert r.status_code == 202, r.text
    job_id = r.json()["job_id"]
    assert [o["metadata"]["name"] for o in cluster_stack.live("videoprocessingjobs", "team-k")] == [
        job_id
    ]
    assert client.get(f"{API}/status/{job_id}", headers=bob).status_code == 200
    assert (
        client.get(f"{API}/jobs", params={"namespace": "other"}, headers=alice).status_code == 403
    )
    keys.write_text(json.dumps(entries[:1]))  # bob's key revoked
    assert client.get(f"{API}/status/{job_id}", headers=bob).status_code == 401
    assert client.get(f"{API}/status/{job_id}", headers=alice).status_code == 200


def test_spoofed_identity_headers_from_an_untrusted_address_are_ignored(
    cluster_stack: ClusterStack, served: list[LiveServer]
) -> None:
    spoof = {"X-Remote-User": "admin", "X-Remote-Namespace": "kube-system"}
    settings = GatewaySettings(auth_mode="header", trusted_proxies=["10.9.9.9/32"])
    client, _ = start(cluster_stack, served, settings)
    r = client.post(f"{API}/process", json={"spec": SPEC}, headers=spoof)
    assert r.status_code == 401
    assert client.get(f"{API}/jobs", headers=spoof).status_code == 401
    assert cluster_stack.live("videoprocessingjobs", "kube-system") == []
    trusted = GatewaySettings(auth_mode="header", trusted_proxies=["127.0.0.1/32"])
    client, _ = start(cluster_stack, served, trusted)
    assert client.get(f"{API}/jobs", headers=spoof).status_code == 200


def test_rate_limit_and_reads_without_api_requests(
    cluster_stack: ClusterStack, served: list[LiveServer]
) -> None:
    stack = cluster_stack
    assert stack.emulator is not None
    settings = GatewaySettings(
        auth_mode="header", trusted_proxies=["127.0.0.1/32"], rate_per_second=0.01, rate_burst=3
    )
    client, backend = start(stack, served, settings)
    who = {"X-Remote-User": "u", "X-Remote-Namespace": "team-r"}
    r = client.post(f"{API}/process", json={"spec": SPEC}, headers=who)
    assert r.status_code == 202
    job_id = r.json()["job_id"]
    codes = [client.get(f"{API}/status/{job_id}", headers=who).status_code for _ in range(3)]
    assert codes[:2] == [200, 200] and codes[-1] == 429
    limited = client.get(f"{API}/status/{job_id}", headers=who)
    assert limited.status_code == 429 and int(limited.headers["retry-after"]) >= 1
    other = {"X-Remote-User": "v", "X-Remote-Namespace": "team-r"}
    # reads are served from the watch-fed cache: no API request per read
    unlimited = GatewaySettings(auth_mode="header", trusted_proxies=["127.0.0.1/32"])
    client, backend = start(stack, served, unlimited)
    gateway_requests = backend.kube.requests
    for path in ("status", "progress", "results", "jobs"):
        assert client.get(f"{API}/{path}/{job_id}", headers=other).status_code == 200
    assert backend.kube.requests == gateway_requests


def test_a_large_resource_reaches_the_cache_through_the_watch(
    cluster_stack: ClusterStack, served: list[LiveServer]
) -> None:
    """A watch event of about 200 KB (a large annotation) is read whole into the cache."""
    import time

    import aiohttp

    settings = GatewaySettings(auth_mode="header", trusted_proxies=["127.0.0.1/32"])
    client, backend = start(cluster_stack, served, settings)
    cues = "".join(
        f"\n\n00:{i // 60:02d}:{i % 60:02d}.000 --> 00:{i // 60:02d}:{i % 60:02d}.900\n"
        f"cue {i} {'words ' * 20}"
        for i in range(400)
    )
    spec = {
        "source": {"url": "http://127.0.0.1:9/never.mp4"},
        "transcript": {"inline": "WEBVTT" + cues + "\n"},
        "knowledgePoints": [{"id": "a", "title": "A", "start": 0}],
        "output": {"formats": ["mp4"], "storage": {"pvc": {"claimName": "c", "path": ""}}},
    }
    note = {"example.com/note": "n" * 200_000}  # annotations may hold 256 KiB
    meta = {"name": "big", "namespace": "team-big", "annotations": note}
    body = {"apiVersion": "videojobs.io/v1alpha1", "kind": "VideoProcessingJob",
            "metadata": meta, "spec": spec}  # fmt: skip

    async def create() -> None:
        async with aiohttp.ClientSession(cluster_stack.url) as s:
            path = "/apis/videojobs.io/v1alpha1/namespaces/team-big/videoprocessingjobs"
            async with s.post(path, json=body) as r:
                r.raise_for_status()

    cluster_stack.run(create())
    who = {"X-Remote-User": "u", "X-Remote-Namespace": "team-big"}
    deadline = time.monotonic() + 30
    while client.get(f"{API}/status/big", headers=who).status_code != 200:
        assert time.monotonic() < deadline, "the watch did not deliver the large resource"
        time.sleep(0.05)
    assert client.get("/readyz").json()["ready"] is True


def _kind_gateway_check() -> Any:
    """``.ci/e2e/gateway_check.py``, the kind e2e run's REST checks, as a module."""
    import importlib.util

    path = Path(__file__).resolve().parents[2] / ".ci" / "e2e" / "gateway_check.py"
    spec = importlib.util.spec_from_file_location("gateway_check", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def cancel_every_job(stack: ClusterStack) -> None:
    """Cancel the jobs earlier tests left (their sources never answer): they hold the
    operator's running slots, and a job submitted now would queue behind them for minutes."""
    with httpx.Client(base_url=stack.url, timeout=30) as admin:  # no token: cluster admin
        for vpj in stack.live("videoprocessingjobs"):
            meta = vpj["metadata"]
            if vpj["spec"].get("cancel") or (vpj.get("status") or {}).get("phase") in (
                "Succeeded",
                "Failed",
                "Cancelled",
            ):
                continue
            path = (
                f"/apis/videojobs.io/v1alpha1/namespaces/{meta['namespace']}"
                f"/videoprocessingjobs/{meta['name']}"
            )
            r = admin.patch(
                path,
                json={"spec": {"cancel": True}},
                headers={"Content-Type": "application/merge-patch+json"},
            )
            assert r.status_code == 200, r.text


def test_the_kind_e2e_gateway_checks_pass_here_and_can_fail(
    cluster_stack: ClusterStack, served: list[LiveServer], media_server: Any
) -> None:
    """The script kind-e2e.sh runs against the real cluster, run against the emulator stack:
    submit (idempotent), 422, wait, results, download with sha256 and Range, traversal,
    delete; then as a user without a RoleBinding, where it must stop at the first 403."""
    stack = cluster_stack
    cancel_every_job(stack)
    use_rbac(stack, "client", *editor_rbac("alice", "team-a"))
    settings = GatewaySettings(auth_mode="client", namespace="team-a")
    client, _ = start(stack, served, settings, reviewer=RbacReviewer(stack), as_caller=True)
    base = str(client.base_url).rstrip("/")
    kind = _kind_gateway_check()
    media = media_server.url("talk.mp4")
    job = kind.check(base, "team-a", ALICE, other_ns="team-b", media=media, applied=())
    assert job and not [o for o in stack.live("videoprocessingjobs", "team-a")
                        if o["metadata"]["name"] == job]  # fmt: skip
    with pytest.raises(SystemExit, match="list: HTTP 403"):
        kind.check(base, "team-a", BOB, other_ns="team-b", media=media, applied=())


def test_a_namespace_the_gateway_does_not_watch_is_403_not_a_job_lost(
    cluster_stack: ClusterStack, served: list[LiveServer]
) -> None:
    """A job created where the cache has no watch would read 404 for ever: refuse it."""
    settings = GatewaySettings(auth_mode="header", trusted_proxies=["127.0.0.1/32"])
    client, _ = start(cluster_stack, served, settings, namespaces=["team-a"])
    before = {o["metadata"]["name"] for o in cluster_stack.live("videoprocessingjobs")}
    other = {"X-Remote-User": "carol", "X-Remote-Namespace": "team-b"}
    for r in (
        client.post(f"{API}/process", json={"spec": SPEC}, headers=other),
        client.get(f"{API}/jobs", headers=other),
        client.get(f"{API}/status/anything", headers=other),
    ):
        assert r.status_code == 403, r.text
        assert "serves VideoProcessingJobs in team-a only" in r.json()["detail"]
    assert {o["metadata"]["name"] for o in cluster_stack.live("videoprocessingjobs")} == before
    mine = {"X-Remote-User": "carol", "X-Remote-Namespace": "team-a"}
    r = client.post(f"{API}/process", json={"spec": SPEC}, headers=mine)
    assert r.status_code == 202, r.text
    assert client.get(f"{API}/status/{r.json()['job_id']}", headers=mine).status_code == 200
