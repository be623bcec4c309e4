"""The CLI's result table and manifest (issue 26, item 9): the note column fits the terminal
(long notes in full below it), the planner's notes are shown, and ``manifest.json`` names its
clips relative to itself (no absolute ``file://`` paths)."""

from __future__ import annotations

import io

from videojobs.models import OutputFile, SegmentPlan, SegmentResult, SourceInfo
from videojobs_worker.local import print_results
from videojobs_worker.publish import relative_uris
from videojobs_worker.runner import RunResult

LONG = "smart cut: " + "the first frames were re-encoded up to the next keyframe; " * 6


def _result(note: str | None) -> RunResult:
    segments = [
        SegmentResult(
            index=i, title=f"Part {i}", start=4.0 * (i - 1), end=4.0 * i, stem=f"0{i}-part-{i}",
            precision="smart", note=note if i == 2 else None,
            files=[OutputFile(kind="video", format="mp4", uri=f"file:///out/0{i}-part-{i}.mp4",
                              bytes=123456, sha256="0" * 64)],
        )
        for i in (1, 2, 3)
    ]  # fmt: skip
    plan = SegmentPlan(
        segments=[],
        notes=["knowledge_points[1]: lies inside knowledge_points[0]; dropped (overlap: trim)"],
    )
    return RunResult(
        plan=plan, source=SourceInfo(), segments=segments, manifest_uri="file:///out/manifest.json"
    )


def test_the_note_column_fits_the_terminal_and_the_full_note_follows() -> None:
    assert len(LONG) > 300
    for columns in (80, 120):
        out = io.StringIO()
        print_results(_result(LONG), out, columns=columns)
        text = out.getvalue()
        assert all(len(line) <= columns for line in text.splitlines()), text
        table = text.split("\n\n")[0]
        assert "…" in table  # cut short in the table
        flat = " ".join(text.split())
        assert " ".join(f"clip 2: {LONG}".split()) in flat  # and given in full below it
        assert "plan: knowledge_points[1]: lies inside knowledge_points[0]; dropped" in flat
        assert "manifest: /out/manifest.json" in text


def test_short_notes_stay_in_the_table() -> None:
    out = io.StringIO()
    print_results(_result("resumed"), out, columns=80)
    assert "clip 2:" not in out.getvalue() and "resumed" in out.getvalue()


def test_manifest_uris_are_relative_to_the_manifest() -> None:
    manifest = {
        "segments": [
            {"files": [{"uri": "file:///data/job%201/01-a.mp4"}, {"uri": "s3://b/k/01-a.jpg"}]},
            {"files": [{"uri": "file:///elsewhere/02-b.mp4"}]},
        ]
    }
    out = relative_uris(manifest, "file:///data/job%201/manifest.json")
    assert [f["uri"] for s in out["segments"] for f in s["files"]] == [
        "01-a.mp4", "s3://b/k/01-a.jpg", "file:///elsewhere/02-b.mp4"
    ]  # fmt: skip
    assert manifest["segments"][0]["files"][0]["uri"].startswith("file://")  # not changed
    assert relative_uris(manifest, "s3://b/k/manifest.json") == manifest
