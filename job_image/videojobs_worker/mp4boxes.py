"""The one walker over MP4 (ISO BMFF) boxes, used by :mod:`videojobs_worker.probe` (reading
sample tables and parameter sets) and :mod:`videojobs_worker.mp4edit` (rewriting ``avcC``).

A box is a 32-bit big-endian size (1: a 64-bit size follows the type; 0: to the end of its
parent), a four-byte type, then its payload.
"""

from __future__ import annotations

from pathlib import Path
from typing import NamedTuple

from videojobs_worker.h264bits import BitstreamError


class Box(NamedTuple):
    """One box: its type, where it starts, where its payload starts and where it ends."""

    kind: bytes
    start: int
    payload: int
    end: int


def boxes(data: bytes, start: int, end: int, *, strict: bool = False) -> list[Box]:
    """The boxes in ``data[start:end]``. A box that overruns the range raises
    :class:`BitstreamError` when ``strict``, else ends the list."""
    out = []
    pos = start
    while pos + 8 <= end:
        size = int.from_bytes(data[pos : pos + 4], "big")
        kind = bytes(data[pos + 4 : pos + 8])
        header = 8
        if size == 1:
            size = int.from_bytes(data[pos + 8 : pos + 16], "big")
            header = 16
        elif size == 0:
            size = end - pos
        if size < header or pos + size > end:
            if strict:
                raise BitstreamError(f"MP4 box {kind!r} at {pos} overruns its parent")
            break
        out.append(Box(kind, pos, pos + header, pos + size))
        pos += size
    return out


def child(data: bytes, start: int, end: int, kind: bytes, *, strict: bool = False) -> Box | None:
    """The first box of type ``kind`` in ``data[start:end]``, or None."""
    return next((box for box in boxes(data, start, end, strict=strict) if box.kind == kind), None)


def top_level_boxes(path: Path, *, strict: bool = False) -> list[Box] | None:
    """The top-level boxes of a file. A size under 8 is not a box structure: None, or
    :class:`BitstreamError` when ``strict``; so is a box reaching past the end of the file when
    ``strict`` (otherwise its declared end is kept: a truncated file)."""
    out = []
    total = path.stat().st_size
    with path.open("rb") as f:
        pos = 0
        while pos + 8 <= total:
            f.seek(pos)
            head = f.read(16)
            size = int.from_bytes(head[:4], "big")
            header = 8
            if size == 1:
                size = int.from_bytes(head[8:16], "big")
                header = 16
            elif size == 0:
                size = total - pos
            if size < 8 or (strict and pos + size > total):
                if strict:
                    raise BitstreamError(f"{path.name}: broken top-level box at {pos}")
                return None
            out.append(Box(bytes(head[4:8]), pos, pos + header, pos + size))
            pos += size
    return out


def read_moov(path: Path) -> bytes | None:
    """The ``moov`` box of an MP4 file (found by walking the top-level boxes), or None."""
    moov = next((b for b in top_level_boxes(path) or [] if b.kind == b"moov"), None)
    if moov is None:
        return None
    with path.open("rb") as f:
        f.seek(moov.start)
        return f.read(moov.end - moov.start)
