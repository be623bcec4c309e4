"""``status.notes`` stays within its bounds and says how many notes it left out."""

from __future__ import annotations

import json

from videojobs.models import VideoProcessingJobStatus
from videojobs.models.status import (
    STATUS_NOTE_MAX_CHARS,
    STATUS_NOTES_MAX,
    STATUS_NOTES_MAX_BYTES,
    status_notes,
)


def test_few_short_notes_are_kept_as_they_are() -> None:
    notes = ["spec.knowledgePoints[1]: end 00:00:30.000 clamped to the source end 00:00:12.000"]
    assert status_notes(notes) == notes
    assert status_notes([]) == []


def test_many_or_long_notes_are_bounded_and_the_rest_counted() -> None:
    many = [f"spec.knowledgePoints[{i}]: snapped to cue edges" for i in range(300)]
    kept = status_notes(many)
    assert len(kept) == STATUS_NOTES_MAX
    assert kept[:-1] == many[: STATUS_NOTES_MAX - 1]
    assert kept[-1] == f"... and {300 - STATUS_NOTES_MAX + 1} more notes (see manifest.json)"
    long = ["é" * 5000] * 200
    kept = status_notes(long)
    assert all(len(n) <= STATUS_NOTE_MAX_CHARS for n in kept)
    assert len(json.dumps(kept, ensure_ascii=False).encode()) <= STATUS_NOTES_MAX_BYTES
    assert kept[-1].endswith("more notes (see manifest.json)")
    # what the worker writes, the status model reads back
    status = VideoProcessingJobStatus.model_validate({"notes": kept})
    assert status.notes == kept
