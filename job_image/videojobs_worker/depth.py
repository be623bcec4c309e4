"""A whole-clip re-encode keeps the source's bit depth and colour description (issue 23: "a
re-encode turns 10-bit and HDR into 8-bit yuv420p with no note").

``accurate`` (and every fallback to it) encodes H.264 for MP4 and VP9 for WebM; for a 10-bit
4:2:0 source that is x264's High 10 profile or VP9 profile 2 at ``yuv420p10le``; the colour
range, primaries, transfer and matrix are passed on to the encoder, so an HDR (PQ or HLG)
source stays tagged as such. An interlaced source (H.264 field coding, MPEG-2 from TV) is
encoded interlaced with its field order into MP4; ``smart`` steps aside for it, because its
re-encoded head would be progressive inside an interlaced clip.
"""

from __future__ import annotations

import functools
from pathlib import Path

from videojobs_worker.errors import WorkerError
from videojobs_worker.ffmpeg import ffprobe
from videojobs_worker.probe import MediaInfo

TEN_BIT = "yuv420p10le"
_COLOUR_OPTIONS = {
    "color_range": "-color_range",
    "color_space": "-colorspace",
    "color_transfer": "-color_trc",
    "color_primaries": "-color_primaries",
}


INTERLACED = frozenset({"tt", "bb", "tb", "bt"})
"""ffprobe's field orders of interlaced video (top or bottom field first)."""


@functools.lru_cache(maxsize=16)
def _field_order(path: Path, size: int, mtime_ns: int) -> str:
    del size, mtime_ns  # cache key only
    streams = ffprobe(path, select_streams="v:0").get("streams") or [{}]
    return str(streams[0].get("field_order") or "unknown")


def field_order(path: Path) -> str:
    """The first video stream's field order as ffprobe names it (``progressive``, ``tt``, ...,
    ``unknown``), one ffprobe run per file version."""
    try:
        stat = path.stat()
        return _field_order(path, stat.st_size, stat.st_mtime_ns)
    except (OSError, WorkerError):  # not a file here (a unit test's plan), or no video
        return "unknown"


def interlaced_reason(info: MediaInfo) -> str | None:
    """Why ``smart`` cannot cut an interlaced source, or None."""
    order = field_order(info.path)
    if order not in INTERLACED:
        return None
    return (
        f"the source is interlaced (field order {order}): a re-encoded head would be "
        "progressive inside an interlaced clip"
    )


def keep_format_args(info: MediaInfo, fmt: str) -> list[str]:
    """Encoder options (after the encoder's own) keeping a 10-bit source 10-bit, an
    interlaced one interlaced (MP4) and every source's colour description."""
    args: list[str] = []
    order = field_order(info.path)
    if fmt == "mp4" and order in INTERLACED:
        top = "1" if order[0] == "t" else "0"
        args += ["-flags", "+ildct+ilme", "-top", top, "-field_order", order]
    if info.video.pix_fmt == TEN_BIT:
        profile = "high10" if fmt == "mp4" else "2"
        args += ["-pix_fmt", TEN_BIT, "-profile:v", profile]
    for key, value in info.video.colour:
        args += [_COLOUR_OPTIONS[key], value]
    return args
