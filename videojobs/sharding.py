"""Splitting a plan's clips into balanced shards (pure).

A job with ``spec.parallelism: k`` runs as one Indexed Job of ``k`` pods; pod ``i`` cuts the
clips of share ``i``. Every pod computes the same split from the same plan, so the shares never
overlap and together hold every clip exactly once.

The split is longest-processing-time-first (LPT) by clip duration: clips are taken longest first
(ties by plan position) and each goes to the shard with the least work so far (ties by the lower
shard index). LPT keeps the largest share within ``4/3`` of the best possible one and, more simply,
within ``total / k + longest clip``. Inside a share the clips keep their time order, so a shard
downloads only its own ranges, front to back.

Also here: the ``"0-2,5"`` index lists the Job controller writes into ``completedIndexes`` and
``failedIndexes``.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterable, Sequence

from videojobs.models import PlannedSegment, SegmentPlan

MAX_SHARDS = 16
"""The most shards a job may ask for (``spec.parallelism``)."""


def split_durations(durations: Sequence[float], k: int) -> list[list[int]]:
    """Positions of ``durations`` in ``k`` shares balanced by their sums (LPT), each in order.

    Deterministic: the same durations and ``k`` always give the same shares. Shares may be
    empty when there are fewer items than shards.
    """
    if k < 1:
        raise ValueError(f"k must be at least 1, not {k}")
    shares: list[list[int]] = [[] for _ in range(k)]
    loads: list[tuple[float, int]] = [(0.0, i) for i in range(k)]  # (load, shard): a min-heap
    order = sorted(range(len(durations)), key=lambda p: (-max(0.0, durations[p]), p))
    for position in order:
        load, shard = heapq.heappop(loads)
        shares[shard].append(position)
        heapq.heappush(loads, (load + max(0.0, durations[position]), shard))
    return [sorted(share) for share in shares]


def split_plan(plan: SegmentPlan, k: int) -> list[list[PlannedSegment]]:
    """The plan's clips in ``k`` shares balanced by duration, each in plan (time) order."""
    segments = plan.segments
    return [
        [segments[p] for p in share] for share in split_durations([s.duration for s in segments], k)
    ]


def share_indices(plan: SegmentPlan, k: int, index: int) -> frozenset[int]:
    """The clip indices (``PlannedSegment.index``) shard ``index`` of ``k`` cuts."""
    if not 0 <= index < k:
        raise ValueError(f"shard index {index} is not in 0..{k - 1}")
    return frozenset(s.index for s in split_plan(plan, k)[index])


def parse_index_list(text: str | None) -> set[int]:
    """The indices in a Job's ``completedIndexes``/``failedIndexes`` (``"0-2,5"``)."""
    out: set[int] = set()
    for part in (text or "").split(","):
        part = part.strip()
        if not part:
            continue
        first, _, last = part.partition("-")
        lo = int(first)
        hi = int(last) if last else lo
        out.update(range(lo, hi + 1))
    return out


def format_index_list(indices: Iterable[int]) -> str:
    """Indices as the Job controller writes them: sorted, runs collapsed (``"0-2,5"``)."""
    ordered = sorted(set(indices))
    runs: list[str] = []
    i = 0
    while i < len(ordered):
        j = i
        while j + 1 < len(ordered) and ordered[j + 1] == ordered[j] + 1:
            j += 1
        runs.append(str(ordered[i]) if i == j else f"{ordered[i]}-{ordered[j]}")
        i = j + 1
    return ",".join(runs)
