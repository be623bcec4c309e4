"""The planner: each rule on small, hand-checked inputs."""

from __future__ import annotations

from typing import Any

import pytest

from videojobs.errors import PlanError
from videojobs.models import SegmentPlan, Transcript, VideoProcessingJobSpec
from videojobs.planning import NeedsTranscript, match_quote, plan_segments
from videojobs.transcripts import parse_transcript

VTT = """WEBVTT

intro
00:00:00.000 --> 00:00:05.000
Welcome to the course on shell scripting.

00:00:05.000 --> 00:00:12.000
First, let's look at variables and how to quote them.

00:00:12.000 --> 00:00:20.000
Variables hold text; "$name" expands one.

loops-start
00:00:20.000 --> 00:00:26.000
Next up: loops. A for loop walks over a list.

00:00:26.000 --> 00:00:33.000
While loops run until a condition fails.

00:00:33.000 --> 00:00:40.000
Finally, functions group commands under a name.
"""
TRANSCRIPT = parse_transcript(VTT)


def spec(
    points: list[dict[str, Any]] | None = None,
    *,
    segments: list[dict[str, Any]] | None = None,
    naming: str = "{index:02d}-{knowledge_id}-{title}",
    **segmentation: Any,
) -> VideoProcessingJobSpec:
    data: dict[str, Any] = {
        "source": {"url": "https://example.org/v.mp4"},
        "segmentation": segmentation,
        "output": {"naming": naming, "storage": {"pvc": {"claimName": "c"}}},
    }
    if segments is not None:
        data["segments"] = segments
    else:
        data["transcript"] = {"inline": VTT}
        data["knowledgePoints"] = points or []
    return VideoProcessingJobSpec.model_validate(data)


def ranges(plan: SegmentPlan) -> list[tuple[str | None, float, float]]:
    return [(s.knowledge_id, s.start, s.end) for s in plan.segments]


def plan_error(*args: Any, **kwargs: Any) -> str:
    with pytest.raises(PlanError) as info:
        plan_segments(*args, **kwargs)
    return str(info.value)


def kp(id: str, **anchor: Any) -> dict[str, Any]:
    return {"id": id, "title": id.title(), **anchor}


# --- explicit segments ---------------------------------------------------------------------


def test_explicit_segments_are_sorted_and_named() -> None:
    s = spec(
        segments=[
            {"title": "Second", "start": "01:00", "end": "01:30", "knowledgeId": "b"},
            {"title": "First", "start": "0", "end": "30"},
        ]
    )
    plan = plan_segments(s, None)
    assert ranges(plan) == [(None, 0.0, 30.0), ("b", 60.0, 90.0)]
    assert [p.stem for p in plan.segments] == ["01-first", "02-b-second"]
    assert [p.index for p in plan.segments] == [1, 2]
    assert plan.notes == []


# --- anchors --------------------------------------------------------------------------------


def test_start_points_run_to_the_next_start_then_the_transcript_end() -> None:
    s = spec([kp("b", start="20"), kp("a", start="0")])
    assert ranges(plan_segments(s, TRANSCRIPT)) == [("a", 0.0, 20.0), ("b", 20.0, 40.0)]


def test_last_point_runs_to_the_known_duration() -> None:
    s = spec([kp("a", start="0"), kp("b", start="20")])
    assert ranges(plan_segments(s, TRANSCRIPT, 45.0))[-1] == ("b", 20.0, 45.0)


def test_explicit_end_is_kept() -> None:
    s = spec([kp("a", start="0", end="12"), kp("b", start="20")])
    assert ranges(plan_segments(s, TRANSCRIPT)) == [("a", 0.0, 12.0), ("b", 20.0, 40.0)]


@pytest.mark.parametrize(
    ("cues", "expected"),
    [
        ("2", (5.0, 12.0)),
        ("intro", (0.0, 5.0)),
        ("2-3", (5.0, 20.0)),
        ("2 - 3", (5.0, 20.0)),
        ("intro-2", (0.0, 12.0)),
        ("loops-start", (20.0, 26.0)),
        ("loops-start-6", (20.0, 40.0)),
        ("5-6", (26.0, 40.0)),
    ],
)
def test_cues_by_index_id_and_range(cues: str, expected: tuple[float, float]) -> None:
    plan = plan_segments(spec([kp("a", cues=cues)]), TRANSCRIPT)
    assert (plan.segments[0].start, plan.segments[0].end) == expected


