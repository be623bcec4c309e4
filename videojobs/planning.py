"""The planner: spec + transcript (+ source duration) → the ordered list of clips to cut.

:func:`plan_segments` is pure and deterministic: the same input always gives the same plan, and
it does no I/O. The steps, in order (each change is recorded in ``SegmentPlan.notes``):

1. **Ranges.** Explicit ``segments`` are taken as they are. Otherwise each knowledge point (from
   the spec, or from a seed-json transcript when the spec has none, or else proposed from the
   transcript by ``segmentation.auto``, see :mod:`videojobs.segmentation`) gets a start:
   - ``start`` (and optional ``end``) as written;
   - ``cues``: ``"intro"``, ``"41"`` or ``"41-58"``; each end is a cue id, or else a 1-based cue
     index; the range runs from the first cue's start to the last cue's end;
   - ``quote``: the place in the transcript whose words best match the quote (see
     :func:`match_quote`); the clip starts at the start of the cue holding the first matched word.
2. **Snapping** (``snapToCues``, with a transcript): a start inside a cue moves back to that cue's
   start, an end inside a cue moves on to that cue's end, so no clip cuts a sentence.
3. **Missing ends** run to the next knowledge point's start (in time order), else to the end of
   the source: the known duration, or else the end of the transcript.
4. **Clamping** (known duration only): a range starting at or after the end is an error; an end
   past it is cut back to it.
5. **Sorting** by start, then end, then spec order.
6. **Overlaps** (a clip starting before the previous one ends; touching is not overlapping):
   ``merge`` joins them into one clip (the earlier clip's id and title), ``trim`` starts the later
   clip where the earlier one ends (a clip left empty is dropped), ``allow`` keeps both,
   ``reject`` is an error naming both.
7. **Short clips** (shorter than ``minDuration``): ``keep`` keeps them, ``reject`` is an error,
   ``merge`` joins the first short clip with its nearer neighbour (the one with the smaller gap;
   ties go to the previous clip) into one clip spanning both that keeps the neighbour's id and
   title, and repeats until no clip is short; a plan of one short clip keeps it, with a note.
8. **Padding** widens every clip by ``padding`` on both sides, within ``[0, duration]``; under
   ``merge``, ``trim`` and ``reject`` two neighbours never overlap because of padding (they meet
   halfway between their unpadded ends), under ``allow`` they may.
9. **Stems** from ``output.naming`` (see :mod:`videojobs.naming`): unique, safe, stable.
"""

from __future__ import annotations

import re
from bisect import bisect_left, bisect_right
from collections.abc import Sequence
from dataclasses import dataclass, replace
from itertools import pairwise

from videojobs.errors import PlanError, Problem
from videojobs.models import (
    Cue,
    KnowledgePoint,
    PlannedSegment,
    SegmentPlan,
    Transcript,
    VideoProcessingJobSpec,
)
from videojobs.naming import make_stem, unique_stems
from videojobs.quotes import (  # noqa: F401  (re-exported: the planner's quote matching)
    MAX_TRANSCRIPT_WORDS,
    QUOTE_AMBIGUITY_MARGIN,
    QUOTE_MAX_COMPARISONS,
    QUOTE_MIN_SCORE,
    QuoteIndex,
    QuoteMatch,
    match_quote,
    normalise_words,
)
from videojobs.times import format_timestamp, round_ms

MAX_CUES = 200_000
"""Most cues a transcript may have to be planned (a 1 MiB ConfigMap holds about 20,000)."""


MAX_KNOWLEDGE_POINTS = 500
"""Most knowledge points in a plan (the spec's own list is limited to as many)."""


class NeedsTranscript(PlanError):
    """The plan needs the transcript's text or length, and none was given.

    Raised by :func:`plan_segments` with ``transcript=None``; a caller whose transcript is at a
    URL (fetched by the worker) can treat it as "plan later" rather than as an invalid spec.
    """


@dataclass(frozen=True)
class _Range:
    """A clip in the making."""

    order: int  # position in the spec, for stable sorting
    path: str  # field path of what produced it
    knowledge_id: str | None
    title: str
    description: str
    start: float
    end: float | None
    confidence: float | None = None  # segmentation.auto's


def _ts(seconds: float) -> str:
    return format_timestamp(seconds)


# --- cues ---------------------------------------------------------------------------------


def _find_cue(token: str, transcript: Transcript, ids: dict[str, Cue]) -> Cue | None:
    if token in ids:
        return ids[token]
    if token.isdigit() and 1 <= int(token) <= len(transcript.cues):
        return transcript.cues[int(token) - 1]
    return None


