"""The planner's boundary cases, each on a small, hand-checked input: snapping notes, ends at or
past the source end, touching clips under each overlap policy, clips exactly minDuration long,
the first and the last clip too short, padding without a known duration."""

from __future__ import annotations

import pytest

from tests.unit.test_planning import TRANSCRIPT, kp, plan_error, ranges, spec
from videojobs import planning
from videojobs.planning import NeedsTranscript, plan_segments

# TRANSCRIPT's cues: 0-5, 5-12, 12-20, 20-26, 26-33, 33-40


def test_snapping_notes_name_only_the_boundaries_it_moved() -> None:
    points = [kp("a", start="3", end="15"), kp("b", start="26", end="30"), kp("c", start="33")]
    plan = plan_segments(spec(points), TRANSCRIPT)
    assert ranges(plan) == [("a", 0.0, 20.0), ("b", 26.0, 33.0), ("c", 33.0, 40.0)]
    assert plan.notes == [
        "spec.knowledgePoints[0]: snapped to cue edges: start 00:00:03.000→00:00:00.000, "
        "end 00:00:15.000→00:00:20.000",
        "spec.knowledgePoints[1]: snapped to cue edges: end 00:00:30.000→00:00:33.000",
    ]


def test_a_start_snapped_while_its_end_stays_notes_the_start_only() -> None:
    plan = plan_segments(spec([kp("a", start="7", end="20")]), TRANSCRIPT)
    assert ranges(plan) == [("a", 5.0, 20.0)]
    assert plan.notes == [
        "spec.knowledgePoints[0]: snapped to cue edges: start 00:00:07.000→00:00:05.000"
    ]


def test_a_point_starting_at_the_end_without_an_end_is_refused_naming_what_ends() -> None:
    text = plan_error(spec([kp("a", start="0"), kp("b", start="40")]), TRANSCRIPT)
    assert text == (
        "spec.knowledgePoints[1].start: starts at 00:00:40.000, at or after the end of the "
        "transcript (00:00:40.000), and has no end; give end, or the source duration"
    )
    text = plan_error(spec([kp("a", start="0"), kp("b", start="45")]), TRANSCRIPT, 45.0)
    assert text == (
        "spec.knowledgePoints[1].start: starts at 00:00:45.000, at or after the end of the "
        "source (00:00:45.000), and has no end"
    )


def test_without_a_transcript_or_duration_a_last_point_needs_an_end() -> None:
    with pytest.raises(NeedsTranscript) as info:
        plan_segments(spec([kp("a", start="0")]), None)
    assert str(info.value) == (
        "spec.knowledgePoints[0].end: no end, no later knowledge point, and neither the source "
        "duration nor the transcript is known"
    )


def test_a_point_starting_past_the_source_is_refused_and_an_end_at_it_is_not_clamped() -> None:
    points = [kp("a", start="0", end="50"), kp("b", start="50", end="60")]
    text = plan_error(spec(points, snapToCues=False), TRANSCRIPT, 45.0)
    assert text == (
        "spec.knowledgePoints[1].start: starts at 00:00:50.000, at or after the end of the "
        "source (00:00:45.000)"
    )
    plan = plan_segments(spec([kp("a", start="0", end="45")], snapToCues=False), TRANSCRIPT, 45.0)
    assert (ranges(plan), plan.notes) == ([("a", 0.0, 45.0)], [])
    plan = plan_segments(spec([kp("a", start="0", end="46")], snapToCues=False), TRANSCRIPT, 45.0)
    assert ranges(plan) == [("a", 0.0, 45.0)]
    assert plan.notes == [
        "spec.knowledgePoints[0]: end 00:00:46.000 clamped to the source end 00:00:45.000"
    ]


TOUCHING = [
    {"title": "A", "knowledgeId": "a", "start": "0", "end": "20"},
    {"title": "B", "knowledgeId": "b", "start": "20", "end": "40"},
]


@pytest.mark.parametrize("policy", ["allow", "merge", "trim", "reject"])
def test_clips_that_only_touch_do_not_overlap(policy: str) -> None:
    plan = plan_segments(spec(segments=TOUCHING, overlap=policy), None)
    assert ranges(plan) == [("a", 0.0, 20.0), ("b", 20.0, 40.0)]
    assert plan.notes == []


