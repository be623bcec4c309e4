"""Files stored on S3: the cluster gateway answers 307 to a presigned URL, signed with its own keys.

A real moto server process holds the clips; the gateway is the real app (HTTP route, auth,
problems) over a :class:`~videojobs_gateway.cluster.ClusterBackend` whose list answer is the
jobs of each test (the API server's part is covered by the emulator suites; here only the cache
matters). The redirect is followed with plain HTTP (no gateway credentials), as a browser would.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import time
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlparse

import boto3
import httpx
import pytest

from tests.gateway.conftest import API
from tests.gateway.live import LiveServer
from tests.motoserver import moto_server
from videojobs_gateway.app import create_app
from videojobs_gateway.cluster import ClusterBackend
from videojobs_gateway.presign import Presigner, Refused, S3Settings, decide, parse_s3_uri
from videojobs_gateway.settings import GatewaySettings

pytestmark = pytest.mark.s3

NS = "tenant-a"
KEY_ID, SECRET = "gateway-key", "gateway-secret"
CLIP = os.urandom(64 * 1024 + 123)
SHA = hashlib.sha256(CLIP).hexdigest()


@pytest.fixture(scope="module")
def s3_endpoint() -> Iterator[str]:
    """A moto S3 server process with the buckets and clip the tests read."""
    with moto_server() as endpoint:
        yield _filled(endpoint)


def _filled(endpoint: str) -> str:
    client = boto3.client(
        "s3", endpoint_url=endpoint, region_name="us-east-1",
        aws_access_key_id=KEY_ID, aws_secret_access_key=SECRET,
    )  # fmt: skip
    for bucket in (f"clips-{NS}", "clips-tenant-b", "private-media"):
        client.create_bucket(Bucket=bucket)
        client.put_object(
            Bucket=bucket, Key="courses/k8s/01-intro.mp4", Body=CLIP, ContentType="video/mp4"
        )
    return endpoint


class ListedKube:
    """The API server as the cache sees it: one list answer, then a watch with no events."""

    def __init__(self, items: list[dict[str, Any]]) -> None:
        self.items = items

    async def list_vpjs(self, namespace: str | None) -> dict[str, Any]:
        return {"items": self.items, "metadata": {"resourceVersion": "1"}}

    async def watch_vpjs(self, namespace: str | None, rv: str | None) -> AsyncIterator[Any]:
        await asyncio.Event().wait()
        yield {}  # pragma: no cover

    async def close(self) -> None:
        return None


def job(name: str, uri: str, *, namespace: str = NS, storage: dict[str, Any] | None = None):
    """A finished VideoProcessingJob whose status lists one clip at ``uri``."""
    bucket = uri[5:].split("/", 1)[0] if uri.startswith("s3://") else "x"
    s3 = storage if storage is not None else {"bucket": bucket, "prefix": "courses/k8s"}
    return {
        "metadata": {"name": name, "namespace": namespace, "resourceVersion": "1",
                     "creationTimestamp": "2026-12-01T10:00:00Z"},
        "spec": {"source": {"url": "https://example.com/a.mp4"},
                 "output": {"formats": ["mp4"], "storage": {"s3": s3}}},
        "status": {
            "phase": "Succeeded",
            "segments": [{
                "index": 1, "knowledgeId": "intro", "title": "Intro", "start": 0, "end": 5,
                "stem": "01-intro", "precision": "copy",
                "files": [{"kind": "video", "format": "mp4", "uri": uri,
                           "bytes": len(CLIP), "sha256": SHA}],
            }],
        },
    }  # fmt: skip


JOBS = [
    job("ok", f"s3://clips-{NS}/courses/k8s/01-intro.mp4"),
    job("private", "s3://private-media/courses/k8s/01-intro.mp4"),
    job("other-tenant", "s3://clips-tenant-b/courses/k8s/01-intro.mp4"),
    job("foreign-endpoint", f"s3://clips-{NS}/courses/k8s/01-intro.mp4",
        storage={"bucket": f"clips-{NS}", "endpoint": "https://s3.tenant.example"}),
    job("climbing-key", f"s3://clips-{NS}/courses/../k8s/01-intro.mp4"),
]  # fmt: skip


def s3_settings(endpoint: str, **overrides: Any) -> S3Settings:
    values: dict[str, Any] = {
        "buckets": ("clips-{namespace}",),
        "endpoint_url": endpoint,
        "addressing_style": "path",
        "region": "us-east-1",
        "access_key_id": KEY_ID,
        "secret_access_key": SECRET,
        **overrides,
    }
    return S3Settings(**values)


class Served:
    def __init__(self, s3: S3Settings | None) -> None:
        backend = ClusterBackend(
            ListedKube(JOBS),  # type: ignore[arg-type]
            presigner=Presigner(s3) if s3 is not None else None,
        )
        settings = GatewaySettings(auth_mode="none", namespace=NS)
        self.server = LiveServer(create_app(backend, settings, console=False)).start()
        self.client = httpx.Client(base_url=self.server.base_url, timeout=30)

    def file(self, job_id: str, name: str = "01-intro.mp4", **params: Any) -> httpx.Response:
        return self.client.get(f"{API}/files/{job_id}/{name}", params=params)

    def close(self) -> None:
        self.client.close()
        self.server.stop()


@pytest.fixture
def serve() -> Iterator[Any]:
    started: list[Served] = []

    def start(s3: S3Settings | None) -> Served:
        served = Served(s3)
        started.append(served)
        return served

    yield start
    for served in started:
        served.close()


def mounted_secret(tmp_path: Path, key_id: str, secret: str) -> Path:
    """A directory like the mounted Secret of the gateway's own S3 keys."""
    folder = tmp_path / "s3"
    folder.mkdir(exist_ok=True)
    (folder / "access-key-id").write_text(key_id)
    (folder / "secret-access-key").write_text(secret)
    return folder


