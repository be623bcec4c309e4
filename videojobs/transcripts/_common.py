"""What every transcript parser shares: errors with lines, limits, cue and word building."""

from __future__ import annotations

import gc
import html
import re
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from operator import itemgetter
from typing import Any, TypeVar

from pydantic import BaseModel

from videojobs.errors import Problem, TranscriptError
from videojobs.models import Cue, KnowledgePoint, Transcript, Word
from videojobs.times import round_ms

MAX_TRANSCRIPT_BYTES = 16 * 1024 * 1024
"""Largest transcript text read (UTF-8 bytes); a ConfigMap holds at most 1 MiB."""
MAX_CUES = 200_000
"""Most cues in one transcript (about 55 hours at one cue every second; the planner's limit)."""
MAX_WORDS = 250_000
"""Most timed words in one transcript (about 28 hours of speech)."""
MAX_NESTING = 64
"""Deepest nesting of JSON arrays/objects or XML elements (real transcripts need 6 or fewer)."""

_TAGS = re.compile(r"<[^>]*>|\{\\[^}]*\}")


@contextmanager
def paused_gc() -> Iterator[None]:
    """The cyclic garbage collector off while a parser builds a transcript: its collections,
    triggered by every few hundred new objects, rescan all the cues built so far (a third of
    the time of parsing 200,000 WebVTT cues). Transcripts hold no reference cycles; what is
    garbage is freed by reference counting as usual."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


class _Errors:
    """Builds TranscriptErrors with one source label (``spec.transcript.inline``, a file name)."""

    def __init__(self, source: str) -> None:
        self.source = source

    def __call__(self, message: str, line: int | None = None) -> TranscriptError:
        return TranscriptError(Problem(self.source, message, line))


def split_lines(text: str) -> list[str]:
    if text.startswith("\ufeff"):
        text = text[1:]
    return text.replace("\r\n", "\n").replace("\r", "\n").split("\n")


def clean_text(text: str) -> str:
    """Tags (``<i>``, ``{\\an8}``) and blank lines removed, entities decoded, lines stripped."""
    if "<" in text or "&" in text or "{" in text:
        lines = [html.unescape(_TAGS.sub("", line)).strip() for line in text.split("\n")]
    else:  # nothing to remove or decode (most cues): only strip
        lines = [line.strip() for line in text.split("\n")]
    return "\n".join(line for line in lines if line)


def line_of(text: str, offset: int) -> int:
    return text.count("\n", 0, offset) + 1


class LineIndex:
    """1-based line of offsets into ``text``; ascending offsets cost one pass in all."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.offset = 0
        self.line = 1

    def __call__(self, offset: int) -> int:
        if offset < self.offset:
            return line_of(self.text, offset)
        self.line += self.text.count("\n", self.offset, offset)
        self.offset = offset
        return self.line


def check_size(text: str, err: _Errors) -> None:
    """Refuse text over :data:`MAX_TRANSCRIPT_BYTES` before any parsing."""
    # 4 bytes per character at most: only count when it could be over
    if len(text) * 4 > MAX_TRANSCRIPT_BYTES and len(text.encode()) > MAX_TRANSCRIPT_BYTES:
        raise err(
            f"the transcript is larger than the limit of {MAX_TRANSCRIPT_BYTES} bytes "
            f"(MAX_TRANSCRIPT_BYTES, {MAX_TRANSCRIPT_BYTES // 1048576} MiB); split it or cut "
            "the video in parts"
        )


def check_cue_count(count: int, err: _Errors) -> None:
    if count > MAX_CUES:
        raise err(f"the transcript has more than the limit of {MAX_CUES} cues (MAX_CUES)")


def words_between(
    timed: Sequence[tuple[float | None, float | None, str]], start: float, end: float
) -> list[dict[str, Any]] | None:
    """Words with times; a word missing a time gets its neighbours' (or the cue's) edges.

    ``timed`` is ``(start, end, text)`` per word, in order; ``None`` where the format has no time
    for that word (WhisperX leaves numbers unaligned). None when there are no words at all.
    """
    words = [(s, e, t.strip()) for s, e, t in timed if t.strip()]
    if not words:
        return None
    out: list[dict[str, Any]] = []
    previous_end = start
    for i, (s, e, text) in enumerate(words):
        if s is None:
            s = previous_end
        if e is None:
            e = next((w[0] for w in words[i + 1 :] if w[0] is not None), end)
        if out and s < out[-1]["start"]:
            s = out[-1]["start"]  # keep words in time order
        e = max(e, s)
        out.append({"start": s, "end": e, "text": text})
        previous_end = e
    return out


