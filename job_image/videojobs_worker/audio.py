"""Audio-only sources (issue 23): podcasts and recorded lectures as M4A/AAC, MP3, Opus, WAV, FLAC.

A source without a video stream is probed into :class:`AudioInfo` (:func:`probe_audio`) and cut
by :func:`cut_audio_clip` into an audio file of the output format :func:`output_format`
chooses (``auto``: like the source). How a clip is cut:

- **lossy codecs the output container carries** (AAC into M4A/MP4, MP3 into MP3, Opus into
  Opus/WebM, Vorbis into WebM) with ``copy`` or ``smart``: stream copy of whole audio frames,
  from the frame boundary nearest the planned start to the one nearest the planned end, so the
  clip is exact to the audio frame (AAC 21.3 ms at 48 kHz, MP3 26.1 ms at 44.1 kHz, Opus
  20 ms). No quality is lost. An AAC clip in MP4 keeps the frame before its start as decoder
  pre-roll, hidden by an edit list, so its first frame decodes clean.
- ``accurate``, a lossless output (WAV, FLAC) or a codec the container cannot carry: decoded and
  encoded from the planned start to the planned end, exact to the sample (lossless for WAV and
  FLAC).

Every clip is checked (:func:`videojobs_worker.verify.audio_mismatches`): one audio stream and
no video, starting at zero and lasting the planned duration within one audio frame, decode
times going forward. A clip that does not match fails with ``ClipMismatch`` (exit 30,
permanent).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from videojobs.models import ExitCode, PlannedSegment, Quality, SourceInfo
from videojobs_worker.errors import WorkerError
from videojobs_worker.ffmpeg import ffprobe, ffprobe_csv, run_ffmpeg, seconds_arg
from videojobs_worker.verify import audio_start, clip_facts, verify_audio_clip

AUDIO_FORMATS = ("m4a", "mp3", "opus", "flac", "wav")
"""Output formats that hold audio only (``mp4`` and ``webm`` hold it too for an audio source)."""


@dataclass(frozen=True)
class Container:
    muxer: list[str]
    copyable: frozenset[str]
    """Source codecs stream-copied into it."""
    encoder: str
    lossless: bool = False


_CONTAINERS: dict[str, Container] = {
    "m4a": Container(["-f", "mp4", "-movflags", "+faststart"], frozenset({"aac", "alac"}), "aac"),
    "mp4": Container(["-f", "mp4", "-movflags", "+faststart"], frozenset({"aac", "alac"}), "aac"),
    "mp3": Container(["-f", "mp3"], frozenset({"mp3"}), "libmp3lame"),
    "opus": Container(["-f", "opus"], frozenset({"opus"}), "libopus"),
    "webm": Container(["-f", "webm"], frozenset({"opus", "vorbis"}), "libopus"),
    "flac": Container(["-f", "flac"], frozenset({"flac"}), "flac", lossless=True),
    "wav": Container(["-f", "wav"], frozenset(), "pcm_s16le", lossless=True),
}
_LOSSLESS_CODECS = frozenset({"flac", "alac"})


@dataclass(frozen=True)
class AudioInfo:
    """An audio-only source."""

    path: Path
    duration: float
    container: str
    format_name: str
    size_bytes: int
    codec: str
    sample_rate: int | None
    channels: int | None
    start_time: float = 0.0
    skip: float = 0.0
    """Seconds of the first packet a decoder drops (Opus' pre-skip), which a stream-copied
    clip keeps dropping at its own start."""

    @property
    def audio(self) -> AudioInfo:  # the runner asks ``info.audio`` of every source
        return self


def probe_audio(path: Path, data: dict[str, Any] | None = None) -> AudioInfo | None:
    """The source as :class:`AudioInfo` when its only media is audio, else ``None``."""
    path = Path(path)
    data = ffprobe(path) if data is None else data
    streams = data.get("streams") or []
    if any(
        s.get("codec_type") == "video" and not (s.get("disposition") or {}).get("attached_pic")
        for s in streams
    ):
        return None
    audios = [s for s in streams if s.get("codec_type") == "audio"]
    fmt = data.get("format") or {}
    if not audios:
        return None
    a = audios[0]
    try:
        duration = float(fmt.get("duration") or a.get("duration") or 0)
    except ValueError:
        duration = 0.0
    if duration <= 0:
        raise WorkerError(
            ExitCode.NOT_A_VIDEO, "NotAVideo", f"{path.name}: an audio file without a duration"
        )
    format_name = str(fmt.get("format_name", ""))
    return AudioInfo(
        path=path,
        duration=duration,
        container=format_name.split(",")[0] or "unknown",
        format_name=format_name,
        size_bytes=path.stat().st_size,
        codec=str(a.get("codec_name", "unknown")),
        sample_rate=int(a["sample_rate"]) if str(a.get("sample_rate", "")).isdigit() else None,
        channels=int(a["channels"]) if isinstance(a.get("channels"), int) else None,
        skip=_skip(a),
    )


def _skip(stream: dict[str, Any]) -> float:
    if stream.get("codec_name") != "opus":
        return 0.0
    padding = stream.get("initial_padding")
    rate = stream.get("sample_rate")
    try:
        return int(padding or 312) / int(rate or 48000)
    except ValueError:
        return 312 / 48000


def audio_source_info(
    info: AudioInfo, *, title: str | None = None, partial: bool = False
) -> SourceInfo:
    """The ``status.source`` form of :class:`AudioInfo` (no video codec, size or rate)."""
    return SourceInfo(
        title=title,
        duration_seconds=round(info.duration, 3),
        container=info.container,
        audio_codec=info.codec,
        size_bytes=info.size_bytes,
        partial=partial,
    )


def output_format(requested: str, info: AudioInfo) -> str:
    """The container a clip of ``info`` is written to: ``auto`` is like the source."""
    if requested != "auto":
        return requested
    codec = info.codec
    if codec in ("aac", "alac"):
        return "m4a"
    if codec == "mp3":
        return "mp3"
    if codec in ("opus", "vorbis"):
        return "webm" if "webm" in info.format_name or "matroska" in info.format_name else "opus"
    if codec == "flac":
        return "flac"
    if codec.startswith("pcm_"):
        return "wav"
    return "m4a"


@dataclass(frozen=True)
class AudioPacket:
    pts: float
    duration: float


def audio_packets(path: Path) -> list[AudioPacket]:
    """Every packet of the first audio stream, in decode order."""
    rows = ffprobe_csv(
        ["-select_streams", "a:0", "-show_entries", "packet=pts_time,duration_time", str(path)]
    )
    out = []
    for row in rows:
        try:
            out.append(AudioPacket(float(row[0]), float(row[1])))
        except (ValueError, IndexError):
            continue
    return out


def frame_window(packets: list[AudioPacket], start: float, end: float) -> tuple[int, int]:
    """Indices ``[first, last]`` of the packets from the frame boundary nearest ``start`` to the
    one nearest ``end`` (pure)."""

    def nearest(t: float) -> int:
        return min(range(len(packets)), key=lambda i: abs(packets[i].pts - t))

    first = nearest(start)
    ends = [p.pts + p.duration for p in packets]
    last = min(range(len(packets)), key=lambda i: abs(ends[i] - end))
    return first, max(first, last)


def _encoder_args(encoder: str, source_codec: str, quality: Quality) -> list[str]:
    if encoder == "pcm_s16le" and source_codec.startswith("pcm_"):
        return ["-c:a", source_codec]
    if encoder in ("flac", "pcm_s16le"):
        return ["-c:a", encoder]
    return ["-c:a", encoder, "-b:a", quality.audio_bitrate]


@dataclass(frozen=True)
class AudioOutcome:
    path: Path
    precision_used: str
    start_offset: float
    duration: float
    note: str | None


@dataclass(frozen=True)
class _AudioCut:
    """How one clip is cut: the ffmpeg arguments and what the clip must then hold."""

    args: list[str]
    expected: float
    """The clip's duration as cut (whole frames for a stream copy)."""
    offset: float
    """Where the clip starts against the planned start (seconds)."""
    used: str
    note: str


def cut_audio_clip(
    info: AudioInfo,
    segment: PlannedSegment,
    fmt: str,
    precision: str,
    quality: Quality,
    dest: Path,
    *,
    on_progress: Callable[[float], None] | None = None,
    stop: threading.Event | None = None,
) -> AudioOutcome:
    """Cut ``segment`` of the audio source into ``dest`` (format ``fmt``, not ``auto``) and check
    it; raises ``ClipMismatch`` (exit 30) when it does not match the plan."""
    container = _CONTAINERS[fmt]
    end = min(segment.end, info.duration)
    start = segment.start
    if end <= start:
        raise WorkerError(
            ExitCode.PLAN_ERROR,
            "SegmentPastEnd",
            f"segment {segment.index} ({segment.start:.3f}s-{segment.end:.3f}s) starts after "
            f"the end of the source ({info.duration:.3f}s)",
        )
    copy = (
        info.codec in container.copyable
        and not container.lossless
        and info.codec not in _LOSSLESS_CODECS
        and precision in ("copy", "smart")
    )
    try:
        if copy:
            how = _copy_cut(info, fmt, start, end, precision, dest)
        else:
            how = _encode_cut(info, fmt, start, end, quality, dest)
        run_ffmpeg(how.args, duration=end - start, on_progress=on_progress, stop=stop)
        if stop is not None and stop.is_set():
            raise WorkerError(ExitCode.TERMINATED, "Terminated", "stopped while cutting")
        label = f"clip {segment.index} ({dest.name})"
        duration = _checked_duration(dest, label, how, start, end)
    except BaseException:
        dest.unlink(missing_ok=True)
        raise
    if on_progress is not None:
        on_progress(1.0)
    return AudioOutcome(dest, how.used, round(how.offset, 6), duration, how.note)


def _input_args(info: AudioInfo) -> list[str]:
    return ["-i", str(info.path), "-map", "0:a:0", "-vn", "-sn", "-dn", "-map_metadata", "0"]


def _copy_cut(
    info: AudioInfo, fmt: str, start: float, end: float, precision: str, dest: Path
) -> _AudioCut:
    """Stream copy of the whole frames from the boundary nearest ``start`` to the one nearest
    ``end`` (an AAC clip in MP4 keeps one frame of pre-roll, hidden by an edit list)."""
    container = _CONTAINERS[fmt]
    packets = audio_packets(info.path)
    skip = info.skip if fmt in ("opus", "webm") else 0.0
    first, last = frame_window(packets, start - skip, end)
    pre = 1 if fmt in ("m4a", "mp4") and first > 0 else 0
    pre_seconds = packets[first].pts - packets[first - pre].pts
    bsf = (
        f"noise=drop=lt(n\\,{first - pre})+gt(n\\,{last}),setts=ts=TS-STARTPTS-{pre_seconds:.9f}/TB"
    )
    args = _input_args(info) + ["-c:a", "copy", "-bsf:a", bsf] + container.muxer
    if fmt == "mp3":  # no LAME header: its encoder delay would hide the first samples
        args += ["-write_xing", "0"]
    args += [str(dest)]
    expected = packets[last].pts + packets[last].duration - packets[first].pts - skip
    return _AudioCut(
        args,
        expected=expected,
        offset=packets[first].pts + skip - start,
        used=precision,
        note=(
            f"stream-copied {last - first + 1} {info.codec} frame(s): exact to the audio frame"
            f" ({expected:.3f}s for {end - start:.3f}s planned)"
        ),
    )


def _encode_cut(
    info: AudioInfo, fmt: str, start: float, end: float, quality: Quality, dest: Path
) -> _AudioCut:
    """Decoded and encoded from ``start`` to ``end``: exact to the sample."""
    container = _CONTAINERS[fmt]
    base = _input_args(info)
    args = ["-ss", seconds_arg(start)] + base[:2] + ["-t", seconds_arg(end - start)]
    args += base[2:] + _encoder_args(container.encoder, info.codec, quality)
    args += container.muxer + [str(dest)]
    why = (
        "lossless, exact to the sample"
        if container.lossless
        else f"{info.codec} cannot be stream-copied into {fmt}"
        if info.codec not in container.copyable
        else "accurate asked for"
    )
    note = f"audio re-encoded to {container.encoder} ({why})"
    return _AudioCut(args, expected=end - start, offset=0.0, used="accurate", note=note)


def _checked_duration(dest: Path, label: str, how: _AudioCut, start: float, end: float) -> float:
    """The clip's audio duration, once it is checked against its plan (``ClipMismatch``)."""
    problems = verify_audio_clip(dest, end - start, how.expected)
    if problems:
        raise WorkerError(
            ExitCode.CLIP_MISMATCH,
            "ClipMismatch",
            f"{label} ({how.used}, {start:.3f}s-{end:.3f}s of the source) does not match its "
            f"plan: {'; '.join(problems)}",
        )
    facts = clip_facts(dest)
    assert facts.audio is not None
    return (facts.audio.end(0.0) or 0.0) - audio_start(facts.audio)
