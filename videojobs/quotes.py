"""Quote matching: where in a transcript a quoted sentence is spoken.

:class:`QuoteIndex` normalises a transcript once (:func:`normalise_words`, in bulk) and keeps it
compact: one string of its words, each word's offset in it, each word's vocabulary id, and where
each vocabulary word occurs. :func:`match_quote` scores, with rapidfuzz, only the candidate
windows that hold a word similar to one of the quote's rarest words.
"""

from __future__ import annotations

import re
import unicodedata
from array import array
from bisect import bisect_right
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from itertools import accumulate, chain, repeat

from rapidfuzz import fuzz, process
from rapidfuzz.distance import LCSseq

from videojobs.errors import PlanError, Problem
from videojobs.models import Cue, Transcript, Word
from videojobs.times import format_timestamp

QUOTE_MIN_SCORE = 80.0
"""Least similarity (0-100, rapidfuzz ratio of normalised words) for a quote to match."""

QUOTE_AMBIGUITY_MARGIN = 5.0
"""A second, separate place scoring within this margin of the best one makes a quote ambiguous."""

MAX_TRANSCRIPT_WORDS = 4_000_000
"""Most words a transcript may have when quotes are matched against it."""

ANCHOR_MIN_SCORE = 75.0
"""Least similarity of a transcript word to a quote word for it to anchor a candidate window."""

QUOTE_ANCHORS = 2
"""How many of a quote's rarest words anchor its likely windows."""

QUOTE_FALLBACK_ANCHORS = 4
"""How many of a quote's rarest words anchor its possible windows, scored when none of the
likely ones matches, or only weakly (:data:`QUOTE_RECHECK_BELOW`)."""

QUOTE_RECHECK_BELOW = 90.0
"""A best likely window scoring less than this is checked against the possible ones too: a weak
match is the kind another place may rival."""

QUOTE_SHIFT = 3
"""How far (in words) a matching window may start from where an anchor word puts it: the
quote may have dropped or added a few words before the anchor."""

QUOTE_MAX_COMPARISONS = 20_000_000
"""Most transcript windows scored for all the quotes of one plan together."""

_NON_WORD = re.compile(r"[^\w]+")
# Scripts written without spaces between words: each character counts as a word.
_UNSPACED = re.compile(r"([\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff])")
_SEP = "\x1f"
"""Between the texts normalised together: not a word character, and left alone by casefolding
and the Unicode normal forms (a starter that composes with nothing)."""
_NON_WORD_BUT_SEP = re.compile(r"[^\w\x1f]+")
_CHUNK = 2048
"""Texts normalised together, in one pass of each step."""


def _plain(text: str) -> str:
    """``text`` case-folded, without accents or apostrophes, with spaces around every Chinese and
    Japanese character: :func:`normalise_words` up to splitting. Works character by character,
    so texts joined by :data:`_SEP` come out joined by it."""
    if text.isascii():  # casefold is lower, the normal forms and _UNSPACED change nothing
        return text.lower().replace("'", "")
    decomposed = unicodedata.normalize("NFKD", text.casefold())
    drop: dict[int, None] = {ord(c): None for c in set(decomposed) if unicodedata.combining(c)}
    drop[ord("'")] = drop[ord("\u2019")] = None  # let's == lets
    plain = decomposed.translate(drop)
    return _UNSPACED.sub(r" \1 ", unicodedata.normalize("NFC", plain))


def normalise_words(text: str) -> list[str]:
    """Words for matching: case-folded, accents removed, punctuation dropped; in Chinese and
    Japanese text, which has no spaces, every character is a word."""
    return _NON_WORD.sub(" ", _plain(text)).split()


def _normalise_many(texts: list[str]) -> list[list[str]]:
    """:func:`normalise_words` of each text, the steps run once over all of them together."""
    joined = _SEP.join(texts)
    if joined.count(_SEP) != len(texts) - 1:  # a text holds the separator itself
        return [normalise_words(t) for t in texts]
    return [part.split() for part in _NON_WORD_BUT_SEP.sub(" ", _plain(joined)).split(_SEP)]


class _Vocabulary(dict[str, int]):
    """Word → id, a new word getting the next id when first looked up."""

    def __missing__(self, word: str) -> int:
        self[word] = found = len(self)
        return found


