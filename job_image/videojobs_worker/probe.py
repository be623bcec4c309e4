"""What is in a media file: ``probe`` (ffprobe), keyframe and packet listings, H.264 headers.

Failures to read a file the worker expected to be a video (empty, truncated, not media at all,
no video stream) are ``WorkerError(ExitCode.NOT_A_VIDEO)`` with a message saying which.
"""

from __future__ import annotations

import bisect
import functools
import re
import subprocess
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

from videojobs.models import ExitCode, SourceInfo
from videojobs_worker.errors import WorkerError
from videojobs_worker.ffmpeg import FFMPEG, ffprobe, ffprobe_csv
from videojobs_worker.h264bits import (
    NAL_IDR,
    annexb_nal_types,
    first_vcl_type,
    nal_types,
    nal_units,
)
from videojobs_worker.mp4boxes import boxes, child, read_moov, top_level_boxes

# Container names as users know them, from ffprobe's comma-separated format_name.
_CLOCK_FORMATS = frozenset({"mpegts", "mpeg", "mpegvideo"})
"""Formats whose timestamps do not start at the media's time zero (see ``MediaInfo.origin``)."""
_CONTAINERS = {
    "mov,mp4,m4a,3gp,3g2,mj2": "mp4",
    "matroska,webm": "webm",
    "mpegts": "ts",
    "hls": "hls",
}


@dataclass(frozen=True)
class VideoStream:
    """The first video stream."""

    index: int
    codec: str
    profile: str | None
    level: int | None
    pix_fmt: str | None
    width: int
    height: int
    fps: float
    """Average frame rate (frames per second)."""
    r_frame_rate: Fraction | None
    avg_frame_rate: Fraction | None
    rotation: int
    """Display rotation, degrees counter-clockwise in [0, 360), as ffprobe's display matrix
    reports it; ffmpeg applies it when decoding (autorotate)."""
    has_b_frames: int
    refs: int | None
    time_base: Fraction
    start_time: float
    nb_frames: int | None
    duration: float | None = None
    """Duration of the video stream itself, when the container says."""
    colour: tuple[tuple[str, str], ...] = ()
    """ffprobe's ``color_range``, ``color_space``, ``color_transfer``, ``color_primaries`` (those
    present and not "unknown")."""

    @property
    def display_size(self) -> tuple[int, int]:
        """Width and height as shown, after rotation."""
        if self.rotation in (90, 270):
            return self.height, self.width
        return self.width, self.height

    @property
    def frame_duration(self) -> float:
        """Seconds per frame at the nominal rate (for tolerances)."""
        rate = self.r_frame_rate or self.avg_frame_rate
        if rate and rate > 0:
            return float(1 / rate)
        return 1 / self.fps if self.fps > 0 else 1 / 30


@dataclass(frozen=True)
class AudioStream:
    """The first audio stream."""

    index: int
    codec: str
    sample_rate: int | None
    channels: int | None
    time_base: Fraction


@dataclass(frozen=True)
class MediaInfo:
    """What ``probe`` found."""

    path: Path
    duration: float
    container: str
    format_name: str
    size_bytes: int
    video: VideoStream
    audio: AudioStream | None
    vfr: bool
    start_time: float = 0.0
    """The container's start time (its earliest timestamp), seconds."""

    @property
    def origin(self) -> float:
        """The timestamp of the source's time zero: plan times are relative to it.

        MPEG-TS and MPEG-PS timestamps are a clock that starts anywhere (1.4 s after ffmpeg's
        muxer, any value in a broadcast recording), so time zero is the file's start time.
        MP4, WebM/Matroska and AVI timestamps are media time already: zero is zero (a WebM's
        -7 ms start is Opus' pre-skip, not an offset)."""
        return self.start_time if self.format_name in _CLOCK_FORMATS else 0.0

    """True when the average frame rate differs from the nominal (``r_frame_rate``) one."""

    @property
    def video_codec(self) -> str:
        return self.video.codec


