"""The operator killed (SIGKILL) mid-run and started again as a new process finds the run's Job.

The lifecycle tests restart kopf inside the test's process, so whatever a module keeps (a
salt, a cache) survives the "restart". Here each operator is its own process, as in a pod
restart: the new one must adopt the running Job, not create a second one (docs/testing.md,
mutation "Job name not stable across operator processes").
"""

from __future__ import annotations

import asyncio
import signal
from pathlib import Path

import pytest

from tests.mockapi.conftest import Api, RunnerFactory, eventually, manifest, phase_is
from tests.mockapi.emulator import Emulator
from tests.mockapi.jobrunner import Attempt
from tests.mockapi.test_soak import start_operator

pytestmark = pytest.mark.mockapi


async def test_a_new_operator_process_adopts_the_running_job(
    api: Api,
    emulator: Emulator,
    kubeconfig: Path,
    runner_factory: RunnerFactory,
    tmp_path: Path,
) -> None:
    gate = asyncio.Event()
    runner = await runner_factory(lambda _n, _j: [Attempt(gate=gate)])
    log = tmp_path / "operator.log"
    proc = await start_operator(kubeconfig, log)
    try:
        await api.create(manifest("survivor"))
        await eventually(phase_is(api, "survivor", "Running"), timeout=60, what="Running")
        first_job = api.status("survivor")["jobName"]
        inputs = emulator.counts["CREATE configmaps"]
        proc.send_signal(signal.SIGKILL)
        await proc.wait()
        proc = await start_operator(kubeconfig, log)
        # The new process has acted on the running resource: it makes sure the run's input
        # exists (a create) whether it adopts the Job or, wrongly, makes a new one.
        await eventually(
            lambda: emulator.counts["CREATE configmaps"] > inputs,
            timeout=60,
            what="the new operator's pass",
        )
        gate.set()
        await eventually(phase_is(api, "survivor", "Succeeded"), timeout=60, what="Succeeded")
    finally:
        if proc.returncode is None:
            proc.send_signal(signal.SIGKILL)
            await proc.wait()
    assert [j["metadata"]["name"] for j in emulator.ever("jobs")] == [first_job], log.read_text()
    assert api.status("survivor")["jobName"] == first_job
    assert runner.stats.jobs_seen == [first_job]
    assert emulator.refused == []
