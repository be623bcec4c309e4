"""Every deliberately broken manifest in tests/data/invalid/ fails validation with a message that
names the field (camelCase path) or the line, and `videojobs validate` exits 1."""

from __future__ import annotations

from pathlib import Path

import pytest

from videojobs_cli import main

INVALID = Path(__file__).resolve().parent.parent / "data" / "invalid"

# file name -> (extra arguments, substrings the output must contain)
EXPECTED: dict[str, tuple[list[str], list[str]]] = {
    "absolute-pvc-path.yaml": ([], ["spec.output.storage.pvc.path, line 12:", "'/etc'"]),
    "ambiguous-quote.yaml": ([], ["spec.knowledgePoints[0].quote, line 21:", "ambiguous"]),
    "bad-naming-format.yaml": ([], ["spec.output.naming, line 11:", "format code 'd'"]),
    "bad-naming-placeholder.yaml": ([], ["spec.output.naming, line 11:", "{chapter}"]),
    "bad-seed-json.yaml": ([], ["spec.transcript.inline, line 17:", "knowledge_points[1]"]),
    "bad-time.yaml": ([], ["spec.knowledgePoints[0].start, line 24:", "'1:2:3:4'"]),
    "bad-yaml.yaml": ([], ["yaml, line 10:", "not valid YAML"]),
    "both-segments-and-transcript.yaml": ([], ["spec, line 5:", "exactly one of segments"]),
    "cue-range-past-end.yaml": ([], ["spec.knowledgePoints[0].cues, line 24:", "'2-7'"]),
    "duplicate-knowledge-id.yaml": ([], ["spec.knowledgePoints, line 23:", "'basics'"]),
    "empty-transcript.yaml": ([], ["spec.transcript.inline:", "no cues"]),
    "end-before-start.yaml": ([], ["spec.segments[1].end, line 10:", "must be after start"]),
    "float-time.yaml": ([], ["spec.segments[0].end, line 9:", "as a string"]),
    "malformed-json.yaml": ([], ["spec.transcript.inline, line 13:", "invalid JSON"]),
    "malformed-srt.yaml": ([], ["spec.transcript.inline, line 16:", "expected timings"]),
    "malformed-vtt.yaml": ([], ["spec.transcript.inline, line 15:", "expected cue timings"]),
    "missing-api-version.yaml": ([], ["apiVersion, line 2:", "videojobs.io/v1alpha1"]),
    "missing-configmap.yaml": ([], ["spec.transcript.configMapKeyRef, line 9:", "no-such"]),
    "no-formats.yaml": ([], ["spec.output.formats, line 11:", "at least 1 item"]),
    "no-knowledge-points.yaml": ([], ["spec.knowledgePoints, line 5:", "no knowledge points"]),
    "overlap-reject.yaml": ([], ["spec.segments[1], line 10:", "overlap is reject"]),
    "range-past-duration.yaml": (
        ["--duration", "60"],
        ["spec.segments[2].start, line 12:", "after the end of the source"],
    ),
    "short-segment-reject.yaml": ([], ["spec.segments[1], line 10:", "minDuration"]),
    "two-anchors.yaml": ([], ["spec.knowledgePoints[0], line 24:", "exactly one of start"]),
    "two-storage-backends.yaml": ([], ["spec.output.storage, line 11:", "exactly one of pvc"]),
    "unknown-field.yaml": ([], ["spec.output.formatz, line 11:", "unknown field"]),
    "unknown-format.yaml": ([], ["spec.transcript.format, line 9:", "'docx'"]),
    "unmatched-quote.yaml": ([], ["spec.knowledgePoints[1].quote, line 25:", "not found"]),
}


def test_every_invalid_file_has_an_expectation() -> None:
    files = {p.name for p in INVALID.glob("*.yaml")}
    assert files == set(EXPECTED)
    assert len(files) >= 15


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_invalid_manifest_fails_with_a_named_field_or_line(
    name: str, capsys: pytest.CaptureFixture[str]
) -> None:
    args, expected = EXPECTED[name]
    path = str(INVALID / name)
    assert main(["validate", *args, path]) == 1
    out = capsys.readouterr()
    lines = out.err.strip().splitlines()
    assert lines, "no problem reported"
    assert all(line.startswith(f"{path}: ") for line in lines), lines
    for text in expected:
        assert text in out.err, out.err
    assert out.out == ""


def test_range_past_duration_is_valid_without_a_duration(capsys: pytest.CaptureFixture) -> None:
    """The duration is what makes it invalid: without it the plan is fine."""
    assert main(["validate", str(INVALID / "range-past-duration.yaml")]) == 0
    assert main(["validate", "--duration", "1m30s", str(INVALID / "range-past-duration.yaml")]) == 0
    assert "valid (3 clips)" in capsys.readouterr().out


def test_plan_reports_the_same_problem(capsys: pytest.CaptureFixture[str]) -> None:
    path = str(INVALID / "range-past-duration.yaml")
    assert main(["plan", "--duration", "00:01:00", path]) == 1
    assert f"{path}: spec.segments[2].start, line 12:" in capsys.readouterr().err
