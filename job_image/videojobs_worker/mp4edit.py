"""Rewrite an MP4's video ``avcC`` after muxing, and move the index up front (pure core + thin
file I/O).

ffmpeg's MP4 muxer takes the decoder configuration of the first piece of a concat only. A smart
cut whose re-encoded pieces use their own parameter-set ids needs every SPS/PPS of the clip in
``avcC``; :func:`replace_avcc` swaps the record inside ``moov`` (fixing the sizes of the boxes
around it), and :func:`rewrite_mp4` writes ``ftyp`` + the new ``moov`` + the media data, shifting
the chunk offsets (``stco``/``co64``) by how far the media data moved: the same layout as
ffmpeg's ``+faststart``.
"""

from __future__ import annotations

import os
from pathlib import Path

from videojobs_worker.h264bits import BitstreamError

_CONTAINERS = {b"moov", b"trak", b"mdia", b"minf", b"stbl", b"edts", b"dinf"}
_VISUAL_SAMPLE_ENTRY = 78  # bytes of VisualSampleEntry fields before its child boxes


def _boxes(data: bytes, start: int, end: int) -> list[tuple[bytes, int, int, int]]:
    """(type, box start, payload start, box end) of the boxes in ``data[start:end]``."""
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
            raise BitstreamError(f"MP4 box {kind!r} at {pos} overruns its parent")
        out.append((kind, pos, pos + header, pos + size))
        pos += size
    return out


def _child(data: bytes, start: int, end: int, kind: bytes) -> tuple[int, int, int] | None:
    for found, box, payload, stop in _boxes(data, start, end):
        if found == kind:
            return box, payload, stop
    return None


def _video_trak(moov: bytes) -> tuple[int, int, int]:
    for kind, box, payload, stop in _boxes(moov, 8, len(moov)):
        if kind != b"trak":
            continue
        mdia = _child(moov, payload, stop, b"mdia")
        hdlr = mdia and _child(moov, mdia[1], mdia[2], b"hdlr")
        if mdia and hdlr and moov[hdlr[1] + 8 : hdlr[1] + 12] == b"vide":
            return box, payload, stop
    raise BitstreamError("no video track in moov")


def find_avcc(moov: bytes) -> tuple[list[int], int, int]:
    """Locate the video track's ``avcC`` in a ``moov`` box: the start offsets of its ancestor
    boxes (outermost first) and the avcC box's start and end."""
    trak = _video_trak(moov)
    chain = [0, trak[0]]
    lo, hi = trak[1], trak[2]
    for kind in (b"mdia", b"minf", b"stbl", b"stsd"):
        found = _child(moov, lo, hi, kind)
        if found is None:
            raise BitstreamError(f"video track without {kind.decode()}")
        chain.append(found[0])
        lo, hi = found[1], found[2]
    entries = _boxes(moov, lo + 8, hi)  # stsd: version/flags, entry count
    if not entries or entries[0][0] not in (b"avc1", b"avc3"):
        raise BitstreamError("the video track is not H.264 (avc1)")
    _, entry, payload, stop = entries[0]
    chain.append(entry)
    avcc = _child(moov, payload + _VISUAL_SAMPLE_ENTRY, stop, b"avcC")
    if avcc is None:
        raise BitstreamError("avc1 sample entry without avcC")
    return chain, avcc[0], avcc[2]


def read_sample_config(moov: bytes, entries: tuple[bytes, ...], box: bytes) -> tuple[bytes, bytes]:
    """The video track's sample entry type (one of ``entries``) and the payload of its ``box``
    child (e.g. ``hvcC`` of an ``hvc1``/``hev1`` entry)."""
    trak = _video_trak(moov)
    lo, hi = trak[1], trak[2]
    for kind in (b"mdia", b"minf", b"stbl", b"stsd"):
        found = _child(moov, lo, hi, kind)
        if found is None:
            raise BitstreamError(f"video track without {kind.decode()}")
        lo, hi = found[1], found[2]
    listed = _boxes(moov, lo + 8, hi)  # stsd: version/flags, entry count
    if not listed or listed[0][0] not in entries:
        names = "/".join(e.decode() for e in entries)
        raise BitstreamError(f"the video track's sample entry is not {names}")
    kind, _, payload, stop = listed[0]
    config = _child(moov, payload + _VISUAL_SAMPLE_ENTRY, stop, box)
    if config is None:
        raise BitstreamError(f"{kind.decode()} sample entry without {box.decode()}")
    return kind, bytes(moov[config[1] : config[2]])


