"""The queue's admission rule, and the incremental queue against a full recompute."""

from __future__ import annotations

from collections import Counter

from hypothesis import given, settings
from hypothesis import strategies as st

from videojobs_operator.queue import AdmissionQueue, QueueEntry, admit


def entry(ns: str, name: str, second: int, pods: int = 1) -> QueueEntry:
    return QueueEntry(ns, name, f"2026-11-25T13:00:{second:02d}Z", pods)


def test_oldest_first_and_ties_by_namespace_then_name() -> None:
    queue = AdmissionQueue()
    for e in [entry("b", "x", 5), entry("a", "y", 5), entry("a", "x", 5), entry("c", "z", 1)]:
        queue.set_waiting(e)
    assert queue.admissible(0, 0, now=0.0) == [("c", "z"), ("a", "x"), ("a", "y"), ("b", "x")]


def test_a_full_namespace_does_not_block_the_others() -> None:
    queue = AdmissionQueue()
    queue.set_running(("a", "busy"))
    queue.set_waiting(entry("a", "first", 1))
    queue.set_waiting(entry("b", "second", 2))
    queue.set_waiting(entry("b", "third", 3))
    assert queue.admissible(3, 1, now=0.0) == [("b", "second")]
    assert queue.running() == {"a": 1}


def test_the_total_limit_counts_running_and_a_backing_off_entry_gives_its_slot_away() -> None:
    queue = AdmissionQueue()
    queue.set_waiting(entry("a", "old", 1), not_before=10.0)
    queue.set_waiting(entry("a", "new", 2))
    assert queue.admissible(1, 0, now=5.0) == [("a", "new")]
    assert queue.admissible(1, 0, now=10.0) == [("a", "old")]
    queue.set_running(("a", "new"))
    assert queue.admissible(1, 0, now=10.0) == []
    queue.discard(("a", "new"))
    assert queue.running() == {}
    assert queue.admissible(1, 0, now=10.0) == [("a", "old")]


def test_a_resource_is_in_one_state_at_a_time() -> None:
    queue = AdmissionQueue()
    queue.set_waiting(entry("a", "x", 1))
    queue.set_running(("a", "x"))
    assert not queue.is_waiting(("a", "x")) and queue.is_running(("a", "x"))
    queue.set_waiting(entry("a", "x", 1))
    assert queue.is_waiting(("a", "x")) and not queue.is_running(("a", "x"))
    assert queue.running() == {} and len(queue) == 1


def test_pods_are_counted_and_a_big_old_run_is_not_passed_by_small_young_ones() -> None:
    queue = AdmissionQueue()
    queue.set_running(("a", "sharded"), pods=12)
    queue.set_waiting(entry("b", "big", 1, pods=8))
    queue.set_waiting(entry("c", "small", 2, pods=1))
    assert queue.running_pods() == 12
    assert queue.admissible(0, 0, now=0.0, max_pods=16) == []  # 8 do not fit in 4 left
    assert queue.admissible(0, 0, now=0.0, max_pods=20) == [("b", "big")]
    assert queue.admissible(0, 0, now=0.0, max_pods=21) == [("b", "big"), ("c", "small")]
    queue.set_running(("a", "sharded"), pods=4)  # its shard count read again: counted once
    assert queue.running_pods() == 4 and queue.running() == {"a": 1}
    queue.discard(("a", "sharded"))
    assert queue.running_pods() == 0
    assert queue.admissible(0, 0, now=0.0, max_pods=9) == [("b", "big"), ("c", "small")]


NAMESPACES = ["a", "b", "c"]
NAMES = [f"r{i}" for i in range(8)]
ops = st.lists(
    st.tuples(
        st.sampled_from(["wait", "run", "discard"]),
        st.sampled_from(NAMESPACES),
        st.sampled_from(NAMES),
        st.integers(0, 5),  # creation second (few values: ties happen)
        st.sampled_from([0.0, 0.0, 3.0, 7.0]),  # not before
        st.sampled_from([1, 1, 2, 4, 16]),  # pods (shards)
    ),
    max_size=60,
)


@settings(max_examples=300, deadline=None)
@given(
    ops=ops,
    max_total=st.integers(0, 6),
    max_per_ns=st.integers(0, 3),
    max_pods=st.sampled_from([0, 1, 4, 16, 20]),
    now=st.sampled_from([0.0, 5.0, 10.0]),
)
def test_the_incremental_queue_equals_a_full_recompute(
    ops: list[tuple[str, str, str, int, float, int]],
    max_total: int,
    max_per_ns: int,
    max_pods: int,
    now: float,
) -> None:
    queue = AdmissionQueue()
    waiting: dict[tuple[str, str], tuple[QueueEntry, float]] = {}
    running: dict[tuple[str, str], int] = {}
    for op, ns, name, second, not_before, pods in ops:
        key = (ns, name)
        waiting.pop(key, None)
        running.pop(key, None)
        if op == "wait":
            e = entry(ns, name, second, pods)
            queue.set_waiting(e, not_before)
            waiting[key] = (e, not_before)
        elif op == "run":
            queue.set_running(key, pods)
            running[key] = pods
        else:
            queue.discard(key)
        due = [e for e, nb in waiting.values() if nb <= now]
        counts = Counter(k[0] for k in running)
        assert queue.running() == +counts
        assert queue.running_pods() == sum(running.values())
        expected = admit(
            due,
            counts,
            max_total,
            max_per_ns,
            running_pods=sum(running.values()),
            max_pods=max_pods,
        )
        assert queue.admissible(max_total, max_per_ns, now, max_pods) == expected


@settings(max_examples=300, deadline=None)
@given(ops=ops, max_total=st.integers(0, 6), max_pods=st.sampled_from([1, 4, 16, 20]))
def test_admitting_whatever_is_admissible_never_asks_for_more_pods_than_the_budget(
    ops: list[tuple[str, str, str, int, float, int]], max_total: int, max_pods: int
) -> None:
    """Driven as the reconciler drives it (admit, mark running with the weight it waited with,
    finish some), the pods asked for stay within maxRunningPods and the runs within
    maxRunningJobs; once the running runs finish, the oldest waiting one always fits."""
    queue = AdmissionQueue()
    running: set[tuple[str, str]] = set()
    for op, ns, name, second, _nb, pods in ops:
        key = (ns, name)
        if op == "wait" and key not in running:
            queue.set_waiting(entry(ns, name, second, min(pods, max_pods)))
        elif op == "discard":
            queue.discard(key)
            running.discard(key)
        for admitted in queue.admissible(max_total, 0, 0.0, max_pods):
            queue.set_running(admitted)
            running.add(admitted)
        assert queue.running_pods() <= max_pods
        assert not max_total or len(running) <= max_total
    while len(queue):
        for key in running:
            queue.discard(key)
        running.clear()
        admitted = queue.admissible(max_total, 0, 0.0, max_pods)
        assert admitted, "the oldest waiting run never fits"
        for key in admitted:
            queue.set_running(key)
            running.add(key)
