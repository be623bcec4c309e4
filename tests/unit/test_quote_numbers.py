"""Issue 26 item 7: a quote said exactly once is not ambiguous because a nearby cue differs from
it only by a number. Exact matches outrank fuzzy ones, and numbers are significant: a window with
the quote's numbers outranks one with other numbers. The transcripts go through the real parsers.
"""

from __future__ import annotations

import json

import pytest

from tests.unit.quote_reference import reference_match_quote
from tests.unit.test_quote_index import outcome
from videojobs.errors import PlanError
from videojobs.models import Transcript, VideoProcessingJobSpec
from videojobs.planning import match_quote, plan_segments
from videojobs.transcripts import parse_transcript

STEPS_VTT = """WEBVTT

00:00:00.000 --> 00:00:04.000
Step 1: open the file.

00:00:04.000 --> 00:00:08.000
Step 2: open the file.

00:00:08.000 --> 00:00:12.000
Step 3: save it and close the editor.
"""

STEPS_SRT = """1
00:00:00,000 --> 00:00:04,000
Step 1: open the file.

2
00:00:04,000 --> 00:00:08,000
Step 2: open the file.

3
00:00:08,000 --> 00:00:12,000
Step 3: save it and close the editor.
"""

STEPS_WHISPER = json.dumps(
    {
        "text": "",
        "segments": [
            {
                "id": k,
                "start": 4.0 * k,
                "end": 4.0 * k + 4,
                "text": f" Step {k + 1}: open the file.",
                "words": [
                    {"word": w, "start": 4.0 * k + 0.5 * j, "end": 4.0 * k + 0.5 * j + 0.4}
                    for j, w in enumerate(f"Step {k + 1}: open the file.".split())
                ],
            }
            for k in range(2)
        ],
    }
)


def steps(fmt: str) -> Transcript:
    text = {"webvtt": STEPS_VTT, "srt": STEPS_SRT, "whisper-json": STEPS_WHISPER}[fmt]
    transcript = parse_transcript(text, fmt)
    assert transcript.format == fmt
    return transcript


@pytest.mark.parametrize("fmt", ["webvtt", "srt", "whisper-json"])
@pytest.mark.parametrize(
    ("quote", "cue"), [("Step 1: open the file", 1), ("step 2: open the file.", 2)]
)
def test_an_exact_quote_resolves_although_a_nearby_cue_differs_only_by_a_number(
    fmt: str, quote: str, cue: int
) -> None:
    transcript = steps(fmt)
    found = match_quote(quote, transcript, "q")
    assert (found.cue.index, found.score) == (cue, 100.0)
    assert found.start == transcript.cues[cue - 1].start
    ref = reference_match_quote(quote, transcript, "q")
    assert (ref.cue.index, ref.word, ref.score) == (cue, found.word, 100.0)


@pytest.mark.parametrize("fmt", ["webvtt", "srt"])
def test_a_fuzzy_quote_resolves_to_the_cue_with_its_number(fmt: str) -> None:
    transcript = steps(fmt)
    found = match_quote("step 2: opens the file", transcript, "q")
    assert found.cue.index == 2
    assert 90.0 <= found.score < 100.0
    assert outcome(lambda: reference_match_quote("step 2: opens the file", transcript, "q")) == (
        2,
        found.word,
        found.score,
    )


def test_a_quote_whose_number_is_nowhere_stays_ambiguous() -> None:
    transcript = steps("webvtt")
    with pytest.raises(PlanError) as info:
        match_quote("step 7: open the file", transcript, "q")
    assert "ambiguous" in str(info.value)
    assert "00:00:00.000" in str(info.value) and "00:00:04.000" in str(info.value)


def test_a_quote_without_its_number_said_twice_stays_ambiguous() -> None:
    with pytest.raises(PlanError, match="ambiguous"):
        match_quote("open the file", steps("webvtt"), "q")


def test_an_exact_quote_outranks_a_near_copy_elsewhere() -> None:
    vtt = (
        "WEBVTT\n\n"
        "00:00:00.000 --> 00:00:05.000\nthe pod restarts when its liveness probe fails\n\n"
        "00:00:05.000 --> 00:00:09.000\nalpha beta gamma delta epsilon zeta\n\n"
        "00:00:09.000 --> 00:00:14.000\nthe pod restarts when its liveness probes fail\n"
    )
    transcript = parse_transcript(vtt)
    for quote, cue in [
        ("The pod restarts when its liveness probe fails.", 1),
        ("the pod restarts when its liveness probes fail", 3),
    ]:
        found = match_quote(quote, transcript, "q")
        assert (found.cue.index, found.score) == (cue, 100.0)
    # a quote exactly like neither is as close to both: ambiguous, as before
    with pytest.raises(PlanError, match="ambiguous"):
        match_quote("the pod restarts when its liveness probes fails", transcript, "q")


def test_knowledge_points_quoting_numbered_steps_each_get_their_step() -> None:
    spec = VideoProcessingJobSpec.model_validate(
        {
            "source": {"url": "https://example.org/v.mp4"},
            "transcript": {"inline": STEPS_SRT},
            "knowledgePoints": [
                {"id": "one", "title": "One", "quote": "Step 1: open the file."},
                {"id": "two", "title": "Two", "quote": "Step 2: open the file."},
                {"id": "three", "title": "Three", "quote": "Step 3: save it"},
            ],
            "segmentation": {"minDuration": "0"},
            "output": {"storage": {"pvc": {"claimName": "c"}}},
        }
    )
    plan = plan_segments(spec, parse_transcript(STEPS_SRT))
    assert [(s.knowledge_id, s.start, s.end) for s in plan.segments] == [
        ("one", 0.0, 4.0),
        ("two", 4.0, 8.0),
        ("three", 8.0, 12.0),
    ]