@dataclass(frozen=True)
class QuoteMatch:
    """Where a quote was found."""

    cue: Cue
    """The cue holding the first matched word."""
    score: float
    word: int
    """Index of the first matched word among the transcript's normalised words."""
    start: float = 0.0
    """Start of the first matched word: its own time when the cue has word timestamps, else
    the cue's start."""
    end: float = 0.0
    """End of the last matched word: its own time when its cue has word timestamps, else that
    cue's end."""


def _too_many_words() -> PlanError:
    return PlanError(
        Problem(
            "spec.transcript",
            f"the transcript has more than {MAX_TRANSCRIPT_WORDS} words, over the "
            "limit for matching quotes (MAX_TRANSCRIPT_WORDS); use start or cues",
        )
    )


class QuoteIndex:
    """A transcript's normalised words, indexed for quote matching; built once per transcript.

    The words are kept once each (a vocabulary) and the transcript as one string of them, joined
    by spaces, with each word's offset, so that any window of consecutive words is a slice of it.
    ``postings`` lists where each vocabulary word occurs; :func:`match_quote` takes its
    candidate windows from there instead of scoring every window of the transcript. Everything
    per word is an ``array`` (4 or 8 bytes a word), not a Python object.
    """

    def __init__(self, transcript: Transcript) -> None:
        self.cues = transcript.cues
        vocabulary = _Vocabulary()
        self.ids = array("i")  # word → vocabulary id
        # word → position in its cue's words (-1: the cue has none); None: no cue has words
        self.word_of: array[int] | None = array("i") if any(c.words for c in self.cues) else None
        counts = array("i", [0]) * len(self.cues)  # cue position → how many words
        pieces: list[str] = []  # the words of each chunk of texts, joined
        chunk: list[tuple[int, int, str]] = []
        for unit in chain(self._texts(), [None]):
            if unit is not None:
                chunk.append(unit)
                if len(chunk) < _CHUNK:
                    continue
            if not chunk:
                break
            spoken: list[str] = []
            for (position, k, _), tokens in zip(
                chunk, _normalise_many([t for *_, t in chunk]), strict=True
            ):
                if tokens:
                    counts[position] += len(tokens)
                    spoken.extend(tokens)
                    if self.word_of is not None:
                        self.word_of.extend(repeat(k, len(tokens)))
            if len(self.ids) + len(spoken) > MAX_TRANSCRIPT_WORDS:
                raise _too_many_words()
            if spoken:
                self.ids.extend(map(vocabulary.__getitem__, spoken))
                pieces.append(" ".join(spoken))
            chunk = []
        self.text = " ".join(pieces)
        del pieces
        # cue position → its first word; one more at the end (cues without words repeat it)
        self.cue_first = array("i", accumulate(counts, initial=0))
        self.vocabulary: list[str] = list(vocabulary)
        lengths = [len(w) + 1 for w in self.vocabulary]
        # word → offset in self.text; one more at the end
        self.offsets = array(
            "I" if len(self.text) < 2**31 else "q",
            accumulate(map(lengths.__getitem__, self.ids), initial=0),
        )
        self.postings: list[array[int]] = [array("i") for _ in self.vocabulary]
        add = [p.append for p in self.postings]
        for position, wid in enumerate(self.ids):
            add[wid](position)
        self._ids: dict[str, int] = dict(vocabulary)
        self._similar: dict[str, list[int]] = {}
        by_length: dict[int, list[int]] = {}
        for i, w in enumerate(self.vocabulary):
            by_length.setdefault(len(w), []).append(i)
        self._by_length = by_length
        self._near: dict[int, tuple[list[str], list[int]]] = {}

    def _texts(self) -> Iterator[tuple[int, int, str]]:
        """(cue position, word position or -1, text) of what is matched: each cue's words when
        it has word timestamps, else its text."""
        for position, cue in enumerate(self.cues):
            if cue.words:
                for k, w in enumerate(cue.words):
                    yield position, k, w.text
            else:
                yield position, -1, cue.text

    def __len__(self) -> int:
        return len(self.ids)

    def window(self, i: int, n: int) -> str:
        """The ``n`` words from word ``i``, joined by single spaces."""
        return self.text[self.offsets[i] : self.offsets[i + n] - 1]

    def cue(self, word: int) -> Cue:
        return self.cues[bisect_right(self.cue_first, word) - 1]

    def timed(self, word: int) -> Word | None:
        """The timed word holding transcript word ``word``, when its cue has word timestamps."""
        k = self.word_of[word] if self.word_of is not None else -1
        if k < 0:
            return None
        words = self.cue(word).words
        assert words is not None  # a word's position in its cue is kept only when it has words
        return words[k]

    def word_start(self, word: int) -> float:
        timed = self.timed(word)
        return timed.start if timed is not None else self.cue(word).start

    def word_end(self, word: int) -> float:
        timed = self.timed(word)
        return timed.end if timed is not None else self.cue(word).end

    def _near_length(self, length: int) -> tuple[list[str], list[int]]:
        """The vocabulary words (and their ids) whose length allows a ratio of at least
        :data:`ANCHOR_MIN_SCORE` with a word of ``length`` characters: at most
        ``200 * min / (length + len)``."""
        found = self._near.get(length)
        if found is None:
            ids = sorted(
                i
                for other, group in self._by_length.items()
                if 200 * min(length, other) >= (ANCHOR_MIN_SCORE - 1e-6) * (length + other)
                for i in group
            )
            found = ([self.vocabulary[i] for i in ids], ids)
            self._near[length] = found
        return found

    def similar(self, token: str) -> list[int]:
        """Vocabulary ids of words within :data:`ANCHOR_MIN_SCORE` of ``token`` (cached)."""
        found = self._similar.get(token)
        if found is None:
            words, ids = self._near_length(len(token))
            found = sorted(
                ids[k]
                for _, _, k in process.extract(
                    token, words, scorer=fuzz.ratio, score_cutoff=ANCHOR_MIN_SCORE, limit=None
                )
            )
            exact = self._ids.get(token)
            if exact is not None and exact not in found:
                found.append(exact)
            self._similar[token] = found
        return found

    def candidates(self, wanted: list[str]) -> tuple[list[range], Callable[[], list[range]]] | None:
        """Starts of the windows of ``len(wanted)`` words worth scoring for a quote, as sorted,
        disjoint, non-adjacent runs: the likely ones, and a function giving all the possible ones
        (a superset). None means every window.

        The quote's :data:`QUOTE_ANCHORS` rarest words (counting the transcript words similar to
        each; words that occur nowhere are skipped) anchor the candidates: where a word similar
        to the quote's ``k``-th word occurs at ``p``, the windows starting within
        :data:`QUOTE_SHIFT` words of ``p - k`` are candidates: likely for the
        :data:`QUOTE_ANCHORS` rarest words, possible for the :data:`QUOTE_FALLBACK_ANCHORS`
        rarest."""
        n = min(len(wanted), len(self))
        last = len(self) - n
        counted = []
        for k, token in enumerate(wanted):
            ids = self.similar(token)
            total = sum(len(self.postings[i]) for i in ids)
            if total:
                counted.append((total, k, ids))
        counted.sort()
        # a second anchor only when it is not much more common than the first: "says" next
        # to a name said once would point at every cue
        anchors = [
            a
            for rank, a in enumerate(counted[:QUOTE_ANCHORS])
            if rank == 0 or a[0] <= max(8 * counted[0][0], 64)
        ]
        if sum(total for total, _, _ in anchors) * (2 * QUOTE_SHIFT + 1) >= last + 1:
            return None

        def pointed(chosen: list[tuple[int, int, list[int]]]) -> list[range]:
            # window starts p - k - QUOTE_SHIFT .. p - k + QUOTE_SHIFT within [0, last],
            # merged into runs
            centers: list[int] = []
            for _, k, ids in chosen:
                for i in ids:
                    centers.extend(map((-k).__add__, self.postings[i]))
            centers.sort()
            runs: list[range] = []
            lo = hi = -(2 * QUOTE_SHIFT + 2)
            for c in centers:
                if c - QUOTE_SHIFT > hi + 1:
                    runs.append(range(max(lo, 0), min(hi, last) + 1))
                    lo = c - QUOTE_SHIFT
                hi = c + QUOTE_SHIFT
            runs.append(range(max(lo, 0), min(hi, last) + 1))
            return [r for r in runs if r]

        likely = pointed(anchors)

        def possible() -> list[range]:
            wider = counted[:QUOTE_FALLBACK_ANCHORS]
            if sum(total for total, _, _ in wider) * (2 * QUOTE_SHIFT + 1) >= last + 1:
                return [range(last + 1)]
            return pointed(wider)

        return likely, possible

    def screened(self, target: str, runs: list[range], width: int) -> tuple[list[int], list[str]]:
        """The starts in ``runs`` of the windows of ``width`` words that may score at least
        :data:`QUOTE_MIN_SCORE` against ``target``, and those windows; no other window can.

        The runs are cut into blocks of :data:`_BLOCK` starts; a block is dropped, unscored, when
        its text (every window of it is a slice) has a longest common subsequence ``L`` with
        ``target`` shorter than two thirds of ``len(target)``: a window ``w`` has
        ``ratio = 200 * lcs(target, w) / (len(target) + len(w))`` and ``lcs <= min(L, len(w))``,
        so ``ratio <= 200 * L / (len(target) + L) < 80``. In a block that stays, a window is
        dropped when ``200 * min(L, len(w)) / (len(target) + len(w)) < 80`` (too long or too
        short for its block's ``L``), from its length alone, before its text is cut out."""
        text, offsets = self.text, self.offsets
        need = (2 * len(target) + 2) // 3  # least L for a ratio of 80
        assert QUOTE_MIN_SCORE == 80.0  # the bound above is worked out for it
        lcs = LCSseq.similarity
        two_t = 2 * len(target)
        starts: list[int] = []
        for run in runs:
            for a in range(run.start, run.stop, _BLOCK):
                e = min(a + _BLOCK, run.stop)
                found = lcs(
                    target, text[offsets[a] : offsets[e - 1 + width] - 1], score_cutoff=need
                )
                if found:
                    # a window w of the block has lcs <= min(found, len(w)), so a ratio of 80
                    # needs 5 * min(found, len(w)) >= 2 * (len(target) + len(w))
                    for i in range(a, e):
                        length = offsets[i + width] - offsets[i] - 1
                        if 5 * min(found, length) >= two_t + 2 * length:
                            starts.append(i)
        return starts, [text[offsets[i] : offsets[i + width] - 1] for i in starts]


