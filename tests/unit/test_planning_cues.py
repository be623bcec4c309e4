"""The planner's cue lookups on small, hand-checked inputs: ``cues`` values (ids, 1-based
indices, ranges) and the cue-time index behind snapping and ``cue_indices``, on cues in time
order and out of it, against the definitions in their docstrings."""

from __future__ import annotations

import pytest

from videojobs.errors import PlanError
from videojobs.models import Cue, Transcript
from videojobs.planning import _CueTimes, resolve_cues


def cue(index: int, start: float, end: float, id: str | None = None) -> Cue:
    return Cue(index=index, id=id, start=start, end=end, text=f"cue {index}")


THREE = Transcript(
    format="webvtt",
    cues=[cue(1, 0, 4, "intro"), cue(2, 4, 8, "2"), cue(3, 8, 12, "a-b")],
)


def names(spec_text: str, ids: dict[str, Cue] | None = None) -> tuple[int, int]:
    first, last = resolve_cues(spec_text, THREE, "p", ids)
    return first.index, last.index


def test_a_cue_is_named_by_its_id_or_its_1_based_index() -> None:
    assert names("intro") == (1, 1)
    assert names("1") == (1, 1)
    assert names(" 3 ") == (3, 3)
    assert names("a-b") == (3, 3)  # an id with a dash is one id first


def test_index_0_and_past_the_end_name_no_cue() -> None:
    for text in ("0", "4", "0-2", "1-4", "intro-99"):
        with pytest.raises(PlanError) as info:
            resolve_cues(text, THREE, "spec.knowledgePoints[0].cues")
        assert str(info.value) == (
            f"spec.knowledgePoints[0].cues: {text!r} names no cue: expected a cue id, a 1-based "
            "index from 1 to 3, or a range like 3-7"
        )


def test_a_range_runs_from_its_first_to_its_last_cue_and_may_be_one_cue() -> None:
    assert names("1-3") == (1, 3)
    assert names("intro - a-b") == (1, 3)
    assert names("2-2") == (2, 2)
    assert names("1-2") == (1, 2)


def test_a_backwards_range_is_refused_naming_both_cues() -> None:
    with pytest.raises(PlanError) as info:
        resolve_cues("3-1", THREE, "p")
    assert str(info.value) == "p: cue range '3-1' runs backwards (cue 3 to 1); write first-last"


def test_the_ids_given_are_used_instead_of_the_transcript_s() -> None:
    assert names("x", {"x": THREE.cues[1]}) == (2, 2)
    with pytest.raises(PlanError, match="names no cue"):
        names("intro", {"x": THREE.cues[1]})


def test_the_first_cue_of_a_repeated_id_is_named() -> None:
    repeated = Transcript(format="webvtt", cues=[cue(1, 0, 1, "k"), cue(2, 1, 2, "k")])
    assert resolve_cues("k", repeated, "p")[0].index == 1


# --- the cue-time index --------------------------------------------------------------------

ORDERED = [cue(1, 0, 5), cue(2, 2, 3), cue(3, 5, 9), cue(4, 5, 6), cue(5, 12, 14)]
UNORDERED = [cue(1, 5, 9), cue(2, 0, 5), cue(3, 12, 14), cue(4, 2, 3), cue(5, 5, 6)]
TIMES = [x / 2 for x in range(-1, 32)]


def around(cues: list[Cue], t: float) -> list[Cue]:
    return [c for c in cues if c.start < t < c.end]


@pytest.mark.parametrize("cues", [ORDERED, UNORDERED], ids=["ordered", "unordered"])
def test_the_cues_around_a_time_give_their_earliest_start_and_latest_end(cues: list[Cue]) -> None:
    times = _CueTimes(cues)
    for t in TIMES:
        inside = around(cues, t)
        assert times.earliest_start_around(t) == min((c.start for c in inside), default=None), t
        assert times.latest_end_around(t) == max((c.end for c in inside), default=None), t


@pytest.mark.parametrize("cues", [ORDERED, UNORDERED], ids=["ordered", "unordered"])
def test_the_cues_overlapping_a_span_are_its_first_and_last_in_transcript_order(
    cues: list[Cue],
) -> None:
    times = _CueTimes(cues)
    for a in TIMES:
        for b in TIMES:
            if b <= a:
                continue
            inside = [c.index for c in cues if c.end > a and c.start < b]
            expected = (inside[0], inside[-1]) if inside else None
            assert times.overlapping(a, b) == expected, (a, b)


def test_cues_in_time_order_are_known_to_be_and_others_are_not() -> None:
    assert _CueTimes(ORDERED).ordered
    assert _CueTimes([cue(1, 0, 1), cue(2, 0, 2), cue(3, 1, 2)]).ordered  # equal starts
    assert not _CueTimes(UNORDERED).ordered
    assert not _CueTimes([cue(1, 0, 1), cue(2, 2, 3), cue(3, 1, 2)]).ordered  # a late one
