"""Transcript parsing and planning in a child process with a time and memory budget.

The operator validates tenants' resources on its event loop. Parsing a transcript and planning
are bounded by their own limits (cues, quotes, window comparisons, naming specs; see
docs/resource.md), but a bug or an input the limits missed must still not stall the loop or get
the operator OOM-killed. :func:`plan_problems_bounded` therefore runs :func:`plan_problems` in a
child forked from a small fork server (started once, with this module preloaded) with:

- **a memory budget**: ``RLIMIT_AS`` = the child's size when it starts + ``memory`` bytes, so an
  allocation past it raises ``MemoryError`` in the child (its memory counts toward the pod's
  cgroup, so the budget is kept well under the operator's limit);
- **a time budget**: the child is killed after ``timeout`` seconds of wall time (and
  ``RLIMIT_CPU`` stops it in any case);
- **one child at a time** per event loop (:data:`CONCURRENCY`), so several hostile resources
  cannot add their budgets up.

Each way of running out is an :class:`~videojobs.errors.InvalidSpec` problem naming the budget.
The event loop only waits on the child's pipe (``add_reader``), it never blocks.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import os
import re
import resource
import weakref
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

from videojobs.errors import InvalidSpec, Problem
from videojobs.models import VideoProcessingJobSpec
from videojobs.planning import plan_segments
from videojobs.transcripts import decode_transcript, parse_transcript

VALIDATION_TIMEOUT = 30.0
"""Seconds of wall time one resource's transcript parsing and planning may take."""

VALIDATION_MEMORY = 96 * 1024 * 1024
"""Bytes of memory one resource's transcript parsing and planning may allocate."""

CONCURRENCY = 1
"""Children running at once per event loop."""

_PATH = "spec.transcript"


def plan_problems(
    spec: VideoProcessingJobSpec, text: str | bytes | None, label: str = "spec.transcript.inline"
) -> list[Problem]:
    """Parse the transcript text (when there is one; bytes, from a ConfigMap's ``binaryData``,
    are decoded as every transcript is) and plan: the problems, or none.

    A plan that needs a transcript the worker will download is not a problem.
    """
    transcript = None
    if text is not None:
        fmt = spec.transcript.format if spec.transcript is not None else "auto"
        try:
            if isinstance(text, bytes):
                encoding = spec.transcript.encoding if spec.transcript is not None else None
                text = decode_transcript(text, encoding, source=label)
            transcript = parse_transcript(text, fmt, source=label)
        except InvalidSpec as exc:
            return list(exc.problems)
    elif spec.transcript is not None:
        return []  # at a URL: the worker fetches and plans it
    try:
        plan_segments(spec, transcript)
    except InvalidSpec as exc:
        return list(exc.problems)
    return []


def _vm_size() -> int:
    try:
        status = Path("/proc/self/status").read_text()
    except OSError:
        return 0
    match = re.search(r"VmSize:\s+(\d+) kB", status)
    return int(match.group(1)) * 1024 if match else 0


def _child(
    conn: Connection, spec: dict[str, Any], text: str | bytes | None, label: str, limits: Any
) -> None:
    memory, seconds = limits
    size = 0
    try:
        if memory:
            # the soft limit is the budget; the hard one stays, so the report can still be sent
            size = _vm_size() + memory
            resource.setrlimit(
                resource.RLIMIT_AS, (size, resource.getrlimit(resource.RLIMIT_AS)[1])
            )
        cpu = int(seconds) + 2
        resource.setrlimit(resource.RLIMIT_CPU, (cpu, resource.getrlimit(resource.RLIMIT_CPU)[1]))
        model = VideoProcessingJobSpec.model_validate(spec)
        outcome: tuple[str, Any] = ("ok", None)
        try:
            problems = plan_problems(model, text, label)
            outcome = ("ok", [(p.path, p.message, p.line) for p in problems])
        except MemoryError:
            del model, text
            outcome = ("memory", None)
        if size:
            resource.setrlimit(resource.RLIMIT_AS, (size + _REPORT_MARGIN, _hard_as()))
        conn.send(outcome)
    finally:
        conn.close()
        os._exit(0)  # no atexit handlers, no flushing of inherited buffers


