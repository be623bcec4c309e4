"""The gateway's Kubernetes client against a small API server that answers as Kubernetes does
(issue 24 items 10-12 and the rotated-token case):

- TokenReview with the gateway's own audience: a token minted for the API server (any pod's
  default token) or for another service is refused; one minted for the gateway is accepted;
- SubjectAccessReview carries the job's name, the user's uid and extra;
- the gateway's own token is re-read when the kubelet rotates the file, and on a 401;
- bogus tokens cost a bounded number of TokenReviews per client address, and the review cache
  stays bounded.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp.web
import httpx
import pytest

from videojobs_gateway.auth import _TTLCache
from videojobs_gateway.backend import UserInfo
from videojobs_gateway.kube import KubeApi
from videojobs_gateway.settings import GatewaySettings

API_AUDIENCE = "https://kubernetes.default.svc.cluster.local"
GATEWAY_AUDIENCE = "videojobs-gateway"


@dataclass
class FakeApiServer:
    """TokenReview, SubjectAccessReview and a VPJ list, answered as the API server would."""

    gateway_tokens: set[str] = field(default_factory=lambda: {"gw-1"})
    # token -> (username, uid, the audiences it was minted for)
    users: dict[str, tuple[str, str, tuple[str, ...]]] = field(default_factory=dict)
    reviews: list[dict[str, Any]] = field(default_factory=list)
    accesses: list[dict[str, Any]] = field(default_factory=list)
    seen_tokens: list[str] = field(default_factory=list)
    url: str = ""

    def _authorized(self, request: aiohttp.web.Request) -> bool:
        token = request.headers.get("Authorization", "").removeprefix("Bearer ")
        self.seen_tokens.append(token)
        return token in self.gateway_tokens

    async def token_review(self, request: aiohttp.web.Request) -> aiohttp.web.Response:
        if not self._authorized(request):
            return aiohttp.web.json_response({"message": "Unauthorized"}, status=401)
        data = await request.json()
        self.reviews.append(data["spec"])
        wanted = data["spec"].get("audiences") or [API_AUDIENCE]
        user = self.users.get(data["spec"]["token"])
        status: dict[str, Any] = {"authenticated": False}
        if user is not None and set(user[2]) & set(wanted):
            status = {
                "authenticated": True,
                "audiences": sorted(set(user[2]) & set(wanted)),
                "user": {
                    "username": user[0],
                    "uid": user[1],
                    "groups": ["system:authenticated"],
                    "extra": {"authentication.kubernetes.io/pod-name": ["ci-7d9f"]},
                },
            }
        return aiohttp.web.json_response({**data, "status": status})

    async def access_review(self, request: aiohttp.web.Request) -> aiohttp.web.Response:
        if not self._authorized(request):
            return aiohttp.web.json_response({"message": "Unauthorized"}, status=401)
        data = await request.json()
        self.accesses.append(data["spec"])
        return aiohttp.web.json_response({**data, "status": {"allowed": True}})

    async def list_vpjs(self, request: aiohttp.web.Request) -> aiohttp.web.Response:
        if not self._authorized(request):
            return aiohttp.web.json_response({"message": "Unauthorized"}, status=401)
        return aiohttp.web.json_response({"items": [], "metadata": {"resourceVersion": "1"}})


@pytest.fixture
async def api() -> AsyncIterator[FakeApiServer]:
    fake = FakeApiServer()
    app = aiohttp.web.Application()
    app.router.add_post("/apis/authentication.k8s.io/v1/tokenreviews", fake.token_review)
    app.router.add_post("/apis/authorization.k8s.io/v1/subjectaccessreviews", fake.access_review)
    app.router.add_get(
        "/apis/videojobs.io/v1alpha1/namespaces/team-a/videoprocessingjobs", fake.list_vpjs
    )
    runner = aiohttp.web.AppRunner(app)
    await runner.setup()
    site = aiohttp.web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    fake.url = f"http://127.0.0.1:{port}"
    try:
        yield fake
    finally:
        await runner.cleanup()


async def test_token_review_asks_for_the_gateways_audience(api: FakeApiServer) -> None:
    api.users = {
        "pod-default": ("system:serviceaccount:team-a:default", "u0", (API_AUDIENCE,)),
        "other-service": ("system:serviceaccount:team-a:ci", "u1", ("vault",)),
        "for-gateway": (
            "system:serviceaccount:team-a:ci", "u2", (GATEWAY_AUDIENCE, API_AUDIENCE)
        ),
    }  # fmt: skip
    kube = KubeApi(api.url, token="gw-1", audiences=[GATEWAY_AUDIENCE])
    try:
        assert await kube.token_review("pod-default") is None
        assert await kube.token_review("other-service") is None
        user = await kube.token_review("for-gateway")
        assert user is not None and user.username == "system:serviceaccount:team-a:ci"
        assert user.uid == "u2"
        assert dict(user.extra) == {"authentication.kubernetes.io/pod-name": ("ci-7d9f",)}
        assert {tuple(r["audiences"]) for r in api.reviews} == {(GATEWAY_AUDIENCE,)}
        # the SubjectAccessReview names the job, and carries uid and extra
        assert await kube.access_review(user, "team-a", "get", "videoprocessingjobs", "job-1")
        spec = api.accesses[-1]
        assert spec["resourceAttributes"]["name"] == "job-1"
        assert spec["uid"] == "u2"
        assert spec["extra"] == {"authentication.kubernetes.io/pod-name": ["ci-7d9f"]}
    finally:
        await kube.close()


async def test_an_authenticator_that_ignores_the_audience_is_not_believed() -> None:
    """status.audiences must name ours: an answer without it is not an authentication."""

    async def ignoring(request: aiohttp.web.Request) -> aiohttp.web.Response:
        data = await request.json()
        status = {"authenticated": True, "user": {"username": "alice"}}
        return aiohttp.web.json_response({**data, "status": status})

    app = aiohttp.web.Application()
    app.router.add_post("/apis/authentication.k8s.io/v1/tokenreviews", ignoring)
    runner = aiohttp.web.AppRunner(app)
    await runner.setup()
    site = aiohttp.web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    kube = KubeApi(f"http://127.0.0.1:{port}", token="gw-1", audiences=[GATEWAY_AUDIENCE])
    try:
        assert await kube.token_review("t") is None
        kube.audiences = ()  # control: without an audience the same answer is believed
        assert await kube.token_review("t") == UserInfo("alice")
    finally:
        await kube.close()
        await runner.cleanup()


async def test_the_gateway_rereads_its_rotated_token(api: FakeApiServer, tmp_path: Path) -> None:
    """The kubelet rotates the projected token: the file changes, the old token is refused."""
    token_file = tmp_path / "token"
    token_file.write_text("gw-1\n")
    kube = KubeApi(api.url, token_file=token_file)
    try:
        assert (await kube.list_vpjs("team-a"))["items"] == []
        # rotation: the API server accepts only the new token from now on
        token_file.write_text("gw-2\n")
        api.gateway_tokens = {"gw-2"}
        assert (await kube.list_vpjs("team-a"))["items"] == []  # a 401, re-read, retried
        assert api.seen_tokens[-2:] == ["gw-1", "gw-2"]
        requests = kube.requests
        assert (await kube.list_vpjs("team-a"))["items"] == []
        assert kube.requests == requests + 1 and api.seen_tokens[-1] == "gw-2"
    finally:
        await kube.close()


def test_a_static_token_still_fails_loudly_after_rotation() -> None:
    """Control: without a token file there is nothing to re-read (kubeconfig tokens)."""
    kube = KubeApi("http://127.0.0.1:9", token="static")
    assert kube.reload_token(force=True) is False and kube.token == "static"


async def test_the_review_cache_is_bounded() -> None:
    cache = _TTLCache(60, entries=100)

    async def answer() -> UserInfo | None:
        return None

    for i in range(10_000):
        await cache.get(f"bogus-{i}", answer)
    assert len(cache) <= 100


def test_bogus_tokens_cost_a_bounded_number_of_token_reviews(tmp_path: Path) -> None:
    """Limit before authentication: 200 requests with distinct bogus tokens from one address
    send at most the failure burst of TokenReviews; the rest are 429 without any review."""
    from tests.gateway.live import LiveServer
    from videojobs_gateway.app import create_app
    from videojobs_gateway.local import LocalBackend

    reviews: list[str] = []

    class Reviewer:
        async def token_review(self, token: str) -> UserInfo | None:
            reviews.append(token)
            return UserInfo("alice") if token == "good" else None

        async def access_review(self, *args: Any) -> bool:
            return True

    settings = GatewaySettings(
        auth_mode="client", namespace="team-a", unauthenticated_rate_per_second=5
    )
    app = create_app(LocalBackend(tmp_path / "data"), settings, reviewer=Reviewer())
    codes: list[int] = []
    t0 = time.monotonic()
    with LiveServer(app) as server, httpx.Client(base_url=server.base_url) as client:
        good = {"Authorization": "Bearer good"}
        assert client.get("/api/v1/videos/jobs", headers=good).status_code == 200
        for i in range(200):
            r = client.get("/api/v1/videos/jobs", headers={"Authorization": f"Bearer bogus-{i}"})
            codes.append(r.status_code)
        # a caller whose token was reviewed lately is not locked out by the flood
        assert client.get("/api/v1/videos/jobs", headers=good).status_code == 200
    elapsed = time.monotonic() - t0
    assert len(reviews) <= 1 + 10 + 5 * elapsed + 1, (len(reviews), elapsed)  # burst + refill
    assert codes.count(429) >= 180 and set(codes) == {401, 429}


def test_signed_file_urls_keep_the_signers_rate() -> None:
    from videojobs_gateway import access
    from videojobs_gateway.backend import Identity

    key = b"k" * 32
    token = access.sign(key, Identity(name="key:bob", namespace="team-b", rate=2.0), "j-1", 60)
    signed = access.verify(key, token, "j-1")
    assert signed is not None and signed.rate == 2.0