def from_secret(endpoint: str, folder: Path) -> S3Settings:
    return s3_settings(endpoint, access_key_id=None, secret_access_key=None, credentials_dir=folder)


def no_default_credentials(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """boto3's default chain finds nothing: no AWS_* variables, files or instance metadata."""
    for name in [k for k in os.environ if k.startswith("AWS_")]:
        monkeypatch.delenv(name)
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))


def refused(r: httpx.Response, *words: str) -> str:
    assert r.status_code == 404, r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    detail: str = r.json()["detail"]
    for word in words:
        assert word in detail, detail
    return detail


def test_s3_clip_is_a_307_to_a_presigned_url_with_the_exact_bytes(
    serve: Any, s3_endpoint: str
) -> None:
    gw = serve(s3_settings(s3_endpoint))
    results = gw.client.get(f"{API}/results/ok").json()
    listed = results["segments"][0]["files"][0]
    assert listed["url"] == f"{API}/files/ok/01-intro.mp4" and listed["sha256"] == SHA

    r = gw.client.get(listed["url"])
    assert r.status_code == 307, r.text
    assert r.headers["cache-control"] == "no-store"
    location = r.headers["location"]
    assert location.startswith(f"{s3_endpoint}/clips-{NS}/courses/k8s/01-intro.mp4?")
    query = parse_qs(urlparse(location).query)
    assert query["X-Amz-Expires"] == ["300"]
    assert query["X-Amz-Credential"][0].startswith(f"{KEY_ID}/")

    # plain HTTP, without the gateway's headers: what a browser does with the Location
    got = httpx.get(location)
    assert got.status_code == 200
    assert got.content == CLIP and hashlib.sha256(got.content).hexdigest() == listed["sha256"]
    assert got.headers["content-disposition"] == 'inline; filename="01-intro.mp4"'
    part = httpx.get(location, headers={"Range": "bytes=100-1099"})
    assert part.status_code == 206
    assert part.headers["content-range"] == f"bytes 100-1099/{len(CLIP)}"
    assert part.content == CLIP[100:1100]

    saved = httpx.get(gw.file("ok", download="true").headers["location"])
    assert saved.headers["content-disposition"] == 'attachment; filename="01-intro.mp4"'
    assert saved.content == CLIP