@pytest.mark.parametrize(
    ("cues", "message"),
    [("7", "names no cue"), ("0", "names no cue"), ("nope", "names no cue"), ("4-2", "backwards")],
)
def test_bad_cues_name_the_field(cues: str, message: str) -> None:
    text = plan_error(spec([kp("a", start="0"), kp("b", cues=cues)]), TRANSCRIPT)
    assert text.startswith("spec.knowledgePoints[1].cues: ")
    assert message in text


@pytest.mark.parametrize(
    "quote",
    [
        "Next up: loops.",
        "next up loops",
        "NEXT UP, LOOPS!",
        "next up: the loops",  # a word more
        "nxet up loops a for",  # a typo
        "loops. A for loop walks over",
        "let us look at variables and how",  # "let's" spelled out
    ],
)
def test_quote_matching_is_tolerant(quote: str) -> None:
    found = match_quote(quote, TRANSCRIPT, "q")
    expected = 5.0 if "variables" in quote else 20.0
    assert found.cue.start == expected


def test_quotes_in_other_scripts() -> None:
    vtt = (
        "WEBVTT\n\n00:00:00.000 --> 00:00:04.000\n今日は東京の歴史について話します。\n\n"
        "00:00:04.000 --> 00:00:08.000\n次に、江戸時代の文化を見てみましょう。\n\n"
        "00:00:08.000 --> 00:00:12.000\nДавайте поговорим о Москве.\n"
    )
    transcript = parse_transcript(vtt)
    assert match_quote("江戸時代の文化", transcript, "q").cue.start == 4.0
    assert match_quote("давайте поговорим о москве", transcript, "q").cue.start == 8.0


def test_quote_across_a_cue_boundary_starts_at_the_first_cue() -> None:
    found = match_quote("quote them. Variables hold text", TRANSCRIPT, "q")
    assert found.cue.start == 5.0


def test_quote_sets_start_and_runs_to_the_next_point() -> None:
    s = spec([kp("vars", quote="look at variables"), kp("loops", quote="a for loop walks")])
    plan = plan_segments(s, TRANSCRIPT)
    assert ranges(plan) == [("vars", 5.0, 20.0), ("loops", 20.0, 40.0)]
    assert any("quote matched cue 2" in n for n in plan.notes)


def test_unmatched_quote_names_the_knowledge_point_and_the_closest_text() -> None:
    text = plan_error(spec([kp("a", start="0"), kp("b", quote="docker compose files")]), TRANSCRIPT)
    assert text.startswith("spec.knowledgePoints[1].quote: ")
    assert "not found" in text and "closest" in text


def test_ambiguous_quote_lists_the_places() -> None:
    vtt = VTT + "\n00:00:40.000 --> 00:00:45.000\nNext up: loops. A for loop walks over a list.\n"
    text = plan_error(spec([kp("a", quote="next up loops a for loop")]), parse_transcript(vtt))
    assert text.startswith("spec.knowledgePoints[0].quote: ")
    assert "ambiguous" in text and "00:00:20.000" in text and "00:00:40.000" in text


def test_transcript_knowledge_points_are_used_when_the_spec_has_none() -> None:
    seed = (
        '{"transcript": [{"start_time": 0, "end_time": 10, "text": "a"},'
        ' {"start_time": 10, "end_time": 30, "text": "b"}],'
        ' "knowledge_points": [{"knowledge_id": "k2", "title": "Two", "start_time": 10},'
        ' {"knowledge_id": "k1", "title": "One", "start_time": 0, "end_time": 10}]}'
    )
    transcript = parse_transcript(seed)
    plan = plan_segments(spec([]), transcript)
    assert ranges(plan) == [("k1", 0.0, 10.0), ("k2", 10.0, 30.0)]
    # points in the spec win over the document's
    assert ranges(plan_segments(spec([kp("x", start="5")]), transcript)) == [("x", 0.0, 30.0)]


def test_no_knowledge_points_anywhere_is_an_error() -> None:
    assert plan_error(spec([]), TRANSCRIPT).startswith("spec.knowledgePoints: no knowledge points")


def test_without_a_transcript_quotes_and_cues_need_it() -> None:
    for point in (kp("a", quote="next up"), kp("a", cues="2")):
        with pytest.raises(NeedsTranscript, match=r"spec.knowledgePoints\[0\]"):
            plan_segments(spec([point]), None)
    with pytest.raises(NeedsTranscript, match=r"spec.knowledgePoints\[0\].end"):
        plan_segments(spec([kp("a", start="0")]), None)
    assert ranges(plan_segments(spec([kp("a", start="0")]), None, 30.0)) == [("a", 0.0, 30.0)]


