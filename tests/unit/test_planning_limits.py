"""The planner's size limits (``MAX_CUES``, ``MAX_KNOWLEDGE_POINTS``): inclusive, named by the
field they concern, and the transcript's own points counted only when the spec has none. The
limits are lowered here so that the boundaries take a few cues, not 200,000."""

from __future__ import annotations

import pytest

from tests.unit.test_planning import TRANSCRIPT, kp, plan_error, spec
from videojobs import planning
from videojobs.models import KnowledgePoint, Transcript
from videojobs.planning import plan_segments

# TRANSCRIPT has 6 cues: 0-5, 5-12, 12-20, 20-26, 26-33, 33-40


def with_points(n: int) -> Transcript:
    """TRANSCRIPT carrying ``n`` knowledge points of its own, at cue starts (none merges)."""
    starts = ["0", "5", "12", "20", "26", "33"][:n]
    points = [
        KnowledgePoint.model_validate({"id": f"p{i}", "title": f"P{i}", "start": t})
        for i, t in enumerate(starts)
    ]
    return TRANSCRIPT.model_copy(update={"knowledge_points": points})


def test_a_transcript_of_exactly_max_cues_is_planned(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(planning, "MAX_CUES", 6)
    assert plan_segments(spec([kp("a", start="0", end="12")]), TRANSCRIPT).segments


def test_one_cue_over_the_limit_is_refused_naming_the_transcript(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(planning, "MAX_CUES", 5)
    assert plan_error(spec([kp("a", start="0", end="12")]), TRANSCRIPT) == (
        "spec.transcript: the transcript has 6 cues, over the limit of 5 (MAX_CUES); split the "
        "video, or give segments instead"
    )


def test_the_transcripts_own_points_are_limited_inclusively(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(planning, "MAX_KNOWLEDGE_POINTS", 3)
    assert len(plan_segments(spec(), with_points(3)).segments) == 3
    assert plan_error(spec(), with_points(4)) == (
        "transcript.knowledge_points: the transcript has 4 knowledge points, over the limit of 3 "
        "(MAX_KNOWLEDGE_POINTS)"
    )


def test_the_transcripts_own_points_are_not_counted_when_the_spec_has_points(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(planning, "MAX_KNOWLEDGE_POINTS", 3)
    plan = plan_segments(spec([kp("a", start="0", end="12")]), with_points(4))
    assert [s.knowledge_id for s in plan.segments] == ["a"]