def _cue_ids(transcript: Transcript) -> dict[str, Cue]:
    """The first cue of each id."""
    ids: dict[str, Cue] = {}
    for cue in transcript.cues:
        if cue.id is not None:
            ids.setdefault(cue.id, cue)
    return ids


def resolve_cues(
    spec_text: str, transcript: Transcript, path: str, ids: dict[str, Cue] | None = None
) -> tuple[Cue, Cue]:
    """First and last cue of a ``cues`` value: an id or 1-based index, or ``first-last``.

    An end is a cue id when one matches exactly, else a 1-based index. Ids may contain ``-``,
    so ``a-b-c`` is tried as one id first, then split at each ``-`` in turn.

    Raises:
        PlanError: an end names no cue, or the range runs backwards.
    """
    ids = _cue_ids(transcript) if ids is None else ids
    text = spec_text.strip()
    single = _find_cue(text, transcript, ids)
    if single is not None:
        return single, single
    for m in re.finditer(r"\s*-\s*", text):
        first, last = (
            _find_cue(text[: m.start()], transcript, ids),
            _find_cue(text[m.end() :], transcript, ids),
        )
        if first is not None and last is not None:
            if last.index < first.index:
                raise PlanError(
                    Problem(
                        path,
                        f"cue range {spec_text!r} runs backwards (cue {first.index} to "
                        f"{last.index}); write first-last",
                    )
                )
            return first, last
    raise PlanError(
        Problem(
            path,
            f"{spec_text!r} names no cue: expected a cue id, a 1-based index from 1 to "
            f"{len(transcript.cues)}, or a range like 3-7",
        )
    )


# --- the plan -----------------------------------------------------------------------------


def _knowledge_points(
    spec: VideoProcessingJobSpec,
    transcript: Transcript | None,
    chapters: Sequence[float],
    duration: float | None,
    notes: list[str],
) -> tuple[list[KnowledgePoint], str, list[float] | None]:
    auto = spec.segmentation.auto
    if spec.knowledge_points or (transcript is not None and transcript.knowledge_points):
        if auto is not None:
            notes.append("segmentation.auto not used: the knowledge points are given")
        if spec.knowledge_points:
            return spec.knowledge_points, "spec.knowledgePoints", None
        assert transcript is not None
        return transcript.knowledge_points, "transcript.knowledge_points", None
    if transcript is None:
        raise NeedsTranscript(
            Problem(
                "spec.knowledgePoints",
                "no knowledge points in the spec; they must come from the transcript "
                "(seed-json, or segmentation.auto), which is not available",
            )
        )
    if auto is not None:
        from videojobs.segmentation import Settings, propose

        settings = Settings(
            min_duration=auto.min_duration,
            max_duration=auto.max_duration,
            target_count=auto.target_count,
            language=auto.language or (spec.transcript.language if spec.transcript else None),
        )
        proposal = propose(transcript, settings, chapters, duration)
        if not proposal.points:
            raise PlanError(
                Problem("spec.segmentation.auto", "the transcript has no words to segment")
            )
        notes.extend(proposal.notes)
        notes.append(
            f"segmentation.auto: {len(proposal.points)} knowledge points proposed from the "
            "transcript (confidence per clip)"
        )
        points = proposal.knowledge_points()
        return points, "segmentation.auto", [p.confidence for p in proposal.points]
    raise PlanError(
        Problem(
            "spec.knowledgePoints",
            "no knowledge points: list them in spec.knowledgePoints, use a seed-json "
            "transcript that carries knowledge_points, or set segmentation.auto",
        )
    )


