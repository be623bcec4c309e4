"""Queue admission: which waiting resources may start a Job now (pure).

:func:`admit` is the rule, over a full list of waiting resources. :class:`AdmissionQueue` keeps
the same answer up to date one resource at a time (the reconciler tells it what each pass saw),
so that admission costs the same with ten resources or ten thousand: waiting resources are kept
in creation order per namespace and running ones counted per namespace, and an admission walks
only the heads of the namespaces that have room.

Runs are counted (``maxRunningJobs``, ``maxRunningJobsPerNamespace``) and so are the pods they
ask for (``maxRunningPods``): a sharded run weighs its shard count. The pod budget is first come,
first served across namespaces: when the oldest admissible run does not fit in the pods left, no
younger run passes it (a 16-shard run is not starved by a stream of one-pod runs); it starts
when enough running pods finish. No run weighs more than the budget (``shard_count`` caps the
shards at ``maxRunningPods``), so the oldest always fits once enough others finish.
"""

from __future__ import annotations

import bisect
import datetime as dt
import heapq
import itertools
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass

from videojobs_operator.settings import OperatorSettings
from videojobs_operator.timestamps import parse_time


@dataclass(frozen=True)
class QueueEntry:
    """A resource that wants to start a Job."""

    namespace: str
    name: str
    created: str
    """creationTimestamp (RFC 3339): first come, first served."""
    pods: int = 1
    """Pods the run asks for at once (its shard count)."""

    @property
    def key(self) -> tuple[str, str]:
        return (self.namespace, self.name)


def admit(
    waiting: Iterable[QueueEntry],
    running: Mapping[str, int],
    max_total: int,
    max_per_namespace: int,
    *,
    running_pods: int = 0,
    max_pods: int = 0,
) -> list[tuple[str, str]]:
    """Which waiting resources may start now, oldest first.

    ``running`` counts active Jobs per namespace, ``running_pods`` the pods they ask for. Limits
    of 0 mean unlimited. A namespace at its own limit does not block others (no head-of-line
    blocking across namespaces); the oldest run that does not fit in the pods left blocks every
    younger one (no starvation of sharded runs).
    """
    total = sum(running.values())
    pods = running_pods
    per_ns = dict(running)
    admitted: list[tuple[str, str]] = []
    for entry in sorted(waiting, key=fifo_key):
        if max_total and total >= max_total:
            break
        if max_per_namespace and per_ns.get(entry.namespace, 0) >= max_per_namespace:
            continue
        if max_pods and pods + entry.pods > max_pods:
            break
        admitted.append(entry.key)
        total += 1
        pods += entry.pods
        per_ns[entry.namespace] = per_ns.get(entry.namespace, 0) + 1
    return admitted


_EPOCH = dt.datetime.min.replace(tzinfo=dt.UTC)
Key = tuple[str, str]
FifoKey = tuple[dt.datetime, str, str]


def fifo_key(entry: QueueEntry) -> FifoKey:
    """The queue's order: creation time, then namespace and name (no time sorts first)."""
    return (parse_time(entry.created) or _EPOCH, entry.namespace, entry.name)


