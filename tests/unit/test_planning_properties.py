"""Property-based tests of the planner's invariants (hypothesis).

For random explicit segments and random knowledge points over a random transcript, under every
policy: clips are sorted, inside the source, non-overlapping under merge and trim, have unique
safe stems, and the same input gives the same plan.
"""

from __future__ import annotations

import os
import re
from typing import Any

from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from videojobs.errors import PlanError
from videojobs.models import SegmentPlan, Transcript, VideoProcessingJobSpec
from videojobs.naming import MAX_STEM_BYTES, MAX_STEM_CHARS
from videojobs.planning import plan_segments
from videojobs.transcripts import parse_transcript

# VIDEOJOBS_HYPOTHESIS_EXAMPLES raises the count for a longer local run.
SETTINGS = settings(
    max_examples=int(os.environ.get("VIDEOJOBS_HYPOTHESIS_EXAMPLES", "300")),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)

millis = st.integers(min_value=0, max_value=600_000)
titles = st.text(min_size=1, max_size=60).filter(lambda t: t.strip() != "")
policies = st.fixed_dictionaries(
    {
        "overlap": st.sampled_from(["merge", "trim", "allow", "reject"]),
        "shortSegments": st.sampled_from(["merge", "reject", "keep"]),
        "minDuration": st.sampled_from(["0", "1", "2.5", "10s"]),
        "padding": st.sampled_from(["0", "0.5", "2", "5s"]),
        "snapToCues": st.booleans(),
    }
)


def _time(ms: int) -> str:
    return f"{ms / 1000:.3f}"


@st.composite
def explicit_segments(draw: st.DrawFn) -> list[dict[str, Any]]:
    out = []
    for _ in range(draw(st.integers(1, 12))):
        start = draw(millis)
        length = draw(st.integers(1, 120_000))
        out.append(
            {
                "title": draw(titles),
                "start": _time(start),
                "end": _time(start + length),
                "knowledgeId": draw(st.none() | st.sampled_from(["a", "b", "kp-1", "x.y"])),
            }
        )
    return out


@st.composite
def transcripts(draw: st.DrawFn) -> Transcript:
    t = 0
    blocks = ["WEBVTT", ""]
    for i in range(draw(st.integers(1, 30))):
        t += draw(st.integers(0, 3000))
        length = draw(st.integers(1, 15_000))
        words = draw(st.lists(st.sampled_from(["alpha", "beta", "gamma", "delta"]), min_size=1))
        blocks += [f"c{i}", f"{_ts(t)} --> {_ts(t + length)}", " ".join(words), ""]
        t += length
    return parse_transcript("\n".join(blocks))


def _ts(ms: int) -> str:
    return f"{ms // 3_600_000:02d}:{ms // 60_000 % 60:02d}:{ms // 1000 % 60:02d}.{ms % 1000:03d}"


@st.composite
def knowledge_points(draw: st.DrawFn, transcript: Transcript) -> list[dict[str, Any]]:
    n = len(transcript.cues)
    points = []
    for i in range(draw(st.integers(1, 8))):
        anchor = draw(st.sampled_from(["start", "start-end", "cues"]))
        point: dict[str, Any] = {"id": f"kp{i}", "title": draw(titles)}
        if anchor == "cues":
            a = draw(st.integers(1, n))
            b = draw(st.integers(a, n))
            point["cues"] = f"{a}-{b}" if b > a else str(a)
        else:
            start = draw(st.integers(0, int(transcript.duration * 1000)))
            point["start"] = _time(start)
            if anchor == "start-end":
                point["end"] = _time(start + draw(st.integers(1, 60_000)))
        points.append(point)
    return points


def _spec(data: dict[str, Any], segmentation: dict[str, Any], naming: str) -> Any:
    return VideoProcessingJobSpec.model_validate(
        {
            "source": {"url": "https://example.org/v.mp4"},
            "segmentation": segmentation,
            "output": {"naming": naming, "storage": {"pvc": {"claimName": "c"}}},
            **data,
        }
    )


def check_invariants(plan: SegmentPlan, policy: dict[str, Any], duration: float | None) -> None:
    segs = plan.segments
    assert segs, "a plan has at least one clip"
    assert [s.index for s in segs] == list(range(1, len(segs) + 1))
    starts = [s.start for s in segs]
    assert starts == sorted(starts), "sorted by start"
    for s in segs:
        assert 0 <= s.start < s.end, s
        if duration is not None:
            assert s.end <= duration, s
        assert round(s.start, 3) == s.start and round(s.end, 3) == s.end
    if policy["overlap"] in ("merge", "trim", "reject"):
        for a, b in zip(segs, segs[1:], strict=False):
            assert a.end <= b.start, (a, b)
    stems = [s.stem for s in segs]
    assert len(set(stems)) == len(stems), "unique stems"
    for stem in stems:
        assert re.fullmatch(r"[\w-]+", stem) and stem[0] not in "-_", stem
        assert len(stem) <= MAX_STEM_CHARS and len(stem.encode()) <= MAX_STEM_BYTES
    if policy["shortSegments"] == "merge" and len(segs) > 1 and not plan_padding(policy):
        min_duration = {"0": 0, "1": 1, "2.5": 2.5, "10s": 10}[policy["minDuration"]]
        assert all(s.duration >= min_duration for s in segs)


def plan_padding(policy: dict[str, Any]) -> bool:
    return policy["padding"] not in ("0",)


@SETTINGS
@given(
    segments=explicit_segments(),
    policy=policies,
    duration=st.none() | st.integers(1000, 800_000).map(lambda ms: ms / 1000),
    naming=st.sampled_from(["{index:02d}-{knowledge_id}-{title}", "{title}", "{knowledge_id}"]),
)
def test_explicit_segment_plans(
    segments: list[dict[str, Any]], policy: dict[str, Any], duration: float | None, naming: str
) -> None:
    spec = _spec({"segments": segments}, policy, naming)
    try:
        plan = plan_segments(spec, None, duration)
    except PlanError as exc:
        event("rejected with PlanError")
        message = str(exc)
        assert message.startswith("spec.segments[") or message.startswith("spec.output.naming")
        assert (
            policy["overlap"] == "reject"
            or policy["shortSegments"] == "reject"
            or (duration is not None and "end of the source" in message)
        ), message
        return
    event("planned")
    check_invariants(plan, policy, duration)
    assert plan_segments(spec, None, duration) == plan, "deterministic"


@SETTINGS
@given(data=st.data(), transcript=transcripts(), policy=policies)
def test_knowledge_point_plans(data: st.DataObject, transcript: Transcript, policy: Any) -> None:
    points = data.draw(knowledge_points(transcript))
    duration = data.draw(st.none() | st.just(round(transcript.duration + 5, 3)))
    spec = _spec({"transcript": {"inline": "WEBVTT"}, "knowledgePoints": points}, policy, "{title}")
    try:
        plan = plan_segments(spec, transcript, duration)
    except PlanError as exc:
        event("rejected with PlanError")
        message = str(exc)
        assert message.startswith("spec.knowledgePoints[")
        assert (
            policy["overlap"] == "reject"
            or policy["shortSegments"] == "reject"
            or "after the end of the" in message
        ), message
        return
    event("planned")
    check_invariants(plan, policy, duration)
    if duration is None and not plan_padding(policy):
        assert plan.segments[-1].end <= max(
            transcript.duration, max(float(p.get("end", 0)) for p in points)
        )
    assert plan_segments(spec, transcript, duration) == plan, "deterministic"