def _fraction(text: Any) -> Fraction | None:
    if not text or not isinstance(text, str):
        return None
    num, sep, den = text.partition("/")
    try:
        value = Fraction(int(num), int(den)) if sep else Fraction(num)
    except (ValueError, ZeroDivisionError):
        return None
    return value if value > 0 else None


def _int(value: Any) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def _float(value: Any) -> float | None:
    try:
        result = float(value)
    except (TypeError, ValueError):
        return None
    return result if result == result else None  # NaN


def rotation_of(stream: dict[str, Any]) -> int:
    """Display rotation in degrees [0, 360) from the display-matrix side data or a rotate tag."""
    for side in stream.get("side_data_list") or []:
        if "rotation" in side:
            value = _float(side["rotation"])
            if value is not None:
                return round(value) % 360
    tag = _float((stream.get("tags") or {}).get("rotate"))
    return round(tag) % 360 if tag is not None else 0


def is_vfr(r_frame_rate: Fraction | None, avg_frame_rate: Fraction | None) -> bool:
    """Variable frame rate: the average rate differs from the nominal one by more than 1 %."""
    if not r_frame_rate or not avg_frame_rate:
        return False
    return abs(float(avg_frame_rate / r_frame_rate) - 1) > 0.01


def _not_a_video(path: Path, why: str) -> WorkerError:
    return WorkerError(ExitCode.NOT_A_VIDEO, "NotAVideo", f"{path.name}: {why}")


def parse_probe(path: Path, data: dict[str, Any], size_bytes: int) -> MediaInfo:
    """Build :class:`MediaInfo` from ``ffprobe -show_format -show_streams`` JSON (pure)."""
    fmt = data.get("format") or {}
    streams = data.get("streams") or []
    videos = [
        s
        for s in streams
        if s.get("codec_type") == "video" and not (s.get("disposition") or {}).get("attached_pic")
    ]
    if not videos:
        kinds = sorted({str(s.get("codec_type")) for s in streams}) or ["none"]
        raise _not_a_video(path, f"no video stream (streams found: {', '.join(kinds)})")
    v = videos[0]
    duration = _float(fmt.get("duration")) or _float(v.get("duration"))
    if not duration or duration <= 0:
        raise _not_a_video(path, "no duration: the file is truncated or not a complete video")
    width, height = _int(v.get("width")), _int(v.get("height"))
    if not width or not height:
        raise _not_a_video(path, "the video stream has no frame size (truncated or corrupt)")
    r_rate = _fraction(v.get("r_frame_rate"))
    avg_rate = _fraction(v.get("avg_frame_rate"))
    rate = avg_rate or r_rate
    time_base = _fraction(v.get("time_base")) or Fraction(1, 90000)
    video = VideoStream(
        index=int(v.get("index", 0)),
        codec=str(v.get("codec_name", "unknown")),
        profile=v.get("profile"),
        level=_level if (_level := _int(v.get("level"))) is not None and _level > 0 else None,
        pix_fmt=v.get("pix_fmt"),
        width=width,
        height=height,
        fps=round(float(rate), 3) if rate else 0.0,
        r_frame_rate=r_rate,
        avg_frame_rate=avg_rate,
        rotation=rotation_of(v),
        has_b_frames=_int(v.get("has_b_frames")) or 0,
        refs=_int(v.get("refs")),
        time_base=time_base,
        start_time=_float(v.get("start_time")) or 0.0,
        nb_frames=_int(v.get("nb_frames")),
        duration=_float(v.get("duration")),
        colour=tuple(
            (k, str(v[k]))
            for k in ("color_range", "color_space", "color_transfer", "color_primaries")
            if v.get(k) not in (None, "unknown", "unspecified", "reserved")
        ),
    )
    audio = None
    audios = [s for s in streams if s.get("codec_type") == "audio"]
    if audios:
        a = audios[0]
        audio = AudioStream(
            index=int(a.get("index", 0)),
            codec=str(a.get("codec_name", "unknown")),
            sample_rate=_int(a.get("sample_rate")),
            channels=_int(a.get("channels")),
            time_base=_fraction(a.get("time_base")) or Fraction(1, 48000),
        )
    format_name = str(fmt.get("format_name", ""))
    return MediaInfo(
        path=path,
        duration=duration,
        container=_CONTAINERS.get(format_name, format_name.split(",")[0] or "unknown"),
        format_name=format_name,
        size_bytes=size_bytes,
        video=video,
        audio=audio,
        vfr=is_vfr(r_rate, avg_rate),
        start_time=_float(fmt.get("start_time")) or 0.0,
    )


