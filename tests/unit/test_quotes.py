"""The quote index's stages on their own: bulk normalisation, word → cue lookups, the LCS screen,
and the fast matcher against the brute-force reference on unicode text and worded cues."""

from __future__ import annotations

import os

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from rapidfuzz import fuzz

from tests.unit.quote_reference import reference_match_quote
from tests.unit.test_quote_index import mutated, outcome
from videojobs import quotes
from videojobs.models import Cue, Transcript, Word
from videojobs.quotes import QuoteIndex, match_quote, normalise_words

SETTINGS = settings(
    max_examples=int(os.environ.get("VIDEOJOBS_HYPOTHESIS_EXAMPLES", "300")),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)

# Words whose normal forms differ from how they are written: accents precomposed and combining,
# ligatures and full-width letters (NFKD), ß (casefold), both apostrophes, Cyrillic, Greek final
# sigma, Chinese and Japanese (a word per character), Korean, digits and underscores.
UNICODE_WORDS = [
    "café", "cafe\u0301", "CAFÉ", "naïve", "Straße", "strasse", "ﬁle", "ＡＢＣ", "abc",
    "let's", "let\u2019s", "lets", "москва", "Москве", "ΣΟΦΟΣ", "σοφος", "東京", "江戸時代",
    "ひらがな", "カタカナ", "한국어", "x_1", "42", "—", "...", "a\x1fb", "\u00a0",
]  # fmt: skip


def _reference_words(transcript: Transcript) -> list[str]:
    return [w for cue in transcript.cues for w in normalise_words(cue.text)]


@st.composite
def unicode_transcripts(draw: st.DrawFn, max_cues: int = 12) -> Transcript:
    cues = []
    t = 0.0
    for index in range(1, draw(st.integers(1, max_cues)) + 1):
        words = draw(st.lists(st.sampled_from(UNICODE_WORDS), min_size=0, max_size=6))
        cues.append(Cue(index=index, start=t, end=t + 2, text=" ".join(words)))
        t += 2
    return Transcript(format="webvtt", cues=cues)


@SETTINGS
@given(texts=st.lists(st.text(max_size=30), min_size=1, max_size=20))
def test_normalising_together_equals_normalising_each(texts: list[str]) -> None:
    assert quotes._normalise_many(texts) == [normalise_words(t) for t in texts]