_REPORT_MARGIN = 32 * 1024 * 1024
"""Room the child gives itself past the budget to send its report."""


def _hard_as() -> int:
    return resource.getrlimit(resource.RLIMIT_AS)[1]


_CONTEXT: Any = None
_SEMAPHORES: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Semaphore] = (
    weakref.WeakKeyDictionary()
)


def _context() -> Any:
    global _CONTEXT
    if _CONTEXT is None:
        method = (
            "forkserver" if "forkserver" in multiprocessing.get_all_start_methods() else "spawn"
        )
        _CONTEXT = multiprocessing.get_context(method)
        if method == "forkserver":
            _CONTEXT.set_forkserver_preload([__name__])
    return _CONTEXT


def _budget_problem(what: str) -> Problem:
    return Problem(
        _PATH,
        f"checking the transcript and planning {what}; make the transcript smaller or use "
        "fewer knowledge points",
    )


async def plan_problems_bounded(
    spec: VideoProcessingJobSpec,
    text: str | bytes | None,
    label: str = "spec.transcript.inline",
    *,
    timeout: float | None = None,
    memory: int | None = None,
) -> list[Problem]:
    """:func:`plan_problems` in a child process within ``timeout`` seconds and ``memory``
    bytes (by default :data:`VALIDATION_TIMEOUT` and :data:`VALIDATION_MEMORY`); running out
    of either is a problem naming the budget."""
    timeout = VALIDATION_TIMEOUT if timeout is None else timeout
    memory = VALIDATION_MEMORY if memory is None else memory
    if text is None:
        # nothing to parse: planning explicit segments (at most 500) or finding that the
        # worker must plan is quick and bounded by the spec's own limits
        return plan_problems(spec, None, label)
    loop = asyncio.get_running_loop()
    semaphore = _SEMAPHORES.get(loop)
    if semaphore is None:
        semaphore = _SEMAPHORES[loop] = asyncio.Semaphore(CONCURRENCY)
    async with semaphore:
        return await _run(spec, text, label, timeout, memory)


async def _run(
    spec: VideoProcessingJobSpec, text: str | bytes | None, label: str, timeout: float, memory: int
) -> list[Problem]:
    loop = asyncio.get_running_loop()
    receiver, sender = _context().Pipe(duplex=False)
    process = _context().Process(
        target=_child,
        args=(sender, spec.model_dump(mode="json", by_alias=True), text, label, (memory, timeout)),
        daemon=True,
    )
    ready = asyncio.Event()
    try:
        process.start()
        sender.close()
        loop.add_reader(receiver.fileno(), ready.set)
        try:
            await asyncio.wait_for(ready.wait(), timeout)
        except TimeoutError:
            return [_budget_problem(f"took longer than {timeout:g} s (the validation time limit)")]
        finally:
            loop.remove_reader(receiver.fileno())
        try:
            kind, payload = receiver.recv()
        except (EOFError, OSError):
            await loop.run_in_executor(None, process.join, 5)
            return [
                _budget_problem(
                    f"stopped abnormally (exit code {process.exitcode}); the limits are "
                    f"{timeout:g} s and {memory // (1024 * 1024)} MiB"
                )
            ]
        if kind == "memory":
            return [
                _budget_problem(
                    f"needs more than {memory // (1024 * 1024)} MiB (the validation memory limit)"
                )
            ]
        return [Problem(path, message, line) for path, message, line in payload]
    finally:
        if process.is_alive():
            process.kill()
        if process.pid is not None:
            await loop.run_in_executor(None, process.join, 5)
        receiver.close()
        if not sender.closed:
            sender.close()