def _initial_ranges(
    spec: VideoProcessingJobSpec,
    transcript: Transcript | None,
    chapters: Sequence[float] = (),
    duration: float | None = None,
) -> tuple[list[_Range], list[str]]:
    notes: list[str] = []
    if spec.segments is not None:
        return [
            _Range(i, f"spec.segments[{i}]", s.knowledge_id, s.title, s.description, s.start, s.end)
            for i, s in enumerate(spec.segments)
        ], notes
    points, base, confidences = _knowledge_points(spec, transcript, chapters, duration, notes)
    # the index and the cue ids are caches, built at the first quote and cues: equivalent mutants
    quotes: QuoteIndex | None = None  # pragma: no mutate
    budget = [QUOTE_MAX_COMPARISONS]
    cue_ids: dict[str, Cue] | None = None
    ranges = []
    for i, kp in enumerate(points):
        path = f"{base}[{i}]"
        start, end = kp.start, kp.end
        if kp.cues is not None or kp.quote is not None:
            field = "cues" if kp.cues is not None else "quote"
            if transcript is None:
                raise NeedsTranscript(
                    Problem(
                        f"{path}.{field}", f"{field} needs the transcript, which is not available"
                    )
                )
            if kp.cues is not None:
                cue_ids = _cue_ids(transcript) if cue_ids is None else cue_ids  # pragma: no mutate
                first, last = resolve_cues(kp.cues, transcript, f"{path}.cues", cue_ids)
                start, end = first.start, last.end
            else:
                assert kp.quote is not None
                quotes = quotes or QuoteIndex(transcript)
                found = match_quote(kp.quote, quotes, f"{path}.quote", budget)
                if spec.segmentation.snap_to_cues or found.start == found.cue.start:
                    start = found.cue.start
                    notes.append(
                        f"{path}: quote matched cue {found.cue.index} at {_ts(start)} "
                        f"(similarity {found.score:.0f})"
                    )
                else:
                    start = found.start
                    notes.append(
                        f"{path}: quote matched cue {found.cue.index} at its word at "
                        f"{_ts(start)} (similarity {found.score:.0f})"
                    )
        assert start is not None
        confidence = confidences[i] if confidences is not None else None
        ranges.append(_Range(i, path, kp.id, kp.title, kp.description, start, end, confidence))
    return ranges, notes


class _CueTimes:
    """Cue starts and ends ordered by start, for finding the cues around a time quickly."""

    def __init__(self, cues: list[Cue]) -> None:
        self.cues = cues
        self.ordered = all(a.start <= b.start for a, b in pairwise(cues))
        by_start = cues if self.ordered else sorted(cues, key=lambda c: c.start)
        self.starts = [c.start for c in by_start]
        self.ends = [c.end for c in by_start]
        self.reach: list[float] = []  # greatest end among the cues up to here
        for end in self.ends:
            self.reach.append(max(end, self.reach[-1]) if self.reach else end)

    def earliest_start_around(self, t: float) -> float | None:
        """Earliest start of the cues with ``start < t < end``."""
        k = bisect_left(self.starts, t)  # cues [0, k) start before t
        j = bisect_right(self.reach, t, 0, k)  # first cue whose reach passes t
        return self.starts[j] if j < k else None

    def latest_end_around(self, t: float) -> float | None:
        """Latest end of the cues with ``start < t < end``."""
        k = bisect_left(self.starts, t)
        return self.reach[k - 1] if k and self.reach[k - 1] > t else None

    def overlapping(self, start: float, end: float) -> tuple[int, int] | None:
        """Indices of the first and last cue (in transcript order) with ``end > start`` and
        ``start < end``."""
        if not self.ordered:
            inside = [c.index for c in self.cues if c.end > start and c.start < end]
            return (inside[0], inside[-1]) if inside else None
        k = bisect_left(self.starts, end)
        first = bisect_right(self.reach, start, 0, k)
        if first >= k:
            return None
        last = next(p for p in range(k - 1, first - 1, -1) if self.ends[p] > start)
        return self.cues[first].index, self.cues[last].index


def _snap(ranges: list[_Range], times: _CueTimes, notes: list[str]) -> list[_Range]:
    out = []
    for r in ranges:
        start, end = r.start, r.end
        around = times.earliest_start_around(start)
        if around is not None:
            start = around
        if end is not None:
            around = times.latest_end_around(end)
            if around is not None:
                end = around
        changes = []
        if start != r.start:
            changes.append(f"start {_ts(r.start)}→{_ts(start)}")
        if end is not None and r.end is not None and end != r.end:
            changes.append(f"end {_ts(r.end)}→{_ts(end)}")
        if changes:
            notes.append(f"{r.path}: snapped to cue edges: {', '.join(changes)}")
        out.append(replace(r, start=start, end=end))
    return out


def _fill_ends(
    ranges: list[_Range],
    source_end: float | None,
    transcript: Transcript | None,
    duration: float | None,
) -> list[tuple[_Range, float]]:
    starts = sorted({r.start for r in ranges})
    out = []
    for r in ranges:
        if r.end is not None:
            out.append((r, r.end))
            continue
        later = [s for s in starts if s > r.start]
        if later:
            out.append((r, later[0]))
        elif source_end is not None:
            if source_end <= r.start:
                raise PlanError(
                    Problem(
                        f"{r.path}.start",
                        f"starts at {_ts(r.start)}, at or after the end of the "
                        f"{'source' if duration is not None else 'transcript'} "
                        f"({_ts(source_end)}), and has no end"
                        + ("" if duration is not None else "; give end, or the source duration"),
                    )
                )
            out.append((r, source_end))
        elif transcript is None:
            raise NeedsTranscript(
                Problem(
                    f"{r.path}.end",
                    "no end, no later knowledge point, and neither the source duration nor "
                    "the transcript is known",
                )
            )
    return out


