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
