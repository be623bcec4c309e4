"""The ``videojobs-operator`` entry point as a process: leader election, metrics, probes."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import sys
from pathlib import Path

import aiohttp
import pytest

from tests.mockapi.conftest import Api, RunnerFactory, eventually, manifest, phase_is
from tests.mockapi.emulator import Emulator
from videojobs_operator.kube import make_api_client
from videojobs_operator.leader import LeaseElector

pytestmark = pytest.mark.mockapi


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def get(url: str) -> tuple[int, str]:
    try:
        async with aiohttp.ClientSession() as session, session.get(url) as resp:
            return resp.status, await resp.text()
    except aiohttp.ClientError:
        return 0, ""


def pod_of(identity: str | None) -> str | None:
    """The pod name in a holder identity ``<pod>_<12 hex>``; the suffix must be there."""
    if identity is None:
        return None
    pod, _, suffix = identity.rpartition("_")
    assert len(suffix) == 12 and int(suffix, 16) >= 0, identity
    return pod


async def test_entrypoint_elects_serves_metrics_and_reconciles(
    api: Api,
    kubeconfig: Path,
    emulator: Emulator,
    runner_factory: RunnerFactory,
    tmp_path: Path,
) -> None:
    await runner_factory()
    metrics_port, live_port = free_port(), free_port()
    env = operator_env(kubeconfig, "operator-0", metrics_port, log_format="json")
    log = (tmp_path / "operator.log").open("wb")
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "videojobs_operator",
        "-A",
        "--liveness",
        f"http://127.0.0.1:{live_port}/healthz",
        env=env,
        stdout=log,
        stderr=asyncio.subprocess.STDOUT,
    )
    try:
        await api.create(manifest("viaentry"))
        await eventually(phase_is(api, "viaentry", "Succeeded"), timeout=60, what="Succeeded")
        leases = emulator.live("leases", "videojobs-system")
        # the pod's name plus a random suffix per process (leader.process_identity)
        assert [pod_of(lease["spec"]["holderIdentity"]) for lease in leases] == ["operator-0"]

        metrics = f"http://127.0.0.1:{metrics_port}/metrics"
        text = await metrics_show(metrics, "videojobs_completions_total 1.0")
        assert 'videojobs_jobs{phase="Succeeded"} 1.0' in text
        assert "videojobs_completions_total 1.0" in text
        assert 'videojobs_api_writes_total{resource="jobs",verb="create"} 1.0' in text
        assert "videojobs_queue_depth 0.0" in text
        assert (await get(f"http://127.0.0.1:{metrics_port}/readyz"))[0] == 200
        assert (await get(f"http://127.0.0.1:{live_port}/healthz"))[0] == 200
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            code = await asyncio.wait_for(proc.wait(), 30)
        finally:
            if proc.returncode is None:
                proc.kill()
            log.close()
            output = (tmp_path / "operator.log").read_text()
    assert code == 0, output[-3000:]
    assert '"k8s": {"namespace": "media", "name": "viaentry"' in output  # JSON log with the ref
    (lease,) = emulator.live("leases", "videojobs-system")
    assert "holderIdentity" not in lease["spec"]  # released on a clean shutdown


def operator_env(
    kubeconfig: Path, pod: str, metrics_port: int, *, log_format: str = "text"
) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("VIDEOJOBS_")}
    env.update(
        {
            "KUBECONFIG": str(kubeconfig),
            "POD_NAME": pod,
            "POD_NAMESPACE": "videojobs-system",
            "VIDEOJOBS_LEADER_ELECTION": "true",
            "VIDEOJOBS_METRICS_PORT": str(metrics_port),
            "VIDEOJOBS_LOG_FORMAT": log_format,
        }
    )
    return env


async def test_standby_answers_probes_and_takes_over(
    api: Api,
    kubeconfig: Path,
    emulator: Emulator,
    runner_factory: RunnerFactory,
    tmp_path: Path,
) -> None:
    await runner_factory()
    ports = {name: (free_port(), free_port()) for name in ("a", "b")}
    procs = {}
    for name, (metrics_port, live_port) in ports.items():
        procs[name] = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "videojobs_operator",
            "-A",
            "--liveness",
            f"http://127.0.0.1:{live_port}/healthz",
            env=operator_env(kubeconfig, f"operator-{name}", metrics_port),
            stdout=(tmp_path / f"{name}.log").open("wb"),
            stderr=asyncio.subprocess.STDOUT,
        )
        if name == "a":
            await eventually(
                lambda: (
                    [
                        pod_of(x["spec"].get("holderIdentity"))
                        for x in emulator.live("leases", "videojobs-system")
                    ]
                    == ["operator-a"]
                ),
                what="a holds the Lease",
            )
    try:
        # b stands by: alive and ready, but not the leader
        metrics_b, live_b = ports["b"]
        for url in (f"http://127.0.0.1:{live_b}/healthz", f"http://127.0.0.1:{metrics_b}/readyz"):
            status, text = await eventually_get(url)
            assert (status, text) == (200, "standby\n")
        procs["a"].send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(procs["a"].wait(), 30) == 0
        await api.create(manifest("handover"))
        await eventually(phase_is(api, "handover", "Succeeded"), timeout=30, what="b took over")
        (lease,) = emulator.live("leases", "videojobs-system")
        assert pod_of(lease["spec"]["holderIdentity"]) == "operator-b"
        await metrics_show(
            f"http://127.0.0.1:{metrics_b}/metrics", "videojobs_completions_total 1.0"
        )
    finally:
        for proc in procs.values():
            if proc.returncode is None:
                proc.send_signal(signal.SIGTERM)
                await asyncio.wait_for(proc.wait(), 30)


async def metrics_show(url: str, line: str) -> str:
    """The metrics text once it has ``line`` (counters follow the status write by a moment)."""
    for _ in range(100):
        status, text = await get(url)
        if status == 200 and line in text:
            return text
        await asyncio.sleep(0.1)
    raise AssertionError(f"{line!r} not in {text}")


async def eventually_get(url: str) -> tuple[int, str]:
    for _ in range(100):
        status, text = await get(url)
        if status:
            return status, text
        await asyncio.sleep(0.1)
    return 0, ""


async def test_lease_has_one_holder_until_released(kubeconfig: Path, emulator: Emulator) -> None:
    def scenario() -> list[bool]:
        api = make_api_client()
        first = LeaseElector(api, "videojobs-system", "first", lease_seconds=60)
        second = LeaseElector(api, "videojobs-system", "second", lease_seconds=60)
        steps = [first.try_acquire(), second.try_acquire(), first.try_acquire()]
        first.release()
        steps += [second.try_acquire(), first.try_acquire()]
        return steps

    assert await asyncio.to_thread(scenario) == [True, False, True, True, False]
    (lease,) = emulator.live("leases", "videojobs-system")
    assert lease["spec"]["holderIdentity"] == "second"
    assert lease["spec"]["leaseTransitions"] == 1