@SETTINGS
@given(
    texts=st.lists(
        st.lists(st.sampled_from([*UNICODE_WORDS, " ", "\n"]), max_size=6).map("".join),
        max_size=9,
    )
)
def test_the_index_holds_every_cue_s_normalised_words_across_chunks(
    texts: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(quotes, "_CHUNK", 3)  # several chunks, boundaries anywhere
    cues = [Cue(index=i, start=i, end=i + 1, text=t) for i, t in enumerate(texts, start=1)]
    transcript = Transcript(format="webvtt", cues=cues)
    index = QuoteIndex(transcript)
    assert index.text == " ".join(_reference_words(transcript))
    assert len(index) == len(_reference_words(transcript))
    owners = [cue.index for cue in cues for _ in normalise_words(cue.text)]
    assert [index.cue(w).index for w in range(len(index))] == owners
    for w in range(len(index)):
        assert index.window(w, 1) == index.vocabulary[index.ids[w]]


def test_a_long_transcript_is_indexed_like_cue_by_cue() -> None:
    words = ["Über", "naïve", "let's", "東京", "loops", "the", "ǅemal", "x\x1fy"]
    cues = [
        Cue(index=i, start=i, end=i + 1, text=" ".join(words[(i + k) % 8] for k in range(i % 5)))
        for i in range(1, 5001)
    ]
    transcript = Transcript(format="webvtt", cues=cues)
    index = QuoteIndex(transcript)
    assert index.text == " ".join(_reference_words(transcript))
    assert len(cues) > 2 * quotes._CHUNK


@SETTINGS
@given(
    target=st.text(alphabet="abcde ", min_size=1, max_size=20),
    words=st.lists(st.text(alphabet="abcde", min_size=1, max_size=4), min_size=1, max_size=40),
    width=st.integers(1, 6),
    runs=st.lists(st.tuples(st.integers(0, 40), st.integers(0, 12)), max_size=4),
)
def test_the_screen_keeps_every_window_that_may_score_80(
    target: str, words: list[str], width: int, runs: list[tuple[int, int]]
) -> None:
    index = QuoteIndex(
        Transcript(format="x", cues=[Cue(index=1, start=0, end=1, text=" ".join(words))])
    )
    width = min(width, len(index))
    last = len(index) - width
    ranges = sorted(
        {range(a, min(a + n, last + 1)) for a, n in runs if a <= last}, key=lambda r: r.start
    )
    disjoint: list[range] = []
    for r in ranges:  # the screen takes sorted, disjoint runs
        if r and (not disjoint or r.start > disjoint[-1].stop):
            disjoint.append(r)
    starts, windows = index.screened(target, disjoint, width)
    assert windows == [index.window(i, width) for i in starts]
    every = [i for r in disjoint for i in r]
    assert set(starts) <= set(every)
    for i in every:
        if fuzz.ratio(target, index.window(i, width)) >= quotes.QUOTE_MIN_SCORE:
            assert i in starts


@SETTINGS
@given(data=st.data(), transcript=unicode_transcripts())
def test_unicode_quotes_match_as_the_reference_does(
    data: st.DataObject, transcript: Transcript
) -> None:
    index = QuoteIndex(transcript)
    plain = index.text.split(" ") if index.text else []
    for _ in range(3):
        quote = data.draw(mutated(plain))
        fast = outcome(lambda q=quote: match_quote(q, index, "q"))  # type: ignore[misc]
        slow = outcome(lambda q=quote: reference_match_quote(q, transcript, "q"))  # type: ignore[misc]
        assert fast == slow, quote


@SETTINGS
@given(data=st.data(), transcript=unicode_transcripts())
def test_worded_cues_match_as_their_text_does(data: st.DataObject, transcript: Transcript) -> None:
    """A cue with word timestamps is matched on its words: the same words as its text, so the
    same outcome as the reference (which reads the text), word times aside."""
    worded = Transcript(
        format="whisper-json",
        cues=[
            c.model_copy(
                update={
                    "words": [
                        Word(start=c.start, end=c.end, text=w) for w in c.text.split(" ") if w
                    ]
                    or None
                }
            )
            for c in transcript.cues
        ],
    )
    index = QuoteIndex(worded)
    assert index.text == " ".join(_reference_words(transcript))
    plain = index.text.split(" ") if index.text else []
    quote = data.draw(mutated(plain))
    fast = outcome(lambda: match_quote(quote, index, "q"))
    slow = outcome(lambda: reference_match_quote(quote, transcript, "q"))
    assert fast == slow, quote


def test_a_phrase_said_twice_is_ambiguous_and_a_longer_quote_is_not() -> None:
    filler = "alpha beta gamma delta epsilon zeta eta theta iota kappa".split()
    said = "the pod restarts when its liveness probe fails"
    cues = [
        Cue(index=1, start=0, end=5, text=" ".join(filler[:5]) + " " + said),
        Cue(index=2, start=5, end=10, text=" ".join(filler[5:])),
        Cue(index=3, start=10, end=15, text=said + " twice over"),
    ]
    transcript = Transcript(format="webvtt", cues=cues)
    assert outcome(lambda: match_quote(said, transcript, "q")) == "ambiguous"
    assert outcome(lambda: reference_match_quote(said, transcript, "q")) == "ambiguous"
    found = match_quote(said + " twice over", transcript, "q")
    assert (found.cue.index, found.score) == (3, 100.0)


def test_a_quote_across_cue_boundaries_with_a_typo_starts_in_the_first_cue() -> None:
    cues = [
        Cue(index=1, start=0, end=3, text="Today we look at"),
        Cue(index=2, start=3, end=6, text="persistent volume"),
        Cue(index=3, start=6, end=9, text="claims and storage classes."),
    ]
    transcript = Transcript(format="webvtt", cues=cues)
    found = match_quote("look at persistant volume claims", transcript, "q")
    ref = reference_match_quote("look at persistant volume claims", transcript, "q")
    assert (found.cue.index, found.word, found.score) == (ref.cue.index, ref.word, ref.score)
    assert (found.cue.index, found.start, found.end) == (1, 0.0, 9.0)