def test_a_point_after_the_transcript_without_end_is_an_error() -> None:
    text = plan_error(spec([kp("a", start="0"), kp("b", start="50")], snapToCues=False), TRANSCRIPT)
    assert text.startswith("spec.knowledgePoints[1].start: ")
    assert "transcript" in text


# --- snapping ------------------------------------------------------------------------------


def test_snap_moves_starts_back_and_ends_on_to_cue_edges() -> None:
    s = spec([kp("a", start="7", end="23"), kp("b", start="33")])
    plan = plan_segments(s, TRANSCRIPT)
    assert ranges(plan) == [("a", 5.0, 26.0), ("b", 33.0, 40.0)]
    assert any("snapped" in n for n in plan.notes)


def test_snap_off_keeps_boundaries() -> None:
    s = spec([kp("a", start="7", end="23"), kp("b", start="33")], snapToCues=False)
    assert ranges(plan_segments(s, TRANSCRIPT)) == [("a", 7.0, 23.0), ("b", 33.0, 40.0)]


def test_missing_end_uses_the_next_points_snapped_start() -> None:
    s = spec([kp("a", start="0"), kp("b", start="22")])
    assert ranges(plan_segments(s, TRANSCRIPT)) == [("a", 0.0, 20.0), ("b", 20.0, 40.0)]


def test_explicit_segments_are_never_snapped() -> None:
    """Explicit ranges are cut as written even when a transcript comes along (the source's
    captions) and snapToCues is on (the default): 7-23 lies inside cues 5-12 and 20-26."""
    s = spec(segments=[{"title": "Part", "start": "7", "end": "23"}])
    assert s.segmentation.snap_to_cues
    plan = plan_segments(s, TRANSCRIPT)
    assert ranges(plan) == [(None, 7.0, 23.0)]
    assert not any("snapped" in n for n in plan.notes)
    assert plan.segments[0].cue_indices == (2, 4), "the cues it overlaps are still named"


# --- overlaps ------------------------------------------------------------------------------

OVERLAPPING = [
    {"title": "A", "knowledgeId": "a", "start": "0", "end": "30"},
    {"title": "B", "knowledgeId": "b", "start": "20", "end": "50"},
    {"title": "C", "knowledgeId": "c", "start": "25", "end": "28"},
    {"title": "D", "knowledgeId": "d", "start": "50", "end": "60"},
]


def test_overlap_merge() -> None:
    plan = plan_segments(spec(segments=OVERLAPPING, overlap="merge"), None)
    assert ranges(plan) == [("a", 0.0, 50.0), ("d", 50.0, 60.0)]
    assert sum("merged" in n for n in plan.notes) == 2


def test_overlap_trim() -> None:
    plan = plan_segments(spec(segments=OVERLAPPING, overlap="trim"), None)
    assert ranges(plan) == [("a", 0.0, 30.0), ("b", 30.0, 50.0), ("d", 50.0, 60.0)]
    assert any("dropped" in n for n in plan.notes)


def test_overlap_allow() -> None:
    plan = plan_segments(spec(segments=OVERLAPPING, overlap="allow"), None)
    assert ranges(plan) == [("a", 0, 30), ("b", 20, 50), ("c", 25, 28), ("d", 50, 60)]


def test_overlap_reject_names_both() -> None:
    text = plan_error(spec(segments=OVERLAPPING, overlap="reject"), None)
    assert text.startswith("spec.segments[1]: ")
    assert "spec.segments[0]" in text and "reject" in text


def test_touching_is_not_overlapping() -> None:
    plan = plan_segments(spec(segments=OVERLAPPING[3:] + OVERLAPPING[:1], overlap="reject"), None)
    assert len(plan.segments) == 2


# --- short segments ------------------------------------------------------------------------

SHORT = [
    {"title": "A", "knowledgeId": "a", "start": "0", "end": "20"},
    {"title": "Blip", "knowledgeId": "blip", "start": "21", "end": "22"},
    {"title": "B", "knowledgeId": "b", "start": "30", "end": "50"},
]


def test_short_merge_goes_to_the_nearer_neighbour() -> None:
    plan = plan_segments(spec(segments=SHORT, minDuration="5s"), None)
    assert ranges(plan) == [("a", 0.0, 22.0), ("b", 30.0, 50.0)]
    near_next = [SHORT[0], {**SHORT[1], "start": "27", "end": "28"}, SHORT[2]]
    assert ranges(plan_segments(spec(segments=near_next, minDuration="5s"), None)) == [
        ("a", 0.0, 20.0),
        ("b", 27.0, 50.0),
    ]


def test_short_merge_tie_goes_to_the_previous_clip() -> None:
    tie = [SHORT[0], {**SHORT[1], "start": "24", "end": "26"}, SHORT[2]]
    assert ranges(plan_segments(spec(segments=tie, minDuration="5s"), None))[0] == ("a", 0, 26)


