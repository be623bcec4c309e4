"""What the source already has: its chapters and its captions (pure).

yt-dlp's info dict carries ``chapters`` (``[{start_time, end_time, title}]``), ``subtitles``
(uploaded captions) and ``automatic_captions``, each ``{language: [{ext, url, ...}]}``. Direct
files carry chapters in the container (ffprobe ``-show_chapters``). This module turns them into
what the planner already understands:

- :func:`chapter_segments`: chapters -> explicit segments, each titled by its chapter, filtered
  by title globs (``segmentation.chapterTitles``);
- :func:`choose_captions`: the caption track to use for ``transcript.fromSource``: the first
  requested language pattern that matches, uploaded before automatic (unless told otherwise),
  WebVTT preferred; :class:`CaptionsNotFound` lists the languages the source has;
- :func:`merge_rolling`: automatic captions repeat each line as the next cue starts ("rolling"
  captions); merged, each line is one cue from its first appearance to its last.

Nothing here downloads: the worker does, through the network guard (the operator never does).
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from videojobs.errors import InvalidSpec, Problem
from videojobs.models.spec import ExplicitSegment, VideoProcessingJobSpec
from videojobs.models.status import CaptionsUsed
from videojobs.models.transcript import Transcript
from videojobs.transcripts import merge_rolling as merge_rolling  # re-exported
from videojobs.transcripts import parse_transcript

MAX_CHAPTERS = 500
"""Most chapters a source may have (the spec's own segment limit)."""

_CHAPTERS = "spec.segmentation.fromChapters"

CAPTION_EXT_PREFERENCE = ("vtt", "srt", "srv3", "json3", "ttml", "srv2", "srv1")
"""Caption formats in order of preference (WebVTT first: the parser's home format)."""


@dataclass(frozen=True)
class Chapter:
    """One chapter of the source."""

    start: float
    end: float
    title: str


@dataclass(frozen=True)
class CaptionTrack:
    """The caption track chosen for a job."""

    language: str
    automatic: bool
    ext: str
    url: str | None
    data: str | None = None
    """Inline content, when the info dict carries it (saved info JSON)."""

    def describe(self) -> str:
        """E.g. ``en (automatic, vtt)``."""
        return f"{self.language} ({'automatic' if self.automatic else 'uploaded'}, {self.ext})"


class CaptionsNotFound(InvalidSpec):
    """No caption track matches the requested languages."""


def chapters_from_info(info: Mapping[str, Any], duration: float | None = None) -> list[Chapter]:
    """Chapters from a yt-dlp info dict (or ffprobe's ``chapters`` list), in time order.

    yt-dlp gives ``start_time``/``end_time``/``title``; ffprobe gives ``start_time``/``end_time``
    as strings and the title in ``tags.title``. A chapter without an end ends where the next
    starts (or at ``duration``). Empty and zero-length chapters are dropped.
    """
    raw = info.get("chapters") or []
    if len(raw) > MAX_CHAPTERS:
        raise InvalidSpec(
            Problem(_CHAPTERS, f"the source has {len(raw)} chapters, more than {MAX_CHAPTERS}")
        )
    found: list[tuple[float, float | None, str]] = []
    for n, item in enumerate(raw, start=1):
        try:
            start = float(item.get("start_time"))
            end = item.get("end_time")
            end_value = float(end) if end not in (None, "") else None
        except (TypeError, ValueError):
            raise InvalidSpec(
                Problem(_CHAPTERS, f"chapter {n} of the source has no valid start_time/end_time")
            ) from None
        title = item.get("title") or (item.get("tags") or {}).get("title") or f"Chapter {n}"
        found.append((start, end_value, " ".join(str(title).split())))
    found.sort(key=lambda c: c[0])
    chapters: list[Chapter] = []
    for i, (start, end, title) in enumerate(found):
        if end is None:
            end = found[i + 1][0] if i + 1 < len(found) else duration
        if end is None or end <= start:
            continue
        chapters.append(Chapter(start, end, title))
    return chapters


def title_matches(title: str, patterns: Sequence[str] | None) -> bool:
    """Whether ``title`` matches one of the glob ``patterns`` (case-insensitive; none: all)."""
    if not patterns:
        return True
    folded = title.casefold()
    return any(fnmatch.fnmatchcase(folded, p.casefold()) for p in patterns)


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.casefold()).strip("-")[:60] or "chapter"