_BLOCK = 8
"""Window starts screened together by :meth:`QuoteIndex.screened`."""


_DIGIT = re.compile(r"\d")

_Close = list[tuple[str, float, int]]
"""Windows scoring at least :data:`QUOTE_MIN_SCORE`: (window, score, its place in the starts)."""


def _numbers(words: str) -> list[str]:
    """The words holding a digit, in order, of normalised words joined by spaces."""
    return [w for w in words.split() if _DIGIT.search(w)]


_Ranked = list[tuple[tuple[bool, bool], float, int]]


def _ranked(target: str, close: _Close, starts: list[int]) -> _Ranked:
    """(tier, score, start) of each close window. The tier puts exact matches above fuzzy ones
    and numbers above the rest of the words: (the quote's words exactly, the quote's numbers);
    a window whose numbers differ ("step 1" is not "step 2", however alike the rest) is last."""
    numbers = _numbers(target)
    return [
        ((window == target, _numbers(window) == numbers), score, starts[k])
        for window, score, k in close
    ]


def _charge(budget: list[int] | None, runs: list[range], quote: str, path: str) -> None:
    """Count the windows of ``runs`` against the plan's ``budget``; raise when it is spent."""
    if budget is None:
        return
    budget[0] -= sum(map(len, runs))
    if budget[0] < 0:
        raise PlanError(
            Problem(
                path,
                f"quote {quote!r} is made of words that occur too often: matching the "
                f"quotes needs more than {QUOTE_MAX_COMPARISONS} window comparisons (the "
                "limit per plan); quote rarer words, or use start or cues",
            )
        )


