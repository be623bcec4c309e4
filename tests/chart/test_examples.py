"""Non-VideoProcessingJob objects in examples/*.yaml validate strictly against Kubernetes' schemas.

The VideoProcessingJobs themselves are checked against the CRD by the contract tests
(tests/unit); here they are only counted, so that a file with no objects at all is noticed.
examples/gitops has its own tests (test_gitops.py).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.chart.chartkit import REPO, load_manifests, validate_k8s

EXAMPLES = sorted((REPO / "examples").glob("*.yaml"))


def test_there_are_examples() -> None:
    assert EXAMPLES


@pytest.mark.parametrize("path", EXAMPLES, ids=[p.name for p in EXAMPLES])
def test_example_objects_validate(path: Path) -> None:
    docs = list(load_manifests(path))
    assert docs, f"{path.name} has no objects"
    for doc in docs:
        assert isinstance(doc, dict) and "kind" in doc, f"{path.name}: not a Kubernetes object"
        if doc["kind"] != "VideoProcessingJob":
            validate_k8s(doc)
