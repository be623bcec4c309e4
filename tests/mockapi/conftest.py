"""Fixtures for running the operator (kopf) against the kmock Kubernetes emulator.

``operator`` starts ``kopf run -A -m videojobs_operator.handlers`` in its own thread with
``KopfRunner``; ``runner`` plays kubelet and Job controller (see ``jobrunner.py``); ``api`` is a
tiny client for the test's own requests. Entering and leaving the KopfRunner happens in a worker
thread, because it joins a thread and the test's loop must keep serving the emulator meanwhile.
"""

from __future__ import annotations

import asyncio
import copy
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp
import kubernetes
import pytest
from kopf.testing import KopfRunner

from tests.mockapi.emulator import OPERATOR_SA, Emulator, token
from tests.mockapi.jobrunner import JobRunner, Script, default_script

NS = "media"
BASE = "/apis/videojobs.io/v1alpha1"

BASE_SPEC: dict[str, Any] = {
    "source": {"url": "http://127.0.0.1:9/lecture.mp4"},
    "segments": [
        {"start": 0, "end": 2, "title": "Intro"},
        {"start": 2, "end": 4, "title": "Main part"},
    ],
    "output": {"storage": {"pvc": {"claimName": "clips", "path": "lectures"}}},
}


def manifest(name: str, namespace: str = NS, **spec: Any) -> dict[str, Any]:
    """A VideoProcessingJob with the base spec, updated with ``spec``."""
    body = copy.deepcopy(BASE_SPEC)
    body.update(spec)
    return {
        "apiVersion": "videojobs.io/v1alpha1",
        "kind": "VideoProcessingJob",
        "metadata": {"name": name, "namespace": namespace},
        "spec": body,
    }


class Api:
    """The test's own client for the emulator."""

    def __init__(self, emulator: Emulator, session: aiohttp.ClientSession) -> None:
        self.emulator = emulator
        self.session = session

    async def _send(self, method: str, path: str, body: Any = None) -> Any:
        headers = {"Content-Type": "application/merge-patch+json"} if method == "PATCH" else {}
        async with self.session.request(method, path, json=body, headers=headers) as resp:
            resp.raise_for_status()
            return await resp.json()

    async def create(self, body: dict[str, Any]) -> dict[str, Any]:
        ns = body["metadata"]["namespace"]
        return await self._send("POST", f"{BASE}/namespaces/{ns}/videoprocessingjobs", body)

    async def create_configmap(self, name: str, data: dict[str, str], ns: str = NS) -> None:
        body = {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": name, "namespace": ns},
            "data": data,
        }
        await self._send("POST", f"/api/v1/namespaces/{ns}/configmaps", body)

    async def patch_spec(self, name: str, spec: dict[str, Any], ns: str = NS) -> None:
        await self._send(
            "PATCH", f"{BASE}/namespaces/{ns}/videoprocessingjobs/{name}", {"spec": spec}
        )

    async def delete_job(self, name: str, ns: str = NS) -> None:
        await self._send("DELETE", f"/apis/batch/v1/namespaces/{ns}/jobs/{name}")

    def vpj(self, name: str, ns: str = NS) -> dict[str, Any] | None:
        found = [
            o
            for o in self.emulator.live("videoprocessingjobs", ns)
            if o["metadata"]["name"] == name
        ]
        return found[0] if found else None

    def status(self, name: str, ns: str = NS) -> dict[str, Any]:
        body = self.vpj(name, ns)
        return dict((body or {}).get("status") or {})

    def jobs(self, ns: str | None = NS) -> list[dict[str, Any]]:
        return self.emulator.live("jobs", ns)

    def pods(self, ns: str | None = NS) -> list[dict[str, Any]]:
        return self.emulator.live("pods", ns)

    def events(self, name: str | None = None, ns: str = NS) -> list[dict[str, Any]]:
        return [
            e
            for e in self.emulator.live("events", ns)
            if name is None or e["involvedObject"]["name"] == name
        ]

    def reasons(self, name: str, ns: str = NS) -> list[str]:
        return [e["reason"] for e in self.events(name, ns)]


