"""The gateway's cluster client (``gateway/videojobs_gateway/kube.py``) against the real API
server: real TokenReview and SubjectAccessReview for auth mode ``client`` (tokens minted with
the TokenRequest API, for the gateway's audience ``videojobs-gateway`` and the API server's),
and the gateway's own token replaced on disk and revoked on the server (issue 22, defect 3)."""

from __future__ import annotations

import asyncio
import json
import ssl
import time
import uuid
from pathlib import Path
from typing import Any

import pytest

from tests.realk8s.conftest import RealCluster
from videojobs.models import PLURAL
from videojobs_gateway import kube as gw_kube
from videojobs_gateway.backend import Identity
from videojobs_gateway.cluster import ClusterBackend
from videojobs_gateway.kube import Caller, KubeApi, KubeError

AUDIENCE = "videojobs-gateway"


def _token(
    real: RealCluster, ns: str, sa: str, audiences: list[str] | None = None, **ref: Any
) -> str:
    spec: dict[str, Any] = {"expirationSeconds": 600}
    if audiences:
        spec["audiences"] = audiences
    if ref:
        spec["boundObjectRef"] = ref
    resp = real.k8s.core.create_namespaced_service_account_token(sa, ns, {"spec": spec})
    return str(resp.status.token)


def _sa(real: RealCluster, ns: str, name: str) -> None:
    real.k8s.core.create_namespaced_service_account(ns, {"metadata": {"name": name}})


def _bind(real: RealCluster, ns: str, sa: str, rules: list[dict[str, Any]], cluster: bool) -> None:
    name = f"{ns}-{sa}-{uuid.uuid4().hex[:4]}"
    role = {"metadata": {"name": name}, "rules": rules}
    subject = [{"kind": "ServiceAccount", "name": sa, "namespace": ns}]
    rbac = real.k8s.rbac
    if cluster:
        rbac.create_cluster_role(role)
        rbac.create_cluster_role_binding(
            {
                "metadata": {"name": name},
                "roleRef": {
                    "apiGroup": "rbac.authorization.k8s.io",
                    "kind": "ClusterRole",
                    "name": name,
                },
                "subjects": subject,
            }
        )
    else:
        rbac.create_namespaced_role(ns, role)
        rbac.create_namespaced_role_binding(
            ns,
            {
                "metadata": {"name": name},
                "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": name},
                "subjects": subject,
            },
        )


def _ssl(real: RealCluster) -> ssl.SSLContext:
    assert real.plane.pki is not None
    return ssl.create_default_context(cafile=str(real.plane.pki.ca_file))


REVIEWS = [  # what the gateway needs for auth mode client (rbac.py's reviews)
    {"apiGroups": ["authentication.k8s.io"], "resources": ["tokenreviews"], "verbs": ["create"]},
    {
        "apiGroups": ["authorization.k8s.io"],
        "resources": ["subjectaccessreviews"],
        "verbs": ["create"],
    },
]


