"""Fixtures of the gateway tests: generated media over loopback HTTP, a live gateway."""

from __future__ import annotations

import itertools
import json
import shutil
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.gateway.cluster import GATEWAY_SA, ClusterStack
from tests.gateway.live import LiveServer
from tests.httpserver import MediaServer
from tests.mediakit import make_video
from tests.mockapi.emulator import token
from videojobs_gateway.settings import GatewaySettings

API = "/api/v1/videos"

TRANSCRIPT = [
    {"start_time": 0.0, "end_time": 3.0, "text": "Welcome to the lesson."},
    {"start_time": 3.0, "end_time": 6.0, "text": "A commit records a snapshot."},
    {"start_time": 6.0, "end_time": "00:00:09", "text": "Branches are cheap pointers."},
    {"start_time": 9, "end_time": 12.0, "text": "Merging joins two branches."},
]
KNOWLEDGE_POINTS = [
    {"knowledge_id": "commits", "title": "Commits", "description": "Snapshots of files.",
     "start_time": 3.0, "end_time": 6.0},
    {"knowledge_id": "branches", "title": "Branches", "description": "Cheap pointers.",
     "start_time": "00:00:06", "end_time": 9},
    {"knowledge_id": "merging", "title": "Merging", "description": "",
     "quote": "Merging joins two branches"},
]  # fmt: skip


def rest_body(video_url: str, **extra: Any) -> dict[str, Any]:
    """A valid REST submission over ``video_url``."""
    return {
        "video_url": video_url,
        "transcript": TRANSCRIPT,
        "knowledge_points": KNOWLEDGE_POINTS,
        "output": {"formats": ["mp4"], "precision": "copy"},
        **extra,
    }


@pytest.fixture(scope="session")
def gw_media(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``talk.mp4``: 12 s, 320x240 H.264/AAC, a keyframe every second."""
    if shutil.which("ffmpeg") is None:
        pytest.fail("ffmpeg is required (apt install ffmpeg)")
    root = tmp_path_factory.mktemp("gwmedia")
    make_video(root / "talk.mp4", duration=12, gop=30)
    return root


@pytest.fixture(scope="session")
def media_server(gw_media: Path) -> Iterator[MediaServer]:
    with MediaServer(gw_media) as srv:
        yield srv


@dataclass
class Gateway:
    """A running gateway and a client for it."""

    server: LiveServer
    client: httpx.Client
    backend: Any
    data: Path | None = None
    namespace: str = "default"

    def submit(self, body: dict[str, Any], **headers: str) -> dict[str, Any]:
        r = self.client.post(f"{API}/process", json=body, headers=headers)
        assert r.status_code == 202, r.text
        doc: dict[str, Any] = r.json()
        return doc

    def status(self, job_id: str) -> dict[str, Any]:
        r = self.client.get(f"{API}/status/{job_id}")
        assert r.status_code == 200, r.text
        doc: dict[str, Any] = r.json()
        return doc

    def wait(self, job_id: str, *words: str, timeout: float = 120) -> dict[str, Any]:
        """Follow the SSE stream until the job's status is one of ``words``."""
        deadline = time.monotonic() + timeout
        words = words or ("completed", "failed", "cancelled")
        while time.monotonic() < deadline:
            with self.client.stream("GET", f"{API}/progress/{job_id}/stream", timeout=timeout) as r:
                assert r.status_code == 200
                for line in r.iter_lines():
                    if line.startswith("data: "):
                        doc = json.loads(line[6:])
                        if doc.get("status") in words:
                            return self.status(job_id)
            st = self.status(job_id)
            if st["status"] in words:
                return st
        raise AssertionError(f"job {job_id} did not reach {words}: {self.status(job_id)}")


def start_local(data: Path, **kwargs: Any) -> Gateway:
    from videojobs_gateway.app import create_app
    from videojobs_gateway.local import LocalBackend

    settings = kwargs.pop("settings", None)
    # the tests' media server is on loopback, and some sources are local files
    kwargs.setdefault("allow_private_networks", True)
    kwargs.setdefault("allow_files", True)
    backend = LocalBackend(data, **kwargs)
    server = LiveServer(create_app(backend, settings)).start()
    client = httpx.Client(base_url=server.base_url, timeout=60)
    return Gateway(server=server, client=client, backend=backend, data=data)


@pytest.fixture
def local_gw(tmp_path: Path) -> Iterator[Gateway]:
    """A gateway over a fresh local backend (two jobs at a time)."""
    gw = start_local(tmp_path / "data", concurrency=2)
    try:
        yield gw
    finally:
        gw.client.close()
        gw.server.stop()


@pytest.fixture
def gw(local_gw: Gateway) -> Gateway:
    """The gateway the shared API suite runs against."""
    return local_gw


# -- the cluster backend: gateway -> strict emulator -> operator -> real worker ------------------

_namespaces = itertools.count(1)


@pytest.fixture(scope="module")
def cluster_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ClusterStack]:
    """One emulator, Job runner and operator per test module (two jobs run at a time)."""
    stack = ClusterStack(
        tmp_path_factory.mktemp("cluster"),
        mode="header",
        operator_env={"VIDEOJOBS_MAX_RUNNING_JOBS": "2"},
    ).start()
    try:
        yield stack
    finally:
        stack.stop()


def start_cluster_gateway(stack: ClusterStack, settings: GatewaySettings, **kwargs: Any) -> Any:
    """A gateway over the stack's emulator as the gateway ServiceAccount."""
    from videojobs_gateway.app import create_app
    from videojobs_gateway.cluster import ClusterBackend
    from videojobs_gateway.kube import KubeApi

    reviewer = kwargs.pop("reviewer", None)
    kube = KubeApi(stack.url, token=token(GATEWAY_SA))
    backend = ClusterBackend(kube, clips_root=stack.output, worker_root=str(stack.output), **kwargs)
    app = create_app(backend, settings, reviewer=reviewer)
    server = LiveServer(app).start()
    server.stack = stack  # type: ignore[attr-defined]
    return server, backend


@pytest.fixture(scope="module")
def cluster_server(cluster_stack: ClusterStack) -> Iterator[tuple[LiveServer, Any]]:
    settings = GatewaySettings(
        auth_mode="header",
        trusted_proxies=["127.0.0.1/32"],
        rate_per_second=10_000,
        rate_burst=10_000,
    )
    server, backend = start_cluster_gateway(cluster_stack, settings)
    try:
        yield server, backend
    finally:
        server.stop()


def cluster_stack_refusals(server: LiveServer) -> list[Any]:
    stack: ClusterStack = server.stack  # type: ignore[attr-defined]
    assert stack.emulator is not None
    return [r for r in stack.emulator.refused if r.code == 403]


@pytest.fixture
def cluster_gw(cluster_server: tuple[LiveServer, Any]) -> Iterator[Gateway]:
    """A gateway over the cluster backend; each test works in a namespace of its own."""
    server, backend = cluster_server
    namespace = f"gw-{next(_namespaces)}"
    headers = {"X-Remote-User": "tester", "X-Remote-Namespace": namespace}
    client = httpx.Client(base_url=server.base_url, timeout=60, headers=headers)
    try:
        yield Gateway(server=server, client=client, backend=backend, namespace=namespace)
    finally:
        client.close()
    # the chart's gateway RBAC covered every API call the backend made
    assert cluster_stack_refusals(server) == []
