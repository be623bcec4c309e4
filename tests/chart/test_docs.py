"""The platform docs: relative links resolve, and the files they name exist."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.chart.chartkit import REPO

DOCS = [
    REPO / "docs" / "install.md",
    REPO / "docs" / "configuration.md",
    REPO / "docs" / "architecture.md",
    REPO / "docs" / "troubleshooting.md",
    REPO / "examples" / "gitops" / "README.md",
    REPO / "charts" / "videojobs" / "README.md",
]
LINK = re.compile(r"\]\(([^)#\s]+)(?:#[^)]*)?\)")
REPO_PATH = re.compile(r"`((?:charts|crds|docs|examples|operator|job_image|\.ci|tests)/[\w./-]+)`")


@pytest.mark.parametrize("doc", DOCS, ids=[d.name for d in DOCS])
def test_links_and_paths_resolve(doc: Path) -> None:
    text = doc.read_text()
    for target in LINK.findall(text):
        if "://" in target:
            continue
        assert (doc.parent / target).exists(), f"{doc.name}: broken link {target}"
    for path in REPO_PATH.findall(text):
        path = path.rstrip(".")
        if "*" in path or path.endswith("/artifacts/"):
            continue
        assert (REPO / path).exists() or (REPO / path.rstrip("/")).exists(), (
            f"{doc.name}: names {path}, which does not exist"
        )