def chained_words(
    pieces: Sequence[tuple[float, str]], start: float, end: float
) -> list[dict[str, Any]] | None:
    """Words from text pieces that carry only a start time (YouTube's json3 ``segs`` and srv3
    ``<s>``): each spoken piece lasts until the next spoken one starts, the last until ``end``.
    Blank pieces (line breaks) take no time of their own."""
    spoken = [(at, text) for at, text in pieces if text.strip()]
    timed = [
        (at, spoken[k + 1][0] if k + 1 < len(spoken) else end, text)
        for k, (at, text) in enumerate(spoken)
    ]
    return words_between(timed, start, end)


def make_transcript(
    fmt: str,
    raw: list[dict[str, Any]],
    err: _Errors,
    *,
    language: str | None = None,
    knowledge_points: list[KnowledgePoint] | None = None,
) -> Transcript:
    """Sort raw cues (dicts with start, end, text, id, line, words) and build the model.

    One rule for empty cues in every format: a cue with no text once tags and blank lines are
    removed (an SRT/WebVTT cue that clears the screen, SAMI's ``&nbsp;`` sync, a json3 line
    break) is not a cue: it is dropped before numbering, so ``cues:`` anchors count the same
    cues whatever format the captions come in. Its times are still checked.
    """
    if not raw:
        raise err("the transcript has no cues; expected at least one timed cue")
    texts = [item for item in raw if item["text"]]
    if not texts:
        raise err(
            "the transcript has no cues with text (every cue is empty); expected at least one",
            raw[0].get("line"),
        )
    check_cue_count(len(raw), err)
    bad = next((item for item in raw if not 0 <= item["start"] <= item["end"]), None)
    if bad is not None:
        if bad["start"] < 0:
            raise err(
                f"cue starts at a negative time ({bad['start']:g}s); expected 0 or later",
                bad.get("line"),
            )
        raise err(
            f"cue ends ({bad['end']:g}s) before it starts ({bad['start']:g}s); "
            "expected the end time after the start time",
            bad.get("line"),
        )
    word_count = sum(len(words) for item in raw if (words := item.get("words")))
    if word_count > MAX_WORDS:
        raise err(f"the transcript has more than the limit of {MAX_WORDS} timed words (MAX_WORDS)")
    ordered = sorted(texts, key=itemgetter("start", "end"))
    # checked above (times) and built by the parsers (types): constructed without validating
    # again, which was half the time of parsing a large WebVTT file; times rounded to the
    # millisecond as round_ms does
    construct = _new_cue
    cues = [
        construct(
            index=i,
            id=c.get("id"),
            start=round(c["start"] + 0.0, 3),
            end=round(c["end"] + 0.0, 3),
            text=c["text"],
            line=c.get("line"),
            words=_words(words) if (words := c.get("words")) is not None else None,
        )
        for i, c in enumerate(ordered, start=1)
    ]
    return Transcript(
        format=fmt, cues=cues, language=language, knowledge_points=knowledge_points or []
    )


_M = TypeVar("_M", bound=BaseModel)


def _constructor(model: type[_M]) -> Callable[..., _M]:
    """What ``model.model_construct(**fields)`` does when every field is given, for the
    transcript models (no defaults to fill, no aliases, no private attributes, no validators
    after construction): about ten times faster, which counts at 200,000 cues. Checked against
    pydantic's own by tests/unit/test_transcripts_construct.py."""
    new = model.__new__
    setattr_ = object.__setattr__

    def construct(**fields: Any) -> _M:
        obj = new(model)
        setattr_(obj, "__dict__", fields)
        setattr_(obj, "__pydantic_fields_set__", set(fields))
        setattr_(obj, "__pydantic_extra__", None)
        setattr_(obj, "__pydantic_private__", None)
        return obj

    return construct


def _words(words: Iterable[dict[str, Any]] | None) -> list[Word] | None:
    if words is None:
        return None
    construct = _new_word
    out = [
        construct(
            start=round_ms(max(w["start"], 0.0)), end=round_ms(max(w["end"], 0.0)), text=w["text"]
        )
        for w in words
    ]
    return out or None


_new_cue = _constructor(Cue)
_new_word = _constructor(Word)
