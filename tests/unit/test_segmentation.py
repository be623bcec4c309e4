"""Automatic knowledge points (videojobs.segmentation): boundaries, bounds, titles, hints."""

from __future__ import annotations

import random
import re
import time

import pytest

from videojobs.models import Cue, Transcript, Word
from videojobs.segmentation import Settings, propose, units_of

FILLER = "so the idea here is that we can see how this works in practice and what it means".split()
TOPICS = {
    "bread": "flour yeast dough knead oven crust loaf rise sourdough starter bake gluten".split(),
    "orbits": "planet orbit gravity satellite ellipse kepler moon velocity apogee perigee".split(),
    "taxes": "income deduction audit refund bracket payroll invoice receipt filing revenue".split(),
    "chess": "pawn bishop knight castle opening gambit checkmate endgame rook tempo".split(),
}


def talk_cues(topics: list[tuple[str, float]], seed: int = 3) -> tuple[list[Cue], list[float]]:
    """Cues of 8 words every 3 s: each topic's words mixed with filler; the true joins."""
    rng = random.Random(seed)
    cues: list[Cue] = []
    joins = []
    t = 0.0
    for k, (name, seconds) in enumerate(topics):
        if k:
            joins.append(t)
        stop = t + seconds
        while t < stop:
            words = [rng.choice(TOPICS[name]) if rng.random() < 0.4 else rng.choice(FILLER)
                     for _ in range(8)]  # fmt: skip
            cues.append(Cue(index=len(cues) + 1, start=t, end=t + 2.8, text=" ".join(words) + "."))
            t += 3.0
    return cues, joins


def transcript(topics: list[tuple[str, float]], seed: int = 3) -> tuple[Transcript, list[float]]:
    cues, joins = talk_cues(topics, seed)
    return Transcript(format="json", cues=cues, language="en"), joins


THREE = [("bread", 300.0), ("orbits", 420.0), ("taxes", 360.0)]


def test_finds_the_topic_changes_within_a_cue_or_two() -> None:
    t, joins = transcript(THREE)
    proposal = propose(t, Settings(min_duration=60, max_duration=1800))
    starts = [p.start for p in proposal.points]
    assert starts[0] == 0.0
    assert len(starts) == 3
    for found, true in zip(starts[1:], joins, strict=True):
        assert abs(found - true) <= 6.0
    assert proposal.points[-1].end == pytest.approx(t.duration)
    for p in proposal.points:
        assert 0.0 <= p.confidence <= 1.0


def test_titles_are_unique_nonempty_and_words_of_their_segment() -> None:
    t, _ = transcript([*THREE, ("chess", 300.0), ("bread", 300.0)])
    proposal = propose(t, Settings(min_duration=60))
    titles = [p.title for p in proposal.points]
    assert len(titles) == 5
    assert all(titles) and len({x.lower() for x in titles}) == len(titles)
    for p in proposal.points:
        text = " ".join(c.text for c in t.cues if p.start <= c.start < p.end).lower()
        for word in re.findall(r"\w+", p.title.lower()):
            assert word in text, (word, p.title)
        for word in re.findall(r"[^\W\d_]+", p.description.lower()):
            assert word in text or word in {"key", "phrases"}, (word, p.description)
    # the title names the topic: one of the topic's own words
    assert any(w in TOPICS["orbits"] for w in re.findall(r"\w+", titles[1].lower()))


def test_bounds_are_kept() -> None:
    t, _ = transcript(THREE)
    proposal = propose(t, Settings(min_duration=200, max_duration=300))
    lengths = [p.end - p.start for p in proposal.points]
    assert all(200 - 1e-6 <= x <= 300 + 1e-6 for x in lengths), lengths
    assert len(proposal.points) >= 4  # 1080 s cannot be cut in fewer than 4 clips of <= 300 s