def probe(path: Path) -> MediaInfo:
    """Probe a downloaded file; raise ``WorkerError(NOT_A_VIDEO)`` when it is no usable video."""
    path = Path(path)
    try:
        size = path.stat().st_size
    except FileNotFoundError:
        raise _not_a_video(path, "the file does not exist") from None
    if size == 0:
        raise _not_a_video(path, "the file is empty (0 bytes)")
    try:
        data = ffprobe(path)
    except WorkerError as exc:
        if exc.exit_code == ExitCode.NO_SPACE:
            raise
        raise _not_a_video(
            path, f"ffprobe cannot read it (truncated, corrupt or not media): {exc.message}"
        ) from None
    info = parse_probe(path, data, size)
    _check_complete(info)
    return info


def _check_complete(info: MediaInfo) -> None:
    """A file whose index promises more than its data holds (an MP4 with the ``moov`` up front
    whose ``mdat`` was cut short) probes fine. In an MP4 the sample table says where the last
    video sample ends, compared with the file's size in Python; elsewhere reading the packets of
    the last second, which ffmpeg stops at the first one past the end of the file, catches it."""
    end = info.video.duration or info.duration
    layout = sample_layout(info.path)
    if layout is not None and layout.offsets:
        size = info.path.stat().st_size
        top = top_level_boxes(info.path) or []
        last = max(o + n for o, n in zip(layout.offsets, layout.sizes, strict=True))
        short = [(box.kind, box.end) for box in top if box.end > size]
        if last > size or short:
            kind, declared = short[-1] if short else (b"mdat", last)
            raise _not_a_video(
                info.path,
                f"truncated: the index says {end:.3f}s of video and its "
                f"{kind.decode('latin-1')} box ends at byte {max(declared, last):,}, but the file "
                f"has {size:,} bytes (incomplete download?)",
            )
        return
    tail_start = max(0.0, end - 1.0)
    try:
        rows = ffprobe_csv(
            ["-select_streams", "v:0", "-read_intervals", f"{tail_start:.3f}%"]
            + ["-show_entries", "packet=pts_time", str(info.path)]
        )
    except WorkerError as exc:
        raise _not_a_video(info.path, f"cannot read the end of the file: {exc.message}") from None
    times = [t for row in rows if (t := _float(row[0])) is not None]
    if not times or max(times) < end - 1.0 - info.video.frame_duration * 2:
        raise _not_a_video(
            info.path,
            f"truncated: the index says {end:.3f}s of video but the data stops at "
            f"{max(times, default=0.0):.3f}s (incomplete download?)",
        )


def to_source_info(
    info: MediaInfo, *, title: str | None = None, partial: bool = False
) -> SourceInfo:
    """The ``status.source`` form of :class:`MediaInfo`."""
    width, height = info.video.display_size
    return SourceInfo(
        title=title,
        duration_seconds=round(info.duration, 3),
        container=info.container,
        video_codec=info.video.codec,
        audio_codec=info.audio.codec if info.audio else None,
        width=width,
        height=height,
        fps=info.video.fps or None,
        rotation=info.video.rotation or None,
        size_bytes=info.size_bytes,
        partial=partial,
    )


@dataclass(frozen=True)
class Packet:
    """A video packet in decode order; times in ticks of the stream time base."""

    pts: int
    dts: int
    key: bool