def test_client_mode_token_and_access_reviews_on_the_real_server(
    real_cluster: RealCluster, ns: str
) -> None:
    real = real_cluster
    _sa(real, ns, "gateway")
    _bind(real, ns, "gateway", REVIEWS, cluster=True)
    _sa(real, ns, "alice")
    _bind(
        real,
        ns,
        "alice",
        [
            {
                "apiGroups": ["videojobs.io"],
                "resources": ["videoprocessingjobs"],
                "verbs": ["get", "list"],
            }
        ],
        cluster=False,
    )
    api_audience = real.server  # the API server's own audience: its issuer
    for_gateway = _token(real, ns, "alice", [AUDIENCE])
    for_api = _token(real, ns, "alice")
    for_both = _token(real, ns, "alice", [AUDIENCE, api_audience])

    async def scenario() -> None:
        api = KubeApi(
            real.server,
            token=_token(real, ns, "gateway"),
            ssl_context=_ssl(real),
            audiences=[AUDIENCE],
        )
        try:
            user = await api.token_review(for_gateway)
            assert user is not None
            assert user.username == f"system:serviceaccount:{ns}:alice"
            assert f"system:serviceaccounts:{ns}" in user.groups and user.uid
            # a token minted for the API server only is refused by the gateway's audience
            assert await api.token_review(for_api) is None
            assert await api.token_review("not-a-token") is None
            both = await api.token_review(for_both)
            assert both is not None and both.username == user.username
            # the real RBAC answers the SubjectAccessReview
            assert await api.access_review(user, ns, "list", "videoprocessingjobs")
            assert await api.access_review(user, ns, "get", "videoprocessingjobs", "x")
            assert not await api.access_review(user, ns, "delete", "videoprocessingjobs")
            assert not await api.access_review(user, "default", "list", "videoprocessingjobs")
            # requests as the caller: with a token the API server accepts, under the caller's RBAC
            listed = await api.call("GET", api.vpj_path(ns), as_user=Caller(for_both))
            assert listed["items"] == []
            with pytest.raises(KubeError) as refused:
                await api.call("GET", api.vpj_path("default"), as_user=Caller(for_both))
            assert refused.value.status == 403
            # a token for the gateway's audience only is no credential for the API server
            with pytest.raises(KubeError) as wrong:
                await api.call("GET", api.vpj_path(ns), as_user=Caller(for_gateway))
            assert wrong.value.status == 401
            # and the gateway's own token cannot list jobs: it holds only the review rights
            with pytest.raises(KubeError) as own:
                await api.call("GET", api.vpj_path(ns))
            assert own.value.status == 403
        finally:
            await api.close()

    asyncio.run(scenario())


