"""The chart and the operator fit together: the Job the operator would build, with the settings
the chart renders, runs as the ServiceAccount the chart creates, is selected by the chart's
worker NetworkPolicy, and validates strictly against Kubernetes' schemas."""

from __future__ import annotations

import os
from typing import Any

import pytest
import yaml

from tests.chart.chartkit import REPO, load_manifests, objects, validate_k8s
from videojobs.models.resource import VideoProcessingJob
from videojobs_operator.manifest import build_job
from videojobs_operator.settings import OperatorSettings

E2E = REPO / ".ci" / "e2e"
VALUES = {
    "rbac": {"scope": "namespaced"},
    "networkPolicy": {"enabled": True},
    "clipsPvc": {"create": True},
    "operator": {"config": {"namespaces": ["videojobs-e2e"]}},
}


def _settings(objs: list[dict[str, Any]], monkeypatch: pytest.MonkeyPatch) -> OperatorSettings:
    deployment = next(o for o in objs if o["kind"] == "Deployment")
    env = deployment["spec"]["template"]["spec"]["containers"][0]["env"]
    for name in list(os.environ):
        if name.startswith("VIDEOJOBS_"):
            monkeypatch.delenv(name)
    for var in env:
        if var["name"].startswith("VIDEOJOBS_"):
            monkeypatch.setenv(var["name"], var["value"])
    return OperatorSettings()


def _resources() -> list[dict[str, Any]]:
    docs = load_manifests(E2E / "manifests" / "jobs.yaml")
    found = []
    for doc in docs:
        if doc["kind"] == "VideoProcessingJob":
            doc["metadata"].update(uid="6f1c1a8e-1111-4222-8333-444455556666", generation=1)
            found.append(doc)
    return found


@pytest.mark.parametrize("values", [VALUES, yaml.safe_load((E2E / "values-kind.yaml").read_text())])
def test_operator_jobs_fit_the_chart(
    values: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    objs = objects(values)
    settings = _settings(objs, monkeypatch)
    for resource in _resources():
        spec = VideoProcessingJob.from_manifest(resource).spec
        job = build_job(resource, spec, settings)
        namespace = resource["metadata"]["namespace"]
        job["metadata"].setdefault("namespace", namespace)
        validate_k8s(job)
        pod = job["spec"]["template"]
        service_accounts = {
            o["metadata"]["name"]
            for o in objs
            if o["kind"] == "ServiceAccount" and o["metadata"]["namespace"] == namespace
        }
        assert pod["spec"]["serviceAccountName"] in service_accounts
        policies = [
            o
            for o in objs
            if o["kind"] == "NetworkPolicy" and o["metadata"]["namespace"] == namespace
        ]
        if values.get("networkPolicy", {}).get("enabled"):
            selector = policies[0]["spec"]["podSelector"]["matchLabels"]
            assert selector.items() <= pod["metadata"]["labels"].items()
        claims = [
            v["persistentVolumeClaim"]["claimName"]
            for v in pod["spec"]["volumes"]
            if "persistentVolumeClaim" in v
        ]
        pvcs = {
            o["metadata"]["name"]
            for o in objs
            if o["kind"] == "PersistentVolumeClaim" and o["metadata"]["namespace"] == namespace
        }
        assert set(claims) <= pvcs
        container = pod["spec"]["containers"][0]
        assert container["image"] == settings.worker_image
        assert container["securityContext"]["readOnlyRootFilesystem"] is True
