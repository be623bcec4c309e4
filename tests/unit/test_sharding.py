"""The shard split (``videojobs/sharding.py``): every clip exactly once, balanced, deterministic."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from videojobs.models import PlannedSegment, SegmentPlan
from videojobs.sharding import (
    format_index_list,
    parse_index_list,
    share_indices,
    split_durations,
    split_plan,
)

durations = st.lists(st.floats(min_value=0.0, max_value=7200.0, allow_nan=False), max_size=80)
shard_counts = st.integers(min_value=1, max_value=16)


@settings(max_examples=300, deadline=None)
@given(durations, shard_counts)
def test_every_item_exactly_once_in_time_order(values: list[float], k: int) -> None:
    shares = split_durations(values, k)
    assert len(shares) == k
    assert sorted(itertools.chain.from_iterable(shares)) == list(range(len(values)))
    assert all(share == sorted(share) for share in shares)


@settings(max_examples=300, deadline=None)
@given(durations, shard_counts)
def test_balance_bound(values: list[float], k: int) -> None:
    shares = split_durations(values, k)
    loads = [sum(values[p] for p in share) for share in shares]
    longest = max(values, default=0.0)
    assert max(loads) <= sum(values) / k + longest + 1e-6


@settings(max_examples=150, deadline=None)
@given(
    st.lists(st.integers(min_value=0, max_value=100), max_size=7),
    st.integers(min_value=1, max_value=3),
)
def test_within_four_thirds_of_the_best_split(values: list[int], k: int) -> None:
    """LPT's guarantee, against the best split found by brute force on small inputs."""
    shares = split_durations([float(v) for v in values], k)
    lpt = max(sum(values[p] for p in share) for share in shares)
    best = min(
        (
            max(sum(v for v, s in zip(values, assign, strict=True) if s == shard)
                for shard in range(k))
            for assign in itertools.product(range(k), repeat=len(values))
        ),
        default=0,
    )  # fmt: skip
    assert lpt <= (4 / 3) * best + 1e-9


@settings(max_examples=200, deadline=None)
@given(durations, shard_counts)
def test_deterministic(values: list[float], k: int) -> None:
    assert split_durations(values, k) == split_durations(list(values), k)


def test_equal_clips_round_robin_and_empty_shares() -> None:
    assert split_durations([10.0] * 4, 2) == [[0, 2], [1, 3]]
    assert split_durations([5.0], 3) == [[0], [], []]
    with pytest.raises(ValueError):
        split_durations([1.0], 0)


def _plan(lengths: list[float]) -> SegmentPlan:
    start = 0.0
    segments = []
    for i, length in enumerate(lengths, 1):
        segments.append(
            PlannedSegment(index=i, title=f"c{i}", start=start, end=start + length, stem=f"c{i}")
        )
        start += length
    return SegmentPlan(segments=segments)


def test_split_plan_balances_a_long_lecture() -> None:
    plan = _plan([180.0 - (i % 7) * 20 for i in range(60)])
    shares = split_plan(plan, 4)
    loads = [sum(s.duration for s in share) for share in shares]
    assert max(loads) - min(loads) <= max(s.duration for s in plan.segments)
    for share in shares:
        assert [s.start for s in share] == sorted(s.start for s in share)
    indices = [share_indices(plan, 4, i) for i in range(4)]
    assert set().union(*indices) == {s.index for s in plan.segments}
    assert sum(len(i) for i in indices) == 60
    with pytest.raises(ValueError):
        share_indices(plan, 4, 4)


@given(st.sets(st.integers(min_value=0, max_value=200), max_size=50))
def test_index_lists_round_trip(indices: set[int]) -> None:
    text = format_index_list(indices)
    assert parse_index_list(text) == indices


def test_index_list_format() -> None:
    assert format_index_list([5, 0, 1, 2, 7, 8]) == "0-2,5,7-8"
    assert parse_index_list("1,3-4") == {1, 3, 4}
    assert parse_index_list("") == set() and parse_index_list(None) == set()
