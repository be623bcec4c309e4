"""Soak: many resources through the real operator under injected faults and operator kills.

The operator runs as a subprocess (``python -m videojobs_operator -A``) against the strict
emulator, which answers a seeded 5 % of the operator's requests with 429 (Retry-After), 500,
409, cut watch streams or 410 Gone on resumed watches. The operator is SIGKILLed at seeded random
moments and restarted. The fake Job runner plays kubelet and Job controller. Figures are
recorded in docs/testing.md.
"""

from __future__ import annotations

import asyncio
import collections
import os
import random
import signal
import sys
import time
from pathlib import Path

import pytest

from tests.mockapi.conftest import Api, RunnerFactory, manifest
from tests.mockapi.emulator import Emulator
from tests.mockapi.strict.faults import FaultPlan

pytestmark = pytest.mark.soak

RESOURCES = 100
KILLS = 5
SEED = 20261201
FINAL = {"Succeeded", "Failed"}


async def start_operator(kubeconfig: Path, log: Path) -> asyncio.subprocess.Process:
    env = {k: v for k, v in os.environ.items() if not k.startswith("VIDEOJOBS_")}
    env.update(
        {
            "KUBECONFIG": str(kubeconfig),
            "POD_NAME": "operator-0",
            "POD_NAMESPACE": "videojobs-system",
            "VIDEOJOBS_LEADER_ELECTION": "false",
            "VIDEOJOBS_METRICS_PORT": "0",
            "VIDEOJOBS_LOG_FORMAT": "text",
            "VIDEOJOBS_MAX_RUNNING_JOBS": "8",
        }
    )
    return await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "videojobs_operator",
        "-A",
        env=env,
        stdout=log.open("ab"),
        stderr=asyncio.subprocess.STDOUT,
    )


async def test_soak_faults_and_kills(
    api: Api,
    emulator: Emulator,
    kubeconfig: Path,
    runner_factory: RunnerFactory,
    tmp_path: Path,
) -> None:
    rng = random.Random(SEED)
    emulator.faults = FaultPlan(rate=0.05, seed=SEED)
    await runner_factory()
    log = tmp_path / "operator.log"
    proc = await start_operator(kubeconfig, log)
    names = [f"soak-{i:03d}" for i in range(RESOURCES)]
    kills = 0
    started = time.monotonic()
    try:
        for batch in range(0, RESOURCES, 10):
            for name in names[batch : batch + 10]:
                await api.create(manifest(name))
            if kills < KILLS and batch % 20 == 0:
                await asyncio.sleep(rng.uniform(0.5, 4.0))
                proc.send_signal(signal.SIGKILL)
                await proc.wait()
                kills += 1
                proc = await start_operator(kubeconfig, log)
        while kills < KILLS:
            await asyncio.sleep(rng.uniform(0.5, 3.0))
            proc.send_signal(signal.SIGKILL)
            await proc.wait()
            kills += 1
            proc = await start_operator(kubeconfig, log)

        def pending() -> list[str]:
            return [n for n in names if api.status(n).get("phase") not in FINAL]

        deadline = time.monotonic() + 240
        while pending() and time.monotonic() < deadline:
            await asyncio.sleep(0.2)
        stuck = pending()
        # A queue slot leaked would hold a new resource back: one more must run to the end.
        await api.create(manifest("soak-last"))
        deadline = time.monotonic() + 60
        while api.status("soak-last").get("phase") not in FINAL and time.monotonic() < deadline:
            await asyncio.sleep(0.2)
    finally:
        if proc.returncode is None:
            proc.send_signal(signal.SIGKILL)
            await proc.wait()
    elapsed = time.monotonic() - started

    jobs_by_resource: collections.Counter[str] = collections.Counter()
    runs: dict[str, set[str]] = collections.defaultdict(set)
    for job in emulator.ever("jobs"):
        owner = (job["metadata"].get("ownerReferences") or [{}])[0].get("name", "?")
        jobs_by_resource[owner] += 1
        runs[owner].add(job["metadata"]["name"])
    duplicates = sum(n - 1 for n in jobs_by_resource.values() if n > 1)
    lost = [n for n in names if jobs_by_resource[n] == 0]
    phases = collections.Counter(api.status(n).get("phase") for n in names)
    status_refusals = [r for r in emulator.refused if r.what.endswith("/status")]
    figures = {
        "resources": RESOURCES,
        "seconds": round(elapsed, 1),
        "faults": dict(emulator.faults.injected),
        "kills": kills,
        "duplicates": duplicates,
        "stuck": len(stuck),
        "lost": len(lost),
        "phases": dict(phases),
        "refused": len(emulator.refused),
    }
    print("SOAK", figures)
    assert kills >= KILLS
    assert sum(emulator.faults.injected.values()) > 0
    assert stuck == [], (figures, stuck, log.read_text()[-3000:])
    assert duplicates == 0, (figures, [n for n, c in jobs_by_resource.items() if c > 1])
    assert lost == [], figures
    assert phases == {"Succeeded": RESOURCES}, figures
    assert api.status("soak-last").get("phase") == "Succeeded", figures
    assert status_refusals == [], status_refusals[:3]
    assert emulator.refused == [], emulator.refused[:3]