def test_short_first_clip_merges_forward_and_chains() -> None:
    segs = [
        {"title": "X", "start": "0", "end": "1"},
        {"title": "Y", "start": "1", "end": "2"},
        {"title": "Z", "start": "2", "end": "10"},
    ]
    plan = plan_segments(spec(segments=segs, minDuration="3s"), None)
    assert [(s.title, s.start, s.end) for s in plan.segments] == [("Z", 0.0, 10.0)]


def test_a_single_short_clip_is_kept_with_a_note() -> None:
    plan = plan_segments(spec(segments=[SHORT[1]], minDuration="5s"), None)
    assert ranges(plan) == [("blip", 21.0, 22.0)]
    assert any("only clip" in n for n in plan.notes)


def test_short_keep_and_reject() -> None:
    plan = plan_segments(spec(segments=SHORT, minDuration="5s", shortSegments="keep"), None)
    assert len(plan.segments) == 3 and any("kept" in n for n in plan.notes)
    text = plan_error(spec(segments=SHORT, minDuration="5s", shortSegments="reject"), None)
    assert text.startswith("spec.segments[1]: ") and "minDuration" in text


# --- padding and clamping ------------------------------------------------------------------


def test_padding_within_the_source_and_meeting_halfway() -> None:
    segs = [
        {"title": "A", "start": "1", "end": "20"},
        {"title": "B", "start": "22", "end": "40"},
        {"title": "C", "start": "50", "end": "59"},
    ]
    plan = plan_segments(spec(segments=segs, padding="2s"), None, 60.0)
    assert [(s.start, s.end) for s in plan.segments] == [(0.0, 21.0), (21.0, 42.0), (48.0, 60.0)]
    allowed = plan_segments(spec(segments=segs, padding="2s", overlap="allow"), None, 60.0)
    assert [(s.start, s.end) for s in allowed.segments][:2] == [(0.0, 22.0), (20.0, 42.0)]


def test_end_past_the_duration_is_clamped() -> None:
    plan = plan_segments(spec(segments=[{"title": "A", "start": "10", "end": "90"}]), None, 60.0)
    assert ranges(plan) == [(None, 10.0, 60.0)]
    assert plan.source_duration == 60.0
    assert any("clamped" in n for n in plan.notes)


def test_start_past_the_duration_is_an_error() -> None:
    segs = [{"title": "A", "start": "0", "end": "10"}, {"title": "B", "start": "60", "end": "70"}]
    text = plan_error(spec(segments=segs), None, 60.0)
    assert text.startswith("spec.segments[1].start: ")


# --- stems ---------------------------------------------------------------------------------


def test_stems_are_unique_and_readable() -> None:
    segs = [
        {"title": "Intro", "start": "0", "end": "10"},
        {"title": "intro!", "start": "10", "end": "20"},
        {"title": "Введение", "start": "20", "end": "30"},
        {"title": "Résumé", "start": "30", "end": "40"},
    ]
    plan = plan_segments(spec(segments=segs, naming="{title}"), None)
    assert [s.stem for s in plan.segments] == ["intro", "intro-2", "введение", "resume"]
    assert any("repeats" in n for n in plan.notes)


def test_naming_format_mismatch_names_the_field() -> None:
    from pydantic import ValidationError

    with pytest.raises(ValidationError, match="format code 'd' does not fit title"):
        spec(segments=SHORT[:1], naming="{title:d}")
    # a spec built without validation still fails in the planner, naming the field
    good = spec(segments=SHORT[:1])
    output = good.output.model_copy(update={"naming": "{title:d}"})
    text = plan_error(good.model_copy(update={"output": output}), None)
    assert text.startswith("spec.output.naming: ")


def test_cue_indices_cover_the_clip() -> None:
    plan = plan_segments(spec([kp("a", start="5", end="20"), kp("b", start="20")]), TRANSCRIPT)
    assert [s.cue_indices for s in plan.segments] == [(2, 3), (4, 6)]


def test_same_input_same_plan() -> None:
    s = spec([kp("b", quote="a for loop walks"), kp("a", start="3")], padding="1")
    assert plan_segments(s, TRANSCRIPT) == plan_segments(s, TRANSCRIPT)


def test_transcript_is_not_modified() -> None:
    before = TRANSCRIPT.model_dump()
    plan_segments(spec([kp("a", start="7")]), TRANSCRIPT)
    assert TRANSCRIPT.model_dump() == before
    assert isinstance(TRANSCRIPT, Transcript)
