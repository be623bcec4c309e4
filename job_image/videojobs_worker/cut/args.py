"""ffmpeg options shared by the cutting modes: encoders, muxers, scaling and colour."""

from __future__ import annotations

from videojobs.models import Quality
from videojobs_worker.cut.request import Format
from videojobs_worker.probe import MediaInfo

H264_CRF_DEFAULT = 20
VP9_CRF_DEFAULT = 32
# x264 presets mapped to libvpx-vp9 realtime speeds (8 is the fastest).
VP9_SPEED = {
    "ultrafast": 8,
    "superfast": 8,
    "veryfast": 8,
    "faster": 7,
    "fast": 6,
    "medium": 5,
    "slow": 4,
}


COPYABLE_VIDEO = {"mp4": {"h264", "hevc", "vp9", "av1"}, "webm": {"vp8", "vp9", "av1"}}


# MP4 carries AC-3, E-AC-3 and MP3 as they are (issue 23: no AAC conversion of a TV recording).
COPYABLE_AUDIO = {"mp4": {"aac", "opus", "ac3", "eac3", "mp3"}, "webm": {"opus", "vorbis"}}


# ffprobe colour names -> ffmpeg output options.
_COLOUR_OPTIONS = {
    "color_range": "-color_range",
    "color_space": "-colorspace",
    "color_transfer": "-color_trc",
    "color_primaries": "-color_primaries",
}


def video_encoder_args(
    fmt: Format, quality: Quality, threads: int, *, crf: int | None = None
) -> list[str]:
    """Encoder options for re-encoded video (H.264 for mp4, VP9 tuned for throughput for webm)."""
    if fmt == "webm":
        args = ["-c:v", "libvpx-vp9", "-crf", str(crf or quality.crf or VP9_CRF_DEFAULT)]
        args += ["-b:v", "0", "-deadline", "realtime", "-cpu-used"]
        args += [str(VP9_SPEED.get(quality.preset, 8)), "-row-mt", "1"]
    else:
        args = ["-c:v", "libx264", "-preset", quality.preset]
        args += ["-crf", str(crf if crf is not None else (quality.crf or H264_CRF_DEFAULT))]
    args += ["-pix_fmt", "yuv420p"]
    if threads > 0:
        args += ["-threads", str(threads)]
    return args


def audio_encoder_args(fmt: Format, quality: Quality) -> list[str]:
    """AAC for mp4, Opus for webm."""
    codec = "libopus" if fmt == "webm" else "aac"
    return ["-c:a", codec, "-b:a", quality.audio_bitrate]


def container_args(fmt: Format) -> list[str]:
    """Muxer options: MP4 with the index up front (``+faststart``) or WebM."""
    if fmt == "webm":
        return ["-f", "webm"]
    return ["-f", "mp4", "-movflags", "+faststart"]


def scale_filter(info: MediaInfo, quality: Quality) -> list[str]:
    """``-vf scale`` when ``maxHeight`` asks for a smaller picture (after rotation)."""
    _, height = info.video.display_size
    if quality.max_height and height > quality.max_height:
        return ["-vf", f"scale=-2:{quality.max_height}"]
    return []


def colour_args(info: MediaInfo) -> list[str]:
    args: list[str] = []
    for key, value in info.video.colour:
        args += [_COLOUR_OPTIONS[key], value]
    return args
