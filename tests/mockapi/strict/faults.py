"""Seeded fault injection: which request gets which error.

A :class:`FaultPlan` answers a fraction ``rate`` of the requests made by the identities it
targets with one of: ``429`` (Too Many Requests, with ``Retry-After``), ``500``, ``409`` (only on
updates: a conflicting write), ``cut`` (a watch stream ends after a short while) and ``410``
(a resumed watch, one with a ``resourceVersion``, is told the version is too old). The choice is a
pure function of the seed and the order of requests, so a failing run can be replayed.
"""

from __future__ import annotations

import collections
import random
from dataclasses import dataclass, field

KINDS = ("429", "500", "409", "cut", "410")


@dataclass
class FaultPlan:
    rate: float = 0.05
    seed: int = 0
    identities: frozenset[str] = frozenset({"operator"})
    retry_after_seconds: int = 1
    cut_after_seconds: tuple[float, float] = (0.2, 3.0)
    injected: collections.Counter[str] = field(default_factory=collections.Counter)
    _rng: random.Random = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self._rng = random.Random(self.seed)

    def pick(self, identity: str, action: str, resumed_watch: bool) -> str | None:
        """The fault for one request, or None. ``action`` is kmock's (``watch``, ``update``…)."""
        if identity not in self.identities or self._rng.random() >= self.rate:
            return None
        if action == "watch":
            choices = ["429", "500", "cut"] + (["410"] if resumed_watch else [])
        elif action == "update":
            choices = ["429", "500", "409"]
        else:
            choices = ["429", "500"]
        kind = self._rng.choice(choices)
        self.injected[kind] += 1
        return kind

    def cut_after(self) -> float:
        low, high = self.cut_after_seconds
        return self._rng.uniform(low, high)