def read_avcc(moov: bytes) -> bytes:
    """The payload of the video track's ``avcC``."""
    _, start, end = find_avcc(moov)
    return bytes(moov[start + 8 : end])


def replace_avcc(moov: bytes, payload: bytes) -> bytes:
    """``moov`` with the video ``avcC`` payload replaced; ancestor box sizes are fixed (pure)."""
    chain, start, end = find_avcc(moov)
    new_box = (8 + len(payload)).to_bytes(4, "big") + b"avcC" + payload
    delta = len(new_box) - (end - start)
    out = bytearray(moov[:start] + new_box + moov[end:])
    for box in chain:
        size = int.from_bytes(out[box : box + 4], "big")
        if size == 1:
            raise BitstreamError("64-bit box sizes around avcC are not supported")
        out[box : box + 4] = (size + delta).to_bytes(4, "big")
    return bytes(out)


def shift_chunk_offsets(moov: bytes, delta: int) -> bytes:
    """``moov`` with every track's ``stco``/``co64`` chunk offsets moved by ``delta`` (pure)."""
    out = bytearray(moov)

    def walk(lo: int, hi: int) -> None:
        for kind, _, payload, stop in _boxes(moov, lo, hi):
            if kind in _CONTAINERS:
                walk(payload, stop)
            elif kind in (b"stco", b"co64"):
                width = 4 if kind == b"stco" else 8
                count = int.from_bytes(moov[payload + 4 : payload + 8], "big")
                for i in range(count):
                    at = payload + 8 + i * width
                    value = int.from_bytes(moov[at : at + width], "big") + delta
                    if value < 0 or value >= 1 << (8 * width):
                        raise BitstreamError("chunk offset out of range after the move")
                    out[at : at + width] = value.to_bytes(width, "big")

    walk(8, len(moov))
    return bytes(out)


def _top_level(path: Path) -> list[tuple[bytes, int, int]]:
    """(type, start, end) of the top-level boxes of a file."""
    total = path.stat().st_size
    out = []
    with path.open("rb") as f:
        pos = 0
        while pos + 8 <= total:
            f.seek(pos)
            head = f.read(16)
            size = int.from_bytes(head[:4], "big")
            if size == 1:
                size = int.from_bytes(head[8:16], "big")
            elif size == 0:
                size = total - pos
            if size < 8 or pos + size > total:
                raise BitstreamError(f"{path.name}: broken top-level box at {pos}")
            out.append((head[4:8], pos, pos + size))
            pos += size
    return out


def rewrite_mp4(src: Path, dest: Path, avcc: bytes) -> None:
    """Write ``src`` to ``dest`` with the video ``avcC`` payload replaced by ``avcc`` and the
    index (``moov``) right after ``ftyp``, chunk offsets adjusted."""
    boxes = _top_level(src)
    kinds = [k for k, _, _ in boxes]
    if kinds.count(b"moov") != 1 or kinds.count(b"mdat") != 1:
        raise BitstreamError(f"{src.name}: expected one moov and one mdat")
    with src.open("rb") as f:
        _, lo, hi = next(b for b in boxes if b[0] == b"moov")
        f.seek(lo)
        moov = replace_avcc(f.read(hi - lo), avcc)
    head = [b for b in boxes if b[0] == b"ftyp"]
    rest = [b for b in boxes if b[0] not in (b"ftyp", b"moov")]
    layout = head + [(b"moov", -1, -1)] + rest
    # Where mdat starts now and where it will start.
    old_mdat = next(b[1] for b in boxes if b[0] == b"mdat")
    new_pos = 0
    new_mdat = 0
    for kind, lo, hi in layout:
        if kind == b"mdat":
            new_mdat = new_pos
        new_pos += len(moov) if kind == b"moov" else hi - lo
    moov = shift_chunk_offsets(moov, new_mdat - old_mdat)
    tmp = dest.with_name(f".{dest.name}.rewrite")
    try:
        with src.open("rb") as fin, tmp.open("wb") as fout:
            for kind, lo, hi in layout:
                if kind == b"moov":
                    fout.write(moov)
                    continue
                fin.seek(lo)
                remaining = hi - lo
                while remaining:
                    chunk = fin.read(min(remaining, 1 << 20))
                    if not chunk:
                        raise BitstreamError(f"{src.name} is truncated")
                    fout.write(chunk)
                    remaining -= len(chunk)
        os.replace(tmp, dest)
    finally:
        if tmp.exists():
            tmp.unlink()
