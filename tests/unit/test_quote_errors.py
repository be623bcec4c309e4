"""What match_quote tells the user when it cannot place a quote (no words, not found with the
closest window, ambiguous with the places, over the comparison budget, a transcript over the word
limit), and where a match starts and ends; each on a small, hand-checked transcript."""

from __future__ import annotations

import pytest
from rapidfuzz import fuzz

from tests.unit.test_quote_index import WORDED
from videojobs import quotes
from videojobs.errors import PlanError
from videojobs.models import Cue, Transcript
from videojobs.quotes import QuoteIndex, match_quote

FOX = Transcript(
    format="webvtt",
    cues=[
        Cue(index=1, start=0, end=5, text="alpha beta gamma delta"),
        Cue(index=2, start=65.5, end=70, text="the quick brown fox jumps"),
    ],
)


def error(quote: str, transcript: Transcript | QuoteIndex = FOX, **kw: object) -> str:
    with pytest.raises(PlanError) as info:
        match_quote(quote, transcript, "spec.knowledgePoints[1].quote", **kw)  # type: ignore[arg-type]
    return str(info.value)


def test_an_unmatched_quote_names_the_closest_window_its_time_and_similarity() -> None:
    similarity = fuzz.ratio("slow brown fox", "quick brown fox")
    assert 60 < similarity < 80
    assert error("Slow brown fox!") == (
        "spec.knowledgePoints[1].quote: quote 'Slow brown fox!' not found in the transcript "
        f"(closest: 'quick brown fox' at 00:01:05.500, similarity {similarity:.0f} < 80); quote "
        "the words as spoken, or use start or cues"
    )


def test_a_quote_of_words_the_transcript_never_says_has_no_closest_window() -> None:
    assert error("zzz yyy") == (
        "spec.knowledgePoints[1].quote: quote 'zzz yyy' not found in the transcript (closest: "
        "none, no word of it is in the transcript); quote the words as spoken, or use start or cues"
    )


def test_a_quote_without_words_and_a_transcript_without_words_are_refused() -> None:
    assert error("?! ...") == "spec.knowledgePoints[1].quote: quote '?! ...' has no words to match"
    silent = Transcript(format="webvtt", cues=[Cue(index=1, start=0, end=1, text="♪ ...")])
    assert error("fox", silent) == (
        "spec.knowledgePoints[1].quote: quote 'fox' not found: the transcript has no words"
    )


def test_an_ambiguous_quote_lists_its_first_five_places_in_time_order() -> None:
    said = [
        Cue(index=k + 1, start=10.0 * k, end=10.0 * k + 5, text=f"filler{k} the pod restarts")
        for k in range(7)
    ]
    text = error("the pod restarts", Transcript(format="webvtt", cues=said))
    assert text == (
        "spec.knowledgePoints[1].quote: quote 'the pod restarts' is ambiguous: it matches at "
        "00:00:00.000, 00:00:10.000, 00:00:20.000, 00:00:30.000, 00:00:40.000; quote more words, "
        "or use start or cues"
    )


def test_rivals_count_only_when_they_do_not_overlap_the_best_window() -> None:
    # "ab ab ab": the best window and one a word later overlap; two words later does not
    repeated = Transcript(format="x", cues=[Cue(index=1, start=0, end=1, text="la la la")])
    assert match_quote("la la", repeated, "q").word == 0
    assert "ambiguous" in error("la", repeated)


def test_the_comparisons_are_counted_against_the_plan_s_budget() -> None:
    index = QuoteIndex(FOX)
    budget = [100]
    match_quote("quick brown fox", index, "q", budget)
    spent = 100 - budget[0]
    assert spent > 0
    exact = [spent]
    match_quote("quick brown fox", index, "q", exact)
    assert exact == [0]  # a budget spent to the last window is enough
    assert error("quick brown fox", index, budget=[spent - 1]) == (
        "spec.knowledgePoints[1].quote: quote 'quick brown fox' is made of words that occur too "
        "often: matching the quotes needs more than 20000000 window comparisons (the limit per "
        "plan); quote rarer words, or use start or cues"
    )


def test_a_transcript_over_the_word_limit_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(quotes, "MAX_TRANSCRIPT_WORDS", 9)
    assert len(QuoteIndex(FOX)) == 9  # at the limit: indexed
    monkeypatch.setattr(quotes, "MAX_TRANSCRIPT_WORDS", 8)
    with pytest.raises(PlanError) as info:
        QuoteIndex(FOX)
    assert str(info.value) == (
        "spec.transcript: the transcript has more than 8 words, over the limit for matching "
        "quotes (MAX_TRANSCRIPT_WORDS); use start or cues"
    )


def test_a_match_spans_from_its_first_word_s_cue_to_its_last_word_s_cue() -> None:
    found = match_quote("gamma delta the quick", FOX, "q")
    assert (found.cue.index, found.word, found.score) == (1, 2, 100.0)
    assert (found.start, found.end) == (0.0, 70.0)
    inside = match_quote("brown fox", FOX, "q")
    assert (inside.cue.index, inside.word, inside.start, inside.end) == (2, 6, 65.5, 70.0)


def test_a_match_at_the_first_word_of_a_worded_cue_takes_that_word_s_times() -> None:
    found = match_quote("first some history", WORDED, "q")
    assert (found.cue.index, found.start, found.end) == (2, 3.1, 4.9)
    across = match_quote("the course first", WORDED, "q")
    assert (across.cue.index, across.start, across.end) == (1, 1.1, 3.5)
