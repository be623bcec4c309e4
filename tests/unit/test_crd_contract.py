"""The committed CRD is exactly what the models generate, and it is structural."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from videojobs.crd import build_crd, render_crd
from videojobs.models import VideoProcessingJobSpec


def test_committed_crd_is_fresh(repo: Path) -> None:
    committed = (repo / "crds" / "videoprocessingjobs.yaml").read_text()
    assert committed == render_crd(), (
        "crds/videoprocessingjobs.yaml is stale: regenerate it with `videojobs crd`"
    )


def _walk(node: dict[str, Any], path: str = "") -> list[tuple[str, dict[str, Any]]]:
    found = [(path, node)]
    for name, child in node.get("properties", {}).items():
        found += _walk(child, f"{path}.{name}")
    if "items" in node:
        found += _walk(node["items"], f"{path}[]")
    return found


def test_schema_is_structural() -> None:
    schema = build_crd()["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    for path, node in _walk(schema):
        assert not {"$ref", "anyOf", "oneOf", "allOf", "$defs", "title"} & node.keys(), path
        if node.get("x-kubernetes-int-or-string"):
            assert "type" not in node, path
        else:
            assert "type" in node, f"{path} has no type"
        if "properties" in node:
            assert "additionalProperties" not in node, path


def test_spec_properties_match_model_aliases() -> None:
    schema = build_crd()["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    spec_schema = schema["properties"]["spec"]
    aliases = {f.alias or n for n, f in VideoProcessingJobSpec.model_fields.items()}
    assert set(spec_schema["properties"]) == aliases
    required = {f.alias for f in VideoProcessingJobSpec.model_fields.values() if f.is_required()}
    assert set(spec_schema["required"]) == required


def test_crd_names_and_columns() -> None:
    crd = yaml.safe_load(render_crd().split("\n", 2)[2])
    assert crd["metadata"]["name"] == "videoprocessingjobs.videojobs.io"
    assert crd["spec"]["names"]["shortNames"] == ["vpj"]
    version = crd["spec"]["versions"][0]
    assert version["subresources"] == {"status": {}}
    columns = [c["name"] for c in version["additionalPrinterColumns"]]
    assert {"Phase", "Progress", "Segments", "Age"} <= set(columns)
