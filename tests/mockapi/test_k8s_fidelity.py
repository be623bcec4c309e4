"""Operator behaviour that a real API server and Job controller demand (issue 10), end to end
against the emulator with the fake Job runner."""

from __future__ import annotations

import pytest

from tests.mockapi.conftest import Api, Operator, RunnerFactory, eventually, manifest, phase_is

pytestmark = pytest.mark.mockapi

LONGEST = "a" * 60 + "." + "b" * 192  # 253 characters


async def test_a_253_character_name_runs_with_bounded_labels(
    api: Api, operator: Operator, runner_factory: RunnerFactory
) -> None:
    await runner_factory()
    await operator.start()
    await api.create(manifest(LONGEST))
    await eventually(phase_is(api, LONGEST, "Succeeded"), what="Succeeded")
    (job,) = api.jobs()
    for obj in (job, *api.pods()):
        labels = obj["metadata"]["labels"]
        assert all(len(v) <= 63 for v in labels.values()), labels
        assert obj["metadata"]["annotations"]["videojobs.io/resource-name"] == LONGEST