class AdmissionQueue:
    """:func:`admit`'s answer, kept incrementally.

    Every resource is in at most one of two states: *waiting* (wants a Job, has none; optionally
    not before a monotonic time, while a failed create backs off) or *running* (its Job is active
    or being created). :meth:`admissible` equals ``admit(waiting entries that are due, running
    counts per namespace, ...)``; the cost of an update is O(log n) plus a list insertion, of an
    admission O(namespaces with room + admitted).
    """

    def __init__(self) -> None:
        self._waiting: dict[str, list[FifoKey]] = {}
        self._order: dict[Key, FifoKey] = {}
        self._not_before: dict[Key, float] = {}
        self._running: dict[Key, int] = {}
        """Running resources and the pods each asks for."""
        self._pods: dict[Key, int] = {}
        """Pods each waiting resource asks for."""
        self._running_pods = 0
        self._per_ns: Counter[str] = Counter()

    def __len__(self) -> int:
        return len(self._order)

    def is_waiting(self, key: Key) -> bool:
        return key in self._order

    def is_running(self, key: Key) -> bool:
        return key in self._running

    def set_waiting(self, entry: QueueEntry, not_before: float = 0.0) -> None:
        """The resource wants a Job (from ``not_before`` on, a monotonic time)."""
        self._stop_running(entry.key)
        order = fifo_key(entry)
        if self._order.get(entry.key) != order:
            self._unwait(entry.key)
            self._order[entry.key] = order
            bisect.insort(self._waiting.setdefault(entry.namespace, []), order)
        self._pods[entry.key] = max(1, entry.pods)
        if not_before > 0:
            self._not_before[entry.key] = not_before
        else:
            self._not_before.pop(entry.key, None)

    def set_running(self, key: Key, pods: int | None = None) -> None:
        """The resource's Job is active (or admitted and being created) with ``pods`` pods
        (None: as many as it waited with, or had running)."""
        if pods is None:
            pods = self._pods.get(key) or self._running.get(key) or 1
        self._unwait(key)
        pods = max(1, pods)
        if key not in self._running:
            self._per_ns[key[0]] += 1
        self._running_pods += pods - self._running.get(key, 0)
        self._running[key] = pods

    def discard(self, key: Key) -> None:
        """The resource neither waits nor runs (finished, cancelled, invalid, deleted)."""
        self._unwait(key)
        self._stop_running(key)

    def running(self) -> Counter[str]:
        """Running resources per namespace (namespaces with none left out)."""
        return +self._per_ns

    def running_pods(self) -> int:
        """Pods the running resources ask for."""
        return self._running_pods

    def admissible(
        self, max_total: int, max_per_namespace: int, now: float, max_pods: int = 0
    ) -> list[Key]:
        """Which waiting resources may start now, oldest first (as :func:`admit`)."""
        room = max_total - len(self._running) if max_total else None
        if room is not None and room <= 0:
            return []
        merged = self._candidates(max_per_namespace, now)
        if not max_pods:
            return [(e[1], e[2]) for e in itertools.islice(merged, room)]
        pods_left = max_pods - self._running_pods
        admitted: list[Key] = []
        for order in itertools.islice(merged, room):
            key = (order[1], order[2])
            pods_left -= self._pods.get(key, 1)
            if pods_left < 0:
                break
            admitted.append(key)
        return admitted

    def _candidates(self, max_per_namespace: int, now: float) -> Iterator[FifoKey]:
        """Due waiting entries, oldest first, each namespace's cut to its free slots."""
        streams: list[Iterator[FifoKey]] = []
        for namespace, entries in self._waiting.items():
            due: Iterator[FifoKey] = (e for e in entries if self._due(e, now))
            if max_per_namespace:
                free = max_per_namespace - self._per_ns.get(namespace, 0)
                if free <= 0:
                    continue
                due = itertools.islice(due, free)
            streams.append(due)
        return heapq.merge(*streams)

    def _due(self, order: FifoKey, now: float) -> bool:
        return self._not_before.get((order[1], order[2]), 0.0) <= now

    def _unwait(self, key: Key) -> None:
        order = self._order.pop(key, None)
        self._not_before.pop(key, None)
        self._pods.pop(key, None)
        if order is None:
            return
        entries = self._waiting[key[0]]
        del entries[bisect.bisect_left(entries, order)]
        if not entries:
            del self._waiting[key[0]]

    def _stop_running(self, key: Key) -> None:
        if key in self._running:
            self._running_pods -= self._running.pop(key)
            self._per_ns[key[0]] -= 1
            if not self._per_ns[key[0]]:
                del self._per_ns[key[0]]


def queue_limit_text(settings: OperatorSettings) -> str:
    """How the limits read in a Queued message."""
    parts = []
    if settings.max_running_jobs:
        parts.append(f"at most {settings.max_running_jobs} running")
    if settings.max_running_jobs_per_namespace:
        parts.append(f"{settings.max_running_jobs_per_namespace} per namespace")
    if settings.max_running_pods:
        parts.append(f"{settings.max_running_pods} worker pods")
    return ", ".join(parts)
