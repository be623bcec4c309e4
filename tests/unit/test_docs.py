"""docs/resource.md documents every field of the spec and status models."""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel

from videojobs.models import VideoProcessingJobSpec, VideoProcessingJobStatus


def _aliases(model: type[BaseModel], seen: set[type] | None = None) -> set[str]:
    seen = seen if seen is not None else set()
    if model in seen:
        return set()
    seen.add(model)
    names = set()
    for name, field in model.model_fields.items():
        names.add(field.alias or name)
        for arg in _types(field.annotation):
            if isinstance(arg, type) and issubclass(arg, BaseModel):
                names |= _aliases(arg, seen)
    return names


def _types(annotation: object) -> list[object]:
    args = getattr(annotation, "__args__", ())
    return [annotation, *[t for a in args for t in _types(a)]]


def test_every_field_is_documented(repo: Path) -> None:
    text = (repo / "docs" / "resource.md").read_text()
    fields = _aliases(VideoProcessingJobSpec) | _aliases(VideoProcessingJobStatus)
    missing = sorted(f for f in fields if f"`{f}`" not in text and f"{f}`" not in text)
    assert missing == []
