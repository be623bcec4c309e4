"""The indexed quote matcher against the brute-force reference, and word-level boundaries."""

from __future__ import annotations

import os

from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from tests.unit.quote_reference import reference_match_quote
from videojobs.errors import PlanError
from videojobs.models import Cue, Transcript, VideoProcessingJobSpec, Word
from videojobs.planning import QuoteIndex, match_quote, plan_segments

SETTINGS = settings(
    max_examples=int(os.environ.get("VIDEOJOBS_HYPOTHESIS_EXAMPLES", "400")),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)

# A small vocabulary with near neighbours, so that windows look alike and quotes repeat.
VOCABULARY = [
    "a", "i", "the", "to", "of", "loop", "loops", "pool", "for", "four", "variable",
    "variables", "kubernetes", "pod", "pods", "node", "nodes", "déjà", "vu", "let's",
    "container", "containers", "東", "京",
]  # fmt: skip
LETTERS = "abcdeilnoprstuv"


@st.composite
def transcripts(draw: st.DrawFn) -> Transcript:
    cues = []
    t = 0.0
    for index in range(1, draw(st.integers(1, 12)) + 1):
        words = draw(st.lists(st.sampled_from(VOCABULARY), min_size=0, max_size=6))
        length = draw(st.integers(1, 5))
        cues.append(Cue(index=index, start=t, end=t + length, text=" ".join(words)))
        t += length + draw(st.sampled_from([0, 0, 1]))
    return Transcript(format="webvtt", cues=cues)


@st.composite
def mutated(draw: st.DrawFn, words: list[str]) -> str:
    """A run of the transcript's words with typos, or words from nowhere."""
    if not words or draw(st.integers(0, 4)) == 0:
        return " ".join(draw(st.lists(st.sampled_from(VOCABULARY), min_size=1, max_size=8)))
    start = draw(st.integers(0, len(words) - 1))
    run = list(words[start : start + draw(st.integers(1, 8))])
    for _ in range(draw(st.integers(0, 4))):
        k = draw(st.integers(0, len(run) - 1))
        word = run[k]
        op = draw(st.sampled_from(["sub", "ins", "del", "drop", "add", "swap"]))
        pos = draw(st.integers(0, len(word)))
        letter = draw(st.sampled_from(LETTERS))
        if op == "sub" and pos < len(word):
            run[k] = word[:pos] + letter + word[pos + 1 :]
        elif op == "ins":
            run[k] = word[:pos] + letter + word[pos:]
        elif op == "del" and pos < len(word):
            run[k] = word[:pos] + word[pos + 1 :]
        elif op == "drop" and len(run) > 1:
            del run[k]
        elif op == "add":
            run.insert(k, draw(st.sampled_from(VOCABULARY)))
        elif op == "swap" and pos + 1 < len(word):
            run[k] = word[:pos] + word[pos + 1] + word[pos] + word[pos + 2 :]
    return " ".join(w for w in run if w) or "x"


def outcome(match: object) -> object:
    try:
        found = match()  # type: ignore[operator]
    except PlanError as exc:
        text = str(exc)
        return "ambiguous" if "ambiguous" in text else "not found" if "not found" in text else text
    return (found.cue.index, found.word, found.score)


@SETTINGS
@given(data=st.data(), transcript=transcripts())
def test_indexed_matching_equals_scoring_every_window(
    data: st.DataObject, transcript: Transcript
) -> None:
    index = QuoteIndex(transcript)
    plain = index.text.split(" ") if index.text else []
    for _ in range(3):
        quote = data.draw(mutated(plain))
        fast = outcome(lambda q=quote: match_quote(q, index, "q"))  # type: ignore[misc]
        slow = outcome(lambda q=quote: reference_match_quote(q, transcript, "q"))  # type: ignore[misc]
        event(fast if isinstance(fast, str) else "matched")
        assert fast == slow, quote


def _worded(index: int, start: float, spoken: list[tuple[float, float, str]]) -> Cue:
    words = [Word(start=a, end=b, text=t) for a, b, t in spoken]
    return Cue(
        index=index, start=start, end=spoken[-1][1] + 0.4, text=" ".join(t for *_, t in spoken),
        words=words,
    )  # fmt: skip


WORDED = Transcript(
    format="whisper-json",
    cues=[
        _worded(1, 0.0, [(0.2, 0.6, "Welcome"), (0.7, 1.0, "to"), (1.1, 1.8, "the"),
                         (1.9, 2.6, "course.")]),
        _worded(2, 3.0, [(3.1, 3.5, "First,"), (3.6, 4.0, "some"), (4.1, 4.9, "history."),
                         (5.2, 5.6, "Now"), (5.7, 6.1, "let's"), (6.2, 6.9, "talk"),
                         (7.0, 7.4, "about"), (7.5, 8.2, "loops.")]),
        _worded(3, 9.0, [(9.1, 9.6, "A"), (9.7, 10.2, "for"), (10.3, 10.9, "loop"),
                         (11.0, 11.8, "repeats.")]),
    ],
)  # fmt: skip


def spec(points: list[dict[str, str]], snap: bool) -> VideoProcessingJobSpec:
    return VideoProcessingJobSpec.model_validate(
        {
            "source": {"url": "https://example.org/v.mp4"},
            "transcript": {"inline": "x"},
            "knowledgePoints": points,
            "segmentation": {"snapToCues": snap, "minDuration": "0"},
            "output": {"storage": {"pvc": {"claimName": "c"}}},
        }
    )


def test_match_reports_the_first_and_last_word_times() -> None:
    found = match_quote("now let's talk about loops", WORDED, "q")
    assert found.cue.index == 2
    assert (found.start, found.end) == (5.2, 8.2)
    across = match_quote("about loops a for loop", WORDED, "q")
    assert (across.cue.index, across.start, across.end) == (2, 7.0, 10.9)


def test_a_quote_starting_mid_cue_starts_at_its_first_word_without_snapping() -> None:
    points = [
        {"id": "intro", "title": "Intro", "start": "0"},
        {"id": "loops", "title": "Loops", "quote": "now let's talk about loops"},
    ]
    plan = plan_segments(spec(points, snap=False), WORDED)
    assert [(s.start, s.end) for s in plan.segments] == [(0.0, 5.2), (5.2, 12.2)]
    assert any("its word at 00:00:05.200" in n for n in plan.notes)
    # with snapping the cue's start wins, as without word times
    plan = plan_segments(spec(points, snap=True), WORDED)
    assert [(s.start, s.end) for s in plan.segments] == [(0.0, 3.0), (3.0, 12.2)]


def test_without_word_times_a_quote_starts_at_its_cue() -> None:
    plain = Transcript(
        format="webvtt",
        cues=[c.model_copy(update={"words": None}) for c in WORDED.cues],
    )
    points = [
        {"id": "intro", "title": "Intro", "start": "0"},
        {"id": "loops", "title": "Loops", "quote": "now let's talk about loops"},
    ]
    plan = plan_segments(spec(points, snap=False), plain)
    assert [(s.start, s.end) for s in plan.segments] == [(0.0, 3.0), (3.0, 12.2)]
    found = match_quote("now let's talk about loops", plain, "q")
    assert (found.start, found.end) == (3.0, 8.6)


def test_a_word_that_normalises_to_several_keeps_its_time() -> None:
    cue = _worded(1, 0.0, [(0.0, 1.0, "state-of-the-art"), (1.0, 2.0, "tools"),
                           (2.0, 3.0, "here")])  # fmt: skip
    found = match_quote("the art tools here", Transcript(format="x", cues=[cue]), "q")
    assert (found.word, found.start, found.end) == (2, 0.0, 3.0)
