"""A submission's body, parsed and bounded before the contract's checks see it.

``videojobs validate``'s checks (a YAML round trip, a pure-Python re-parse) are right but cost
time and memory in proportion to the body; a hostile body of 400,000 short strings took a
minute. So before them, cheaply:

- the JSON nesting is at most ``max_depth`` (deeper, or deep enough to exhaust the C parser's
  recursion, is ``400``);
- the body has at most ``max_nodes`` values, no array longer than :data:`MAX_ARRAY` and no
  string longer than :data:`MAX_STRING` (``422`` naming the field);
- a REST transcript whose inline form exceeds the spec's 64 KiB is ``422`` before the round trip.

All of it, and the contract's checks, run in a worker thread (:func:`check_in_thread`), at most
:data:`CONCURRENT_CHECKS` at a time, so the event loop keeps answering other requests.
"""

from __future__ import annotations

import json
from typing import Any

import anyio
import anyio.to_thread

import videojobs.validation  # noqa: F401  (imported now: the first check must not pay for it,

# building pydantic schemas holds the GIL for a long time)
from videojobs.errors import Problem
from videojobs.models.spec import INLINE_TRANSCRIPT_MAX
from videojobs_gateway import convert
from videojobs_gateway.problems import ProblemError

MAX_ARRAY = 10_000
"""Longest array anywhere in a submission (transcript entries fit 64 KiB long before)."""

MAX_STRING = INLINE_TRANSCRIPT_MAX
"""Longest string anywhere in a submission (the inline transcript's limit)."""

CONCURRENT_CHECKS = 2
"""Submissions checked at once (each in a thread)."""

_limiter: anyio.CapacityLimiter | None = None


def parse(raw: bytes, *, max_depth: int, max_nodes: int) -> Any:
    """The JSON value of ``raw``, within the bounds; raises :class:`ProblemError` (400/422)."""
    # Refused before the C parser, which holds the GIL for the whole body (tens of ms for
    # hundreds of thousands of values): every value but the first follows a ',' or opens a
    # collection, so this count is an upper bound of the values.
    if raw.count(b",") + raw.count(b"[") + raw.count(b"{") >= max_nodes:
        try:  # a nesting bomb is a 400: its first 64 KiB already nest too deep
            json.loads(raw[:65536])
        except RecursionError:
            raise ProblemError(
                400, "Bad Request", f"body: JSON nested deeper than {max_depth} levels"
            ) from None
        except ValueError:
            pass
        raise convert.SubmissionError(
            Problem("body", f"more than {max_nodes} values in one submission")
        )
    try:
        value = json.loads(raw)
    except RecursionError:
        raise ProblemError(
            400, "Bad Request", f"body: JSON nested deeper than {max_depth} levels"
        ) from None
    except (ValueError, UnicodeDecodeError) as exc:
        raise ProblemError(400, "Bad Request", f"body: not valid JSON ({exc})") from None
    nodes = 0
    stack: list[tuple[Any, str, int]] = [(value, "body", 1)]
    while stack:
        item, where, depth = stack.pop()
        nodes += 1
        if depth > max_depth:
            raise ProblemError(
                400, "Bad Request", f"body: JSON nested deeper than {max_depth} levels"
            )
        if nodes > max_nodes:
            raise convert.SubmissionError(
                Problem("body", f"more than {max_nodes} values in one submission")
            )
        if isinstance(item, dict):
            if len(item) > MAX_ARRAY:
                raise convert.SubmissionError(Problem(where, f"more than {MAX_ARRAY} fields"))
            for key, child in item.items():
                if len(key) > 256:
                    raise convert.SubmissionError(
                        Problem(where, "a field name over 256 characters")
                    )
                stack.append((child, key if where == "body" else f"{where}.{key}", depth + 1))
        elif isinstance(item, list):
            if len(item) > MAX_ARRAY:
                raise convert.SubmissionError(
                    Problem(where, f"{len(item)} entries; at most {MAX_ARRAY}")
                )
            stack.extend((child, f"{where}[{i}]", depth + 1) for i, child in enumerate(item))
        elif isinstance(item, str) and len(item) > MAX_STRING:
            raise convert.SubmissionError(
                Problem(where, f"{len(item)} characters; at most {MAX_STRING}")
            )
    return value


def check(
    raw: bytes, storage: dict[str, Any], *, max_depth: int, max_nodes: int
) -> tuple[str, convert.Submission]:
    """The body's digest and the checked submission (blocking: run it in a thread)."""
    body = parse(raw, max_depth=max_depth, max_nodes=max_nodes)
    return convert.body_digest(body), convert.check_submission(body, storage)


def limiter() -> anyio.CapacityLimiter:
    """The threads that check submissions (:data:`CONCURRENT_CHECKS` at a time); plan
    previews share them."""
    global _limiter
    if _limiter is None:
        _limiter = anyio.CapacityLimiter(CONCURRENT_CHECKS)
    return _limiter


async def check_in_thread(
    raw: bytes, storage: dict[str, Any], *, max_depth: int, max_nodes: int, timeout: float
) -> tuple[str, convert.Submission]:
    """:func:`check` in a worker thread; over ``timeout`` seconds is a 422 problem.

    The thread cannot be stopped, but its result is dropped and the caller answered; the
    bounds above keep any one check short."""
    with anyio.fail_after(timeout):
        return await anyio.to_thread.run_sync(
            lambda: check(raw, storage, max_depth=max_depth, max_nodes=max_nodes),
            limiter=limiter(),
            abandon_on_cancel=True,
        )