@dataclass(frozen=True)
class SampleTable:
    """The video samples of an MP4 file as ffmpeg presents them (edit list applied)."""

    timescale: int
    packets: tuple[Packet, ...]
    """Every video sample in decode order."""
    durations: tuple[int, ...]

    @property
    def duration(self) -> float:
        """From the first frame shown to the end of the last one, seconds (ffprobe's stream
        duration)."""
        if not self.packets:
            return 0.0
        first = min(p.pts for p in self.packets)
        last = max(p.pts + d for p, d in zip(self.packets, self.durations, strict=True))
        return (last - first) / self.timescale


def _u32(data: bytes, pos: int) -> int:
    return int.from_bytes(data[pos : pos + 4], "big")


def _find(data: bytes, kind: bytes, start: int, end: int) -> tuple[int, int] | None:
    """The payload range of the first box of type ``kind`` in ``data[start:end]``, or None."""
    box = child(data, start, end, kind)
    return (box.payload, box.end) if box is not None else None


def mp4_sample_table(path: Path) -> SampleTable | None:
    """Read the first video track's sample table of an MP4 in Python (no ffmpeg run).

    Timestamps follow ffmpeg's MP4 demuxer: decode times from ``stts``, composition offsets
    from ``ctts``, keyframes from ``stss``, shifted by a simple edit list (one edit, optionally
    after one empty edit). Anything more complex, or a file that is not MP4, gives None and the
    callers ask ffprobe instead.
    """
    try:
        moov = read_moov(path)
    except OSError:
        return None
    if moov is None:
        return None
    try:
        mvhd = _find(moov, b"mvhd", 8, len(moov))
        if mvhd is None:
            return None
        movie_scale = _u32(moov, mvhd[0] + (20 if moov[mvhd[0]] == 1 else 12))
        for kind, _, lo, hi in boxes(moov, 8, len(moov)):
            if kind != b"trak":
                continue
            mdia = _find(moov, b"mdia", lo, hi)
            hdlr = mdia and _find(moov, b"hdlr", *mdia)
            if not mdia or not hdlr or moov[hdlr[0] + 8 : hdlr[0] + 12] != b"vide":
                continue
            return _sample_table(moov, lo, hi, mdia, movie_scale)
    except (IndexError, ValueError):
        return None
    return None


def _sample_table(
    moov: bytes, lo: int, hi: int, mdia: tuple[int, int], movie_scale: int
) -> SampleTable | None:
    mdhd = _find(moov, b"mdhd", *mdia)
    minf = _find(moov, b"minf", *mdia)
    stbl = minf and _find(moov, b"stbl", *minf)
    if not mdhd or not stbl:
        return None
    scale = _u32(moov, mdhd[0] + (20 if moov[mdhd[0]] == 1 else 12))
    stts = _find(moov, b"stts", *stbl)
    if not scale or not stts:
        return None
    deltas: list[int] = []
    for i in range(_u32(moov, stts[0] + 4)):
        entry = stts[0] + 8 + 8 * i
        deltas.extend([_u32(moov, entry + 4)] * _u32(moov, entry))
    offsets = [0] * len(deltas)
    ctts = _find(moov, b"ctts", *stbl)
    if ctts:
        n = 0
        for i in range(_u32(moov, ctts[0] + 4)):
            entry = ctts[0] + 8 + 8 * i
            count = _u32(moov, entry)
            value = int.from_bytes(moov[entry + 4 : entry + 8], "big", signed=True)
            offsets[n : n + count] = [value] * count
            n += count
        offsets = offsets[: len(deltas)]
    stss = _find(moov, b"stss", *stbl)
    keys: set[int] | None = None
    if stss:
        keys = {_u32(moov, stss[0] + 8 + 4 * i) - 1 for i in range(_u32(moov, stss[0] + 4))}
    shift = 0
    edts = _find(moov, b"edts", lo, hi)
    elst = edts and _find(moov, b"elst", *edts)
    if elst:
        version = moov[elst[0]]
        width = 8 if version == 1 else 4
        edits = []
        for i in range(_u32(moov, elst[0] + 4)):
            entry = elst[0] + 8 + i * (2 * width + 4)
            duration = int.from_bytes(moov[entry : entry + width], "big")
            media = int.from_bytes(moov[entry + width : entry + 2 * width], "big", signed=True)
            edits.append((duration, media))
        if len(edits) == 2 and edits[0][1] == -1 and movie_scale:
            shift = round(edits[0][0] * scale / movie_scale) - edits[1][1]
        elif len(edits) == 1 and edits[0][1] >= 0:
            shift = -edits[0][1]
        elif edits:
            return None
    packets = []
    dts = 0
    for i, delta in enumerate(deltas):
        pts = dts + offsets[i]
        packets.append(Packet(pts + shift, dts + shift, keys is None or i in keys))
        dts += delta
    if shift < 0 and any(p.pts < 0 for p in packets):
        return None  # frames hidden by the edit list: let ffmpeg say what it shows
    return SampleTable(scale, tuple(packets), tuple(deltas))


