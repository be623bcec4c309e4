"""The emulator authorizes every request against the RBAC the chart renders from ``rbac.py``.

Mutation check: the chart is copied, its ``files/rbac.yaml`` regenerated (as
``charts/tools/sync_chart.py`` does) from ``rbac.OPERATOR_RULES`` without ``configmaps get``,
and the operator then cannot read a transcript ConfigMap: the server answers 403.
"""

from __future__ import annotations

import importlib.util
import shutil
from pathlib import Path

import pytest

from tests.chart.chartkit import CHART_DIR, REPO
from tests.mockapi.conftest import Api, Operator, RunnerFactory, eventually, manifest, phase_is
from tests.mockapi.emulator import Emulator, render_rbac
from videojobs_operator import rbac


def sync_chart_module() -> object:
    spec = importlib.util.spec_from_file_location(
        "sync_chart", REPO / "charts" / "tools" / "sync_chart.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def configmap_transcript(name: str) -> dict[str, object]:
    body = manifest(name)
    del body["spec"]["segments"]
    body["spec"]["transcript"] = {"configMapKeyRef": {"name": "talk", "key": "talk.vtt"}}
    body["spec"]["knowledgePoints"] = [{"id": "intro", "title": "Intro", "start": 0}]
    return body


VTT = "WEBVTT\n\n00:00.000 --> 00:02.000\nHello\n\n00:02.000 --> 00:04.000\nCore\n"


# Stays: the chart's RBAC as rendered in-process (no helm binary needed).
async def test_a_configmap_transcript_is_read_with_the_charts_rbac(
    api: Api, operator: Operator, runner_factory: RunnerFactory, emulator: Emulator
) -> None:
    await runner_factory()
    await api.create_configmap("talk", {"talk.vtt": VTT})
    await operator.start()
    await api.create(configmap_transcript("fromcm"))
    await eventually(phase_is(api, "fromcm", "Succeeded"), timeout=30, what="Succeeded")
    assert emulator.refused == []


# Stays: the mutation of rbac.py in seconds; by hand on the real tier.
async def test_without_configmaps_get_in_rbac_py_the_operator_is_refused(
    api: Api,
    operator: Operator,
    runner_factory: RunnerFactory,
    emulator: Emulator,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    chart = tmp_path / "chart"
    shutil.copytree(CHART_DIR, chart)  # follows the CRD symlink
    mutated = [r for r in rbac.OPERATOR_RULES if r["resources"] != ["configmaps"]]
    assert len(mutated) == len(rbac.OPERATOR_RULES) - 1
    monkeypatch.setattr(rbac, "OPERATOR_RULES", mutated)
    sync = sync_chart_module()
    (chart / "files" / "rbac.yaml").write_text(sync.render_rbac())  # type: ignore[attr-defined]
    emulator.rbac_source = render_rbac(chart)

    await runner_factory()
    await api.create_configmap("talk", {"talk.vtt": VTT})
    await operator.start()
    await api.create(configmap_transcript("fromcm"))
    refusal = await eventually(
        lambda: [r for r in emulator.refused if r.code == 403 and r.what == "configmaps"],
        what="a 403 on configmaps",
    )
    assert refusal[0].identity == "operator"
    assert "cannot get resource" in refusal[0].message
    assert api.status("fromcm").get("phase") != "Succeeded"
    assert api.jobs() == []
