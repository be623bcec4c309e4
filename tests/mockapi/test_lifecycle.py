"""The operator against the kmock emulator, with the fake Job runner: lifecycle scenarios."""

from __future__ import annotations

import pytest

from tests.mockapi.conftest import NS, Api, Operator, RunnerFactory, eventually, manifest, phase_is
from tests.mockapi.jobrunner import Attempt

pytestmark = pytest.mark.mockapi


async def test_fake_happy_path(api: Api, operator: Operator, runner_factory: RunnerFactory) -> None:
    runner = await runner_factory()
    await operator.start()
    await api.create(manifest("lecture"))
    await eventually(phase_is(api, "lecture", "Succeeded"), what="Succeeded")
    status = api.status("lecture")
    conds = {c["type"]: c for c in status["conditions"]}
    assert conds["Complete"]["status"] == "True"
    assert conds["Accepted"]["status"] == "True"
    assert conds["Progressing"]["status"] == "False"
    assert "Failed" not in conds
    assert status["jobName"].startswith("lecture-")
    assert status["attempts"] == 1
    assert status["startTime"] and status["completionTime"]
    assert len(api.jobs()) == 1
    assert runner.stats.pods_created[status["jobName"]] == 1
    reasons = api.reasons("lecture")
    assert reasons[0] == "JobCreated" and reasons[-1] == "Succeeded"
