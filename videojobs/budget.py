"""A memory budget for parsing in the CLI and in ``videojobs serve``'s worker.

The operator parses tenants' transcripts in a bounded child (:mod:`videojobs.bounded`, 96 MiB).
The CLI (``videojobs validate``/``plan``, a CI validating pull requests) and ``serve``'s worker
parse the same hostile inputs in their own process; there :func:`memory_budget` lowers the
process's soft ``RLIMIT_AS`` to its current size plus :data:`PARSE_MEMORY` while a manifest or a
transcript is read, and restores it after. An allocation past it raises ``MemoryError``, which
the caller reports as a problem naming the budget instead of growing to gigabytes (a 12 MB JSON
transcript of escaped surrogate pairs peaked at 1.2 GB).
"""

from __future__ import annotations

import contextlib
import re
import resource
from collections.abc import Iterator
from pathlib import Path

PARSE_MEMORY = 512 * 1024 * 1024
"""Bytes of address space reading one manifest (with its transcript) may add."""


def _vm_size() -> int:
    try:
        status = Path("/proc/self/status").read_text()
    except OSError:
        return 0
    match = re.search(r"VmSize:\s+(\d+) kB", status)
    return int(match.group(1)) * 1024 if match else 0


@contextlib.contextmanager
def memory_budget(budget: int = PARSE_MEMORY) -> Iterator[None]:
    """Allow at most ``budget`` more bytes of address space inside the block (never raises
    the current limit; a no-op where the size cannot be read)."""
    size = _vm_size()
    if not size:
        yield
        return
    soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    limit = size + budget
    if hard != resource.RLIM_INFINITY:
        limit = min(limit, hard)
    if soft != resource.RLIM_INFINITY:
        limit = min(limit, soft)
    resource.setrlimit(resource.RLIMIT_AS, (limit, hard))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_AS, (soft, hard))


def budget_message(budget: int = PARSE_MEMORY) -> str:
    return (
        f"reading it needs more than {budget // (1024 * 1024)} MiB of memory (PARSE_MEMORY); "
        "make the transcript or manifest smaller"
    )
