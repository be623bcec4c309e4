"""Rolling captions (YouTube's automatic captions, and files converted from them): detected in
any format and merged into each spoken line once, its word timestamps kept."""

from __future__ import annotations

from collections.abc import Sequence
from itertools import pairwise
from typing import Any

from videojobs.models import Cue, Word

ROLLING_SHARE = 0.5
"""Least share of consecutive cue pairs where the next cue starts with the line the previous one
ended with for captions to be read as rolling."""

ROLLING_MIN_PAIRS = 3
"""Least number of such pairs (a few short captions that happen to repeat a line stay as
they are; automatic captions from the source are merged whatever their length)."""


def _lines(text: str) -> list[str]:
    return [line for line in (" ".join(part.split()) for part in text.split("\n")) if line]


def is_rolling(cues: Sequence[Cue]) -> bool:
    """True when ``cues`` roll: at least :data:`ROLLING_SHARE` of consecutive pairs (and at
    least :data:`ROLLING_MIN_PAIRS`) have the next cue's first line equal to the previous
    cue's last line, one of the two cues showing two lines or more."""
    if len(cues) < 3:
        return False
    # a cue's text has no blank lines and stripped lines (clean_text): split once at each end
    shared = 0
    for a, b in pairwise(cues):
        # a line scrolls up: one of the two cues shows two lines (a cue repeated whole, such
        # as "[Music]" three times, is not rolling)
        if a.text != b.text and ("\n" in a.text or "\n" in b.text):
            last, first = a.text.rsplit("\n", 1)[-1], b.text.split("\n", 1)[0]
            if last and " ".join(last.split()) == " ".join(first.split()):
                shared += 1
    return shared >= ROLLING_MIN_PAIRS and shared >= ROLLING_SHARE * (len(cues) - 1)


def _line_words(cue: Cue, lines: list[str]) -> list[list[Word] | None]:
    """The cue's words split by its text lines (each line's words, in order), or Nones when
    they do not spell the lines."""
    none: list[list[Word] | None] = [None] * len(lines)
    if not cue.words:
        return none
    out: list[list[Word] | None] = []
    k = 0
    words = cue.words
    for line in lines:
        want = "".join(line.split())
        got, taken = "", []
        while k < len(words) and len(got) < len(want):
            taken.append(words[k])
            got += "".join(words[k].text.split())
            k += 1
        if got != want:
            return none
        out.append(taken)
    return out if k == len(words) else none


def merge_rolling(cues: Sequence[Cue]) -> list[Cue]:
    """Undo rolling captions: each distinct line once, from its first to its last appearance.

    YouTube's automatic captions show two lines at a time and scroll: a line appears as the
    second line of one cue and again as the first line of the next (often with a 10 ms cue in
    between that holds it alone). Quotes and ``snapToCues`` need each sentence once, timed as it
    is spoken: a line starts at its first appearance and ends where the next new line starts
    (on screen it stays longer, scrolling up). Its words (WebVTT inline timestamps, json3/srv3
    word times) are those of its first appearance, where they are timed. Captions that do not
    roll come out one cue per line.
    """
    merged: list[dict[str, Any]] = []
    open_lines: dict[str, int] = {}  # text -> index in merged, for lines shown by the last cue
    for cue in cues:
        lines = _lines(cue.text)
        groups = _line_words(cue, lines)
        still_open: dict[str, int] = {}
        for line, words in zip(lines, groups, strict=True):
            at = open_lines.get(line)
            if at is not None:
                merged[at]["end"] = max(merged[at]["end"], cue.end)
                still_open[line] = at
            else:
                merged.append(
                    {"start": cue.start, "end": cue.end, "text": line, "cue": cue, "words": words}
                )
                still_open[line] = len(merged) - 1
        open_lines = still_open
    # A line is spoken while it is the newest one shown: it ends where the next line starts
    # (it stays on screen longer, scrolling up, but that is display time, not speech time).
    for item, following in zip(merged, merged[1:], strict=False):
        if following["start"] > item["start"]:
            item["end"] = min(item["end"], following["start"])
    out: list[Cue] = []
    for n, item in enumerate(merged, start=1):
        src: Cue = item["cue"]
        out.append(
            Cue(index=n, id=src.id, start=item["start"], end=item["end"], text=item["text"],
                line=src.line, words=item["words"] or None)
        )  # fmt: skip
    return out
