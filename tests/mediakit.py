"""Small, fast test media made with ffmpeg's lavfi sources (testsrc2 + sine).

Pytest-free so that benchmarks and scripts can use it too. Everything is encoded with the
fastest settings (x264 ultrafast, VP9 realtime speed 8) at small sizes: a 6 s 320x240 clip takes
well under a second.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Sequence
from pathlib import Path

__all__ = [
    "NUMBER_BITS",
    "SOURCE_KINDS",
    "ffprobe_json",
    "frame_numbers",
    "make_hls",
    "make_audio",
    "make_video",
    "AUDIO_KINDS",
    "run_ffmpeg",
]

NUMBER_BITS = 16
"""Bits of the frame number a ``numbered`` video carries in its top row of blocks."""
_BLOCK = 12
"""Side of one bit's block, pixels (survives CRF 45 of every encoder used here)."""

SOURCE_KINDS: dict[str, dict] = {
    "x264_medium": {"preset": "medium"},
    "x264_veryfast": {"preset": "veryfast"},
    "open_gop": {"preset": "veryfast", "x264_params": "open-gop=1"},
    "sei_stripped": {"preset": "veryfast", "strip_sei": True},
    "vp9_webm": {"vcodec": "libvpx-vp9"},
    "av1": {"vcodec": "libsvtav1"},
    "hd1080p60": {"preset": "veryfast", "size": (1920, 1080), "fps": 60},
    "gop10s": {"preset": "veryfast"},
    "vfr": {"preset": "veryfast", "vfr": True},
    "rotated": {"preset": "veryfast", "rotation": 90},
    "hevc": {"vcodec": "libx265", "preset": "ultrafast"},
    "hevc10_rotated": {
        "vcodec": "libx265",
        "preset": "ultrafast",
        "pix_fmt": "yuv420p10le",
        "rotation": 90,
    },
    "h264_10bit": {"preset": "veryfast", "pix_fmt": "yuv420p10le"},
}
"""The kinds of source people really have (issue 12), as :func:`make_video` options: shared by
``tests/media/test_source_kinds.py`` (tiny sources) and ``benchmarks/bench_cutting_kinds.py``
(1-minute 720p ones), which add their own duration, size and GOP."""

_AUDIO_FOR_CONTAINER = {
    "mp4": "aac",
    "mov": "aac",
    "m4v": "aac",
    "mkv": "aac",
    "ts": "aac",
    "webm": "libopus",
}


def run_ffmpeg(args: Sequence[str]) -> None:
    """Run ``ffmpeg -nostdin -v error -y ARGS``; raise with stderr on failure."""
    cmd = ["ffmpeg", "-nostdin", "-hide_banner", "-v", "error", "-y", *args]
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"ffmpeg failed ({proc.returncode}): {' '.join(cmd)}\n{proc.stderr}")


def ffprobe_json(path: str | Path, *extra: str) -> dict:
    """``ffprobe -show_format -show_streams`` (plus ``extra`` options) as a dict."""
    cmd = [
        "ffprobe",
        "-v",
        "error",
        "-of",
        "json",
        "-show_format",
        "-show_streams",
        *extra,
        str(path),
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"ffprobe failed ({proc.returncode}) on {path}: {proc.stderr}")
    return json.loads(proc.stdout)


