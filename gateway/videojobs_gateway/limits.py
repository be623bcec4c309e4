"""Per-identity rate limits: a token bucket per caller; an empty bucket answers 429."""

from __future__ import annotations

import math
import time

from videojobs_gateway.backend import Identity
from videojobs_gateway.problems import ProblemError


class RateLimiter:
    """Token buckets keyed by identity name; ``rate`` tokens per second, ``burst`` at most."""

    def __init__(self, rate: float, burst: int, clock: object = time.monotonic) -> None:
        self.rate = rate
        self.burst = burst
        self._clock = clock
        self._buckets: dict[str, tuple[float, float]] = {}

    def check(self, identity: Identity) -> None:
        """Take a token for ``identity``. Raises ProblemError(429) with Retry-After."""
        rate = identity.rate if identity.rate is not None else self.rate
        if rate <= 0:
            return
        burst = max(1.0, float(self.burst) if identity.rate is None else max(rate, 1.0))
        now: float = self._clock()  # type: ignore[operator]
        tokens, last = self._buckets.get(identity.name, (burst, now))
        tokens = min(burst, tokens + (now - last) * rate)
        if tokens < 1.0:
            wait = math.ceil((1.0 - tokens) / rate)
            self._buckets[identity.name] = (tokens, now)
            raise ProblemError(
                429,
                "Too Many Requests",
                f"rate limit of {rate:g} requests per second for {identity.name}",
                type_="rate-limited",
                headers={"Retry-After": str(max(1, wait))},
            )
        self._buckets[identity.name] = (tokens - 1.0, now)


class FailureLimiter:
    """Failed authentications per client address, limited *before* authenticating.

    Each request that fails authentication takes a token from its address's bucket (``rate``
    per second, ``burst`` at most); an address with an empty bucket is answered ``429`` without
    being authenticated at all, so bogus tokens cannot make the gateway send TokenReviews (or
    hash keys) without bound. At most ``addresses`` buckets are kept (the oldest go first)."""

    def __init__(
        self, rate: float, burst: int, addresses: int = 100_000, clock: object = time.monotonic
    ) -> None:
        self.rate = rate
        self.burst = max(1.0, float(burst))
        self.addresses = addresses
        self._clock = clock
        self._buckets: dict[str, tuple[float, float]] = {}

    def _tokens(self, key: str) -> tuple[float, float]:
        now: float = self._clock()  # type: ignore[operator]
        tokens, last = self._buckets.get(key, (self.burst, now))
        return min(self.burst, tokens + (now - last) * self.rate), now

    def check(self, key: str) -> None:
        """Raise 429 when ``key`` has used up its failed attempts."""
        if self.rate <= 0:
            return
        tokens, _ = self._tokens(key)
        if tokens < 1.0:
            wait = math.ceil((1.0 - tokens) / self.rate)
            raise ProblemError(
                429,
                "Too Many Requests",
                "too many failed authentications from this address",
                type_="rate-limited",
                headers={"Retry-After": str(max(1, wait))},
            )

    def failed(self, key: str) -> None:
        """Record one failed authentication of ``key``."""
        if self.rate <= 0:
            return
        tokens, now = self._tokens(key)
        self._buckets.pop(key, None)
        while len(self._buckets) >= self.addresses:
            del self._buckets[next(iter(self._buckets))]
        self._buckets[key] = (max(0.0, tokens - 1.0), now)