def _clamp(
    ranges: list[tuple[_Range, float]], duration: float | None, notes: list[str]
) -> list[tuple[_Range, float]]:
    if duration is None:
        return ranges
    out = []
    for r, end in ranges:
        if r.start >= duration:
            raise PlanError(
                Problem(
                    f"{r.path}.start",
                    f"starts at {_ts(r.start)}, at or after the end of the source "
                    f"({_ts(duration)})",
                )
            )
        if end > duration:
            notes.append(f"{r.path}: end {_ts(end)} clamped to the source end {_ts(duration)}")
            end = duration
        out.append((r, end))
    return out


@dataclass
class _Clip:
    first: _Range  # gives id, title, description, path
    start: float
    end: float

    @property
    def duration(self) -> float:
        return round_ms(self.end - self.start)


def _resolve_overlaps(clips: list[_Clip], policy: str, notes: list[str]) -> list[_Clip]:
    out: list[_Clip] = []
    for clip in clips:
        prev = out[-1] if out else None
        if prev is None or clip.start >= prev.end or policy == "allow":
            if prev is not None and clip.start < prev.end:
                notes.append(f"{clip.first.path}: overlaps {prev.first.path} (allowed)")
            out.append(clip)
            continue
        if policy == "reject":
            raise PlanError(
                Problem(
                    clip.first.path,
                    f"{_ts(clip.start)}-{_ts(clip.end)} overlaps {prev.first.path} "
                    f"({_ts(prev.start)}-{_ts(prev.end)}) and segmentation.overlap is reject",
                )
            )
        if policy == "merge":
            notes.append(
                f"{clip.first.path}: overlaps {prev.first.path}; merged into it (overlap: merge)"
            )
            prev.end = max(prev.end, clip.end)
            continue
        # trim
        if clip.end <= prev.end:
            notes.append(
                f"{clip.first.path}: lies inside {prev.first.path}; dropped (overlap: trim)"
            )
            continue
        notes.append(
            f"{clip.first.path}: start trimmed {_ts(clip.start)}→{_ts(prev.end)} (overlap: trim)"
        )
        clip.start = prev.end
        out.append(clip)
    return out


def _merge_short(
    clips: list[_Clip], min_duration: float, policy: str, notes: list[str]
) -> list[_Clip]:
    short = [c for c in clips if c.duration < min_duration]
    if not short or policy == "keep":
        for c in short:
            notes.append(
                f"{c.first.path}: {c.duration:g}s is shorter than minDuration "
                f"{min_duration:g}s; kept (shortSegments: keep)"
            )
        return clips
    if policy == "reject":
        c = short[0]
        raise PlanError(
            Problem(
                c.first.path,
                f"{_ts(c.start)}-{_ts(c.end)} is {c.duration:g}s long, shorter than "
                f"segmentation.minDuration {min_duration:g}s (shortSegments: reject)",
            )
        )
    clips = list(clips)
    while len(clips) > 1:
        i = next((k for k, c in enumerate(clips) if c.duration < min_duration), None)
        if i is None:
            break
        clip = clips[i]
        gap_prev = clip.start - clips[i - 1].end if i > 0 else None
        gap_next = clips[i + 1].start - clip.end if i + 1 < len(clips) else None
        j = i - 1 if gap_next is None or (gap_prev is not None and gap_prev <= gap_next) else i + 1
        target = clips[j]
        notes.append(
            f"{clip.first.path}: {clip.duration:g}s is shorter than minDuration "
            f"{min_duration:g}s; merged into {target.first.path} (shortSegments: merge)"
        )
        target.start, target.end = min(target.start, clip.start), max(target.end, clip.end)
        del clips[i]
    # the loop leaves a short clip only when it is the only one
    if clips[0].duration < min_duration:
        notes.append(
            f"{clips[0].first.path}: {clips[0].duration:g}s is shorter than minDuration "
            f"{min_duration:g}s but is the only clip; kept"
        )
    return clips


