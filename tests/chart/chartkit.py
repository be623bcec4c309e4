"""Render the videojobs chart offline and check objects against Kubernetes' schemas.

``helm-python-sdk`` runs Helm v4's own loader, renderer, linter and schema validator as a
library (no ``helm`` binary), and ``kubernetes-validate`` holds Kubernetes' JSON schemas offline.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import helm_python as helm
import jsonschema
import kubernetes_validate
import yaml

REPO = Path(__file__).resolve().parents[2]
CHART_DIR = REPO / "charts" / "videojobs"
CRD_FILE = REPO / "crds" / "videoprocessingjobs.yaml"
RELEASE = "vj"
RELEASE_NAMESPACE = "videojobs-system"

KUBE_VERSIONS = ("1.29", "1.37")
"""The oldest Kubernetes the chart supports (Chart.yaml kubeVersion) and the newest schema set."""

# Helm logs an INFO line to stderr each time it follows the CRD symlink.
helm.disable_logging()


@functools.cache
def chart() -> helm.Chart:
    """The chart, loaded once per test session (charts are immutable)."""
    return helm.Chart.load(CHART_DIR)


def render(values: dict[str, Any] | None = None) -> dict[str, str]:
    """Template path -> rendered text, like ``helm template vj charts/videojobs``."""
    return chart().render(values or {}, name=RELEASE, namespace=RELEASE_NAMESPACE)


def objects(values: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    """Every object the chart renders (NOTES.txt excluded), in template order."""
    found: list[dict[str, Any]] = []
    for path, text in sorted(render(values).items()):
        if path.endswith("NOTES.txt"):
            continue
        for doc in yaml.safe_load_all(text):
            if doc is not None:
                assert isinstance(doc, dict), f"{path}: a document is not a mapping"
                found.append(doc)
    return found


def notes(values: dict[str, Any] | None = None) -> str:
    """The rendered NOTES.txt."""
    return render(values)[f"{chart().name}/templates/NOTES.txt"]


def find(objs: list[dict[str, Any]], kind: str, name: str | None = None) -> list[dict[str, Any]]:
    """Objects of a kind (and name)."""
    return [
        o for o in objs if o["kind"] == kind and (name is None or o["metadata"]["name"] == name)
    ]


def one(objs: list[dict[str, Any]], kind: str, name: str | None = None) -> dict[str, Any]:
    """The single object of a kind (and name)."""
    matches = find(objs, kind, name)
    assert len(matches) == 1, f"expected one {kind} {name or ''}, found {len(matches)}"
    return matches[0]


SINCE: dict[tuple[str, str], tuple[int, int]] = {
    ("admissionregistration.k8s.io/v1", "ValidatingAdmissionPolicy"): (1, 30),
    ("admissionregistration.k8s.io/v1", "ValidatingAdmissionPolicyBinding"): (1, 30),
}
"""Kinds the chart renders only on the versions that serve them (``workerRbac.
ownResourcePolicy: auto`` reads the server's version: helm leaves them out below 1.30)."""


def validate_k8s(obj: dict[str, Any], versions: tuple[str, ...] = KUBE_VERSIONS) -> None:
    """Validate a built-in object strictly (unknown fields fail) for each Kubernetes version
    that serves its kind."""
    since = SINCE.get((obj.get("apiVersion", ""), obj.get("kind", "")))
    if since is not None:
        versions = tuple(v for v in versions if tuple(map(int, v.split(".")[:2])) >= since)
        assert versions, f"{obj['kind']} is served by none of {KUBE_VERSIONS}"
    for version in versions:
        try:
            kubernetes_validate.validate(obj, version, strict=True)
        except kubernetes_validate.ValidationError as exc:
            path = "/".join(str(p) for p in exc.absolute_path)
            raise AssertionError(
                f"{obj['kind']}/{obj['metadata'].get('name')} invalid for Kubernetes "
                f"{version} at {path or '<root>'}: {exc.message}"
            ) from None


@functools.cache
def crd() -> dict[str, Any]:
    """The repository's CRD."""
    loaded: dict[str, Any] = yaml.safe_load(CRD_FILE.read_text())
    return loaded


@functools.cache
def _vpj_validator() -> jsonschema.Draft7Validator:
    version = next(v for v in crd()["spec"]["versions"] if v["storage"])
    return jsonschema.Draft7Validator(version["schema"]["openAPIV3Schema"])


def validate_vpj(obj: dict[str, Any]) -> None:
    """Validate a VideoProcessingJob against the CRD's schema and the shared pydantic model."""
    from videojobs.models.resource import VideoProcessingJob

    assert obj["apiVersion"] == "videojobs.io/v1alpha1", obj["apiVersion"]
    errors = sorted(_vpj_validator().iter_errors(obj), key=lambda e: list(e.absolute_path))
    assert not errors, "; ".join(
        f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in errors
    )
    VideoProcessingJob.from_manifest(obj)


def validate_any(obj: dict[str, Any]) -> None:
    """A VideoProcessingJob against the CRD, anything else against Kubernetes' schemas."""
    if obj.get("kind") == "VideoProcessingJob":
        validate_vpj(obj)
    else:
        validate_k8s(obj)


def load_manifests(path: Path) -> Iterator[dict[str, Any]]:
    """The documents of a YAML file, skipping empty ones."""
    for doc in yaml.safe_load_all(path.read_text()):
        if doc is not None:
            yield doc
