"""Seeded fault injection: which request gets which error.

A :class:`FaultPlan` answers a fraction ``rate`` of the requests made by the identities it
targets with one of: ``429`` (Too Many Requests, with ``Retry-After``), ``500``, ``409`` (only on
updates: a conflicting write), ``cut`` (a watch stream ends after a short while) and ``410``
(a resumed watch, one with a ``resourceVersion``, is told the version is too old). The choice is a
pure function of the seed and the order of requests, so a failing run can be replayed.

An operator opens few watches and keeps them open for minutes, so a per-request rate seldom
lands on one. Watches therefore have rates of their own: ``gone_rate`` of the resumed watches
are answered 410, ``watch_cut_rate`` of the others are cut after a seeded time. And with
``guarantee`` every kind fires at least once: each kind is due at a seeded position among the
first requests that can take it (the first few watches, the first 20 updates or requests), and
is injected there unless the rates already injected it.

With ``network`` (the fault proxy in front of the real API server, ``faultproxy.py``), requests
other than watches can also take ``drop`` (the connection closed without an answer: before the
request reaches the server, or after it, so that a write lands and its answer is lost) and
``delay`` (the answer held back a while).
"""

from __future__ import annotations

import collections
import random
from dataclasses import dataclass, field

KINDS = ("429", "500", "409", "cut", "410")
NETWORK_KINDS = ("drop", "delay")

GUARANTEE_WITHIN = {"429": 20, "500": 20, "409": 20, "cut": 3, "410": 3, "drop": 20, "delay": 20}
"""A guaranteed kind is due at a seeded position below this among the requests it fits."""


def eligible(action: str, resumed_watch: bool, network: bool = False) -> tuple[str, ...]:
    """The kinds of fault a request can take."""
    if action == "watch":
        return ("429", "500", "cut") + (("410",) if resumed_watch else ())
    more = NETWORK_KINDS if network else ()
    if action == "update":
        return ("429", "500", "409", *more)
    return ("429", "500", *more)


@dataclass
class FaultPlan:
    rate: float = 0.05
    seed: int = 0
    identities: frozenset[str] = frozenset({"operator"})
    retry_after_seconds: int = 1
    cut_after_seconds: tuple[float, float] = (0.2, 3.0)
    watch_cut_rate: float = 0.0
    """Of the watches not otherwise faulted, the fraction whose stream is cut."""
    gone_rate: float = 0.0
    """Of the resumed watches, the fraction answered 410 Gone."""
    guarantee: bool = False
    """Inject every kind at least once (see the module's text)."""
    network: bool = False
    """Also ``drop`` and ``delay`` (only a proxy can do them)."""
    injected: collections.Counter[str] = field(default_factory=collections.Counter)
    _rng: random.Random = field(init=False, repr=False)
    _due: dict[str, int] = field(init=False, repr=False)
    _seen: collections.Counter[str] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self._rng = random.Random(self.seed)
        self._due = {kind: self._rng.randrange(GUARANTEE_WITHIN[kind]) for kind in self.kinds}
        self._seen = collections.Counter()

    def pick(self, identity: str, action: str, resumed_watch: bool) -> str | None:
        """The fault for one request, or None. ``action`` is kmock's (``watch``, ``update``…)."""
        if identity not in self.identities:
            return None
        kinds = eligible(action, resumed_watch, self.network)
        kind = self._guaranteed(kinds) if self.guarantee else None
        if kind is None and action == "watch":
            if resumed_watch and self._rng.random() < self.gone_rate:
                kind = "410"
            elif self._rng.random() < self.watch_cut_rate:
                kind = "cut"
        if kind is None and self._rng.random() < self.rate:
            kind = self._rng.choice(kinds)
        if kind is not None:
            self.injected[kind] += 1
        return kind

    def _guaranteed(self, kinds: tuple[str, ...]) -> str | None:
        """A guaranteed kind not injected yet that is due at this request, if any."""
        due = None
        for kind in kinds:
            self._seen[kind] += 1
            if due is None and not self.injected[kind] and self._seen[kind] > self._due[kind]:
                due = kind
        return due

    @property
    def kinds(self) -> tuple[str, ...]:
        return KINDS + NETWORK_KINDS if self.network else KINDS

    def missing(self) -> list[str]:
        """The kinds never injected so far."""
        return [kind for kind in self.kinds if not self.injected[kind]]

    def cut_after(self) -> float:
        low, high = self.cut_after_seconds
        return self._rng.uniform(low, high)
