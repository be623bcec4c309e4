"""Queue admission: which waiting resources may start a Job now (pure)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
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
    for entry in sorted(
        waiting,
        key=lambda e: (
            parse_time(e.created) or dt.datetime.min.replace(tzinfo=dt.UTC),
            e.namespace,
            e.name,
        ),
    ):
        if max_total and total >= max_total:
            break
        if max_per_namespace and per_ns.get(entry.namespace, 0) >= max_per_namespace:
            continue
        admitted.append(entry.key)
        total += 1
        per_ns[entry.namespace] = per_ns.get(entry.namespace, 0) + 1
    return admitted


def queue_limit_text(settings: OperatorSettings) -> str:
    """How the limits read in a Queued message."""
    parts = []
    if settings.max_running_jobs:
        parts.append(f"at most {settings.max_running_jobs} running")
    if settings.max_running_jobs_per_namespace:
        parts.append(f"{settings.max_running_jobs_per_namespace} per namespace")
    return ", ".join(parts)
