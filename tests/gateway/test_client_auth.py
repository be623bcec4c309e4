"""Auth mode ``client``: TokenReview + SubjectAccessReview against a loopback API server.

The two review endpoints are served by a small aiohttp app that answers like the Kubernetes API
(the emulator stores review objects as it would any resource, so it cannot answer them).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import aiohttp.web
import httpx

from tests.gateway.conftest import API
from tests.gateway.live import LiveServer
from videojobs_gateway.app import create_app
from videojobs_gateway.kube import KubeApi
from videojobs_gateway.local import LocalBackend
from videojobs_gateway.settings import GatewaySettings

USERS = {"token-alice": ("alice", ["devs"])}
ALLOWED = {("alice", "team-a")}


async def test_client_mode_matrix(tmp_path: Path) -> None:
    reviews: list[str] = []
    accesses: list[tuple[str, str, str]] = []

    async def token_review(request: aiohttp.web.Request) -> aiohttp.web.Response:
        data = await request.json()
        assert request.headers["Authorization"] == "Bearer gateway-sa"
        token = data["spec"]["token"]
        reviews.append(token)
        user = USERS.get(token)
        status: dict[str, Any] = {"authenticated": user is not None}
        if user:
            status["user"] = {"username": user[0], "groups": user[1]}
        return aiohttp.web.json_response({**data, "status": status})

    async def access_review(request: aiohttp.web.Request) -> aiohttp.web.Response:
        data = await request.json()
        spec = data["spec"]
        attrs = spec["resourceAttributes"]
        accesses.append((spec["user"], attrs["namespace"], attrs["verb"]))
        allowed = (spec["user"], attrs["namespace"]) in ALLOWED
        return aiohttp.web.json_response({**data, "status": {"allowed": allowed}})

    api = aiohttp.web.Application()
    api.router.add_post("/apis/authentication.k8s.io/v1/tokenreviews", token_review)
    api.router.add_post("/apis/authorization.k8s.io/v1/subjectaccessreviews", access_review)
    runner = aiohttp.web.AppRunner(api)
    await runner.setup()
    site = aiohttp.web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    reviewer = KubeApi(f"http://127.0.0.1:{port}", token="gateway-sa")

    settings = GatewaySettings(auth_mode="client", namespace="team-a", token_cache_seconds=60)
    app = create_app(LocalBackend(tmp_path / "data"), settings, reviewer=reviewer)
    try:
        await _matrix(app)
    finally:
        await runner.cleanup()
    # one TokenReview per token and one access review per (user, namespace, verb): cached
    assert sorted(reviews) == ["nope", "token-alice"]
    assert accesses == [("alice", "team-a", "list"), ("alice", "team-b", "list")]


async def _matrix(app: Any) -> None:
    with LiveServer(app) as srv:
        async with httpx.AsyncClient(base_url=srv.base_url) as c:
            r = await c.get(f"{API}/jobs")
            assert r.status_code == 401
            r = await c.get(f"{API}/jobs", headers={"Authorization": "Bearer nope"})
            assert r.status_code == 401
            alice = {"Authorization": "Bearer token-alice"}
            for _ in range(3):
                assert (await c.get(f"{API}/jobs", headers=alice)).status_code == 200
            r = await c.get(f"{API}/jobs", params={"namespace": "team-b"}, headers=alice)
            assert r.status_code == 403
            assert "alice may not list" in r.json()["detail"]