def make_video(
    path: str | Path,
    *,
    duration: float = 6.0,
    size: tuple[int, int] = (320, 240),
    fps: int = 30,
    gop: int | None = None,
    vcodec: str = "libx264",
    audio: bool = True,
    rotation: int | None = None,
    vfr: bool = False,
    preset: str = "ultrafast",
    x264_params: str | None = None,
    strip_sei: bool = False,
    crf: int | None = None,
    numbered: bool = False,
    pix_fmt: str = "yuv420p",
    x265_params: str | None = None,
    extra: Sequence[str] = (),
) -> Path:
    """Write a test video to ``path``; the container follows the suffix (.mp4, .webm, .mkv, ...).

    ``gop`` is the keyframe interval in frames (fixed: no scene-cut keyframes); ``None`` leaves
    the encoder's default. ``rotation`` (90, 180 or 270) stores a display rotation in the
    container (MP4/MOV only) without touching the pixels, as phones do. ``vfr`` makes the frame
    rate variable: the first half runs at ``fps``, the second half at ``fps / 2`` (every other
    frame dropped, timestamps kept). ``preset`` is the x264 preset: ``ultrafast`` (the default)
    makes no B-frames; ``veryfast`` makes B-frames and CABAC like typical downloads.
    ``x264_params`` goes to ``-x264-params`` (``open-gop=1`` for an open-GOP source).
    ``strip_sei`` removes every SEI NAL unit (x264 writes its settings into one), as
    hardware encoders and platform re-encodes deliver H.264. ``vcodec="libsvtav1"`` makes AV1.
    ``numbered`` writes each frame's number (its index in the master, before any VFR drop) into
    the picture as :data:`NUMBER_BITS` black/white blocks along the top edge (the width must be
    at least ``16 * 12`` pixels); :func:`frame_numbers` reads them back, so a clip's frames can
    be checked one by one. ``vcodec="libx265"`` makes HEVC (x265 ``preset``, closed GOPs of
    IDR pictures as phones write, tagged ``hvc1`` in MP4/MOV; ``x265_params`` are added);
    ``pix_fmt="yuv420p10le"`` makes 10-bit video (High 10 with x264, Main 10 with x265).
    ``extra`` goes before the output name (e.g. ``-f mpegts``).
    """
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    container = out.suffix.lstrip(".").lower()
    if container not in _AUDIO_FOR_CONTAINER:
        raise ValueError(f"unsupported container {container!r} (use .mp4, .webm, .mkv, ...)")
    if rotation is not None and container not in ("mp4", "mov", "m4v"):
        raise ValueError("rotation needs an MP4/MOV container")
    width, height = size
    args: list[str] = [
        "-f",
        "lavfi",
        "-i",
        f"testsrc2=size={width}x{height}:rate={fps}:duration={duration}",
    ]
    if audio:
        args += ["-f", "lavfi", "-i", f"sine=frequency=440:sample_rate=48000:duration={duration}"]
    filters: list[str] = []
    if numbered:
        if width < NUMBER_BITS * _BLOCK or height < 2 * _BLOCK:
            raise ValueError(f"a numbered video needs at least {NUMBER_BITS * _BLOCK}x24 pixels")
        filters.append(f"drawbox=x=0:y=0:w={NUMBER_BITS * _BLOCK}:h={_BLOCK}:color=black:t=fill")
        filters += [
            f"drawbox=x={k * _BLOCK}:y=0:w={_BLOCK}:h={_BLOCK}:color=white:t=fill"
            f":enable='mod(floor(n/{1 << k})\\,2)'"
            for k in range(NUMBER_BITS)
        ]
    if vfr:
        half = int(duration * fps / 2)
        filters.append(f"select='lt(n\\,{half})+not(mod(n\\,2))'")
    if filters:
        args += ["-vf", ",".join(filters)]
    if vfr:
        args += ["-fps_mode", "vfr"]
    args += ["-map", "0:v"]
    if audio:
        args += ["-map", "1:a"]
    args += ["-pix_fmt", pix_fmt, "-c:v", vcodec]
    if vcodec == "libx265":
        args += _x265_args(container, preset, crf, gop, x265_params)
    elif vcodec == "libx264":
        args += ["-preset", preset, "-crf", str(crf or 28)]
        if x264_params:
            args += ["-x264-params", x264_params]
        if strip_sei:
            args += ["-bsf:v", "filter_units=remove_types=6"]
    elif vcodec == "libsvtav1":
        args += ["-preset", "12", "-crf", str(crf or 45)]
    elif vcodec == "libvpx-vp9":
        args += ["-deadline", "realtime", "-cpu-used", "8", "-b:v", "0", "-crf", str(crf or 40)]
        args += ["-row-mt", "1"]
    if gop is not None and vcodec != "libx265":
        args += ["-g", str(gop), "-keyint_min", str(gop)]
        if vcodec == "libx264":
            args += ["-sc_threshold", "0"]
    if audio:
        args += ["-c:a", _AUDIO_FOR_CONTAINER[container], "-b:a", "64k", "-ac", "2"]
    args += ["-t", str(duration)]
    if container in ("mp4", "mov", "m4v"):
        args += ["-movflags", "+faststart"]
    args += list(extra)
    if rotation is None:
        run_ffmpeg([*args, str(out)])
        return out
    # ffmpeg 5.1 drops the rotate tag while encoding but honours it when stream copying.
    tmp = out.with_name(f".{out.stem}.unrotated{out.suffix}")
    try:
        run_ffmpeg([*args, str(tmp)])
        run_ffmpeg(
            ["-i", str(tmp), "-map", "0", "-c", "copy", "-metadata:s:v:0", f"rotate={rotation}"]
            + ["-movflags", "+faststart", str(out)]
        )
    finally:
        tmp.unlink(missing_ok=True)
    return out


def _x265_args(
    container: str, preset: str, crf: int | None, gop: int | None, params: str | None
) -> list[str]:
    """libx265 options of :func:`make_video`: closed GOPs (IDR keyframes), ``hvc1`` in MP4/MOV."""
    x265 = ["open-gop=0", "log-level=error"]
    if gop is not None:
        x265 += [f"keyint={gop}", f"min-keyint={gop}", "scenecut=0"]
    if params:
        x265.append(params)
    args = ["-preset", preset, "-crf", str(crf or 30), "-x265-params", ":".join(x265)]
    if container in ("mp4", "mov", "m4v"):
        args += ["-tag:v", "hvc1"]
    return args