def test_the_gateway_rereads_its_rotated_token(
    real_cluster: RealCluster, ns: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The kubelet replaces the projected token file; the old token stops working (here: its
    bound Secret is deleted, which the real server checks at once, as it checks expiry). The
    gateway keeps working without a restart: on the first 401 it re-reads the file."""
    real = real_cluster
    monkeypatch.setattr(gw_kube, "TOKEN_RECHECK_SECONDS", 3600.0)  # only the 401 re-reads it
    _sa(real, ns, "gateway")
    _bind(
        real,
        ns,
        "gateway",
        [{"apiGroups": ["videojobs.io"], "resources": ["videoprocessingjobs"], "verbs": ["list"]}],
        cluster=False,
    )
    holders = []
    for i in (1, 2):
        secret = real.k8s.core.create_namespaced_secret(ns, {"metadata": {"name": f"holder-{i}"}})
        holders.append(secret)
    first, second = (
        _token(
            real,
            ns,
            "gateway",
            None,
            kind="Secret",
            apiVersion="v1",
            name=s.metadata.name,
            uid=s.metadata.uid,
        )
        for s in holders
    )
    token_file = tmp_path / "token"
    token_file.write_text(first)

    async def scenario() -> None:
        api = KubeApi(real.server, token_file=token_file, ssl_context=_ssl(real))
        try:
            assert (await api.call("GET", api.vpj_path(ns)))["items"] == []
            token_file.write_text(second)  # the kubelet's rotation
            real.k8s.core.delete_namespaced_secret("holder-1", ns)  # the old token revoked

            # the API server caches a token's authentication for 10 s: wait until the old
            # token is refused there (asked directly, not through the gateway's client)
            old = KubeApi(real.server, token=first, ssl_context=_ssl(real))
            try:
                for _ in range(60):
                    try:
                        await old.call("GET", old.vpj_path(ns))
                    except KubeError as e:
                        if e.status == 401:
                            break
                        raise
                    await asyncio.sleep(1)
                else:
                    pytest.fail("the old token still works a minute after its Secret was deleted")
            finally:
                await old.close()
            before = api.requests
            assert (await api.call("GET", api.vpj_path(ns)))["items"] == []
            assert api.requests == before + 2  # a 401 with the old token, then the new one
            assert api.token == second
        finally:
            await api.close()

    asyncio.run(scenario())


SMALL_SPEC = {
    "source": {"url": "http://127.0.0.1:9/v.mp4"},
    "segments": [{"title": "Intro", "start": 0, "end": 5}],
    "output": {"storage": {"pvc": {"claimName": "clips"}}},
}


def _small_vpj(ns: str, name: str) -> dict[str, Any]:
    return {
        "apiVersion": "videojobs.io/v1alpha1",
        "kind": "VideoProcessingJob",
        "metadata": {"name": name, "namespace": ns},
        "spec": SMALL_SPEC,
    }


async def _create_all(api: KubeApi, ns: str, count: int) -> None:
    gate = asyncio.Semaphore(16)

    async def one(i: int) -> None:
        async with gate:
            await api.create_vpj(ns, _small_vpj(ns, f"lecture-{i:04d}"), None)

    await asyncio.gather(*(one(i) for i in range(count)))


class CountingKube(KubeApi):
    """The gateway's client, recording each LIST's query and answer size."""

    def __init__(self, *args: Any, **kw: Any) -> None:
        super().__init__(*args, **kw)
        self.pages: list[tuple[dict[str, str], int]] = []

    async def call(self, method: str, path: str, body: Any = None, **kw: Any) -> Any:
        answer = await super().call(method, path, body, **kw)
        if method == "GET" and path.endswith("/videoprocessingjobs"):
            self.pages.append((dict(kw.get("params") or {}), len(json.dumps(answer))))
        return answer


async def _list_then_cut(api: CountingKube, ns: str, count: int) -> tuple[int, int]:
    """Create ``count`` resources, start the backend, let the server end its watches, create
    one more: (bytes of one unpaginated LIST, LIST requests of the backend's first listing)."""
    backend = ClusterBackend(api, namespaces=[ns], relist_backoff=0.2)
    who = Identity(name="gateway", namespace=ns)

    def names() -> set[str]:
        return {j.id for j in backend.list_jobs(who, phase=None, limit=10_001, cursor=None)[0]}

    try:
        await _create_all(api, ns, count)
        whole = len(json.dumps(await KubeApi.call(api, "GET", api.vpj_path(ns))))
        api.pages.clear()
        api.watch_seconds = 2  # the server ends each watch after 2 s: the gateway resumes it
        started = time.monotonic()
        await backend.start()
        print(f"listing of {count}: {time.monotonic() - started:.2f} s")
        assert len(names()) == count
        lists = len(api.pages)
        await asyncio.sleep(5)  # two or more watches ended and resumed: no second LIST
        await api.create_vpj(ns, _small_vpj(ns, "after-the-cut"), None)
        for _ in range(200):
            if "after-the-cut" in names():
                break
            await asyncio.sleep(0.1)
        assert "after-the-cut" in names()
        assert len(api.pages) == lists, "the cut watch made the gateway LIST again"
        return whole, lists
    finally:
        await backend.stop()


@pytest.mark.timeout(900)  # 5,000 creates: 70 s on a quiet machine, minutes on a busy one
def test_the_gateway_lists_5000_resources_in_pages_and_resumes_its_watch(
    real_cluster: RealCluster, ns: str
) -> None:
    """Issue 28: the cluster backend's first listing of 5,000 VideoProcessingJobs goes out in
    pages of ``limit=500`` (the API server's audit log shows each request's URI), no answer
    holds more than a page; a watch the server ends resumes from the last resourceVersion (a
    watch request, not a LIST)."""
    real = real_cluster
    count = 5000
    _sa(real, ns, "gateway")
    verbs = ["create", "list", "watch"]
    rule = {"apiGroups": ["videojobs.io"], "resources": ["videoprocessingjobs"], "verbs": verbs}
    _bind(real, ns, "gateway", [rule], cluster=False)
    api = CountingKube(real.server, token=_token(real, ns, "gateway"), ssl_context=_ssl(real))
    whole, lists = asyncio.run(_list_then_cut(api, ns, count))
    pages = api.pages[:lists]
    sizes = [size for _, size in pages]
    assert lists in (count // 500, count // 500 + 1), pages
    assert all(params.get("limit") == "500" for params, _ in pages)
    assert all("continue" in params for params, _ in pages[1:])
    assert max(sizes) < whole / 8
    audit = [
        e
        for e in real.plane.audit(f"system:serviceaccount:{ns}:gateway")
        if e.get("verb") == "list" and (e.get("objectRef") or {}).get("resource") == PLURAL
    ]
    uris = [e["requestURI"] for e in audit]
    paged = [u for u in uris if "limit=500" in u]
    assert len(paged) == lists, uris  # on the wire: every LIST of the gateway's cache paged
    print(
        f"one unpaginated LIST: {whole / 1e6:.2f} MB; paged: {lists} requests of at most "
        f"{max(sizes) / 1e6:.2f} MB (limit=500)"
    )