def _time(seconds: float) -> int | str:
    """A spec time value: whole seconds as an int, others as a string (the spec's rule)."""
    rounded = round(seconds, 3)
    return int(rounded) if rounded == int(rounded) else f"{rounded:.3f}"


def chapter_segments(
    chapters: Sequence[Chapter], patterns: Sequence[str] | None = None
) -> list[ExplicitSegment]:
    """Explicit segments for the chapters whose titles match ``patterns``.

    Each keeps its chapter title; its knowledge id is ``chNN-<slug of the title>`` (unique, and
    stable for a given source). Raises :class:`InvalidSpec` when nothing is left.
    """
    if not chapters:
        raise InvalidSpec(
            Problem(_CHAPTERS, "the source has no chapters (yt-dlp found none, nor the container)")
        )
    kept = [(n, c) for n, c in enumerate(chapters, start=1) if title_matches(c.title, patterns)]
    if not kept:
        titles = ", ".join(repr(c.title) for c in chapters[:10])
        raise InvalidSpec(
            Problem(
                "spec.segmentation.chapterTitles",
                f"matches none of the {len(chapters)} chapters "
                f"({titles}{', ...' if len(chapters) > 10 else ''})",
            )
        )
    return [
        ExplicitSegment.model_validate(
            {
                "title": c.title[:200],
                "knowledgeId": f"ch{n:02d}-{_slug(c.title)}"[:63].rstrip("-"),
                "start": _time(c.start),
                "end": _time(c.end),
            }
        )
        for n, c in kept
    ]


# -- captions ------------------------------------------------------------------------------------


def _tracks(info: Mapping[str, Any], key: str) -> dict[str, list[Mapping[str, Any]]]:
    value = info.get(key) or {}
    return {
        str(lang): [t for t in tracks if isinstance(t, Mapping)]
        for lang, tracks in value.items()
        if isinstance(tracks, list) and lang != "live_chat"
    }


def _best(tracks: Iterable[Mapping[str, Any]]) -> Mapping[str, Any] | None:
    ranked = sorted(
        (t for t in tracks if t.get("url") or t.get("data") is not None),
        key=lambda t: (
            CAPTION_EXT_PREFERENCE.index(t.get("ext", ""))
            if t.get("ext") in CAPTION_EXT_PREFERENCE
            else len(CAPTION_EXT_PREFERENCE)
        ),
    )
    return ranked[0] if ranked else None


def available_languages(info: Mapping[str, Any]) -> tuple[list[str], list[str]]:
    """``(uploaded, automatic)`` caption languages of the source, sorted."""
    return sorted(_tracks(info, "subtitles")), sorted(_tracks(info, "automatic_captions"))


def choose_captions(
    info: Mapping[str, Any],
    languages: Sequence[str],
    *,
    automatic: bool = True,
    prefer_automatic: bool = False,
) -> CaptionTrack:
    """The caption track for ``transcript.fromSource``.

    ``languages`` are tried in order; each is a language code or a glob (``en``, ``en-*``,
    ``*``). For one pattern, uploaded captions come before automatic ones (reversed with
    ``prefer_automatic``); automatic ones are considered only when ``automatic`` is true. Among
    a language's formats WebVTT is preferred (:data:`CAPTION_EXT_PREFERENCE`).
    """
    uploaded = _tracks(info, "subtitles")
    auto = _tracks(info, "automatic_captions") if automatic else {}
    kinds = (
        [(auto, True), (uploaded, False)] if prefer_automatic else [(uploaded, False), (auto, True)]
    )
    for pattern in languages:
        for tracks, is_auto in kinds:
            for lang in sorted(tracks, key=lambda x: (x != pattern, x)):
                if fnmatch.fnmatchcase(lang.casefold(), pattern.casefold()):
                    best = _best(tracks[lang])
                    if best is not None:
                        return CaptionTrack(
                            language=lang,
                            automatic=is_auto,
                            ext=str(best.get("ext") or "vtt"),
                            url=best.get("url"),
                            data=best.get("data"),
                        )
    have_up, have_auto = available_languages(info)
    has = []
    if have_up:
        has.append("uploaded: " + ", ".join(have_up[:30]) + (", ..." if len(have_up) > 30 else ""))
    if have_auto:
        has.append(
            "automatic: "
            + ", ".join(have_auto[:30])
            + (", ..." if len(have_auto) > 30 else "")
            + ("" if automatic else " (not allowed: automatic is false)")
        )
    raise CaptionsNotFound(
        Problem(
            "spec.transcript.fromSource.languages",
            f"no captions in {', '.join(languages)}; the source has "
            + ("; ".join(has) if has else "no captions at all"),
        )
    )


