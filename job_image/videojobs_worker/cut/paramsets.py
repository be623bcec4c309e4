"""H.264 parameter sets for a smart cut: the source's (``avcC``, x264 options), an id the
re-encoded pieces may use, checking the pieces against the source, and writing every set into
the joined clip's ``avcC``."""

from __future__ import annotations

import functools
from collections.abc import Sequence
from pathlib import Path

from videojobs_worker.h264bits import (
    AvcC,
    BitstreamError,
    ParameterSets,
    build_avcc,
    differences,
    merge_avcc,
    parse_avcc,
    parse_parameter_sets,
)
from videojobs_worker.mp4boxes import read_moov
from videojobs_worker.mp4edit import read_avcc, rewrite_mp4
from videojobs_worker.probe import H264Headers, h264_headers, h264_parameter_sets


def unused_parameter_set_id(sets: ParameterSets) -> int | None:
    """The lowest id used by neither an SPS nor a PPS of ``sets`` (pure); None when all 32 SPS
    ids are taken."""
    used = {s.sps_id for s in sets.sps} | {p.pps_id for p in sets.pps}
    return next((i for i in range(32) if i not in used), None)


@functools.lru_cache(maxsize=16)
def _source_headers(path: Path, size: int, mtime_ns: int) -> H264Headers:
    del size, mtime_ns  # part of the cache key: a changed file is read again
    return h264_headers(path)


def source_headers(path: Path) -> H264Headers:
    """:func:`h264_headers` of a source, cached per file version (read once per source)."""
    stat = path.stat()
    return _source_headers(path, stat.st_size, stat.st_mtime_ns)


def _read_moov(path: Path) -> bytes:
    moov = read_moov(path)
    if moov is None:
        raise BitstreamError(f"{path.name} has no moov box")
    return moov


def source_avcc(path: Path) -> AvcC | str:
    """The source's ``avcC`` record, or why there is none to join to."""
    moov = read_moov(path)
    if moov is None:
        return "the source is not an MP4 file, so its H.264 configuration (avcC) cannot be reused"
    try:
        record = parse_avcc(read_avcc(moov))
    except BitstreamError as exc:
        return f"the source's avcC cannot be read ({exc})"
    if record.length_size != 4:
        return f"the source uses {record.length_size}-byte NAL lengths (x264 writes 4)"
    return record


def piece_problems(
    encodes: Sequence[tuple[int, int, Path]], source: ParameterSets, new_id: int | None
) -> str:
    """Why the re-encoded pieces cannot be joined to the source (empty: they can).

    ``new_id`` None: the pieces must carry parameter sets structurally equal to the source's;
    otherwise every SPS and PPS of theirs must use ``new_id``.
    """
    for _, _, piece in encodes:
        try:
            sets = parse_parameter_sets(h264_parameter_sets(piece))
        except BitstreamError as exc:
            return f"the re-encoded {piece.stem}'s parameter sets cannot be parsed ({exc})"
        if new_id is None:
            diff = differences(source, sets)
            if diff:
                return f"the re-encoded {piece.stem}'s parameter sets differ: {'; '.join(diff[:3])}"
        else:
            ids = {s.sps_id for s in sets.sps} | {(p.pps_id, p.sps_id) for p in sets.pps}
            if ids != {new_id, (new_id, new_id)}:
                return f"the re-encoded {piece.stem} does not use parameter-set id {new_id}"
    return ""


def rewrite_parameter_sets(
    joined: Path, dest: Path, source: AvcC, pieces: Sequence[tuple[int, int, Path]]
) -> str | None:
    """Write ``joined`` to ``dest`` with every SPS/PPS of the source and the pieces in its
    ``avcC``; None, or why that failed."""
    try:
        merged = merge_avcc(parse_avcc(read_avcc(_read_moov(joined))), source)
        for _, _, piece in pieces:
            merged = merge_avcc(merged, parse_avcc(read_avcc(_read_moov(piece))))
        rewrite_mp4(joined, dest, build_avcc(merged))
    except BitstreamError as exc:
        return f"the clip's avcC could not be rewritten ({exc})"
    return None