def _close_windows(
    index: QuoteIndex, target: str, width: int, budget: list[int] | None, quote: str, path: str
) -> tuple[list[int], _Close, list[range]]:
    """The starts screened, the windows among them scoring at least :data:`QUOTE_MIN_SCORE`, and
    the runs they came from: the likely windows first, the possible ones (a superset) when none
    of the likely ones matches well (:data:`QUOTE_RECHECK_BELOW`) or with the quote's numbers."""
    found = index.candidates(target.split(" "))
    if found is None:
        every = [range(len(index) - width + 1)]
        likely, possible = every, lambda: every
    else:
        likely, possible = found
    close: _Close = []
    starts: list[int] = []
    runs = likely
    for attempt in range(2):
        runs = likely if attempt == 0 else possible()
        if attempt and runs == likely:
            break
        _charge(budget, runs, quote, path)
        starts, windows = index.screened(target, runs, width)
        close = process.extract(
            target, windows, scorer=fuzz.ratio, limit=None, score_cutoff=QUOTE_MIN_SCORE
        )
        if close:
            (_, same_numbers), score, _ = max(_ranked(target, close, starts))
            if same_numbers and score >= QUOTE_RECHECK_BELOW:
                break
    return starts, close, runs


def _not_found(
    index: QuoteIndex, target: str, width: int, runs: list[range], quote: str, path: str
) -> PlanError:
    """The error for a quote no window matches, naming the closest window of ``runs``."""
    starts = list(chain.from_iterable(runs))
    windows = [index.window(i, width) for i in starts]
    best = process.extractOne(target, windows, scorer=fuzz.ratio)  # None when there are none
    closest = (
        f"closest: {best[0]!r} at {format_timestamp(index.cue(starts[best[2]]).start)}, "
        f"similarity {best[1]:.0f} < {QUOTE_MIN_SCORE:.0f}"
        if best is not None
        else "closest: none, no word of it is in the transcript"
    )
    return PlanError(
        Problem(
            path,
            f"quote {quote!r} not found in the transcript ({closest}); quote the words as "
            "spoken, or use start or cues",
        )
    )


