"""The quote matcher as it was before the index: every window scored (the brute-force reference).

Kept as it was (bar names and error texts, and the ranking of issue 26: a window with the quote's
words exactly outranks the others, one with the quote's numbers outranks one with other numbers)
so that tests can compare the candidate-window fast path of
:func:`videojobs.planning.match_quote` with scoring every window.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from rapidfuzz import fuzz, process

from videojobs.errors import PlanError, Problem
from videojobs.models import Cue, Transcript
from videojobs.planning import QUOTE_AMBIGUITY_MARGIN, QUOTE_MIN_SCORE, normalise_words


@dataclass(frozen=True)
class ReferenceMatch:
    cue: Cue
    score: float
    word: int


class ReferenceIndex:
    """The old ``QuoteIndex``: every word with its cue, and every window per length (cached)."""

    def __init__(self, transcript: Transcript) -> None:
        self.words = [(w, cue) for cue in transcript.cues for w in normalise_words(cue.text)]
        self._windows: dict[int, list[str]] = {}

    def windows(self, n: int) -> list[str]:
        if n not in self._windows:
            plain = [w for w, _ in self.words]
            self._windows[n] = [
                " ".join(plain[i : i + n]) for i in range(max(1, len(plain) - n + 1))
            ]
        return self._windows[n]


def reference_match_quote(
    quote: str, transcript: Transcript | ReferenceIndex, path: str
) -> ReferenceMatch:
    """Score every window of ``len(quote words)`` transcript words; see ``match_quote``."""
    index = transcript if isinstance(transcript, ReferenceIndex) else ReferenceIndex(transcript)
    words = index.words
    wanted = normalise_words(quote)
    if not wanted:
        raise PlanError(Problem(path, f"quote {quote!r} has no words to match"))
    if not words:
        raise PlanError(Problem(path, f"quote {quote!r} not found: the transcript has no words"))
    n = len(wanted)
    target = " ".join(wanted)
    windows = index.windows(n)
    close = process.extract(
        target, windows, scorer=fuzz.ratio, limit=None, score_cutoff=QUOTE_MIN_SCORE
    )
    if not close:
        raise PlanError(Problem(path, f"quote {quote!r} not found in the transcript"))

    def numbers(text: str) -> list[str]:
        return [w for w in text.split(" ") if re.search(r"\d", w)]

    def tier(window: str) -> int:
        return 2 if window == target else 1 if numbers(window) == numbers(target) else 0

    best_tier = max(tier(w) for w, _, _ in close)
    close = [(w, score, i) for w, score, i in close if tier(w) == best_tier]
    best_score = max(score for _, score, _ in close)
    cutoff = max(QUOTE_MIN_SCORE, best_score - QUOTE_AMBIGUITY_MARGIN)
    best_i = min(i for _, score, i in close if score == best_score)
    rivals = [(score, i) for _, score, i in close if score >= cutoff and abs(i - best_i) >= n]
    if rivals:
        raise PlanError(Problem(path, f"quote {quote!r} is ambiguous"))
    return ReferenceMatch(cue=words[best_i][1], score=best_score, word=best_i)
