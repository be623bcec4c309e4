"""examples/gitops: the kustomization builds, every object validates, the health checks work.

The kustomization is built by a small Python re-implementation of the subset it uses
(resources, namespace, labels, configMapGenerator with files) and, when ``kubectl`` is
installed, also by ``kubectl kustomize``; both must agree.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

import celpy
import lupa
import pytest
import yaml

from tests.chart.chartkit import REPO, validate_any

GITOPS = REPO / "examples" / "gitops"
ARGOCD_HEALTH_KEY = "resource.customizations.health.videojobs.io_VideoProcessingJob"


def _build_python() -> list[dict[str, Any]]:
    kustomization = yaml.safe_load((GITOPS / "kustomization.yaml").read_text())
    assert set(kustomization) <= {
        "apiVersion",
        "kind",
        "namespace",
        "labels",
        "resources",
        "configMapGenerator",
    }, "kustomization uses a feature this test does not model"
    objs: list[dict[str, Any]] = []
    for generator in kustomization.get("configMapGenerator", []):
        assert generator["options"]["disableNameSuffixHash"] is True
        data = {Path(f).name: (GITOPS / f).read_text() for f in generator["files"]}
        objs.append(
            {
                "apiVersion": "v1",
                "kind": "ConfigMap",
                "metadata": {"name": generator["name"]},
                "data": data,
            }
        )
    for resource in kustomization["resources"]:
        objs += [d for d in yaml.safe_load_all((GITOPS / resource).read_text()) if d]
    for obj in objs:
        obj["metadata"]["namespace"] = kustomization["namespace"]
        for entry in kustomization.get("labels", []):
            obj["metadata"].setdefault("labels", {}).update(entry["pairs"])
    return objs


def _key(obj: dict[str, Any]) -> tuple[str, str]:
    return obj["kind"], obj["metadata"]["name"]


@pytest.fixture(scope="module")
def built() -> list[dict[str, Any]]:
    return _build_python()


def test_kubectl_kustomize_agrees(built: list[dict[str, Any]]) -> None:
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        pytest.skip("kubectl not installed; the Python build is checked by the other tests")
    out = subprocess.run(
        [kubectl, "kustomize", str(GITOPS)], check=True, capture_output=True, text=True
    ).stdout
    from_kubectl = sorted((d for d in yaml.safe_load_all(out) if d), key=_key)
    assert from_kubectl == sorted(built, key=_key)


def test_objects_validate(built: list[dict[str, Any]]) -> None:
    kinds = sorted(o["kind"] for o in built)
    assert kinds == ["ConfigMap"] + ["VideoProcessingJob"] * 3
    for obj in built:
        assert obj["metadata"]["namespace"] == "media"
        validate_any(obj)


def test_jobs_plan_against_their_transcripts(built: list[dict[str, Any]]) -> None:
    """Every job resolves its transcript key and plans one clip per topic."""
    from videojobs.models.resource import VideoProcessingJob
    from videojobs.planning import plan_segments
    from videojobs.transcripts import parse_transcript

    config_maps = {o["metadata"]["name"]: o for o in built if o["kind"] == "ConfigMap"}
    for obj in built:
        if obj["kind"] != "VideoProcessingJob":
            continue
        job = VideoProcessingJob.from_manifest(obj)
        assert job.spec.ttl_seconds_after_finished is None, "no TTL under GitOps (README)"
        transcript = None
        expected = len(job.spec.segments or job.spec.knowledge_points)
        if job.spec.transcript is not None:
            ref = job.spec.transcript.config_map_key_ref
            assert ref is not None
            transcript = parse_transcript(
                config_maps[ref.name]["data"][ref.key], job.spec.transcript.format
            )
        plan = plan_segments(job.spec, transcript, duration=3600.0)
        assert len(plan.segments) == expected, obj["metadata"]["name"]


def _argocd_cm() -> dict[str, Any]:
    cm: dict[str, Any] = yaml.safe_load((GITOPS / "argocd" / "argocd-cm.yaml").read_text())
    return cm


def test_argocd_cm_carries_health_lua() -> None:
    cm = _argocd_cm()
    validate_any(cm)
    assert cm["data"][ARGOCD_HEALTH_KEY] == (GITOPS / "argocd" / "health.lua").read_text()
    app = yaml.safe_load((GITOPS / "argocd" / "application.yaml").read_text())
    assert app["spec"]["source"]["path"] == "examples/gitops"
    assert app["spec"]["destination"]["namespace"] == "media"


def _vpj(status: dict[str, Any] | None, generation: int = 1) -> dict[str, Any]:
    obj: dict[str, Any] = {
        "apiVersion": "videojobs.io/v1alpha1",
        "kind": "VideoProcessingJob",
        "metadata": {"name": "x", "generation": generation},
    }
    if status is not None:
        obj["status"] = status
    return obj


def _cond(kind: str, status: str, reason: str = "R", message: str = "") -> dict[str, Any]:
    return {"type": kind, "status": status, "reason": reason, "message": message}


HEALTH_CASES: list[tuple[str, dict[str, Any], str, str]] = [
    ("no status", _vpj(None), "Progressing", "accept"),
    ("empty status", _vpj({}), "Progressing", "accept"),
    (
        "stale generation",
        _vpj({"phase": "Succeeded", "observedGeneration": 1}, generation=2),
        "Progressing",
        "generation 2",
    ),
    ("queued", _vpj({"phase": "Queued", "observedGeneration": 1}), "Progressing", "Queued"),
    (
        "running",
        _vpj(
            {
                "phase": "Running",
                "observedGeneration": 1,
                "message": "cutting 2/3",
                "progress": {"stage": "Cutting", "percent": 64},
            }
        ),
        "Progressing",
        "Running 64%: cutting 2/3",
    ),
    (
        "succeeded",
        _vpj(
            {
                "phase": "Succeeded",
                "observedGeneration": 1,
                "segmentsSummary": "3/3",
                "conditions": [_cond("Complete", "True"), _cond("Failed", "False")],
            }
        ),
        "Healthy",
        "3/3",
    ),
    (
        "failed",
        _vpj(
            {
                "phase": "Failed",
                "observedGeneration": 1,
                "conditions": [_cond("Failed", "True", "LoginRequired", "needs cookies")],
                "error": {
                    "category": "Access",
                    "reason": "LoginRequired",
                    "message": "supply a cookies Secret",
                },
            }
        ),
        "Degraded",
        "LoginRequired: supply a cookies Secret",
    ),
    (
        "failed condition only",
        _vpj({"phase": "Running", "conditions": [_cond("Failed", "True", "Deadline", "late")]}),
        "Degraded",
        "Deadline: late",
    ),
    ("cancelled", _vpj({"phase": "Cancelled", "observedGeneration": 1}), "Suspended", "Cancel"),
]


@pytest.mark.parametrize(
    ("obj", "health", "message"),
    [c[1:] for c in HEALTH_CASES],
    ids=[c[0] for c in HEALTH_CASES],
)
def test_argocd_health_lua(obj: dict[str, Any], health: str, message: str) -> None:
    lua = lupa.LuaRuntime(unpack_returned_tuples=True)
    lua.globals().obj = lua.table_from(obj, recursive=True)
    script = (GITOPS / "argocd" / "health.lua").read_text()
    result = lua.execute(script)
    assert result["status"] == health
    assert message in result["message"]


FLUX_CASES: list[tuple[dict[str, Any], str]] = [
    ({"status": {}}, "inProgress"),
    ({"status": {"phase": "Pending"}}, "inProgress"),
    ({"status": {"phase": "Queued"}}, "inProgress"),
    ({"status": {"phase": "Running"}}, "inProgress"),
    ({"status": {"phase": "Succeeded"}}, "current"),
    ({"status": {"phase": "Cancelled"}}, "current"),
    ({"status": {"phase": "Failed"}}, "failed"),
]


@pytest.mark.parametrize(("obj", "expected"), FLUX_CASES)
def test_flux_health_expressions(obj: dict[str, Any], expected: str) -> None:
    flux = yaml.safe_load((GITOPS / "flux" / "kustomization.yaml").read_text())
    (check,) = flux["spec"]["healthCheckExprs"]
    assert (check["apiVersion"], check["kind"]) == ("videojobs.io/v1alpha1", "VideoProcessingJob")
    env = celpy.Environment()
    activation = {key: celpy.json_to_cel(value) for key, value in obj.items()}
    results = {
        name: bool(env.program(env.compile(check[name])).evaluate(activation))
        for name in ("current", "failed", "inProgress")
    }
    assert [name for name, hit in results.items() if hit] == [expected]
