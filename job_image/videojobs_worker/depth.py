"""A whole-clip re-encode keeps the source's bit depth and colour description (issue 23: "a
re-encode turns 10-bit and HDR into 8-bit yuv420p with no note").

``accurate`` (and every fallback to it) encodes H.264 for MP4 and VP9 for WebM; for a 10-bit
4:2:0 source that is x264's High 10 profile or VP9 profile 2 at ``yuv420p10le``; the colour
range, primaries, transfer and matrix are passed on to the encoder, so an HDR (PQ or HLG)
source stays tagged as such.
"""

from __future__ import annotations

from videojobs_worker.probe import MediaInfo

TEN_BIT = "yuv420p10le"
_COLOUR_OPTIONS = {
    "color_range": "-color_range",
    "color_space": "-colorspace",
    "color_transfer": "-color_trc",
    "color_primaries": "-color_primaries",
}


def keep_format_args(info: MediaInfo, fmt: str) -> list[str]:
    """Encoder options (after the encoder's own) keeping a 10-bit source 10-bit and every
    source's colour description (pure)."""
    args: list[str] = []
    if info.video.pix_fmt == TEN_BIT:
        profile = "high10" if fmt == "mp4" else "2"
        args += ["-pix_fmt", TEN_BIT, "-profile:v", profile]
    for key, value in info.video.colour:
        args += [_COLOUR_OPTIONS[key], value]
    return args