async def eventually(
    check: Callable[[], Any], timeout: float = 20.0, what: str = "condition"
) -> Any:
    """Poll ``check`` until it returns something truthy; fail with ``what`` after ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.05)


def phase_is(api: Api, name: str, phase: str, ns: str = NS) -> Callable[[], bool]:
    return lambda: api.status(name, ns).get("phase") == phase


@pytest.fixture
def kmock_options(kmock_options: dict[str, Any]) -> dict[str, Any]:
    """Use the emulator subclass that stamps uid/resourceVersion/generation/creationTimestamp."""
    return {**kmock_options, "cls": Emulator}


@pytest.fixture
def emulator(kmock: Emulator) -> Emulator:
    return kmock


@pytest.fixture
def kubeconfig(emulator: Emulator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A kubeconfig pointing at the emulator, for kopf, the operator's client and workers."""
    path = tmp_path / "kubeconfig"
    path.write_text(
        "apiVersion: v1\nkind: Config\ncurrent-context: kmock\n"
        f"clusters:\n- name: kmock\n  cluster:\n    server: {emulator.url}\n"
        f"users:\n- name: kmock\n  user:\n    token: {token(OPERATOR_SA)}\n"
        "contexts:\n- name: kmock\n  context:\n    cluster: kmock\n    user: kmock\n"
    )
    monkeypatch.setenv("KUBECONFIG", str(path))
    # The client reads KUBECONFIG once at import time.
    monkeypatch.setattr(kubernetes.config.kube_config, "KUBE_CONFIG_DEFAULT_LOCATION", str(path))
    return path


@pytest.fixture
def operator_env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    """Operator settings for tests; a test may setenv more before starting the operator."""
    for key, value in {
        "VIDEOJOBS_LEADER_ELECTION": "false",
        "VIDEOJOBS_METRICS_PORT": "0",
        "VIDEOJOBS_LOG_FORMAT": "text",
        "VIDEOJOBS_PROGRESS_INTERVAL_SECONDS": "0.5",
    }.items():
        monkeypatch.setenv(key, value)
    return monkeypatch


class Operator:
    """Start and stop the kopf operator (in its own thread) from an async test."""

    ARGS = ["run", "--standalone", "-m", "videojobs_operator.handlers"]

    def __init__(self) -> None:
        self.runner: KopfRunner | None = None
        self.outputs: list[str] = []

    async def start(self, *namespaces: str) -> None:
        """Start watching ``namespaces``, or the whole cluster (``-A``) when none are given."""
        assert self.runner is None
        scope = [f"--namespace={ns}" for ns in namespaces] or ["-A"]
        self.runner = KopfRunner([*self.ARGS, *scope], timeout=30)
        await asyncio.to_thread(self.runner.__enter__)

    async def stop(self) -> None:
        runner, self.runner = self.runner, None
        if runner is not None:
            await asyncio.to_thread(runner.__exit__, None, None, None)
            self.outputs.append(runner.output)


@pytest.fixture
async def api(emulator: Emulator) -> AsyncIterator[Api]:
    async with aiohttp.ClientSession(str(emulator.url)) as session:
        yield Api(emulator, session)


@pytest.fixture
async def operator(kubeconfig: Path, operator_env: pytest.MonkeyPatch) -> AsyncIterator[Operator]:
    """An operator; the test calls ``await operator.start()`` after setting its env."""
    op = Operator()
    try:
        yield op
    finally:
        await op.stop()


RunnerFactory = Callable[..., Awaitable[JobRunner]]


@pytest.fixture
async def runner_factory(emulator: Emulator, tmp_path: Path) -> AsyncIterator[RunnerFactory]:
    """Start a :class:`JobRunner` with a script (fake) or the real worker."""
    runners: list[JobRunner] = []

    async def start(script: Script = default_script, **kwargs: Any) -> JobRunner:
        runner = JobRunner(str(emulator.url), script=script, workdir=tmp_path / "pods", **kwargs)
        await runner.__aenter__()
        runners.append(runner)
        return runner

    yield start
    for runner in runners:
        await runner.__aexit__(None, None, None)
