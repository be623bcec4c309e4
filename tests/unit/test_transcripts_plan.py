"""`videojobs plan` on transcripts in the new formats: quote-anchored knowledge points land on
their cues."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from videojobs_cli import main

DATA = Path(__file__).resolve().parents[1] / "data" / "transcripts"

MANIFEST = """\
apiVersion: videojobs.io/v1alpha1
kind: VideoProcessingJob
metadata:
  name: talk
spec:
  source:
    url: "https://media.example.org/talk.mp4"
  transcript:
    format: {fmt}
    configMapKeyRef: {{name: talk, key: {key}}}
  knowledgePoints:
    - {{id: welcome, title: Welcome, quote: "welcome to the course"}}
    - {{id: pods, title: Pods, quote: "A pod runs one or more containers"}}
    - {{id: next, title: Next up, quote: "next up deployments"}}
  output:
    storage:
      pvc: {{claimName: clips}}
"""


def plan(tmp_path: Path, sample: str, fmt: str, capsys: pytest.CaptureFixture[str]) -> dict:
    shutil.copy(DATA / sample, tmp_path / sample)
    manifest = tmp_path / "job.yaml"
    manifest.write_text(MANIFEST.format(fmt=fmt, key=sample))
    assert main(["plan", str(manifest), "--output", "json"]) == 0
    return json.loads(capsys.readouterr().out)


@pytest.mark.parametrize("fmt", ["auto", "whisper-cpp-json"])
@pytest.mark.parametrize("sample", ["sample.whisper-cpp.json", "sample.whisper-cpp-full.json"])
def test_plan_on_whisper_cpp_json_places_quotes_at_their_cues(
    tmp_path: Path, sample: str, fmt: str, capsys: pytest.CaptureFixture[str]
) -> None:
    result = plan(tmp_path, sample, fmt, capsys)
    got = [(s["knowledgeId"], s["start"], s["end"], s["cueIndices"]) for s in result["segments"]]
    # each starts at the cue its quote is in and runs to the next point (the last to the end)
    assert got == [
        ("welcome", 0.0, 6.0, [1, 2]),
        ("pods", 6.0, 9.25, [3, 3]),
        ("next", 9.25, 12.0, [4, 4]),
    ]
    assert [n for n in result["notes"] if "quote matched" in n] == [
        "spec.knowledgePoints[0]: quote matched cue 1 at 00:00:00.000 (similarity 100)",
        "spec.knowledgePoints[1]: quote matched cue 3 at 00:00:06.000 (similarity 100)",
        "spec.knowledgePoints[2]: quote matched cue 4 at 00:00:09.250 (similarity 100)",
    ]


@pytest.mark.parametrize(
    ("sample", "fmt"),
    [
        ("sample.aws-transcribe.json", "aws-transcribe-json"),
        ("sample.json3", "youtube-json3"),
        ("sample.ttml", "ttml"),
        ("sample.ass", "ass"),
        ("sample.smi", "sami"),
    ],
)
def test_plan_on_other_formats_places_quotes_at_their_cues(
    tmp_path: Path, sample: str, fmt: str, capsys: pytest.CaptureFixture[str]
) -> None:
    result = plan(tmp_path, sample, "auto", capsys)
    assert [(s["start"], s["cueIndices"][0]) for s in result["segments"]] == [
        (0.0, 1),
        (6.0, 3),
        (9.25, 4),
    ]


WORDS_MANIFEST = """\
apiVersion: videojobs.io/v1alpha1
kind: VideoProcessingJob
metadata:
  name: talk
spec:
  source:
    url: "https://media.example.org/talk.mp4"
  transcript:
    configMapKeyRef: {{name: talk, key: {key}}}
  segmentation: {{snapToCues: false, minDuration: 0s, shortSegments: keep}}
  knowledgePoints:
    - {{id: welcome, title: Welcome, quote: "welcome to the course"}}
    - {{id: pods, title: Pods, quote: "pods and services"}}
    - {{id: containers, title: Containers, quote: "one or more containers"}}
  output:
    storage:
      pvc: {{claimName: clips}}
"""


@pytest.mark.parametrize(
    ("sample", "starts"),
    [
        # word times (-ojf tokens, WhisperX, AWS, YouTube automatic captions): the first word
        ("sample.whisper-cpp-full.json", [0.0, 4.5, 7.38]),
        ("sample.whisperx.json", [0.0, 4.5, 7.38]),
        ("sample.aws-transcribe.json", [0.0, 4.5, 7.38]),
        ("sample.json3", [0.0, 4.5, 7.38]),
        ("sample.srv3", [0.0, 4.5, 7.38]),
        # no word times: the start of the cue the quote starts in
        ("sample.whisper-cpp.json", [0.0, 2.5, 6.0]),
        ("sample.srt", [0.0, 2.5, 6.0]),
    ],
)
def test_a_quote_that_starts_mid_cue_is_cut_at_its_first_word_when_word_times_exist(
    tmp_path: Path, sample: str, starts: list[float], capsys: pytest.CaptureFixture[str]
) -> None:
    shutil.copy(DATA / sample, tmp_path / sample)
    manifest = tmp_path / "job.yaml"
    manifest.write_text(WORDS_MANIFEST.format(key=sample))
    assert main(["plan", str(manifest), "--output", "json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert [s["start"] for s in result["segments"]] == starts
    # "pods": word 5 of cue 2 (2.5 s + 4 x 0.5 s); "one": word 4 of cue 3 (6.0 s + 3 x 0.46 s)
    assert [s["cueIndices"][0] for s in result["segments"]] == [1, 2, 3]