@functools.lru_cache(maxsize=8)
def _cached_sample_table(path: Path, size: int, mtime_ns: int) -> SampleTable | None:
    del size, mtime_ns  # cache key only
    return mp4_sample_table(path)


def video_packets(path: Path, start: float, end: float) -> list[Packet]:
    """Video packets in decode order from the keyframe at or before ``start`` until past ``end``.

    MP4 files are read from their sample table in Python (cached per file version); other
    containers by ffprobe, demux only (``-read_intervals``). Both are fast deep into long files.
    """
    stat = path.stat()
    table = _cached_sample_table(path, stat.st_size, stat.st_mtime_ns)
    if table is not None:
        start_ticks = Fraction(str(max(0.0, start))) * table.timescale
        end_ticks = Fraction(str(end)) * table.timescale
        packets = table.packets
        first = 0
        for i, p in enumerate(packets):
            if p.key and p.pts <= start_ticks:
                first = i
            elif p.dts > start_ticks:
                break
        chosen = []
        for p in packets[first:]:
            if p.dts > end_ticks:
                break
            chosen.append(p)
        return chosen
    # Without an index (MPEG-TS/PS) ffprobe's seek bisects the file and may land after the
    # keyframe before ``start``, even after ``start``: read from earlier until the listing
    # holds that keyframe, and start it there.
    time_base: Fraction | None = None
    back = 0.0
    while True:
        begin = max(0.0, start - back)
        listed = _listed_packets(path, begin, end)
        if begin <= 0.0 and not back:
            return listed
        if time_base is None:
            stream = ffprobe(path, select_streams="v:0")["streams"]
            time_base = (_fraction(stream[0].get("time_base")) if stream else None) or Fraction(
                1, 90000
            )
        limit = Fraction(str(max(0.0, start))) + Fraction(1, 2000)
        keys = [i for i, p in enumerate(listed) if p.key and p.pts * time_base <= limit]
        if keys:
            return listed[keys[-1] :]
        if begin <= 0.0:
            return listed
        back = max(2.0, back * 3)


def hidden_preroll(path: Path) -> bool:
    """True for an MP4 whose edit list hides frames at its start: what ``ffmpeg -ss X -i in.mp4
    -c copy out.mp4``, yt-dlp's ``--download-sections`` and lossless-cut tools write (the edit
    list starts in the middle of a GOP). ffmpeg hands those frames out with negative times and
    the discard flag."""
    rows = ffprobe_csv(
        ["-select_streams", "v:0", "-read_intervals", "%+#2"]
        + ["-show_entries", "packet=pts,flags", str(path)]
    )
    for row in rows:
        if len(row) >= 2 and ("D" in row[1] or (row[0].startswith("-") and row[0] != "-")):
            return True
    return False