def _best_place(
    index: QuoteIndex, ranked: _Ranked, n: int, quote: str, path: str
) -> tuple[float, int]:
    """(score, start) of the best window: of the highest tier, the best score, the earliest of
    equals; raises when another window of its tier that does not overlap it (``n`` words) scores
    within :data:`QUOTE_AMBIGUITY_MARGIN` of it."""
    tier, best_score, _ = max(ranked)
    best_i = min(i for t, score, i in ranked if t == tier and score == best_score)
    cutoff = max(QUOTE_MIN_SCORE, best_score - QUOTE_AMBIGUITY_MARGIN)
    rivals = [i for t, score, i in ranked if t == tier and score >= cutoff and abs(i - best_i) >= n]
    if rivals:
        places = sorted({index.cue(best_i).start, *(index.cue(i).start for i in rivals)})
        raise PlanError(
            Problem(
                path,
                f"quote {quote!r} is ambiguous: it matches at "
                f"{', '.join(format_timestamp(t) for t in places[:5])}; quote more words, or use "
                "start or cues",
            )
        )
    return best_score, best_i


def match_quote(
    quote: str,
    transcript: Transcript | QuoteIndex,
    path: str,
    budget: list[int] | None = None,
) -> QuoteMatch:
    """The cue where ``quote`` is spoken.

    Both texts are normalised (:func:`normalise_words`); windows of as many transcript words as
    the quote has (across cue boundaries) are scored with rapidfuzz's ``ratio``. Of the windows
    scoring at least :data:`QUOTE_MIN_SCORE`, one with the quote's words exactly outranks the
    others, and one with the quote's numbers outranks one with other numbers; the best window of
    the highest rank (the earliest of equals) wins if no window of that rank that does not
    overlap it scores within :data:`QUOTE_AMBIGUITY_MARGIN` of it.

    Only candidate windows are scored (:meth:`QuoteIndex.candidates`): those holding a word
    similar to one of the quote's rarest words, which any window close enough to match holds.
    ``budget`` (a one-item list) counts down the windows a plan may still score.

    Raises:
        PlanError: unmatched or ambiguous, naming ``path``; or over the comparison budget.
    """
    index = transcript if isinstance(transcript, QuoteIndex) else QuoteIndex(transcript)
    wanted = normalise_words(quote)
    if not wanted:
        raise PlanError(Problem(path, f"quote {quote!r} has no words to match"))
    if not len(index):
        raise PlanError(Problem(path, f"quote {quote!r} not found: the transcript has no words"))
    width = min(len(wanted), len(index))
    target = " ".join(wanted)
    starts, close, runs = _close_windows(index, target, width, budget, quote, path)
    if not close:
        raise _not_found(index, target, width, runs, quote, path)
    ranked = _ranked(target, close, starts)
    score, best_i = _best_place(index, ranked, len(wanted), quote, path)
    return QuoteMatch(
        cue=index.cue(best_i),
        score=score,
        word=best_i,
        start=index.word_start(best_i),
        end=index.word_end(best_i + width - 1),
    )
