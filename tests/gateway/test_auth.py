"""The auth matrix (none, apikey, header, client), rate limits, CORS and request logs."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.gateway.conftest import API, Gateway, start_local
from videojobs_gateway.auth import hash_key
from videojobs_gateway.settings import GatewaySettings

SPEC = {
    "source": {"url": "http://127.0.0.1:9/never.mp4"},
    "segments": [{"knowledgeId": "a", "title": "A", "start": "0", "end": "1"}],
    "output": {"formats": ["mp4"]},
}


def _stop(gw: Gateway) -> None:
    gw.client.close()
    gw.server.stop()


def _write_keys(path: Path, keys: list[dict[str, Any]]) -> None:
    path.write_text(json.dumps(keys))


@pytest.fixture
def keys_file(tmp_path: Path) -> Path:
    path = tmp_path / "keys.json"
    _write_keys(
        path,
        [
            {"name": "alice", "sha256": hash_key("key-alice"), "namespace": "team-a"},
            {"name": "bob", "sha256": hash_key("key-bob"), "namespace": "team-b"},
            {"name": "slow", "sha256": hash_key("key-slow"), "namespace": "team-a", "rate": 1},
        ],
    )
    return path


@pytest.fixture
def apikey_gw(tmp_path: Path, keys_file: Path) -> Iterator[Gateway]:
    settings = GatewaySettings(auth_mode="apikey", api_keys_file=keys_file)
    gw = start_local(tmp_path / "data", settings=settings)
    try:
        yield gw
    finally:
        _stop(gw)


def _auth(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def test_apikey_matrix(apikey_gw: Gateway, keys_file: Path) -> None:
    c = apikey_gw.client
    r = c.get(f"{API}/jobs")
    assert r.status_code == 401 and r.headers["www-authenticate"].startswith("Bearer")
    assert r.headers["content-type"] == "application/problem+json"
    assert c.get(f"{API}/jobs", headers=_auth("wrong")).status_code == 401
    r = c.post(f"{API}/process", json={"spec": SPEC}, headers=_auth("key-alice"))
    assert r.status_code == 202
    job_id = r.json()["job_id"]
    assert c.get(f"{API}/status/{job_id}", headers=_auth("key-alice")).status_code == 200
    # another namespace: asking for it is 403; another tenant's job is not there
    other = c.get(f"{API}/jobs", params={"namespace": "team-b"}, headers=_auth("key-alice"))
    assert other.status_code == 403
    assert c.get(f"{API}/status/{job_id}", headers=_auth("key-bob")).status_code == 404
    assert c.get(f"{API}/jobs", headers=_auth("key-bob")).json()["jobs"] == []
    assert c.get(f"{API}/jobs", headers={"X-Api-Key": "key-bob"}).status_code == 200
    # revoking alice's key (the Secret changes) refuses it at once
    _write_keys(keys_file, [{"name": "bob", "sha256": hash_key("key-bob"), "namespace": "team-b"}])
    assert c.get(f"{API}/jobs", headers=_auth("key-alice")).status_code == 401
    assert c.get(f"{API}/jobs", headers=_auth("key-bob")).status_code == 200


def test_rate_limit_is_per_identity_with_retry_after(apikey_gw: Gateway) -> None:
    c = apikey_gw.client
    assert c.get(f"{API}/jobs", headers=_auth("key-slow")).status_code == 200
    r = c.get(f"{API}/jobs", headers=_auth("key-slow"))
    assert r.status_code == 429
    assert int(r.headers["retry-after"]) >= 1
    assert r.json()["type"].endswith("rate-limited")
    assert c.get(f"{API}/jobs", headers=_auth("key-alice")).status_code == 200


def test_none_mode_serves_its_namespace_only(gw: Gateway) -> None:
    assert gw.client.get(f"{API}/jobs").status_code == 200
    assert gw.client.get(f"{API}/jobs", params={"namespace": "default"}).status_code == 200
    assert gw.client.get(f"{API}/jobs", params={"namespace": "other"}).status_code == 403


def test_header_mode_trusts_only_the_proxy(tmp_path: Path) -> None:
    settings = GatewaySettings(auth_mode="header", trusted_proxies=["127.0.0.1/32"])
    gw = start_local(tmp_path / "data", settings=settings)
    identity = {"X-Remote-User": "carol", "X-Remote-Namespace": "team-c"}
    try:
        mine = gw.client.get(f"{API}/jobs", headers=identity)
        assert mine.status_code == 200
        r = gw.client.post(f"{API}/process", json={"spec": SPEC}, headers=identity)
        job_id = r.json()["job_id"]
        assert gw.client.get(f"{API}/status/{job_id}", headers=identity).status_code == 200
        assert (
            gw.client.get(f"{API}/jobs", headers={"X-Remote-User": "carol"}).json()["jobs"] == []
        )  # carol's default namespace is not team-c
        wrong_ns = gw.client.get(f"{API}/jobs", params={"namespace": "team-d"}, headers=identity)
        assert wrong_ns.status_code == 403
        assert gw.client.get(f"{API}/jobs").status_code == 401  # the proxy sent no user
        # the same headers from another address (not the proxy) are ignored
        transport = httpx.HTTPTransport(local_address="127.0.0.2")
        with httpx.Client(base_url=gw.server.base_url, transport=transport) as spoofer:
            spoofed = spoofer.get(f"{API}/status/{job_id}", headers=identity)
        assert spoofed.status_code == 401
    finally:
        _stop(gw)


def test_cors_allow_list(tmp_path: Path) -> None:
    settings = GatewaySettings(cors_origins=["http://console.example"])
    gw = start_local(tmp_path / "data", settings=settings)
    try:
        ok = gw.client.get(f"{API}/jobs", headers={"Origin": "http://console.example"})
        assert ok.headers["access-control-allow-origin"] == "http://console.example"
        other = gw.client.get(f"{API}/jobs", headers={"Origin": "http://evil.example"})
        assert "access-control-allow-origin" not in other.headers
        pre = gw.client.options(
            f"{API}/process",
            headers={
                "Origin": "http://console.example",
                "Access-Control-Request-Method": "POST",
                "Access-Control-Request-Headers": "content-type,idempotency-key",
            },
        )
        assert pre.status_code == 200
        bad = gw.client.options(
            f"{API}/process",
            headers={"Origin": "http://evil.example", "Access-Control-Request-Method": "POST"},
        )
        assert bad.status_code == 400
    finally:
        _stop(gw)


def test_request_logs_are_structured_with_a_request_id(
    gw: Gateway, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO, logger="videojobs_gateway.access"):
        r = gw.client.get(f"{API}/jobs", headers={"X-Request-ID": "req-42"})
        assert r.headers["x-request-id"] == "req-42"
        gw.client.get(f"{API}/status/nope-1")
        deadline = time.monotonic() + 5
        while len(caplog.records) < 2 and time.monotonic() < deadline:
            time.sleep(0.01)
    lines = [json.loads(rec.getMessage()) for rec in caplog.records]
    first = next(e for e in lines if e["request_id"] == "req-42")
    assert first["status"] == 200 and first["route"] == "/api/v1/videos/jobs"
    assert first["identity"] == "local" and first["namespace"] == "default"
    assert any(e["status"] == 404 and e["request_id"] != "req-42" for e in lines)