def _listed_packets(path: Path, start: float, end: float) -> list[Packet]:
    rows = ffprobe_csv(
        [
            "-select_streams",
            "v:0",
            "-read_intervals",
            f"{max(0.0, start):.6f}%{end:.6f}",
            "-show_entries",
            "packet=pts,dts,flags",
            str(path),
        ]
    )
    packets = []
    for row in rows:
        if len(row) < 3:
            continue
        pts = int(row[0]) if row[0].lstrip("-").isdigit() else None
        dts = int(row[1]) if row[1].lstrip("-").isdigit() else pts
        if dts is None:
            continue
        # AVI stores decode times only: with B-frames (MPEG-4 Part 2, DivX/Xvid) the I and P
        # packets have no presentation time. Each packet is one frame at a constant rate, so
        # the decode times are the frames' presentation times as a set, which is all a
        # re-encode needs (such codecs are never stream-copied into the clip).
        packets.append(Packet(dts if pts is None else pts, dts, "K" in row[2]))
    return packets


def keyframes(
    path: Path, start: float, end: float, time_base: Fraction | None = None
) -> list[float]:
    """Presentation times (seconds) of the keyframes from the one at or before ``start`` up to
    ``end`` (inclusive), sorted."""
    if time_base is None:
        stream = ffprobe(path, select_streams="v:0")["streams"]
        time_base = _fraction(stream[0].get("time_base")) if stream else None
        time_base = time_base or Fraction(1, 90000)
    times = sorted({float(p.pts * time_base) for p in video_packets(path, start, end) if p.key})
    return [t for t in times if t <= end + 1e-6]


_NAL_START = re.compile(b"\x00\x00\x01")


def _first_video_packet_annexb(path: Path) -> bytes:
    """The first video packet in Annex B form, with the parameter sets the MP4 ``avcC`` (or
    Matroska CodecPrivate) keeps out of band put in front by ``h264_mp4toannexb``."""
    argv = [FFMPEG, "-nostdin", "-loglevel", "error", "-i", str(path), "-map", "0:v:0"]
    argv += ["-c", "copy", "-bsf:v", "h264_mp4toannexb", "-frames:v", "1", "-f", "h264", "pipe:1"]
    proc = subprocess.run(argv, capture_output=True, check=False)
    return proc.stdout if proc.returncode == 0 else b""


def first_video_packet(path: Path, at: float | None = None) -> bytes:
    """The bytes of the first video packet (at or after the keyframe before ``at`` seconds) as
    the container stores it (for AV1: OBUs, usually a sequence header first on a keyframe)."""
    argv = [FFMPEG, "-nostdin", "-loglevel", "error"]
    if at is not None:
        argv += ["-ss", f"{at:.6f}"]
    argv += ["-i", str(path), "-map", "0:v:0", "-c", "copy", "-frames:v", "1", "-f", "data"]
    proc = subprocess.run([*argv, "pipe:1"], capture_output=True, check=False)
    return proc.stdout if proc.returncode == 0 else b""


@dataclass(frozen=True)
class H264Headers:
    """An H.264 stream's parameter sets and, for x264-made streams, its encoder options."""

    parameter_sets: tuple[bytes, ...]
    """SPS and PPS NAL units in stream order."""
    x264_options: dict[str, str]
    """``key=value`` options from x264's SEI (empty for other encoders)."""


def mp4_parameter_sets(path: Path) -> tuple[bytes, ...] | None:
    """SPS and PPS from the first ``avcC`` box of an MP4 file, read in Python (no ffmpeg run);
    None when the file is not an MP4 with an H.264 track."""
    moov = read_moov(path)
    if moov is None:
        return None
    index = moov.find(b"avcC")
    if index < 4:
        return None
    size = int.from_bytes(moov[index - 4 : index], "big")
    box = moov[index + 4 : index - 4 + size]
    if len(box) < 7:
        return None
    units: list[bytes] = []
    pos = 6
    count = box[5] & 0x1F
    try:
        for kind_count in (count, None):
            if kind_count is None:
                kind_count = box[pos]
                pos += 1
            for _ in range(kind_count):
                length = int.from_bytes(box[pos : pos + 2], "big")
                units.append(bytes(box[pos + 2 : pos + 2 + length]))
                pos += 2 + length
    except IndexError:
        return None
    return tuple(units)