# -- applying it to a spec -----------------------------------------------------------------------


@dataclass
class Resolved:
    """A spec made plannable with what the source has."""

    spec: VideoProcessingJobSpec
    """The spec to plan: with ``segments`` from the chapters when ``fromChapters``."""
    transcript: Transcript | None
    captions: CaptionsUsed | None = None
    chapters: int | None = None
    chapter_starts: tuple[float, ...] = ()
    """With ``segmentation.auto``: the source's chapter starts, hints for the proposal."""


def chapter_hints(
    spec: VideoProcessingJobSpec, info: Mapping[str, Any], duration: float | None = None
) -> tuple[float, ...]:
    """The source's chapter starts when ``segmentation.auto`` may use them as hints, else ``()``
    (also when the chapters cannot be read: hints are optional)."""
    if spec.segmentation.auto is None:
        return ()
    try:
        return tuple(c.start for c in chapters_from_info(info, duration))
    except InvalidSpec:
        return ()


def _parse_captions(text: str, track: CaptionTrack) -> Transcript:
    """Parse fetched captions within :data:`~videojobs.budget.PARSE_MEMORY`: they come from the
    source's site, as hostile as any tenant's input (in ``videojobs run`` nothing else bounds
    the process)."""
    from videojobs.budget import budget_message, memory_budget

    try:
        with memory_budget():
            return parse_transcript(
                text, "auto", source=f"captions {track.describe()}", rolling=track.automatic or None
            )
    except MemoryError:
        raise InvalidSpec(
            Problem(
                "spec.transcript.fromSource", f"captions {track.describe()}: {budget_message()}"
            )
        ) from None


def resolve_from_source(
    spec: VideoProcessingJobSpec,
    info: Mapping[str, Any],
    transcript: Transcript | None,
    read_captions: Callable[[CaptionTrack], str],
    duration: float | None = None,
) -> Resolved:
    """Apply the source's captions (``transcript.fromSource``) and chapters
    (``segmentation.fromChapters``) to ``spec``; ``transcript`` is the one already resolved
    from the spec otherwise. ``read_captions`` fetches a chosen track's text (the worker
    through yt-dlp and the network guard; ``videojobs plan`` from a saved info JSON).

    Raises :class:`InvalidSpec` naming the field: no matching captions (listing the languages
    the source has), no chapters, or a caption file that does not parse.
    """
    captions: CaptionsUsed | None = None
    chapter_count: int | None = None
    wanted = spec.transcript.from_source if spec.transcript is not None else None
    if wanted is not None:
        track = choose_captions(
            info,
            wanted.languages,
            automatic=wanted.automatic,
            prefer_automatic=wanted.prefer_automatic,
        )
        text = read_captions(track)
        # automatic captions are merged even when too short to detect that they roll
        transcript = _parse_captions(text, track)
        language = (spec.transcript.language if spec.transcript else None) or track.language
        transcript = transcript.model_copy(update={"language": language})
        captions = CaptionsUsed(
            language=track.language,
            automatic=track.automatic,
            format=track.ext,
            cues=len(transcript.cues),
        )
    planned = spec
    if spec.segmentation.from_chapters:
        chapters = chapters_from_info(info, duration)
        chapter_count = len(chapters)
        segments = chapter_segments(chapters, spec.segmentation.chapter_titles)
        planned = spec.model_copy(update={"segments": segments})
    return Resolved(
        planned, transcript, captions, chapter_count, chapter_hints(spec, info, duration)
    )
