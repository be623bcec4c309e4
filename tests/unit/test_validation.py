"""Manifest loading: multi-document files, ConfigMap transcripts, problem paths and lines."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest
from pydantic import ValidationError

from videojobs.errors import InvalidSpec, TranscriptError
from videojobs.models import VideoProcessingJobSpec
from videojobs.planning import NeedsTranscript
from videojobs.validation import (
    check_file,
    load_job,
    load_manifests,
    loc_to_path,
    path_to_loc,
    problems_from_validation_error,
)

JOB = """\
apiVersion: videojobs.io/v1alpha1
kind: VideoProcessingJob
metadata:
  name: {name}
spec:
  source:
    url: "https://example.org/v.mp4"
  transcript:
{transcript}
  knowledgePoints:
    - {{id: one, title: One, start: "0"}}
    - {{id: two, title: Two, quote: "second part begins"}}
  output:
    storage:
      pvc: {{claimName: c}}
"""

VTT = """WEBVTT

00:00:00.000 --> 00:00:05.000
First part.

00:00:05.000 --> 00:00:09.000
The second part begins here.
"""


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def job(transcript: str, name: str = "j") -> str:
    return JOB.format(name=name, transcript=textwrap.indent(transcript, "    "))


def test_inline_transcript(tmp_path: Path) -> None:
    inline = "inline: |\n" + textwrap.indent(VTT, "  ") + "language: de\n"
    spec, transcript, plan = load_job(write(tmp_path, "j.yaml", job(inline)))
    assert spec.metadata.name == "j"
    assert transcript is not None and transcript.language == "de"
    assert [(s.knowledge_id, s.start, s.end) for s in plan.segments] == [
        ("one", 0.0, 5.0),
        ("two", 5.0, 9.0),
    ]


def test_configmap_in_the_same_file(tmp_path: Path) -> None:
    cm = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: caps}\ndata:\n  c.vtt: |\n"
    text = (
        cm
        + textwrap.indent(VTT, "    ")
        + "---\n"
        + job("configMapKeyRef: {name: caps, key: c.vtt}")
    )
    _, transcript, plan = load_job(write(tmp_path, "j.yaml", text))
    assert transcript is not None and len(transcript.cues) == 2
    assert len(plan.segments) == 2


def test_configmap_key_as_a_sibling_file(tmp_path: Path) -> None:
    write(tmp_path, "c.vtt", VTT)
    _, transcript, _ = load_job(
        write(tmp_path, "j.yaml", job("configMapKeyRef: {name: x, key: c.vtt}"))
    )
    assert transcript is not None and transcript.cues[1].text == "The second part begins here."


def test_sibling_file_errors_name_the_file_and_its_line(tmp_path: Path) -> None:
    write(tmp_path, "c.vtt", VTT.replace("00:00:05.000 --> 00:00:09.000", "00:00:05 --> nine"))
    with pytest.raises(TranscriptError) as info:
        load_job(write(tmp_path, "j.yaml", job("configMapKeyRef: {name: x, key: c.vtt}")))
    assert str(info.value.problems[0]).startswith("c.vtt, line 6: ")


def test_configmap_errors_give_the_manifest_line(tmp_path: Path) -> None:
    cm = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: caps}\ndata:\n  c.vtt: |\n"
    broken = VTT.replace("00:00:05.000 --> 00:00:09.000", "00:00:05 --> nine")
    text = (
        cm
        + textwrap.indent(broken, "    ")
        + "---\n"
        + job("configMapKeyRef: {name: caps, key: c.vtt}")
    )
    with pytest.raises(TranscriptError) as info:
        load_job(write(tmp_path, "j.yaml", text))
    problem = info.value.problems[0]
    assert problem.path == "ConfigMap/caps[c.vtt]"
    assert text.split("\n")[problem.line - 1].strip() == "00:00:05 --> nine"


def test_quoted_inline_transcript_reports_transcript_lines(tmp_path: Path) -> None:
    inline = 'inline: "WEBVTT\\n\\nnot a cue\\n"'
    with pytest.raises(TranscriptError) as info:
        load_job(write(tmp_path, "j.yaml", job(inline)))
    problem = info.value.problems[0]
    assert problem.line is None and problem.message.startswith("transcript line 3: ")


def test_url_transcript_defers_the_plan(tmp_path: Path) -> None:
    path = write(tmp_path, "j.yaml", job('url: "https://example.org/t.vtt"'))
    [checked] = check_file(path)
    assert checked.plan is None and "worker" in checked.notes[0]
    with pytest.raises(NeedsTranscript) as info:
        load_job(path)
    paths = [p.path for p in info.value.problems]
    assert paths == ["spec.knowledgePoints[1].quote", "spec.transcript.url"]


def test_several_jobs_in_one_file(tmp_path: Path) -> None:
    inline = "inline: |\n" + textwrap.indent(VTT, "  ")
    text = job(inline, "a") + "---\n" + job(inline, "b").replace('"0"', '"00:00:99"')
    path = write(tmp_path, "j.yaml", text)
    with pytest.raises(InvalidSpec) as info:
        check_file(path)
    [problem] = info.value.problems
    assert problem.path == "spec.knowledgePoints[0].start"
    assert "00:00:99" in text.split("\n")[problem.line - 1]
    with pytest.raises(InvalidSpec, match="exactly one VideoProcessingJob"):
        load_job(write(tmp_path, "ok.yaml", job(inline, "a") + "---\n" + job(inline, "b")))
    assert [j.metadata.name for j in load_manifests(tmp_path / "ok.yaml")] == ["a", "b"]


def test_other_kinds_and_empty_files(tmp_path: Path) -> None:
    with pytest.raises(InvalidSpec, match="'Deployment' is not supported"):
        check_file(write(tmp_path, "d.yaml", "apiVersion: apps/v1\nkind: Deployment\n"))
    with pytest.raises(InvalidSpec, match="no YAML document"):
        check_file(write(tmp_path, "e.yaml", "# nothing\n"))
    with pytest.raises(InvalidSpec, match="cannot read"):
        check_file(tmp_path / "missing.yaml")


def test_problems_from_validation_error_uses_camel_case_paths() -> None:
    data = {
        "source": {"url": "https://example.org/v", "maxHeight": 50},
        "transcript": {"inline": "x"},
        "knowledgePoints": [
            {"id": "a", "title": "A", "start": "0"},
            {"id": "b", "title": "B", "start": "later"},
        ],
        "output": {"storage": {"pvc": {"claimName": "c"}}, "thumbnails": "sometimes"},
    }
    with pytest.raises(ValidationError) as info:
        VideoProcessingJobSpec.model_validate(data)
    problems = {p.path: p.message for p in problems_from_validation_error(info.value)}
    assert set(problems) == {
        "spec.source.maxHeight",
        "spec.knowledgePoints[1].start",
        "spec.output.thumbnails",
    }
    assert "(got 50)" in problems["spec.source.maxHeight"]
    assert "'later'" in problems["spec.knowledgePoints[1].start"]
    assert "'sometimes'" in problems["spec.output.thumbnails"]


def test_path_and_loc_convert_both_ways() -> None:
    loc = ("spec", "knowledgePoints", 12, "start")
    assert loc_to_path(loc) == "spec.knowledgePoints[12].start"
    assert path_to_loc("spec.knowledgePoints[12].start") == loc
    assert loc_to_path((0, "a"), "x") == "x[0].a"
