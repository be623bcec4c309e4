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
from videojobs_worker.mp4boxes import Box, boxes, child, top_level_boxes

_CONTAINERS = {b"moov", b"trak", b"mdia", b"minf", b"stbl", b"edts", b"dinf"}
_VISUAL_SAMPLE_ENTRY = 78  # bytes of VisualSampleEntry fields before its child boxes


def _video_trak(moov: bytes) -> Box:
    for trak in boxes(moov, 8, len(moov), strict=True):
        if trak.kind != b"trak":
            continue
        mdia = child(moov, trak.payload, trak.end, b"mdia", strict=True)
        hdlr = mdia and child(moov, mdia.payload, mdia.end, b"hdlr", strict=True)
        if mdia and hdlr and moov[hdlr.payload + 8 : hdlr.payload + 12] == b"vide":
            return trak
    raise BitstreamError("no video track in moov")


def find_avcc(moov: bytes) -> tuple[list[int], int, int]:
    """Locate the video track's ``avcC`` in a ``moov`` box: the start offsets of its ancestor
    boxes (outermost first) and the avcC box's start and end."""
    trak = _video_trak(moov)
    chain = [0, trak.start]
    lo, hi = trak.payload, trak.end
    for kind in (b"mdia", b"minf", b"stbl", b"stsd"):
        found = child(moov, lo, hi, kind, strict=True)
        if found is None:
            raise BitstreamError(f"video track without {kind.decode()}")
        chain.append(found.start)
        lo, hi = found.payload, found.end
    entries = boxes(moov, lo + 8, hi, strict=True)  # stsd: version/flags, entry count
    if not entries or entries[0].kind not in (b"avc1", b"avc3"):
        raise BitstreamError("the video track is not H.264 (avc1)")
    entry = entries[0]
    chain.append(entry.start)
    avcc = child(moov, entry.payload + _VISUAL_SAMPLE_ENTRY, entry.end, b"avcC", strict=True)
    if avcc is None:
        raise BitstreamError("avc1 sample entry without avcC")
    return chain, avcc.start, avcc.end


def read_sample_config(moov: bytes, entries: tuple[bytes, ...], box: bytes) -> tuple[bytes, bytes]:
    """The video track's sample entry type (one of ``entries``) and the payload of its ``box``
    child (e.g. ``hvcC`` of an ``hvc1``/``hev1`` entry)."""
    trak = _video_trak(moov)
    lo, hi = trak.payload, trak.end
    for kind in (b"mdia", b"minf", b"stbl", b"stsd"):
        found = child(moov, lo, hi, kind, strict=True)
        if found is None:
            raise BitstreamError(f"video track without {kind.decode()}")
        lo, hi = found.payload, found.end
    listed = boxes(moov, lo + 8, hi, strict=True)  # stsd: version/flags, entry count
    if not listed or listed[0].kind not in entries:
        names = "/".join(e.decode() for e in entries)
        raise BitstreamError(f"the video track's sample entry is not {names}")
    entry = listed[0]
    config = child(moov, entry.payload + _VISUAL_SAMPLE_ENTRY, entry.end, box, strict=True)
    if config is None:
        raise BitstreamError(f"{entry.kind.decode()} sample entry without {box.decode()}")
    return entry.kind, bytes(moov[config.payload : config.end])


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
        for kind, _, payload, stop in boxes(moov, lo, hi, strict=True):
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
    return [(box.kind, box.start, box.end) for box in top_level_boxes(path, strict=True) or []]


def rewrite_mp4(src: Path, dest: Path, avcc: bytes) -> None:
    """Write ``src`` to ``dest`` with the video ``avcC`` payload replaced by ``avcc`` and the
    index (``moov``) right after ``ftyp``, chunk offsets adjusted."""
    top = _top_level(src)
    kinds = [k for k, _, _ in top]
    if kinds.count(b"moov") != 1 or kinds.count(b"mdat") != 1:
        raise BitstreamError(f"{src.name}: expected one moov and one mdat")
    with src.open("rb") as f:
        _, lo, hi = next(b for b in top if b[0] == b"moov")
        f.seek(lo)
        moov = replace_avcc(f.read(hi - lo), avcc)
    head = [b for b in top if b[0] == b"ftyp"]
    rest = [b for b in top if b[0] not in (b"ftyp", b"moov")]
    layout = head + [(b"moov", -1, -1)] + rest
    # Where mdat starts now and where it will start.
    old_mdat = next(b[1] for b in top if b[0] == b"mdat")
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