def h264_parameter_sets(path: Path) -> tuple[bytes, ...]:
    """SPS and PPS of an H.264 file: from ``avcC`` for MP4, else via ffmpeg."""
    return mp4_parameter_sets(path) or h264_headers(path).parameter_sets


def _first_sample_units(path: Path) -> list[bytes] | None:
    """The NAL units of an MP4's first video sample, read in Python (None: not such a file)."""
    layout = sample_layout(path)
    if layout is None or not layout.offsets:
        return None
    with path.open("rb") as f:
        f.seek(layout.offsets[0])
        data = f.read(min(layout.sizes[0], 1 << 20))
    return nal_units(data, layout.length_size)


def h264_headers(path: Path) -> H264Headers:
    """Read :class:`H264Headers` from the first video packet of ``path``.

    Two streams whose parameter sets are byte-identical can be joined by the concat demuxer
    without re-encoding: the decoder sees one consistent SPS/PPS for the whole output.

    In an MP4 the first sample and ``avcC`` are read in Python, as ``h264_mp4toannexb`` would
    present them (the sample's own parameter sets, else ``avcC``'s); otherwise one ffmpeg run.
    """
    sample = _first_sample_units(path)
    stored = mp4_parameter_sets(path) if sample is not None else None
    if sample is not None and stored is not None:
        in_band = [u for u in sample if u and u[0] & 0x1F in (7, 8)]
        units = in_band or list(stored)
        data = b"".join(sample)
    else:
        data = _first_video_packet_annexb(path)
        units = []
        for chunk in _NAL_START.split(data):
            chunk = chunk.rstrip(b"\x00")
            if chunk and chunk[0] & 0x1F in (7, 8):  # SPS, PPS
                units.append(chunk)
    options: dict[str, str] = {}
    match = re.search(rb"x264 - core \d+.*? options: ([ -~]+)", data)
    if match:
        for item in match.group(1).decode("ascii", "replace").split(" "):
            key, sep, value = item.partition("=")
            if sep:
                options[key] = value
    return H264Headers(tuple(units), options)


def h264_packet_nal_types(path: Path, at: float) -> list[int]:
    """NAL unit types of the video packet that a copy seek to ``at`` (the exact time of a
    keyframe) starts with: one ffmpeg run, demux only."""
    argv = [FFMPEG, "-nostdin", "-loglevel", "error", "-ss", f"{max(0.0, at):.6f}"]
    argv += ["-i", str(path), "-map", "0:v:0", "-c", "copy", "-bsf:v", "h264_mp4toannexb"]
    argv += ["-frames:v", "1", "-f", "h264", "pipe:1"]
    proc = subprocess.run(argv, capture_output=True, check=False)
    return annexb_nal_types(proc.stdout) if proc.returncode == 0 else []


@dataclass(frozen=True)
class SampleLayout:
    """Where the video samples of an MP4 lie in the file, in decode order."""

    offsets: tuple[int, ...]
    sizes: tuple[int, ...]
    length_size: int
    """NAL length-prefix size from ``avcC`` (4 when there is none)."""