def test_buckets_and_endpoints_the_platform_did_not_allow_are_404_with_the_reason(
    serve: Any, s3_endpoint: str
) -> None:
    gw = serve(s3_settings(s3_endpoint))
    refused(gw.file("private"), "'private-media'", "allow-list", NS)
    # another tenant's bucket: {namespace} is the job's namespace, so a forged status gets nothing
    refused(gw.file("other-tenant"), "'clips-tenant-b'", "allow-list")
    refused(gw.file("foreign-endpoint"), "https://s3.tenant.example", "not storage")
    refused(gw.file("climbing-key"), "not a plain path")
    assert not [r for r in (gw.file("private"),) if "location" in r.headers]


def test_presigned_urls_are_short_lived_and_fresh_per_request(serve: Any, s3_endpoint: str) -> None:
    """Expiry 1 s: the URL says so and is signed over it; once its window has passed by the clock,
    the gateway hands out a new one. (moto does not enforce X-Amz-Expires, so the store's own
    403 for an expired URL is not observable here; AWS and MinIO answer 403 AccessDenied.)"""
    gw = serve(s3_settings(s3_endpoint, expires_seconds=1))
    first = gw.file("ok").headers["location"]
    query = parse_qs(urlparse(first).query)
    assert query["X-Amz-Expires"] == ["1"]
    signed_at = datetime.strptime(query["X-Amz-Date"][0], "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)
    expires_at = signed_at.timestamp() + 1
    assert abs(signed_at.timestamp() - time.time()) < 60
    deadline = time.monotonic() + 10
    while time.time() <= expires_at + 1:  # poll the clock until the window has passed
        assert time.monotonic() < deadline
        time.sleep(0.05)
    second = gw.file("ok").headers["location"]
    later = parse_qs(urlparse(second).query)["X-Amz-Date"][0]
    assert later > query["X-Amz-Date"][0] and second != first
    assert httpx.get(second).content == CLIP


def test_without_s3_settings_or_credentials_s3_files_are_404_with_the_reason(
    serve: Any, s3_endpoint: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    refused(serve(None).file("ok"), "stored on S3", "serves no S3 files")
    refused(serve(s3_settings(s3_endpoint, buckets=())).file("ok"), "no buckets are allowed")
    keyless = {"access_key_id": None, "secret_access_key": None}
    refused(serve(s3_settings(s3_endpoint, **keyless)).file("ok"), "no S3 credentials configured")
    # the default chain (pod identity) finding nothing is a 404 too, never a 5xx
    no_default_credentials(monkeypatch, tmp_path)
    chain = serve(s3_settings(s3_endpoint, default_credentials=True, **keyless))
    refused(chain.file("ok"), "cannot sign S3 URLs", "NoCredentialsError")


def test_keys_from_a_mounted_secret_are_reread_when_rotated(
    serve: Any, s3_endpoint: str, tmp_path: Path
) -> None:
    secret = mounted_secret(tmp_path, "first-key\n", "first-secret\n")
    gw = serve(from_secret(s3_endpoint, secret))
    cred = parse_qs(urlparse(gw.file("ok").headers["location"]).query)["X-Amz-Credential"][0]
    assert cred.startswith("first-key/")
    (secret / "access-key-id").write_text("second-key")
    (secret / "secret-access-key").write_text("second-secret")
    cred = parse_qs(urlparse(gw.file("ok").headers["location"]).query)["X-Amz-Credential"][0]
    assert cred.startswith("second-key/")
    (secret / "access-key-id").unlink()
    refused(gw.file("ok"), "credentials are unreadable")


@pytest.mark.parametrize("name", ["..", ".hidden", "..%2F..%2Fetc", "a%5Cb", "%00x"])
def test_names_that_climb_are_refused(serve: Any, s3_endpoint: str, name: str) -> None:
    gw = serve(s3_settings(s3_endpoint))
    r = gw.client.get(f"{API}/files/ok/{name}")
    assert r.status_code in (400, 404, 422), r.text  # 422: the path's documented pattern
    assert "location" not in r.headers
    if r.status_code == 400:
        assert "not a plain name" in r.json()["detail"]
    # a name the status does not list is not signed for, even where the object exists
    refused(gw.file("ok", "02-other.mp4"), "has no file")


def test_decide_is_the_allow_list() -> None:
    s = S3Settings(
        buckets=("shared/{namespace}", "clips-{namespace}"),
        endpoint_url="https://s3.example.com/",
        job_endpoints=("http://minio.storage:9000",),
    )
    ok = decide(s, "s3://shared/team/x/1.mp4", "team", {"bucket": "shared"})
    assert (ok.bucket, ok.key) == ("shared", "team/x/1.mp4")
    for uri, storage, why in [
        ("s3://shared/other/x/1.mp4", {"bucket": "shared"}, "allow-list"),
        ("s3://shared/teamx/1.mp4", {"bucket": "shared"}, "allow-list"),
        ("s3://clips-team/1.mp4", {"bucket": "clips-other"}, "not the bucket"),
        ("s3://clips-team/1.mp4", {"bucket": "clips-team", "endpoint": "http://evil"}, "endpoint"),
        ("file:///output/1.mp4", {}, "not an s3"),
    ]:
        with pytest.raises(Refused, match=why):
            decide(s, uri, "team", storage)
    for endpoint in ("http://minio.storage:9000/", "https://s3.example.com"):
        decide(s, "s3://clips-team/1.mp4", "team", {"bucket": "clips-team", "endpoint": endpoint})
    for bad in ("s3://b/a//c", "s3://b/./c", "s3://b/", "s3:///k", "s3://b/a?x", "s3://b/a\\c"):
        with pytest.raises(Refused):
            parse_s3_uri(bad)


def test_readyz_checks_the_gateways_own_s3_credentials(
    serve: Any, s3_endpoint: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    def s3_check(gw: Served) -> tuple[int, dict[str, Any]]:
        r = gw.client.get("/readyz")
        return r.status_code, next(c for c in r.json()["checks"] if c["name"] == "s3")

    code, check = s3_check(serve(s3_settings(s3_endpoint)))
    assert (code, check["ok"]) == (200, True), check
    assert "clips-{namespace}" in check["detail"] and "settings" in check["detail"]
    assert all(c["name"] != "s3" for c in serve(None).client.get("/readyz").json()["checks"])

    secret = mounted_secret(tmp_path, "key", "secret")
    mounted = serve(from_secret(s3_endpoint, secret))
    assert s3_check(mounted)[0] == 200
    (secret / "secret-access-key").unlink()  # the Secret went away: out of rotation, and why
    code, check = s3_check(mounted)
    assert (code, check["ok"]) == (503, False)
    assert "credentials are unreadable" in check["detail"]

    keyless = {"access_key_id": None, "secret_access_key": None}
    code, check = s3_check(serve(s3_settings(s3_endpoint, **keyless)))
    assert (code, check["detail"]) == (503, "this gateway has no S3 credentials configured")
    no_default_credentials(monkeypatch, tmp_path)
    code, check = s3_check(serve(s3_settings(s3_endpoint, default_credentials=True, **keyless)))
    assert (code, check["ok"]) == (503, False)
    assert "default credential chain found no" in check["detail"]
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "from-env")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "from-env-secret")
    code, check = s3_check(serve(s3_settings(s3_endpoint, default_credentials=True, **keyless)))
    assert (code, check["ok"]) == (200, True), check
    assert "default chain (env)" in check["detail"]
