"""Queue admission: which waiting resources may start a Job now (pure).

:func:`admit` is the rule, over a full list of waiting resources. :class:`AdmissionQueue` keeps
the same answer up to date one resource at a time (the reconciler tells it what each pass saw),
so that admission costs the same with ten resources or ten thousand: waiting resources are kept
in creation order per namespace and running ones counted per namespace, and an admission walks
only the heads of the namespaces that have room.
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

    @property
    def key(self) -> tuple[str, str]:
        return (self.namespace, self.name)


def admit(
    waiting: Iterable[QueueEntry],
    running: Mapping[str, int],
    max_total: int,
    max_per_namespace: int,
) -> list[tuple[str, str]]:
    """Which waiting resources may start now, oldest first.

    ``running`` counts active Jobs per namespace. Limits of 0 mean unlimited. A namespace at its
    own limit does not block others (no head-of-line blocking across namespaces).
    """
    total = sum(running.values())
    per_ns = dict(running)
    admitted: list[tuple[str, str]] = []
    for entry in sorted(waiting, key=fifo_key):
        if max_total and total >= max_total:
            break
        if max_per_namespace and per_ns.get(entry.namespace, 0) >= max_per_namespace:
            continue
        admitted.append(entry.key)
        total += 1
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
        self._running: set[Key] = set()
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
        if not_before > 0:
            self._not_before[entry.key] = not_before
        else:
            self._not_before.pop(entry.key, None)

    def set_running(self, key: Key) -> None:
        """The resource's Job is active (or admitted and being created)."""
        self._unwait(key)
        if key not in self._running:
            self._running.add(key)
            self._per_ns[key[0]] += 1

    def discard(self, key: Key) -> None:
        """The resource neither waits nor runs (finished, cancelled, invalid, deleted)."""
        self._unwait(key)
        self._stop_running(key)

    def running(self) -> Counter[str]:
        """Running resources per namespace (namespaces with none left out)."""
        return +self._per_ns

    def admissible(self, max_total: int, max_per_namespace: int, now: float) -> list[Key]:
        """Which waiting resources may start now, oldest first (as :func:`admit`)."""
        room = max_total - len(self._running) if max_total else None
        if room is not None and room <= 0:
            return []
        streams: list[Iterator[FifoKey]] = []
        for namespace, entries in self._waiting.items():
            due: Iterator[FifoKey] = (e for e in entries if self._due(e, now))
            if max_per_namespace:
                free = max_per_namespace - self._per_ns.get(namespace, 0)
                if free <= 0:
                    continue
                due = itertools.islice(due, free)
            streams.append(due)
        merged = heapq.merge(*streams)
        return [(e[1], e[2]) for e in itertools.islice(merged, room)]

    def _due(self, order: FifoKey, now: float) -> bool:
        return self._not_before.get((order[1], order[2]), 0.0) <= now

    def _unwait(self, key: Key) -> None:
        order = self._order.pop(key, None)
        self._not_before.pop(key, None)
        if order is None:
            return
        entries = self._waiting[key[0]]
        del entries[bisect.bisect_left(entries, order)]
        if not entries:
            del self._waiting[key[0]]

    def _stop_running(self, key: Key) -> None:
        if key in self._running:
            self._running.discard(key)
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
    return ", ".join(parts)