def _sample_layout(moov: bytes) -> SampleLayout | None:
    """Sample offsets and sizes of the first video track (``stsz``, ``stsc``, ``stco``/``co64``)."""
    for kind, _, lo, hi in boxes(moov, 8, len(moov)):
        if kind != b"trak":
            continue
        mdia = _find(moov, b"mdia", lo, hi)
        hdlr = mdia and _find(moov, b"hdlr", *mdia)
        if not mdia or not hdlr or moov[hdlr[0] + 8 : hdlr[0] + 12] != b"vide":
            continue
        minf = _find(moov, b"minf", *mdia)
        stbl = minf and _find(moov, b"stbl", *minf)
        if not stbl:
            return None
        stsz = _find(moov, b"stsz", *stbl)
        stsc = _find(moov, b"stsc", *stbl)
        stco = _find(moov, b"stco", *stbl)
        co64 = _find(moov, b"co64", *stbl)
        if not stsz or not stsc or not (stco or co64):
            return None
        fixed, count = _u32(moov, stsz[0] + 4), _u32(moov, stsz[0] + 8)
        sizes = (
            [fixed] * count if fixed else [_u32(moov, stsz[0] + 12 + 4 * i) for i in range(count)]
        )
        if stco:
            chunks = [_u32(moov, stco[0] + 8 + 4 * i) for i in range(_u32(moov, stco[0] + 4))]
        else:
            assert co64 is not None
            chunks = [
                int.from_bytes(moov[co64[0] + 8 + 8 * i : co64[0] + 16 + 8 * i], "big")
                for i in range(_u32(moov, co64[0] + 4))
            ]
        runs = [
            (_u32(moov, stsc[0] + 8 + 12 * i), _u32(moov, stsc[0] + 12 + 12 * i))
            for i in range(_u32(moov, stsc[0] + 4))
        ]
        offsets: list[int] = []
        sample = 0
        for r, (first_chunk, per_chunk) in enumerate(runs):
            last_chunk = runs[r + 1][0] - 1 if r + 1 < len(runs) else len(chunks)
            for chunk in range(first_chunk, last_chunk + 1):
                pos = chunks[chunk - 1]
                for _ in range(per_chunk):
                    if sample >= count:
                        break
                    offsets.append(pos)
                    pos += sizes[sample]
                    sample += 1
        if len(offsets) != count:
            return None
        length_size = 4
        index = moov.find(b"avcC", lo, hi)
        if index > 0:
            length_size = (moov[index + 8] & 3) + 1
        return SampleLayout(tuple(offsets), tuple(sizes), length_size)
    return None


def sample_layout(path: Path) -> SampleLayout | None:
    """:class:`SampleLayout` of an MP4 file's first video track (cached; None: not an MP4 or
    no sample table, e.g. fragmented)."""
    try:
        stat = path.stat()
    except OSError:
        return None
    return _cached_layout(path, stat.st_size, stat.st_mtime_ns)


@functools.lru_cache(maxsize=8)
def _cached_layout(path: Path, size: int, mtime_ns: int) -> SampleLayout | None:
    del size, mtime_ns  # cache key only
    try:
        moov = read_moov(path)
        return _sample_layout(moov) if moov is not None else None
    except (OSError, IndexError, ValueError):
        return None


def h264_is_idr(path: Path, at: float, dts: int | None = None) -> bool:
    """True when the keyframe at ``at`` seconds (decode time ``dts`` in stream ticks) is an IDR
    picture: a clean random access point, nothing after it refers to anything before it.

    In an MP4 the sample is found in the sample table and read in Python; otherwise one ffmpeg
    run demuxes the packet.
    """
    stat = path.stat()
    table = _cached_sample_table(path, stat.st_size, stat.st_mtime_ns) if dts is not None else None
    layout = _cached_layout(path, stat.st_size, stat.st_mtime_ns) if table is not None else None
    if (
        dts is not None
        and table is not None
        and layout is not None
        and len(layout.offsets) == len(table.packets)
    ):
        index = bisect.bisect_left([p.dts for p in table.packets], dts)
        if index < len(table.packets) and table.packets[index].dts == dts:
            with path.open("rb") as f:
                f.seek(layout.offsets[index])
                data = f.read(min(layout.sizes[index], 1 << 16))
            return first_vcl_type(nal_types(data, layout.length_size)) == NAL_IDR
    return first_vcl_type(h264_packet_nal_types(path, at)) == NAL_IDR
