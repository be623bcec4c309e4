"""The plan of a submission as the console's timeline draws it: clips, knowledge points and
what happened to each, transcript cues.

``videojobs plan`` answers the same question on the command line; here the answer is a
document (:class:`PlanDoc`) built from the checked job (:func:`convert.check_spec`): the
planner's clips, every knowledge point with its fate (kept, snapped, merged, trimmed, clamped,
dropped) and the planner's notes about it, and the transcript's cues (at most
:data:`MAX_CUES_SHOWN`). Pure: no I/O.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from videojobs.models import SegmentPlan, Transcript

MAX_CUES_SHOWN = 5000
"""Most transcript cues in a plan document (the rest are counted in ``cues_total``)."""

MAX_CUE_TEXT = 300
"""Longest cue text in a plan document (longer texts end in an ellipsis)."""

Fate = Literal["kept", "snapped", "clamped", "trimmed", "merged", "dropped"]
_FATE_ORDER: tuple[Fate, ...] = ("kept", "snapped", "clamped", "trimmed", "merged", "dropped")
_ACTIONS: tuple[tuple[str, Fate], ...] = (
    ("; dropped", "dropped"),
    ("merged into", "merged"),
    ("start trimmed", "trimmed"),
    ("clamped to the source end", "clamped"),
    ("snapped to cue edges", "snapped"),
)
_MERGED_INTO = (
    re.compile(r"overlaps (\S+); merged into it"),  # overlap: merge
    re.compile(r"merged into (\S+) \(shortSegments"),  # shortSegments: merge
)
_AUTO = "segmentation.auto"


class _Doc(BaseModel):
    model_config = ConfigDict(extra="forbid")


class PlanClip(_Doc):
    index: int = Field(description="1-based position in the plan.")
    knowledge_id: str | None
    title: str
    description: str
    start: float = Field(description="Seconds in the source.")
    end: float = Field(description="Seconds in the source (exclusive).")
    stem: str = Field(description="The clips' file name stem.")
    cues: list[int] | None = Field(description="First and last cue (1-based) inside the clip.")
    confidence: float | None = Field(
        description="For a clip proposed by segmentation.auto: how clear its weaker edge is (0-1)."
    )


class PlanPoint(_Doc):
    field: str = Field(description="Where the point came from (knowledge_points[1] ...).")
    knowledge_id: str | None
    title: str
    start: float | None = Field(description="The start as written (None: a quote or cues).")
    end: float | None = Field(description="The end as written, if any.")
    anchor: str | None = Field(description="The quote or cue range the point is anchored by.")
    fate: Fate = Field(description="What the planner did with it (the strongest change).")
    clip: int | None = Field(description="The clip (index) it ended up in; None when dropped.")
    notes: list[str] = Field(description="The planner's notes about this point.")


class PlanCue(_Doc):
    index: int
    id: str | None
    start: float
    end: float
    text: str


class PlanSettings(_Doc):
    snap_to_cues: bool
    overlap: str
    min_duration: float
    auto: bool = Field(description="The knowledge points were proposed by segmentation.auto.")


class PlanDoc(_Doc):
    """A plan preview: what ``videojobs plan`` would print, as data for the timeline."""

    source_url: str
    source_duration: float | None = Field(description="Known only once the source is probed.")
    clips: list[PlanClip]
    points: list[PlanPoint]
    cues: list[PlanCue] = Field(description=f"At most {MAX_CUES_SHOWN}, in transcript order.")
    cues_total: int
    transcript_end: float | None = Field(description="The last cue's end, seconds.")
    segmentation: PlanSettings
    notes: list[str] = Field(description="Every note of the check and the planner.")


@dataclass
class _Point:
    field: str
    knowledge_id: str | None
    title: str
    start: float | None
    end: float | None
    anchor: str | None


def _float(value: Any) -> float | None:
    return None if value is None else float(value)


def _input_points(job: Any, transcript: Transcript | None, plan: SegmentPlan) -> list[_Point]:
    """The points the planner started from, with the field path its notes use."""
    spec = job.spec
    if spec.segments is not None:
        return [
            _Point(f"spec.segments[{i}]", s.knowledge_id, s.title, float(s.start), float(s.end),
                   None)
            for i, s in enumerate(spec.segments)
        ]  # fmt: skip
    if spec.knowledge_points:
        base, kps = "spec.knowledgePoints", spec.knowledge_points
    elif transcript is not None and transcript.knowledge_points:
        base, kps = "transcript.knowledge_points", transcript.knowledge_points
    else:
        return _auto_points(plan)
    out = []
    for i, kp in enumerate(kps):
        anchor = f"quote: {kp.quote}" if kp.quote is not None else None
        if kp.cues is not None:
            anchor = f"cues: {kp.cues}"
        out.append(
            _Point(f"{base}[{i}]", kp.id, kp.title, _float(kp.start), _float(kp.end), anchor)
        )
    return out


def _auto_points(plan: SegmentPlan) -> list[_Point]:
    """segmentation.auto's proposal: ``topic-NN`` is ``segmentation.auto[NN-1]``; a proposed
    point merged away is known from the notes only."""
    seen: dict[int, _Point] = {}
    for clip in plan.segments:
        match = re.fullmatch(r"topic-(\d+)", clip.knowledge_id or "")
        if match:
            k = int(match.group(1)) - 1
            seen[k] = _Point(f"{_AUTO}[{k}]", clip.knowledge_id, clip.title, None, None, None)
    for note in plan.notes:
        match = re.match(rf"{re.escape(_AUTO)}\[(\d+)\]:", note)
        if match and int(match.group(1)) not in seen:
            k = int(match.group(1))
            seen[k] = _Point(f"{_AUTO}[{k}]", f"topic-{k + 1:02d}", "", None, None, None)
    return [seen[k] for k in sorted(seen)]


def _fate(notes: list[str]) -> tuple[Fate, str | None]:
    """The strongest change the notes record, and the field merged into (if merged)."""
    fate: Fate = "kept"
    target = None
    for note in notes:
        for text, action in _ACTIONS:
            if text in note and _FATE_ORDER.index(action) > _FATE_ORDER.index(fate):
                fate = action
        for pattern in _MERGED_INTO:
            match = pattern.search(note)
            if match:
                target = match.group(1)
    return fate, target


def _clip_of(point: _Point, plan: SegmentPlan) -> int | None:
    for clip in plan.segments:
        if point.knowledge_id is not None and clip.knowledge_id == point.knowledge_id:
            return clip.index
    for clip in plan.segments:  # explicit segments without an id
        if point.knowledge_id is None and clip.title == point.title and clip.start == point.start:
            return clip.index
    return None


def points_of(
    job: Any, transcript: Transcript | None, plan: SegmentPlan, rename: Any = str
) -> list[PlanPoint]:
    """Every input point with its fate, the clip it is in and its notes (``rename`` turns a
    spec field path into the caller's name for it)."""
    points = _input_points(job, transcript, plan)
    by_field = {p.field: p for p in points}
    out = []
    for p in points:
        notes = [n for n in plan.notes if n.startswith((f"{p.field}:", f"{p.field}."))]
        fate, target = _fate(notes)
        clip = _clip_of(p, plan)
        hops = 0
        while clip is None and fate == "merged" and target in by_field and hops < len(points):
            into = by_field[target]
            clip = _clip_of(into, plan)
            target = _fate([n for n in plan.notes if n.startswith(f"{into.field}:")])[1]
            hops += 1
        out.append(
            PlanPoint(
                field=rename(p.field), knowledge_id=p.knowledge_id, title=p.title,
                start=p.start, end=p.end, anchor=p.anchor, fate=fate,
                clip=None if fate == "dropped" else clip, notes=[rename(n) for n in notes],
            )
        )  # fmt: skip
    return out


def cues_of(transcript: Transcript | None) -> list[PlanCue]:
    if transcript is None:
        return []
    return [
        PlanCue(
            index=c.index, id=c.id, start=c.start, end=c.end,
            text=c.text if len(c.text) <= MAX_CUE_TEXT else c.text[: MAX_CUE_TEXT - 1] + "…",
        )
        for c in transcript.cues[:MAX_CUES_SHOWN]
    ]  # fmt: skip


def plan_document(loaded: Any, notes: list[str], rename: Any = str) -> PlanDoc:
    """The plan document of a checked job (``loaded``: :class:`videojobs.validation.LoadedJob`
    whose plan is made) and the notes to show."""
    job, transcript, plan = loaded.job, loaded.transcript, loaded.plan
    assert plan is not None
    seg = job.spec.segmentation
    clips = [
        PlanClip(
            index=s.index, knowledge_id=s.knowledge_id, title=s.title,
            description=s.description, start=s.start, end=s.end, stem=s.stem,
            cues=list(s.cue_indices) if s.cue_indices else None, confidence=s.confidence,
        )
        for s in plan.segments
    ]  # fmt: skip
    cues = transcript.cues if transcript is not None else []
    return PlanDoc(
        source_url=str(job.spec.source.url or ""),
        source_duration=plan.source_duration,
        clips=clips,
        points=points_of(job, transcript, plan, rename),
        cues=cues_of(transcript),
        cues_total=len(cues),
        transcript_end=max((c.end for c in cues), default=None),
        segmentation=PlanSettings(
            snap_to_cues=seg.snap_to_cues,
            overlap=seg.overlap,
            min_duration=float(seg.min_duration),
            auto=any(c.knowledge_id and c.confidence is not None for c in plan.segments),
        ),  # fmt: skip
        notes=notes,
    )
