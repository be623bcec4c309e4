"""Rolling automatic captions (issue 27): merged wherever the transcript comes from, their
inline word timestamps kept and used to place quotes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from videojobs.models import Cue
from videojobs.transcripts import is_rolling, merge_rolling, parse_transcript
from videojobs_cli import main

DATA = Path(__file__).resolve().parents[1] / "data" / "transcripts"
YOUTUBE = (DATA / "youtube-auto.vtt").read_text(encoding="utf-8")
LINES = [
    (0.0, 2.36, "welcome to the course"),
    (2.36, 5.01, "today we talk about pods"),
    (5.01, 8.01, "and then services"),
    (8.01, 12.0, "we deploy them with helm"),
]


def test_youtube_file_is_merged_with_word_times() -> None:
    transcript = parse_transcript(YOUTUBE)
    assert [(c.start, c.end, c.text) for c in transcript.cues] == LINES
    assert [c.index for c in transcript.cues] == [1, 2, 3, 4]
    pods = transcript.cues[1]
    assert pods.words is not None
    assert [(w.start, w.end, w.text) for w in pods.words] == [
        (2.36, 2.88, "today"),
        (2.88, 3.2, "we"),
        (3.2, 3.6, "talk"),
        (3.6, 4.1, "about"),
        (4.1, 5.0, "pods"),
    ]
    # every line keeps the words of its first (timed) appearance
    assert all(c.words and " ".join(w.text for w in c.words) == c.text for c in transcript.cues)


def test_unmerged_it_shows_each_line_twice() -> None:
    """What the quote matcher saw before: each line in two overlapping cues."""
    cues = parse_transcript(YOUTUBE, rolling=False).cues
    assert len(cues) == 8
    assert sum("today we talk about pods" in c.text for c in cues) == 3
    assert is_rolling(cues)


def test_srt_converted_from_rolling_captions_is_merged() -> None:
    blocks = []
    for n, (a, b, text) in enumerate(
        [
            ("00:00:00,000", "00:00:02,000", "one two three"),
            ("00:00:02,000", "00:00:04,000", "one two three\nfour five six"),
            ("00:00:04,000", "00:00:06,000", "four five six\nseven eight"),
            ("00:00:06,000", "00:00:08,000", "seven eight\nnine ten"),
        ],
        start=1,
    ):
        blocks.append(f"{n}\n{a} --> {b}\n{text}\n")
    cues = parse_transcript("\n".join(blocks)).cues
    assert [(c.start, c.end, c.text) for c in cues] == [
        (0.0, 2.0, "one two three"),
        (2.0, 4.0, "four five six"),
        (4.0, 6.0, "seven eight"),
        (6.0, 8.0, "nine ten"),
    ]


def test_captions_that_do_not_roll_are_left_alone() -> None:
    text = "WEBVTT\n\n" + "\n".join(
        f"00:00:0{i}.000 --> 00:00:0{i}.900\n{t}\n"
        for i, t in enumerate(["[Music]", "[Music]", "[Music]", "two\nlines", "lines\nagain"])
    )
    cues = parse_transcript(text).cues
    assert [c.text for c in cues] == ["[Music]", "[Music]", "[Music]", "two\nlines", "lines\nagain"]
    assert not is_rolling(cues)


def test_merge_keeps_words_only_when_they_spell_the_lines() -> None:
    from videojobs.models import Word

    cue = Cue(
        index=1,
        start=0,
        end=2,
        text="a b\nc",
        words=[Word(start=0, end=1, text="a"), Word(start=1, end=2, text="x")],
    )
    assert [c.words for c in merge_rolling([cue])] == [None, None]


def _job(tmp: Path, transcript: dict[str, object], snap: bool = False) -> Path:
    doc = {
        "apiVersion": "videojobs.io/v1alpha1",
        "kind": "VideoProcessingJob",
        "metadata": {"name": "roll"},
        "spec": {
            "source": {"url": "https://example.org/v.mp4"},
            "transcript": transcript,
            "knowledgePoints": [
                {"id": "pods", "title": "Pods", "quote": "we talk about pods"},
                {"id": "helm", "title": "Helm", "quote": "deploy them with helm"},
            ],
            "segmentation": {"minDuration": "0", "snapToCues": snap},
            "output": {"storage": {"pvc": {"claimName": "c"}}},
        },
    }
    path = tmp / "job.yaml"
    path.write_text(yaml.safe_dump(doc), encoding="utf-8")
    return path


@pytest.mark.parametrize("where", ["file", "inline", "configmap"])
def test_quotes_land_on_their_words_wherever_the_captions_come_from(
    where: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    if where == "file":
        (tmp_path / "captions.vtt").write_text(YOUTUBE, encoding="utf-8")
        path = _job(tmp_path, {"configMapKeyRef": {"name": "c", "key": "captions.vtt"}})
    elif where == "inline":
        path = _job(tmp_path, {"inline": YOUTUBE})
    else:
        path = _job(tmp_path, {"configMapKeyRef": {"name": "c", "key": "captions.vtt"}})
        configmap = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}}
        configmap["data"] = {"captions.vtt": YOUTUBE}
        path.write_text(path.read_text() + "---\n" + yaml.safe_dump(configmap))
    assert main(["plan", str(path), "--output", "json"]) == 0, capsys.readouterr().err
    plan = json.loads(capsys.readouterr().out)
    # "we talk about pods" starts at the word "we" (2.88 s), not at the cue (2.36 s) nor is it
    # ambiguous between the two cues that showed the line
    assert [(s["knowledgeId"], s["start"]) for s in plan["segments"]] == [
        ("pods", 2.88),
        ("helm", 8.5),
    ]


def test_snapped_quotes_start_with_their_merged_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = _job(tmp_path, {"inline": YOUTUBE}, snap=True)
    assert main(["plan", str(path), "--output", "json"]) == 0, capsys.readouterr().err
    plan = json.loads(capsys.readouterr().out)
    assert [(s["start"], s["end"]) for s in plan["segments"]] == [(2.36, 8.01), (8.01, 12.0)]