def test_target_count_gives_that_many_clips() -> None:
    t, joins = transcript(THREE)
    two = propose(t, Settings(min_duration=60, target_count=2))
    assert len(two.points) == 2
    assert min(abs(two.points[1].start - j) for j in joins) <= 6.0
    five = propose(t, Settings(min_duration=60, target_count=5))
    assert len(five.points) == 5
    impossible = propose(t, Settings(min_duration=400, target_count=5))
    assert len(impossible.points) < 5
    assert any("target count ignored" in n for n in impossible.notes)


def test_homogeneous_talk_is_not_split() -> None:
    t, _ = transcript([("chess", 900.0)])
    proposal = propose(t, Settings(min_duration=60))
    assert len(proposal.points) == 1
    assert proposal.points[0].confidence == 1.0


def test_shorter_than_the_minimum_gives_one_point() -> None:
    t, _ = transcript([("bread", 40.0), ("taxes", 40.0)])
    proposal = propose(t, Settings(min_duration=120))
    assert len(proposal.points) == 1


def test_chapters_are_hints() -> None:
    t, joins = transcript(THREE)
    without = propose(t, Settings(min_duration=60))
    # a chapter 15 s after the true change: the boundary moves to the chapter
    chapter = joins[0] + 15.0
    hinted = propose(t, Settings(min_duration=60), chapters=[chapter])
    assert [p.start for p in hinted.points][1] == pytest.approx(chapter, abs=3.0)
    assert hinted.points[0].confidence == 1.0
    assert any("chapters used as hints" in n for n in hinted.notes)
    assert len(hinted.points) == len(without.points)


def test_deterministic() -> None:
    t, _ = transcript([*THREE, ("chess", 300.0)])
    assert propose(t) == propose(t)


def test_sentences_when_words_have_times() -> None:
    words = [
        Word(start=0.0, end=0.4, text="One"),
        Word(start=0.5, end=0.9, text="two."),
        Word(start=1.0, end=1.4, text="Three"),
        Word(start=1.5, end=1.9, text="four?"),
    ]
    more = [Word(start=2.0, end=2.5, text="Five.")]
    t = Transcript(
        format="json",
        cues=[
            Cue(index=1, start=0.0, end=1.4, text="One two. Three", words=words[:3]),
            Cue(index=2, start=1.5, end=2.5, text="four? Five.", words=[words[3], *more]),
        ],
    )
    units = units_of(t)
    assert [(u.start, u.end, u.text) for u in units] == [
        (0.0, 0.9, "One two."),
        (1.0, 1.9, "Three four?"),
        (2.0, 2.5, "Five."),
    ]


def test_other_languages_use_the_frequency_rule() -> None:
    t, joins = transcript(THREE)
    proposal = propose(t, Settings(min_duration=60, language="de"))
    assert len(proposal.points) == 3
    assert all(abs(p.start - j) <= 6.0 for p, j in zip(proposal.points[1:], joins, strict=True))


def test_two_hours_in_seconds() -> None:
    names = list(TOPICS)
    plan = [(names[k % 4], 600.0) for k in range(12)]  # 2 h, 2400 cues
    t, joins = transcript(plan, seed=5)
    start = time.process_time()
    proposal = propose(t, Settings(min_duration=120))
    elapsed = time.process_time() - start
    assert elapsed < 10.0
    hits = sum(any(abs(p.start - j) <= 30 for p in proposal.points) for j in joins)
    assert hits >= 0.8 * len(joins)


def test_knowledge_points() -> None:
    t, _ = transcript(THREE)
    points = propose(t, Settings(min_duration=60)).knowledge_points()
    assert [p.id for p in points] == ["topic-01", "topic-02", "topic-03"]
    assert points[-1].end is None and points[0].end == points[1].start


def test_titles_stay_unique_without_words() -> None:
    cues = [Cue(index=i + 1, start=i * 3.0, end=i * 3.0 + 3, text="♪ ♪ 123") for i in range(200)]
    t = Transcript(format="json", cues=cues)
    proposal = propose(t, Settings(min_duration=60, max_duration=150))
    titles = [p.title for p in proposal.points]
    assert len(titles) >= 4 and len(set(titles)) == len(titles)
    assert titles[:2] == ["Topic 1", "Topic 2"]
