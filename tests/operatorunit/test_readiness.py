"""Readiness: the CRD must be served and kopf's indices filled; a CRD installed after the
operator makes it restart (exit 1) instead of never watching it."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest

from videojobs_operator.readiness import Readiness


def answers(*values: bool) -> tuple[list[int], object]:
    calls: list[int] = []
    it: Iterator[bool] = iter(values)

    async def served() -> bool:
        calls.append(1)
        return next(it)

    return calls, served


async def none_exist() -> int:
    return 0


async def some_exist() -> int:
    return 3


async def test_a_crd_installed_after_the_start_restarts_the_operator() -> None:
    readiness = Readiness()
    calls, served = answers(False, False, True)
    restarts: list[bool] = []
    seen_ready: list[bool] = []

    async def count() -> int:
        seen_ready.append(readiness.ready)
        return 0

    await readiness.gate(served, count, lambda: restarts.append(True), interval=0)  # type: ignore[arg-type]
    assert len(calls) == 3 and restarts == [True]
    assert not readiness.ready, "this process does not watch the CRD: never ready"
    assert seen_ready == [], "nothing counted: the process is about to restart"


async def test_ready_once_the_crd_is_served_and_nothing_needs_indexing() -> None:
    readiness = Readiness()
    assert not readiness.ready
    _, served = answers(True)
    await readiness.gate(served, none_exist, lambda: None, interval=0)  # type: ignore[arg-type]
    assert readiness.ready


async def test_not_ready_before_the_indices_are_filled() -> None:
    readiness = Readiness()
    _, served = answers(True)
    await readiness.gate(served, some_exist, lambda: None, interval=0)  # type: ignore[arg-type]
    assert not readiness.ready, "resources exist: wait for kopf's first handler call"
    readiness.indexed()
    assert readiness.ready


async def test_a_reconciler_is_not_ready_when_bound_only() -> None:
    """Binding kopf's (still empty) indices at startup no longer makes /readyz say ready."""
    from tests.operatorunit.fakekube import FakeKube
    from videojobs_operator.metrics import Metrics
    from videojobs_operator.reconcile import Reconciler
    from videojobs_operator.settings import OperatorSettings

    rec = Reconciler(OperatorSettings(), FakeKube(), Metrics())  # type: ignore[arg-type]
    rec.bind({}, {}, {})
    assert not rec.ready
    rec.readiness.crd_served = True
    await rec.reconcile(("media", "gone"))  # kopf's first handler call
    assert rec.ready
    await rec.close()


async def test_an_unreachable_api_server_is_not_a_missing_crd(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Unreachable, then reachable with the CRD: not ready meanwhile, no "not installed" error,
    and no restart (the CRD was there all along; kopf's watches retry) (issue 25)."""
    readiness = Readiness()
    answers_: Iterator[bool | Exception] = iter(
        [ConnectionRefusedError("connection refused")] * 3 + [True]
    )
    seen: list[bool] = []

    async def served() -> bool:
        seen.append(readiness.ready)
        answer = next(answers_)
        if isinstance(answer, Exception):
            raise answer
        return answer

    restarts: list[bool] = []
    with caplog.at_level(logging.INFO, logger="videojobs.operator"):
        await readiness.gate(served, none_exist, lambda: restarts.append(True), interval=0)
    assert seen == [False] * 4
    assert readiness.ready and restarts == []
    text = caplog.text
    assert "not installed" not in text
    assert text.count("cannot reach the API server") == 1, text