def test_a_clip_ending_where_the_one_before_ends_is_dropped_by_trim() -> None:
    inside = [TOUCHING[0], {"title": "C", "knowledgeId": "c", "start": "10", "end": "20"}]
    plan = plan_segments(spec(segments=inside, overlap="trim"), None)
    assert ranges(plan) == [("a", 0.0, 20.0)]
    assert plan.notes == ["spec.segments[1]: lies inside spec.segments[0]; dropped (overlap: trim)"]


def test_a_clip_exactly_min_duration_long_is_not_short() -> None:
    for policy in ("merge", "keep", "reject"):
        segs = [{"title": "A", "start": "0", "end": "5"}, {"title": "B", "start": "5", "end": "30"}]
        plan = plan_segments(spec(segments=segs, minDuration="5s", shortSegments=policy), None)
        assert [(s.start, s.end) for s in plan.segments] == [(0.0, 5.0), (5.0, 30.0)]
        assert plan.notes == []
    only = plan_segments(
        spec(segments=[{"title": "A", "start": "0", "end": "5"}], minDuration="5s"), None
    )
    assert only.notes == []


def test_a_short_first_clip_merges_into_the_next_and_a_short_last_into_the_previous() -> None:
    segs = [
        {"title": "A", "knowledgeId": "a", "start": "0", "end": "1"},
        {"title": "B", "knowledgeId": "b", "start": "3", "end": "20"},
        {"title": "C", "knowledgeId": "c", "start": "30", "end": "50"},
        {"title": "D", "knowledgeId": "d", "start": "52", "end": "53"},
    ]
    plan = plan_segments(spec(segments=segs, minDuration="5s"), None)
    assert ranges(plan) == [("b", 0.0, 20.0), ("c", 30.0, 53.0)]
    assert plan.notes == [
        "spec.segments[0]: 1s is shorter than minDuration 5s; merged into spec.segments[1] "
        "(shortSegments: merge)",
        "spec.segments[3]: 1s is shorter than minDuration 5s; merged into spec.segments[2] "
        "(shortSegments: merge)",
    ]


def test_padding_without_a_known_duration_extends_the_end() -> None:
    segs = [{"title": "A", "knowledgeId": "a", "start": "10", "end": "20"}]
    plan = plan_segments(spec(segments=segs, padding="2s"), None)
    assert ranges(plan) == [("a", 8.0, 22.0)]
    assert plan.notes == ["padding of 2s added around each clip"]


@pytest.mark.parametrize(("field", "value"), [("cues", "2"), ("quote", "look at variables")])
def test_cues_and_quotes_without_the_transcript_name_their_field(field: str, value: str) -> None:
    s = spec([kp("a", start="0"), kp("b", **{field: value})])
    with pytest.raises(NeedsTranscript) as info:
        plan_segments(s, None)
    assert str(info.value) == (
        f"spec.knowledgePoints[1].{field}: {field} needs the transcript, which is not available"
    )


def test_no_knowledge_points_anywhere_says_where_they_may_come_from() -> None:
    with pytest.raises(NeedsTranscript) as info:
        plan_segments(spec([]), None)
    assert str(info.value) == (
        "spec.knowledgePoints: no knowledge points in the spec; they must come from the "
        "transcript (seed-json, or segmentation.auto), which is not available"
    )
    assert plan_error(spec([]), TRANSCRIPT) == (
        "spec.knowledgePoints: no knowledge points: list them in spec.knowledgePoints, use a "
        "seed-json transcript that carries knowledge_points, or set segmentation.auto"
    )


def test_a_quote_match_is_noted_with_its_cue_time_and_similarity() -> None:
    s = spec([kp("a", start="0"), kp("b", quote="look at variables")])
    plan = plan_segments(s, TRANSCRIPT)
    assert plan.notes == [
        "spec.knowledgePoints[1]: quote matched cue 2 at 00:00:05.000 (similarity 100)"
    ]


def test_the_quotes_of_one_plan_share_one_comparison_budget(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    s = spec([kp("a", quote="look at variables"), kp("b", quote="a for loop walks")])
    assert len(plan_segments(s, TRANSCRIPT).segments) == 2
    monkeypatch.setattr(planning, "QUOTE_MAX_COMPARISONS", 1)
    assert "window comparisons" in plan_error(s, TRANSCRIPT)


def test_identical_ranges_keep_their_spec_order() -> None:
    same = [
        {"title": "A", "knowledgeId": "a", "start": "0", "end": "20"},
        {"title": "B", "knowledgeId": "b", "start": "0", "end": "20"},
    ]
    plan = plan_segments(spec(segments=same, overlap="allow"), None)
    assert ranges(plan) == [("a", 0.0, 20.0), ("b", 0.0, 20.0)]