def frame_numbers(path: str | Path, *args: str, stored: bool = False) -> list[int]:
    """The number each shown frame of ``path`` carries (see ``make_video(numbered=True)``).

    ``args`` go before the output (e.g. ``-ss``/``-t`` as output options). Decodes only the top
    row of blocks, in grey; each bit is the mean of its block's centre. ``stored`` reads the
    pixels as stored, before any display rotation (needed for a rotated video).
    """
    width = NUMBER_BITS * _BLOCK
    rotation = ["-noautorotate"] if stored else []
    data = subprocess.run(
        ["ffmpeg", "-nostdin", "-v", "error", *rotation, "-i", str(path), *args, "-map", "0:v:0"]
        + ["-vf", f"crop={width}:{_BLOCK}:0:0,format=gray", "-fps_mode", "passthrough"]
        + ["-f", "rawvideo", "pipe:1"],
        capture_output=True,
        check=True,
    ).stdout
    size = width * _BLOCK
    inner = [
        y * width + k * _BLOCK + x
        for k in range(NUMBER_BITS)
        for y in range(3, _BLOCK - 3)
        for x in range(3, _BLOCK - 3)
    ]
    per_bit = (_BLOCK - 6) ** 2
    numbers = []
    for offset in range(0, len(data) - size + 1, size):
        frame = data[offset : offset + size]
        value = 0
        for k in range(NUMBER_BITS):
            cells = inner[k * per_bit : (k + 1) * per_bit]
            if sum(frame[i] for i in cells) > 128 * per_bit:
                value |= 1 << k
        numbers.append(value)
    return numbers


def make_hls(src: str | Path, out_dir: str | Path, segment_seconds: float = 2) -> Path:
    """Package ``src`` as a VOD HLS stream (``index.m3u8`` + ``segNNN.ts``); return the playlist.

    H.264/AAC sources are stream-copied (segments split at keyframes, so give the source a GOP of
    at most ``segment_seconds``); anything else is re-encoded to H.264/AAC with a matching GOP.
    """
    src = Path(src)
    out = Path(out_dir)
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    streams = ffprobe_json(src)["streams"]
    vcodecs = {s["codec_name"] for s in streams if s["codec_type"] == "video"}
    acodecs = {s["codec_name"] for s in streams if s["codec_type"] == "audio"}
    args = ["-i", str(src), "-map", "0:v:0", "-map", "0:a:0?"]
    if vcodecs == {"h264"} and acodecs <= {"aac"}:
        args += ["-c", "copy"]
    else:
        fps = next(s for s in streams if s["codec_type"] == "video")["r_frame_rate"]
        num, _, den = fps.partition("/")
        gop = max(1, round(float(num) / float(den or 1) * segment_seconds))
        args += ["-c:v", "libx264", "-preset", "ultrafast", "-g", str(gop), "-sc_threshold", "0"]
        args += ["-c:a", "aac", "-b:a", "64k"]
    args += [
        "-f",
        "hls",
        "-hls_time",
        str(segment_seconds),
        "-hls_playlist_type",
        "vod",
        "-hls_segment_filename",
        str(out / "seg%03d.ts"),
        str(out / "index.m3u8"),
    ]
    run_ffmpeg(args)
    return out / "index.m3u8"


AUDIO_KINDS: dict[str, tuple[str, list[str], int]] = {
    # kind: (file suffix, codec options, sample rate)
    "m4a": (".m4a", ["-c:a", "aac", "-b:a", "64k"], 48000),
    "mp3": (".mp3", ["-c:a", "libmp3lame", "-b:a", "64k"], 44100),
    "opus": (".opus", ["-c:a", "libopus", "-b:a", "48k"], 48000),
    "webm": (".webm", ["-c:a", "libopus", "-b:a", "48k"], 48000),
    "flac": (".flac", ["-c:a", "flac"], 44100),
    "wav": (".wav", ["-c:a", "pcm_s16le"], 44100),
}
"""Audio-only source kinds ``make_audio`` writes (podcasts, recorded lectures)."""


def make_audio(path: str | Path, kind: str, duration: float = 20.0) -> Path:
    """An audio-only ``kind`` file (see :data:`AUDIO_KINDS`): a tone whose pitch rises with time,
    so a slice taken from the wrong place sounds (and decodes) different. Mono, fast."""
    suffix, codec, rate = AUDIO_KINDS[kind]
    out = Path(path).with_suffix(suffix)
    expr = f"aevalsrc=sin(2*PI*(200+20*t)*t):s={rate}:d={duration}"
    run_ffmpeg(["-f", "lavfi", "-i", expr, *codec, str(out)])
    return out


def source_times(path: Path) -> list[float]:
    """The presentation times of the first video stream's packets, sorted (ffprobe)."""
    out = subprocess.run(
        ["ffprobe", "-v", "error", "-select_streams", "v:0", "-show_entries", "packet=pts_time"]
        + ["-of", "csv=p=0", str(path)],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return sorted(float(v) for v in out.split() if v.strip() not in ("", "N/A"))
