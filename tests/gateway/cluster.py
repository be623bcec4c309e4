"""The cluster backend end to end: the strict emulator, the real operator, the real worker.

:class:`ClusterStack` runs, in one background thread with its own event loop, the strict
Kubernetes emulator of ``tests/mockapi`` (RBAC from the chart rendered with the gateway
enabled), the Job runner in real-worker mode (each pod is ``python -m videojobs_worker run``
publishing to a directory that stands in for the clips PVC), and the operator as a subprocess
with the operator ServiceAccount's token. :meth:`ClusterStack.gateway` starts a gateway with the
:class:`~videojobs_gateway.cluster.ClusterBackend` against it, as the gateway ServiceAccount, with
that directory as its read-only clips mount. Tests are synchronous (httpx), so nothing here may
run in the test's own loop.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import os
import sys
import threading
from collections.abc import Coroutine
from pathlib import Path
from typing import Any

import kmock
import yaml

from tests.chart.chartkit import CHART_DIR, RELEASE, RELEASE_NAMESPACE
from tests.mockapi.emulator import OPERATOR_SA, RBAC_KINDS, Emulator, token
from tests.mockapi.jobrunner import JobRunner
from tests.mockapi.strict import rules

GATEWAY_SA = rules.ServiceAccount(RELEASE_NAMESPACE, f"{RELEASE}-videojobs-gateway")
"""The gateway's identity in the rendered chart (release ``vj`` in ``videojobs-system``)."""


def chart_rbac(values: dict[str, Any]) -> tuple[dict[str, Any], ...]:
    """The Roles, ClusterRoles and bindings the chart renders with ``values``."""
    import helm_python as helm

    rendered = helm.Chart.load(CHART_DIR).render(values, name=RELEASE, namespace=RELEASE_NAMESPACE)
    found = []
    for path, text in rendered.items():
        if path.endswith("NOTES.txt"):
            continue
        for doc in yaml.safe_load_all(text):
            if isinstance(doc, dict) and doc.get("kind") in RBAC_KINDS:
                found.append(doc)
    return tuple(found)


def gateway_values(mode: str) -> dict[str, Any]:
    auth: dict[str, Any] = {"mode": mode}
    if mode == "apikey":
        auth["apiKeys"] = {"existingSecret": "gateway-keys"}
    if mode == "header":
        auth["trustedProxies"] = ["127.0.0.1/32"]
    return {"gateway": {"enabled": True, "auth": auth}}


class ClusterStack:
    """Emulator + Job runner (real worker) + operator; see the module docstring."""

    def __init__(self, workdir: Path, *, mode: str = "header", operator_env: dict[str, str]):
        self.workdir = workdir
        self.output = workdir / "pvc"
        self.output.mkdir(parents=True, exist_ok=True)
        self.mode = mode
        self.operator_env = operator_env
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.emulator: Emulator | None = None
        self.url = ""
        self.runner: JobRunner | None = None
        self._stack = contextlib.AsyncExitStack()
        self._operator: asyncio.subprocess.Process | None = None

    def run(self, coro: Coroutine[Any, Any, Any], timeout: float = 120) -> Any:
        """Run a coroutine in the stack's loop and wait for its result."""
        fut: concurrent.futures.Future[Any] = asyncio.run_coroutine_threadsafe(coro, self.loop)
        return fut.result(timeout)

    def start(self) -> ClusterStack:
        self.thread.start()
        self.run(self._start())
        return self

    async def _start(self) -> None:
        emulator = await self._stack.enter_async_context(Emulator())
        server = await self._stack.enter_async_context(kmock.Server(emulator))
        emulator.rbac_source = chart_rbac(gateway_values(self.mode))
        self.emulator = emulator
        self.url = str(server.url).rstrip("/")
        runner = JobRunner(
            self.url,
            real_worker=True,
            worker_env={"VIDEOJOBS_OUTPUT_ROOT": str(self.output)},
            workdir=self.workdir / "pods",
        )
        await runner.__aenter__()
        self.runner = runner
        kubeconfig = self.kubeconfig(token(OPERATOR_SA), "operator")
        env = {k: v for k, v in os.environ.items() if not k.startswith("VIDEOJOBS_")}
        env.update(
            KUBECONFIG=str(kubeconfig),
            VIDEOJOBS_LEADER_ELECTION="false",
            VIDEOJOBS_METRICS_PORT="0",
            VIDEOJOBS_LOG_FORMAT="text",
            VIDEOJOBS_LOG_LEVEL="WARNING",
            VIDEOJOBS_PROGRESS_INTERVAL_SECONDS="0.5",
            VIDEOJOBS_ALLOW_PRIVATE_NETWORKS="true",
            **self.operator_env,
        )
        log = (self.workdir / "operator.log").open("wb")
        self._operator = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "videojobs_operator", "-A", "--liveness", "",
            env=env, stdout=log, stderr=asyncio.subprocess.STDOUT,
        )  # fmt: skip

    def kubeconfig(self, bearer: str, name: str) -> Path:
        path = self.workdir / f"kubeconfig-{name}"
        path.write_text(
            "apiVersion: v1\nkind: Config\ncurrent-context: kmock\n"
            f"clusters:\n- name: kmock\n  cluster:\n    server: {self.url}\n"
            f"users:\n- name: u\n  user:\n    token: {bearer}\n"
            "contexts:\n- name: kmock\n  context:\n    cluster: kmock\n    user: u\n"
        )
        return path

    def stop(self) -> None:
        with contextlib.suppress(Exception):
            self.run(self._stop(), timeout=60)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(timeout=30)

    async def _stop(self) -> None:
        if self._operator is not None and self._operator.returncode is None:
            self._operator.terminate()
            try:
                await asyncio.wait_for(self._operator.wait(), 20)
            except TimeoutError:
                self._operator.kill()
                await self._operator.wait()
        if self.runner is not None:
            await self.runner.__aexit__(None, None, None)
        await self._stack.aclose()

    def operator_log(self) -> str:
        path = self.workdir / "operator.log"
        return path.read_text(errors="replace")[-4000:] if path.exists() else ""

    def live(self, plural: str, namespace: str | None = None) -> list[dict[str, Any]]:
        assert self.emulator is not None
        emulator = self.emulator
        return list(self.run(_call(lambda: emulator.live(plural, namespace))))


async def _call(fn: Any) -> Any:
    return fn()