def _pad(
    clips: list[_Clip], padding: float, duration: float | None, policy: str
) -> list[tuple[float, float]]:
    padded = [
        (
            round_ms(max(0.0, c.start - padding)),
            round_ms(c.end + padding if duration is None else min(duration, c.end + padding)),
        )
        for c in clips
    ]
    if policy != "allow":
        for k in range(1, len(padded)):
            (ps, pe), (cs, ce) = padded[k - 1], padded[k]
            # padded ends that only touch give the same bounds either way (the middle is both)
            if pe > cs:  # pragma: no mutate
                middle = round_ms((clips[k - 1].end + clips[k].start) / 2)
                padded[k - 1], padded[k] = (ps, middle), (middle, ce)
    return padded


def _check_limits(spec: VideoProcessingJobSpec, transcript: Transcript | None) -> None:
    if transcript is None:
        return
    if len(transcript.cues) > MAX_CUES:
        raise PlanError(
            Problem(
                "spec.transcript",
                f"the transcript has {len(transcript.cues)} cues, over the limit of {MAX_CUES} "
                "(MAX_CUES); split the video, or give segments instead",
            )
        )
    if not spec.knowledge_points and len(transcript.knowledge_points) > MAX_KNOWLEDGE_POINTS:
        raise PlanError(
            Problem(
                "transcript.knowledge_points",
                f"the transcript has {len(transcript.knowledge_points)} knowledge points, over "
                f"the limit of {MAX_KNOWLEDGE_POINTS} (MAX_KNOWLEDGE_POINTS)",
            )
        )


def plan_segments(
    spec: VideoProcessingJobSpec,
    transcript: Transcript | None,
    duration: float | None = None,
    chapters: Sequence[float] = (),
) -> SegmentPlan:
    """Turn a spec (and its transcript, and the source length when known) into clips.

    See the module docstring for the rules. Pure and deterministic. ``chapters`` (the source's
    chapter starts, seconds) are hints for ``segmentation.auto``.

    Raises:
        PlanError: the spec cannot be planned; the problem names the field
            (``spec.knowledgePoints[2].quote``). :class:`NeedsTranscript` when only the
            missing transcript stands in the way.
    """
    seg = spec.segmentation
    _check_limits(spec, transcript)
    ranges, notes = _initial_ranges(spec, transcript, chapters, duration)
    times = _CueTimes(transcript.cues) if transcript is not None else None
    if times is not None and seg.snap_to_cues and spec.segments is None:
        ranges = _snap(ranges, times, notes)
    source_end = duration if duration is not None else (transcript.duration if transcript else None)
    with_ends = _clamp(_fill_ends(ranges, source_end, transcript, duration), duration, notes)
    for r, end in with_ends:
        if end <= r.start:
            raise PlanError(
                Problem(
                    f"{r.path}.end",
                    f"ends at {_ts(end)}, not after its start {_ts(r.start)}",
                )
            )
    ordered = sorted(with_ends, key=lambda item: (item[0].start, item[1], item[0].order))
    clips = [_Clip(r, r.start, end) for r, end in ordered]
    clips = _resolve_overlaps(clips, seg.overlap, notes)
    clips = _merge_short(clips, seg.min_duration, seg.short_segments, notes)
    bounds = _pad(clips, seg.padding, duration, seg.overlap)
    if seg.padding:
        notes.append(f"padding of {seg.padding:g}s added around each clip")

    segments = []
    raw_stems = []
    for index, (clip, (start, end)) in enumerate(zip(clips, bounds, strict=True), start=1):
        values = {
            "index": index,
            "knowledge_id": clip.first.knowledge_id,
            "title": clip.first.title,
            "start": start,
            "end": end,
        }
        try:
            raw_stems.append(make_stem(spec.output.naming, values, f"segment-{index:02d}"))
        except ValueError as exc:
            raise PlanError(Problem("spec.output.naming", str(exc))) from None
        segments.append((index, clip, start, end))
    stems = unique_stems(raw_stems)
    for raw, stem in zip(raw_stems, stems, strict=True):
        if raw != stem:
            notes.append(f"file stem {raw!r} repeats; renamed {stem!r}")

    planned = []
    for (index, clip, start, end), stem in zip(segments, stems, strict=True):
        inside = times.overlapping(start, end) if times is not None else None
        planned.append(
            PlannedSegment(
                index=index,
                knowledge_id=clip.first.knowledge_id,
                title=clip.first.title,
                description=clip.first.description,
                start=start,
                end=end,
                stem=stem,
                cue_indices=inside,
                confidence=clip.first.confidence,
            )
        )
    return SegmentPlan(segments=planned, source_duration=duration, notes=notes)
