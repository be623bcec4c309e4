"""Cut one clip out of a probed source with ffmpeg, in one of three precision modes.

See ``docs/cutting.md`` for the why. In short, for a planned range [S, E):

* **frames**: the clip holds exactly the source frames whose time t satisfies S <= t < E (half a
  millisecond of tolerance, because plans are rounded to the millisecond). Every seek goes to the
  microsecond-exact time of a frame, which ffmpeg rounds to exactly that frame's tick: no
  half-frame offsets, no duplicated first frame, no keyframe snapping by accident.
* **copy** seeks to the keyframe at or before S and stream-copies whole packets up to the clean
  cut point nearest E. It starts on the keyframe itself, so there is no hidden (edit-list)
  pre-roll: ``start_offset`` is the keyframe's time minus S, and ``note`` says so.
* **accurate** decodes from the keyframe before S and re-encodes exactly the frames in [S, E).
* **smart** re-encodes the frames from S to the next keyframe (head) and from the last clean cut
  point before E to E (tail; at most a mini-GOP of B-frames), stream-copies everything between,
  joins the pieces with the concat demuxer and takes the audio as one piece from the source. It
  falls back to accurate (and says why) when the join cannot be clean.
"""

from __future__ import annotations

import functools
import math
import os
import shutil
import tempfile
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Literal

from videojobs.models import ExitCode, PlannedSegment, Quality
from videojobs_worker import av1bits
from videojobs_worker.depth import keep_format_args
from videojobs_worker.errors import WorkerError
from videojobs_worker.ffmpeg import compile_args, ffprobe, ffprobe_csv, run_ffmpeg, seconds_arg
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
from videojobs_worker.mp4edit import read_avcc, rewrite_mp4
from videojobs_worker.probe import (
    H264Headers,
    MediaInfo,
    Packet,
    _mp4_moov,
    first_video_packet,
    h264_headers,
    h264_is_idr,
    h264_parameter_sets,
    hidden_preroll,
    mp4_sample_table,
    video_packets,
)
from videojobs_worker.streams import join_stream_args
from videojobs_worker.verify import Expected, verify_clip

Format = Literal["mp4", "webm"]
PrecisionMode = Literal["copy", "accurate", "smart"]

H264_CRF_DEFAULT = 20
VP9_CRF_DEFAULT = 32
TOLERANCE = Fraction(1, 2000)
"""Half a millisecond: plans are rounded to the millisecond, frame times are not."""

# x264 presets mapped to libvpx-vp9 realtime speeds (8 is the fastest).
_VP9_SPEED = {
    "ultrafast": 8,
    "superfast": 8,
    "veryfast": 8,
    "faster": 7,
    "fast": 6,
    "medium": 5,
    "slow": 4,
}
_COPYABLE_VIDEO = {"mp4": {"h264", "hevc", "vp9", "av1"}, "webm": {"vp8", "vp9", "av1"}}
# MP4 carries AC-3, E-AC-3 and MP3 as they are (issue 23: no AAC conversion of a TV recording).
_COPYABLE_AUDIO = {"mp4": {"aac", "opus", "ac3", "eac3", "mp3"}, "webm": {"opus", "vorbis"}}
_VP9_PIX_FMTS = {"yuv420p": "0", "yuv420p10le": "2"}
# ffprobe colour names -> ffmpeg output options.
_COLOUR_OPTIONS = {
    "color_range": "-color_range",
    "color_space": "-colorspace",
    "color_transfer": "-color_trc",
    "color_primaries": "-color_primaries",
}
_SMART_PIX_FMTS = {"yuv420p", "yuvj420p", "yuv420p10le"}
_AV1_PIX_FMTS = {"yuv420p", "yuv420p10le"}
AV1_CRF_DEFAULT = 35
AV1_HEAD_ENCODERS = ("libsvtav1", "libaom-av1")
"""Tried in this order for an AV1 head; the first whose sequence header matches is kept."""
# x264 presets mapped to SVT-AV1 presets (13 is the fastest).
_SVT_PRESET = {
    "ultrafast": 12,
    "superfast": 12,
    "veryfast": 12,
    "faster": 11,
    "fast": 10,
    "medium": 8,
    "slow": 6,
}
# AV1 sequence-header tool flags -> libaom-av1 options asking for the same.
_AOM_TOOL_OPTIONS = {
    "enable_filter_intra": "-enable-filter-intra",
    "enable_intra_edge_filter": "-enable-intra-edge-filter",
    "enable_interintra_compound": "-enable-interintra-comp",
    "enable_masked_compound": "-enable-masked-comp",
    "enable_dual_filter": "-enable-dual-filter",
    "enable_jnt_comp": "-enable-dist-wtd-comp",
    "enable_ref_frame_mvs": "-enable-ref-frame-mvs",
    "enable_cdef": "-enable-cdef",
    "enable_restoration": "-enable-restoration",
}
_FEW_FRAMES = 8
_BIG_FRAME = 1280 * 720
"""Frames larger than 720p get fewer encoder threads and a shorter lookahead (peak RSS)."""
COPY_AUDIO_SLACK = 0.25
"""Seconds a ``copy`` clip's audio may start or end away from its video, besides one audio
frame: the video is cut by packet count (``-frames:v``), and reaching that count ends the
audio too, up to a few audio packets early (measured: 0.15 s on a VFR source)."""
FAST_PIECES_SECONDS = 1.0
FAST_PIECES_PRESET = "ultrafast"
"""When the H.264 frames a smart cut re-encodes span more than this (a long GOP puts seconds
of frames before the first copyable IDR), they are encoded with this preset under their own
parameter sets: that encode is most of the cut's cost, and ultrafast is about twice as fast as
veryfast at the same CRF (larger, not worse)."""
PREFER_SAME_IDS = True
"""For x264-made sources, first try re-encoding with the source's own settings and ids (when
those are not slower than the requested preset, see :func:`same_ids_affordable`)."""
# x264's subpixel refinement (subme) per preset: a proxy for how slow the source's settings are.
_PRESET_SUBME = {
    "ultrafast": 0,
    "superfast": 1,
    "veryfast": 2,
    "faster": 4,
    "fast": 6,
    "medium": 7,
    "slow": 8,
}
# x264 SEI option -> x264-params key, for the options that shape the SPS/PPS or the frame order.
_X264_HEADER_OPTIONS = {
    "cabac": "cabac",
    "ref": "ref",
    "8x8dct": "8x8dct",
    "bframes": "bframes",
    "b_pyramid": "b-pyramid",
    "weightb": "weightb",
    "weightp": "weightp",
    "direct": "direct",
    "open_gop": "open-gop",
    "chroma_qp_offset": "chroma-qp-offset",
    "constrained_intra": "constrained-intra",
    "interlaced": "interlaced",
    "trellis": "trellis",
    "subme": "subme",
    "psy": "psy",
    "mixed_ref": "mixed-refs",
    "me": "me",
    "me_range": "merange",
    "fast_pskip": "fast-pskip",
    "deadzone": "deadzone-inter",
    "mbtree": "mbtree",
}
_X264_DIRECT = {"0": "none", "1": "spatial", "2": "temporal", "3": "auto"}


@dataclass(frozen=True)
class CutOutcome:
    """What ``cut_clip`` produced."""

    path: Path
    precision_used: PrecisionMode
    start_offset: float
    """Actual minus planned start, seconds (non-zero only for copy)."""
    duration: float
    """Measured duration of the clip (video stream), seconds."""
    note: str | None = None


@dataclass(frozen=True)
class FrameRange:
    """The source frames of a clip, from a packet listing."""

    time_base: Fraction
    first: int
    """pts of the first frame (ticks)."""
    last: int
    """pts of the last frame (ticks)."""
    count: int
    end: int
    """pts just after the last frame: the next frame's, or last + one frame at the end."""
    packets: tuple[Packet, ...]
    planned_end: float = 0.0
    """The planned (exclusive) end, seconds."""
    at_eof: bool = False
    """True when the listing ran out: no frame after the last one."""

    def seconds(self, ticks: int) -> float:
        return float(ticks * self.time_base)

    @property
    def start_s(self) -> float:
        return self.seconds(self.first)

    @property
    def duration_s(self) -> float:
        return self.seconds(self.end - self.first)


def frame_range(
    packets: Sequence[Packet], time_base: Fraction, start: float, end: float, frame: Fraction
) -> FrameRange:
    """The frames with ``start <= t < end`` (pure). ``frame`` is the nominal frame duration in
    seconds, used only after the last frame of the file."""
    lo = Fraction(str(start)) - TOLERANCE
    hi = Fraction(str(end)) - TOLERANCE
    times = sorted({p.pts for p in packets})
    inside = [t for t in times if lo <= t * time_base < hi]
    if not inside:
        raise WorkerError(
            ExitCode.PLAN_ERROR,
            "EmptySegment",
            f"no video frame between {start:.3f}s and {end:.3f}s of the source",
        )
    later = [t for t in times if t > inside[-1]]
    after = later[0] if later else inside[-1] + max(1, round(frame / time_base))
    return FrameRange(
        time_base, inside[0], inside[-1], len(inside), after, tuple(packets), end, not later
    )


def clean_cut_points(
    packets: Sequence[Packet], begin: int, end_of_stream: int | None = None
) -> list[tuple[int, int]]:
    """Where a stream copy that starts at decode index ``begin`` (a keyframe) may stop (pure).

    Returns ``(n, x)`` pairs: copying the first ``n`` packets from ``begin`` in decode order
    shows exactly the frames with ``pts < x`` (from the keyframe on) and needs no later packet.
    With B-frames this is true only where a mini-GOP closes. Copying the whole listing counts
    only when it is the end of the stream (``end_of_stream``: the pts just after the last
    frame).
    """
    tail = packets[begin:]
    suffix_min: list[int | None] = [None] * (len(tail) + 1)
    suffix_min[len(tail)] = end_of_stream
    for i in range(len(tail) - 1, -1, -1):
        later = suffix_min[i + 1]
        suffix_min[i] = tail[i].pts if later is None else min(tail[i].pts, later)
    points = []
    prefix_max = tail[0].pts if tail else 0
    for n in range(1, len(tail) + 1):
        prefix_max = max(prefix_max, tail[n - 1].pts)
        x = suffix_min[n]
        if x is not None and prefix_max < x:
            points.append((n, x))
    return points


def video_encoder_args(
    fmt: Format, quality: Quality, threads: int, *, crf: int | None = None
) -> list[str]:
    """Encoder options for re-encoded video (H.264 for mp4, VP9 tuned for throughput for webm)."""
    if fmt == "webm":
        args = ["-c:v", "libvpx-vp9", "-crf", str(crf or quality.crf or VP9_CRF_DEFAULT)]
        args += ["-b:v", "0", "-deadline", "realtime", "-cpu-used"]
        args += [str(_VP9_SPEED.get(quality.preset, 8)), "-row-mt", "1"]
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


def nominal_rate(info: MediaInfo) -> Fraction:
    """The constant frame rate a re-encode of a VFR source is normalised to."""
    r_rate, avg_rate = info.video.r_frame_rate, info.video.avg_frame_rate
    if r_rate and r_rate <= 60:
        return r_rate
    if avg_rate:
        return Fraction(round(float(avg_rate) * 1000), 1000)
    return Fraction(30)


def accurate_args(
    info: MediaInfo,
    frames: FrameRange,
    fmt: Format,
    quality: Quality,
    dest: Path,
    threads: int,
) -> list[str]:
    """One ffmpeg run re-encoding exactly ``frames`` (and the audio alongside)."""
    args: list[str] = []
    if threads > 0:
        args += ["-threads", str(threads)]
    if info.format_name in _UNINDEXED_FORMATS:
        return args + _unindexed_accurate_args(info, frames, fmt, quality, dest, threads)
    args += ["-seek_timestamp", "1", "-ss", seconds_arg(frames.start_s), "-i", str(info.path)]
    args += ["-map", f"0:{info.video.index}"]
    if info.audio is not None:
        args += ["-map", f"0:{info.audio.index}"]
    if info.vfr:
        # Constant frame rate out: frames repeat where the source had gaps, A/V sync is kept;
        # the clip ends at the planned end (the next source frame may be far after it).
        until = min(frames.seconds(frames.end), frames.planned_end)
        args += ["-t", seconds_arg(until - frames.start_s)]
        # The fps filter, not -fps_mode cfr: it repeats a frame shown across a long gap (a
        # screen recording) up to the planned end; cfr ended such a clip at its last frame.
        args += ["-fps_mode", "passthrough"]
    else:
        # The frame count ends the video (a trim filter: -frames:v ends every stream of the
        # output at once, and the audio lost its last 1.5 AAC frames); the audio is trimmed
        # by its own timestamps.
        args += ["-fps_mode", "passthrough"]
        if info.audio is not None:
            args += ["-af", f"atrim=end={seconds_arg(frames.duration_s)}"]
    scale = scale_filter(info, quality)
    if not info.vfr:
        chain = [f"trim=end_frame={frames.count}", *scale[1:]]
        scale = ["-vf", ",".join(chain)]
    else:
        scale = ["-vf", ",".join([f"fps={nominal_rate(info)}", *scale[1:]])]
    args += scale
    args += video_encoder_args(fmt, quality, threads)
    args += keep_format_args(info, fmt)  # 10-bit and colour kept (issue 23)
    if info.audio is not None:
        args += audio_encoder_args(fmt, quality)
    args += ["-map_metadata", "-1", "-map_chapters", "-1", "-sn", "-dn"]
    args += container_args(fmt)
    return [*args, str(dest)]


_UNINDEXED_FORMATS = frozenset({"mpegts", "mpeg", "mpegvideo"})
"""Containers without an index: ffmpeg's seek lands near the target by bisecting the file, not
on the keyframe before it, so the decoder dropped frames up to the next keyframe (clips started
up to a GOP late, video after audio). These are read from well before the keyframe and trimmed
by timestamp."""
UNINDEXED_PREROLL = 0.2
"""Seconds before the keyframe that an unindexed source is read from."""


def _unindexed_accurate_args(
    info: MediaInfo, frames: FrameRange, fmt: Format, quality: Quality, dest: Path, threads: int
) -> list[str]:
    keys = [p.pts for p in frames.packets if p.key and p.pts <= frames.first]
    key = frames.seconds(keys[-1] if keys else frames.first)
    at = max(info.start_time, key - UNINDEXED_PREROLL)
    if not keys:  # no keyframe listed before the first frame: read from the start
        at = info.start_time
    begin = frames.start_s - at
    half = info.video.frame_duration / 2
    if info.vfr:
        until = min(frames.seconds(frames.end), frames.planned_end)
        length = until - frames.start_s
    else:
        length = frames.duration_s
    args = ["-seek_timestamp", "1", "-ss", seconds_arg(at), "-i", str(info.path)]
    args += ["-map", f"0:{info.video.index}"]
    if info.audio is not None:
        args += ["-map", f"0:{info.audio.index}"]
    chain = [f"fps={nominal_rate(info)}"] if info.vfr else []  # see accurate_args
    chain += [
        f"trim=start={seconds_arg(begin - half)}:end={seconds_arg(begin + length - half)}",
        "setpts=PTS-STARTPTS",
    ]
    scale = scale_filter(info, quality)
    chain += scale[1:]
    args += ["-vf", ",".join(chain), "-fps_mode", "passthrough"]
    if info.audio is not None:
        args += [
            "-af",
            f"atrim=start={seconds_arg(begin)}:end={seconds_arg(begin + length)},"
            "asetpts=PTS-STARTPTS",
        ]
    args += video_encoder_args(fmt, quality, threads)
    args += keep_format_args(info, fmt)  # 10-bit and colour kept (issue 23)
    if info.audio is not None:
        args += audio_encoder_args(fmt, quality)
    args += ["-map_metadata", "-1", "-map_chapters", "-1", "-sn", "-dn"]
    args += container_args(fmt)
    return [*args, str(dest)]


def copy_args(
    info: MediaInfo,
    keyframe: int,
    packet_count: int,
    end: int,
    fmt: Format,
    quality: Quality,
    dest: Path,
) -> list[str]:
    """Stream copy from the keyframe at pts ``keyframe`` for ``packet_count`` video packets."""
    tb = info.video.time_base
    args = ["-seek_timestamp", "1", "-ss", seconds_arg(float(keyframe * tb)), "-i", str(info.path)]
    args += ["-map", f"0:{info.video.index}"]
    if info.audio is not None:
        args += ["-map", f"0:{info.audio.index}"]
    args += ["-t", seconds_arg(float((end - keyframe) * tb))]
    args += ["-c:v", "copy", "-frames:v", str(packet_count)]
    if info.video.codec == "hevc" and fmt == "mp4":  # the muxer's default would be hev1
        args += ["-tag:v", "hvc1"]
    if info.audio is not None:
        if info.audio.codec in _COPYABLE_AUDIO[fmt]:
            args += ["-c:a", "copy"]
        else:
            args += audio_encoder_args(fmt, quality)
    if fmt == "mp4":
        args += ["-video_track_timescale", str(tb.denominator)]
    args += ["-map_metadata", "-1", "-map_chapters", "-1", "-sn", "-dn"]
    args += container_args(fmt)
    return [*args, str(dest)]


def x264_chroma_qp_lowering(options: dict[str, str]) -> int:
    """How much x264 lowers the chroma QP offset it is given, for these options (pure).

    x264 compensates psy-RD (active from subme 6) and psy-trellis (active with trellis) by
    lowering ``chroma_qp_offset`` by 1 (strength < 0.25) or 2 each; its SEI reports the lowered
    value, which is also what the PPS carries. Passing the SEI's value back would lower it again.
    """
    if options.get("psy", "1") == "0":
        return 0
    rd_text, _, trellis_text = options.get("psy_rd", "0:0").partition(":")
    try:
        psy_rd, psy_trellis = float(rd_text or 0), float(trellis_text or 0)
        subme, trellis = int(options.get("subme", "0")), int(options.get("trellis", "0"))
    except ValueError:
        return 0
    lowering = 0
    if subme >= 6 and psy_rd > 0:
        lowering += 1 if psy_rd < 0.25 else 2
    if trellis > 0 and psy_trellis > 0:
        lowering += 1 if psy_trellis < 0.25 else 2
    return lowering


def x264_params_like(
    options: dict[str, str], level: int | None, chroma_qp_offset: int | None = None
) -> str:
    """``-x264-params`` reproducing the header-relevant options of an x264-made source.

    ``chroma_qp_offset`` is the source PPS's ``chroma_qp_index_offset`` (the SEI's value when
    None); x264's own lowering of it (:func:`x264_chroma_qp_lowering`) is added back so that the
    re-encoded PPS carries the same value.
    """
    params = []
    for key, name in _X264_HEADER_OPTIONS.items():
        if key in options:
            value = options[key]
            if key == "chroma_qp_offset":
                final = chroma_qp_offset if chroma_qp_offset is not None else int(value)
                value = str(max(-12, min(12, final + x264_chroma_qp_lowering(options))))
            elif key == "deadzone":
                value = value.split(",")[0]
            elif key == "direct":
                value = _X264_DIRECT.get(value, value)
            params.append(f"{name}={value}")
    deblock = options.get("deblock", "")
    if deblock.startswith("0"):
        params.append("no-deblock=1")
    elif deblock.count(":") == 2:
        _, alpha, beta = deblock.split(":")
        params.append(f"deblock={alpha}\\:{beta}")
    psy_rd = options.get("psy_rd")
    if psy_rd:
        params.append(f"psy-rd={psy_rd.replace(':', chr(92) + ':')}")
    if level:
        params.append(f"level={level / 10:.1f}")
    return ":".join(params)


def _cpus() -> int:
    """CPUs this process may run on (ffmpeg's own count uses the same affinity mask)."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 0


def _run_pieces(
    runs: Sequence[list[str]],
    *,
    duration: float | None,
    on_progress: Callable[[float], None] | None,
    stop: threading.Event | None,
) -> None:
    """Run ffmpeg for each argument list at once; progress follows the first (the head)."""
    failures: list[BaseException] = []

    def other(args: list[str]) -> None:
        try:
            run_ffmpeg(args, stop=stop)
        except BaseException as exc:  # re-raised in the caller's thread
            failures.append(exc)

    helpers = [threading.Thread(target=other, args=(a,), daemon=True) for a in runs[1:]]
    for helper in helpers:
        helper.start()
    try:
        run_ffmpeg(runs[0], duration=duration, on_progress=on_progress, stop=stop)
    finally:
        for helper in helpers:
            helper.join()
    if failures:
        raise failures[0]


def smart_encode_args(
    info: MediaInfo,
    pieces: Sequence[tuple[int, int, Path]],
    options: dict[str, str] | None,
    quality: Quality,
    threads: int,
    *,
    chroma_qp_offset: int | None = None,
    sps_id: int | None = None,
    packets: Sequence[Packet] = (),
) -> list[str]:
    """One ffmpeg run re-encoding each ``(start pts, frame count, dest)`` piece (the head and/or
    the tail of a smart cut; several pieces: one process, encoded side by side).

    With ``sps_id`` the pieces are encoded with ``quality``'s settings under that (unused)
    SPS/PPS id, in the source's profile and level; otherwise with the source's x264 ``options``
    so that the parameter sets come out the same as the source's.
    """
    tb = info.video.time_base
    args: list[str] = []
    frame = info.video.frame_duration
    # With threads=0, ffmpeg would give each H.264 decoder one frame thread more than there are
    # CPUs; here the decoders share the CPUs with x264, and one thread per CPU (what the worker
    # passes when it cuts one segment at a time) is faster on benchmarks/bench_cutting.py.
    decoder_threads = threads if threads > 0 else _cpus()
    for start, count, _ in pieces:
        # A tail of a few frames gains nothing from frame threads, each holding a picture.
        piece_threads = 1 if count <= _FEW_FRAMES else decoder_threads
        if piece_threads > 0:
            args += ["-threads", str(piece_threads)]
        # The input-side -t lets ffmpeg stop reading each input after its piece (with a margin;
        # -frames:v makes the count exact): without it, the finished input is decoded to EOF.
        span = count * frame
        if info.vfr:  # frames may be farther apart than the nominal rate says
            later = sorted(p.pts for p in packets if p.pts >= start) if packets else []
            if later:
                span = float((later[min(count, len(later) - 1)] - start) * tb)
        args += [
            "-seek_timestamp",
            "1",
            "-ss",
            seconds_arg(float(start * tb)),
            "-t",
            seconds_arg(span + 0.5),
        ]
        if info.video.rotation:
            # Keep the pixels as stored, like the copied middle; the clip gets the rotation tag.
            args += ["-noautorotate"]
        args += ["-i", str(info.path)]
    profile = (info.video.profile or "").lower().replace("constrained ", "")
    if sps_id is not None or not options:
        encoder = video_encoder_args("mp4", quality, threads)
        params = f"sps-id={sps_id or 0}"
        if info.video.level:
            params += f":level={info.video.level / 10:.1f}"
        params += _reorder_params(info.video.has_b_frames)
    else:
        crf = options.get("crf")
        encoder = video_encoder_args("mp4", quality, threads, crf=int(float(crf)) if crf else None)
        params = x264_params_like(options, info.video.level, chroma_qp_offset)
    if profile in ("baseline", "main", "high"):
        encoder += ["-profile:v", profile]
    elif profile == "high 10":  # 10-bit pieces in the source's profile
        encoder += ["-profile:v", "high10", "-pix_fmt", "yuv420p10le"]
    big = info.video.width * info.video.height > _BIG_FRAME
    if big and threads <= 0:
        # x264's automatic count is 1.5 threads per CPU, each with frames in flight: at 1080p
        # the two encoders of one run peaked near 400 MiB.
        encoder += ["-threads", str(max(1, _cpus()))]
    for i, (_, count, dest) in enumerate(pieces):
        # The lookahead never needs more frames than the piece has (memory at 1080p); it
        # changes neither SPS nor PPS.
        lookahead = f"rc-lookahead={max(1, min(count, 5 if big else 40))}"
        if big:
            lookahead += ":sync-lookahead=0"
        piece_params = f"{params}:{lookahead}" if params else lookahead
        args += ["-map", f"{i}:{info.video.index}", "-an", "-sn", "-dn"]
        # Source timestamps go through unchanged (a variable frame rate stays as it is).
        args += ["-fps_mode", "passthrough", "-enc_time_base:v", "-1"]
        args += ["-frames:v", str(count), *encoder, "-x264-params", piece_params]
        if big and count <= _FEW_FRAMES:
            args += ["-threads", "1"]
        args += ["-video_track_timescale", str(tb.denominator), "-map_metadata", "-1"]
        args += ["-f", "mp4", str(dest)]
    return args


def _reorder_params(delay: int) -> str:
    """x264 options giving the source's frame reordering delay (pure): the pieces' decode
    timestamps then run on from the copied middle's without overlap (x264's delay is 0 without
    B-frames, 1 with B-frames and 2 with a B-pyramid)."""
    if delay <= 0:
        return ":bframes=0"
    if delay == 1:
        return ":bframes=3:b-pyramid=none"
    return ":bframes=3:b-pyramid=normal"


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


def _fallback_reason(info: MediaInfo, fmt: Format) -> str | None:
    """Why smart cannot be used for this source/format, or None."""
    video = info.video
    if fmt != "mp4":
        return "smart cutting joins H.264 pieces; WebM output is always re-encoded"
    if video.codec != "h264":
        return f"the source video is {video.codec}, not H.264"
    if video.pix_fmt not in _SMART_PIX_FMTS:
        return f"the source pixel format is {video.pix_fmt}, not yuv420p or yuv420p10le"
    if video.index != 0:
        return "the video is not the source's first stream (the concat demuxer needs that)"
    if info.audio is not None and info.audio.codec not in _COPYABLE_AUDIO["mp4"]:
        return f"the source audio is {info.audio.codec}, which MP4 cannot carry as it is"
    return None


def same_ids_affordable(options: dict[str, str], quality: Quality) -> bool:
    """True when encoding with the source's x264 settings costs no more than ``quality``'s
    preset (pure): a source made at ``medium`` re-encoded with ``medium``'s analysis is about
    2.5× slower per frame than ``veryfast``, so such heads get their own parameter sets instead."""
    try:
        subme = int(options.get("subme", "99"))
    except ValueError:
        return False
    return subme <= _PRESET_SUBME.get(quality.preset, 7)


def x264_match_reason(options: dict[str, str]) -> str | None:
    """Why the source's x264 settings cannot be reproduced for a same-id join, or None."""
    if not options:
        return "not encoded by x264"
    if options.get("interlaced", "0") != "0":
        return "interlaced"
    if options.get("rc") not in (None, "crf"):
        return f"x264 {options.get('rc')} mode, not CRF"
    return None


class _Stages:
    """Combines the progress of several ffmpeg runs into one fraction."""

    def __init__(self, weights: Sequence[float], sink: Callable[[float], None] | None) -> None:
        total = sum(weights) or 1.0
        self._weights = [w / total for w in weights]
        self._done = 0.0
        self._sink = sink

    def callback(self, stage: int) -> Callable[[float], None] | None:
        if self._sink is None:
            return None
        base = sum(self._weights[:stage])
        weight = self._weights[stage]
        sink = self._sink
        return lambda fraction: sink(min(1.0, base + weight * fraction))


def measured_duration(path: Path) -> float:
    """Duration of the clip's video stream (format duration when the stream has none).

    MP4 clips are measured from their sample table in Python; others with ffprobe.
    """
    table = mp4_sample_table(path)
    if table is not None and table.packets:
        return round(table.duration, 3)
    data = ffprobe(path, select_streams="v:0")
    streams = data.get("streams") or []
    for value in (streams[0].get("duration") if streams else None, data["format"].get("duration")):
        if value is None:
            continue
        try:
            return round(float(value), 3)
        except (TypeError, ValueError):
            continue
    return 0.0


def cut_clip(
    source: Path,
    info: MediaInfo,
    segment: PlannedSegment,
    fmt: Format,
    precision: PrecisionMode,
    quality: Quality,
    dest: Path,
    *,
    threads: int = 1,
    on_progress: Callable[[float], None] | None = None,
    stop: threading.Event | None = None,
) -> CutOutcome:
    """Cut ``segment`` out of ``source`` into ``dest`` (a temporary path the caller owns).

    Writes only ``dest`` (pieces live in a temporary directory next to it, removed on every
    path); on any failure or stop ``dest`` is removed. Raises ``WorkerError(TERMINATED)`` when
    ``stop`` is set while ffmpeg runs.
    """
    if info.path != Path(source):
        info = _with_path(info, Path(source))
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    end = min(segment.end, info.duration)
    # Plan times are relative to the source's time zero; the cutter works in its timestamps.
    origin = info.origin
    if end <= segment.start:
        raise WorkerError(
            ExitCode.PLAN_ERROR,
            "SegmentPastEnd",
            f"segment {segment.index} ({segment.start:.3f}s-{segment.end:.3f}s) starts after "
            f"the end of the source ({info.duration:.3f}s)",
        )
    work = Path(tempfile.mkdtemp(prefix=f".{dest.name}.", dir=dest.parent))
    route = _mp4_range_route(info, fmt, precision)
    if route is not None:
        try:
            return _cut_from_mp4_range(
                info, segment, fmt, precision, quality, dest, work, threads, on_progress, stop,
                route,
            )  # fmt: skip
        finally:
            shutil.rmtree(work, ignore_errors=True)
    try:
        precision_used, offset, note = _cut(
            info,
            f"clip {segment.index} ({segment.stem}.{fmt})",
            round(segment.start + origin, 6),
            round(end + origin, 6),
            fmt,
            precision,
            quality,
            dest,
            work,
            threads,
            on_progress,
            stop,
        )
        if stop is not None and stop.is_set():  # set after the last ffmpeg run ended
            raise WorkerError(ExitCode.TERMINATED, "Terminated", "stopped while cutting")
        if not dest.exists() or dest.stat().st_size == 0:
            raise WorkerError(ExitCode.MEDIA_TOOL, "EmptyOutput", f"ffmpeg wrote no {dest.name}")
        duration = measured_duration(dest)
    except BaseException:
        dest.unlink(missing_ok=True)
        raise
    finally:
        shutil.rmtree(work, ignore_errors=True)
    if on_progress is not None:
        on_progress(1.0)
    return CutOutcome(dest, precision_used, offset, duration, note)


HIDDEN_PREROLL_MARGIN = 1.0
"""Seconds after the planned end copied into the range a hidden-pre-roll source is cut from."""


_RANGE_CODECS = {"h264": "H.264", "hevc": "HEVC"}
_CONTAINER_NAMES = {"mpegts": "MPEG-TS", "matroska,webm": "Matroska", "mpeg": "MPEG-PS"}


def _mp4_range_route(info: MediaInfo, fmt: Format, precision: PrecisionMode) -> str | None:
    """Why a clip is cut from an MP4 copy of its range rather than from the source, or None.

    - an MP4 whose edit list hides frames at its start (issue 23, item 1): cut from the file
      itself, ``smart`` copied its middle from a GOP too early (345 frames for 255) and
      ``copy`` lost a GOP;
    - H.264 in Matroska or MPEG-TS with ``smart`` into MP4: the join needs the source's
      ``avcC``, which only an MP4 has; the copy is an MP4, so the fast path applies.
    """
    if info.container == "mp4":
        return "its MP4 edit list hides frames at its start" if hidden_preroll(info.path) else None
    if (
        precision == "smart"
        and fmt == "mp4"
        and info.video.codec in _RANGE_CODECS
        and info.video.pix_fmt in _SMART_PIX_FMTS
        and info.format_name in _CONTAINER_NAMES
    ):
        codec, container = _RANGE_CODECS[info.video.codec], _CONTAINER_NAMES[info.format_name]
        return f"{codec} in {container}, whose stream the join cannot use"
    return None


def _cut_from_mp4_range(
    info: MediaInfo,
    segment: PlannedSegment,
    fmt: Format,
    precision: PrecisionMode,
    quality: Quality,
    dest: Path,
    work: Path,
    threads: int,
    on_progress: Callable[[float], None] | None,
    stop: threading.Event | None,
    route: str,
) -> CutOutcome:
    """Cut a clip from an MP4 copy of its range (see :func:`_mp4_range_route` for when).

    The frames the segment needs are stream-copied, with their timestamps, from the keyframe at
    or before its start into an MP4, which is rewritten like a ranged download
    (:func:`videojobs_worker.download.normalise_range`: nothing hidden, time zero a known
    millisecond after the source's time zero); the clip is cut from that, with the plan shifted
    by the same milliseconds.
    """
    from videojobs_worker.download import DownloadedPart, normalise_range

    origin = info.origin
    start = segment.start + origin
    end = min(segment.end, info.duration) + origin + HIDDEN_PREROLL_MARGIN
    seek = start
    if info.format_name in _UNINDEXED_FORMATS:  # bisecting seeks land late: from the keyframe
        keys = [p.pts for p in video_packets(info.path, start, start + 0.1) if p.key]
        if keys:
            seek = max(info.start_time, float(keys[0] * info.video.time_base) - UNINDEXED_PREROLL)
    piece = work / "range.mp4"
    args = ["-copyts", "-seek_timestamp", "1", "-ss", seconds_arg(seek)]
    args += ["-t", seconds_arg(end - seek), "-i", str(info.path)]
    from videojobs_worker.streams import range_copy_args

    # Every audio track and text subtitle, with its language and title (issue 23).
    args += ["-c", "copy", *range_copy_args(info.path, info.video.index)]
    args += ["-map_metadata", "-1", "-movie_timescale", "90000", "-f", "mp4"]
    run_ffmpeg([*args, str(piece)], stop=stop)
    part = normalise_range(DownloadedPart(piece), align=origin)
    zero = part.start - origin  # whole milliseconds
    shifted = segment.model_copy(
        update={
            "start": round(segment.start - zero, 3),
            "end": round(min(segment.end, info.duration) - zero, 3),
        }
    )
    from dataclasses import replace

    from videojobs_worker.probe import probe as probe_file

    outcome = cut_clip(
        part.path,
        probe_file(part.path),
        shifted,
        fmt,
        precision,
        quality,
        dest,
        threads=threads,
        on_progress=on_progress,
        stop=stop,
    )
    why = (
        f"cut from an MP4 copy of the source from {zero:.3f}s ({route}); times above are "
        "relative to that"
    )
    return replace(outcome, note=f"{outcome.note}; {why}" if outcome.note else why)


def _with_path(info: MediaInfo, path: Path) -> MediaInfo:
    from dataclasses import replace

    return replace(info, path=path)


def _cut(
    info: MediaInfo,
    label: str,
    start: float,
    end: float,
    fmt: Format,
    precision: PrecisionMode,
    quality: Quality,
    dest: Path,
    work: Path,
    threads: int,
    on_progress: Callable[[float], None] | None,
    stop: threading.Event | None,
) -> tuple[PrecisionMode, float, str | None]:
    """Cut, then check the clip against the plan (:mod:`videojobs_worker.verify`).

    A ``smart`` clip that does not match is cut again with ``accurate`` (the note says so); a
    clip that still does not match (or an ``accurate``/``copy`` one) fails the cut with
    ``WorkerError(CLIP_MISMATCH, "ClipMismatch")`` (permanent) naming the clip, the expected
    and found values.
    """
    tb = info.video.time_base
    packets = video_packets(info.path, start, end + 2.0)
    frames = frame_range(packets, tb, start, end, Fraction(info.video.frame_duration))
    precision_used, offset, note, expected = _cut_once(
        info, frames, start, end, fmt, precision, quality, dest, work, threads, on_progress, stop
    )
    problems = verify_clip(dest, expected)
    if problems and precision_used == "smart":
        dest.unlink(missing_ok=True)
        _run_accurate(info, frames, fmt, quality, dest, threads, on_progress, stop)
        note = (
            f"smart clip failed its check ({'; '.join(problems)}), so it was re-cut with accurate"
        )
        precision_used, offset, expected = "accurate", 0.0, accurate_expected(info, frames)
        problems = verify_clip(dest, expected)
    if problems:
        raise WorkerError(
            ExitCode.CLIP_MISMATCH,
            "ClipMismatch",
            f"{label} ({precision_used}, {start:.3f}s-{end:.3f}s of the source) does not match "
            f"its plan: {'; '.join(problems)}",
        )
    # Never silently (issue 23): say which streams are not kept where the path drops them.
    if precision_used != "smart" or info.video.codec in ("vp9", "av1"):
        from videojobs_worker.streams import not_kept_note

        left = not_kept_note(info.path, info.audio.index if info.audio is not None else None)
        note = "; ".join(n for n in (note, left) if n) or None
    return precision_used, offset, note


def _longest_frame(info: MediaInfo, frames: FrameRange) -> float:
    """The nominal frame duration, or for a VFR source the longest gap between its frames in
    the clip (the last frame's duration in a clip is the container's guess)."""
    if not info.vfr:
        return info.video.frame_duration
    times = sorted(p.pts for p in frames.packets if frames.first <= p.pts <= frames.end)
    gaps = [b - a for a, b in zip(times, times[1:], strict=False)]
    return max(info.video.frame_duration, frames.seconds(max(gaps, default=0)))


def accurate_expected(info: MediaInfo, frames: FrameRange) -> Expected:
    """What an ``accurate`` clip of ``frames`` holds (pure)."""
    frame = info.video.frame_duration
    audio = info.audio is not None
    if info.vfr:  # normalised to a constant rate until the planned end
        rate = nominal_rate(info)
        until = min(frames.seconds(frames.end), frames.planned_end)
        seconds = Fraction(str(until)) - Fraction(str(frames.start_s))
        count = max(1, round(seconds * rate))
        return Expected(count, float(count / rate), float(1 / rate), audio, frame_slack=1)
    return Expected(frames.count, frames.duration_s, frame, audio)


def _cut_once(
    info: MediaInfo,
    frames: FrameRange,
    start: float,
    end: float,
    fmt: Format,
    precision: PrecisionMode,
    quality: Quality,
    dest: Path,
    work: Path,
    threads: int,
    on_progress: Callable[[float], None] | None,
    stop: threading.Event | None,
) -> tuple[PrecisionMode, float, str | None, Expected]:
    note: str | None
    if precision == "copy":
        if info.video.codec not in _COPYABLE_VIDEO[fmt]:
            note = (
                f"copy: a {info.video.codec} stream cannot be copied into {fmt}; "
                "re-encoded frame-exact instead"
            )
            _run_accurate(info, frames, fmt, quality, dest, threads, on_progress, stop)
            return "accurate", 0.0, note, accurate_expected(info, frames)
        return _run_copy(info, frames, start, end, fmt, quality, dest, on_progress, stop)
    if precision == "smart":
        job = SmartCut(info, frames, fmt, quality, dest, work, threads, on_progress, stop)
        if info.video.codec in ("vp9", "av1"):
            reason = _keyframe_codec_fallback_reason(info, fmt)
            runner = _run_smart_keyframes
        elif info.video.codec == "hevc":
            from videojobs_worker.hevccut import hevc_fallback_reason, run_smart_hevc

            reason = hevc_fallback_reason(info, fmt)
            runner = run_smart_hevc
        else:
            reason = _fallback_reason(info, fmt)
            runner = _run_smart
        if reason is None:
            from videojobs_worker.depth import interlaced_reason
            from videojobs_worker.vfr import held_frame_reason

            reason = held_frame_reason(info, frames) or interlaced_reason(info)
        if reason is None:
            result = runner(job)
            if isinstance(result, str):
                reason = result
            else:
                expected = Expected(
                    frames.count,
                    frames.duration_s,
                    _longest_frame(info, frames),
                    info.audio is not None,
                    joins=tuple(job.joins),
                )
                return (*result, expected)
        _run_accurate(info, frames, fmt, quality, dest, threads, on_progress, stop)
        note = f"smart fell back to accurate: {reason}"
        return "accurate", 0.0, note, accurate_expected(info, frames)
    _run_accurate(info, frames, fmt, quality, dest, threads, on_progress, stop)
    note = None
    if info.vfr:
        note = (
            f"variable frame rate source re-encoded at a constant {float(nominal_rate(info)):g} fps"
        )
    return "accurate", 0.0, note, accurate_expected(info, frames)


def _run_accurate(
    info: MediaInfo,
    frames: FrameRange,
    fmt: Format,
    quality: Quality,
    dest: Path,
    threads: int,
    on_progress: Callable[[float], None] | None,
    stop: threading.Event | None,
) -> None:
    args = accurate_args(info, frames, fmt, quality, dest, threads)
    run_ffmpeg(args, duration=frames.duration_s, on_progress=on_progress, stop=stop)


def _run_copy(
    info: MediaInfo,
    frames: FrameRange,
    start: float,
    end: float,
    fmt: Format,
    quality: Quality,
    dest: Path,
    on_progress: Callable[[float], None] | None,
    stop: threading.Event | None,
) -> tuple[PrecisionMode, float, str | None, Expected]:
    tb = info.video.time_base
    packets = list(frames.packets)
    keys = [i for i, p in enumerate(packets) if p.key and p.pts <= frames.first]
    if not keys:  # the listing starts at a keyframe at or before the first frame
        keys = [next(i for i, p in enumerate(packets) if p.key)]
    begin = keys[-1]
    keyframe = packets[begin].pts
    points = clean_cut_points(packets, begin, frames.end if frames.at_eof else None)
    # The clean cut point nearest to the planned end (ties: the longer clip).
    n, x = min(points, key=lambda p: (abs(p[1] - frames.end), -p[0]))
    args = copy_args(info, keyframe, n, x, fmt, quality, dest)
    run_ffmpeg(args, duration=float((x - keyframe) * tb), on_progress=on_progress, stop=stop)
    offset = round(float(keyframe * tb) - start, 6)
    actual_end = float(x * tb)
    note = (
        f"copy: starts on the keyframe at {float(keyframe * tb):.3f}s "
        f"({-offset:.3f}s before the planned start) and ends at {actual_end:.3f}s "
        f"(planned {end:.3f}s); stream copy cannot start between keyframes"
    )
    if info.audio is not None and info.audio.codec not in _COPYABLE_AUDIO[fmt]:
        codec = audio_encoder_args(fmt, quality)[1].removeprefix("lib")
        note += f"; the {info.audio.codec} audio was re-encoded to {codec} ({fmt} cannot carry it)"
    expected = Expected(
        n,
        float((x - keyframe) * tb),
        _longest_frame(info, frames),
        info.audio is not None,
        audio_slack=COPY_AUDIO_SLACK,
    )
    return "copy", offset, note, expected


@dataclass(frozen=True)
class SmartCut:
    """What one smart cut works on: the source, its frames, the output and how to run."""

    info: MediaInfo
    frames: FrameRange
    fmt: Format
    quality: Quality
    dest: Path
    work: Path
    """Temporary directory for the pieces (removed by ``cut_clip``)."""
    threads: int
    on_progress: Callable[[float], None] | None
    stop: threading.Event | None
    joins: list[float] = field(default_factory=list)
    """Clip times where re-encoded and copied pieces meet (set by the runner, for the check)."""


SmartResult = tuple[PrecisionMode, float, str | None] | str
"""A smart runner's outcome: (precision used, start offset, note), or why it fell back."""


def _run_smart(job: SmartCut) -> SmartResult:
    """Head + copied middle + tail, joined by the concat demuxer; a string says why not.

    Two ways to make the re-encoded pieces fit the copied middle (which starts on an IDR):

    * **same ids** (x264-made CRF sources): encode with the source's x264 settings, check that
      the parameter sets come out structurally equal to the source's, and keep one set of
      parameter sets in ``avcC``;
    * **new ids** (any encoder, and x264 sources whose settings did not reproduce): encode with
      ``quality``'s settings under SPS/PPS ids the source does not use, and write every SPS/PPS
      into the clip's ``avcC`` after muxing. Each piece starts on an IDR, so each activates its
      own parameter sets.

    No parameter sets are put in-band (``auto_convert`` off).
    """
    info, frames, quality, work, threads = job.info, job.frames, job.quality, job.work, job.threads
    dest, on_progress, stop = job.dest, job.on_progress, job.stop
    tb = info.video.time_base
    packets = list(frames.packets)
    keys = [i for i, p in enumerate(packets) if p.key and frames.first <= p.pts <= frames.last]
    if not keys:
        return "no keyframe inside the segment, so nothing can be stream-copied"
    key_index = next(
        (
            i
            for i in keys
            if not has_leading_pictures(packets, i)
            and h264_is_idr(info.path, float(packets[i].pts * tb), packets[i].dts)
        ),
        None,
    )
    if key_index is None:
        return (
            "open GOP: no keyframe inside the segment is an IDR picture without leading "
            "pictures, so a copied part would refer to frames before the cut"
        )
    keyframe = packets[key_index].pts
    head_count = sum(1 for p in packets if frames.first <= p.pts < keyframe)
    end_of_stream = frames.end if frames.at_eof else None
    points = [
        (n, x) for n, x in clean_cut_points(packets, key_index, end_of_stream) if x <= frames.end
    ]
    if not points:
        return "no clean cut point between the keyframe and the end"
    mid_count, mid_end = points[-1]
    tail_count = sum(1 for p in packets if mid_end <= p.pts <= frames.last)
    mid_end = min(mid_end, frames.end)

    frame_cost = 1.0
    copy_cost = 0.03
    stages = _Stages(
        [(head_count + tail_count) * frame_cost, 0.0, 0.0, mid_count * copy_cost],
        on_progress,
    )
    source_avcc = _source_avcc(info.path)
    if isinstance(source_avcc, str):
        return source_avcc
    try:
        source_sets = parse_parameter_sets((*source_avcc.sps, *source_avcc.pps))
    except BitstreamError as exc:
        return f"the source's H.264 parameter sets cannot be parsed ({exc})"
    options = source_headers(info.path).x264_options
    piece_seconds = (head_count + tail_count) * info.video.frame_duration
    fast_pieces = piece_seconds > FAST_PIECES_SECONDS and quality.preset != FAST_PIECES_PRESET
    same_ids = (
        PREFER_SAME_IDS
        and not fast_pieces
        and x264_match_reason(options) is None
        and same_ids_affordable(options, quality)
    )
    piece_quality = (
        quality.model_copy(update={"preset": FAST_PIECES_PRESET}) if fast_pieces else quality
    )
    how = "same parameter sets as the source (x264 settings matched)"
    head, tail = work / "head.mp4", work / "tail.mp4"
    encodes = [(frames.first, head_count, head)] if head_count else []
    if tail_count:
        encodes.append((mid_end, tail_count, tail))
    new_id = unused_parameter_set_id(source_sets)
    for attempt in ("same", "new") if same_ids else ("new",):
        if not encodes:
            break
        if attempt == "new" and new_id is None:
            return "the source uses every SPS id, none is left for the re-encoded pieces"
        chroma = source_sets.pps[0].fields["chroma_qp_index_offset"] if source_sets.pps else None
        # With the machine to itself (threads 0), head and tail run as two processes side by
        # side: the tail's decoder works through up to a GOP for its few frames on one CPU
        # while the head is encoded; cutting clips in parallel (threads > 0), one process.
        runs = [encodes] if threads > 0 else [[piece] for piece in encodes]
        _run_pieces(
            [
                smart_encode_args(
                    info,
                    pieces,
                    options,
                    piece_quality if attempt == "new" else quality,
                    threads,
                    chroma_qp_offset=chroma,
                    sps_id=new_id if attempt == "new" else None,
                    packets=packets,
                )
                for pieces in runs
            ],
            duration=float((keyframe - frames.first) * tb) if head_count else None,
            on_progress=stages.callback(0),
            stop=stop,
        )
        problems = _piece_problems(encodes, source_sets, None if attempt == "same" else new_id)
        if not problems:
            same_ids = attempt == "same"
            break
        if attempt == "new":
            return problems
        how = f"own parameter sets under id {new_id} ({problems}, so not reused)"
    if not same_ids:
        if new_id is None:
            return "the source uses every SPS id, none is left for the re-encoded pieces"
        if not encodes or not how.startswith("own"):
            how = f"own parameter sets under id {new_id}"
        if fast_pieces:
            how += (
                f", x264 {FAST_PIECES_PRESET} (the re-encoded frames span {piece_seconds:.1f} s,"
                f" more than {FAST_PIECES_SECONDS:g} s)"
            )
    entries: list[str] = []
    if head_count:
        # Explicit durations: each piece ends where the next source frame starts (VFR-exact).
        entries.append(
            f"file '{head.name}'\nduration {seconds_arg(float((keyframe - frames.first) * tb))}\n"
        )
        # The middle is read straight from the source by the concat demuxer: from the keyframe
        # (inpoint, microsecond-exact, so the seek lands on it) until the first packet not to
        # copy (outpoint compares decode timestamps), placed by an explicit duration.
        entry = f"file '{_concat_quote(info.path.resolve())}'\n"
        entry += f"inpoint {seconds_arg(float(keyframe * tb))}\n"
        if key_index + mid_count < len(packets):
            entry += f"outpoint {_floor_us(packets[key_index + mid_count].dts * tb)}\n"
        entry += f"duration {seconds_arg(float((mid_end - keyframe) * tb))}\n"
        entries.append(entry)
    else:
        # Starting on a keyframe: as the first piece, a copied file starts cleanly at zero.
        mid = work / "middle.mp4"
        mid_args = [
            "-seek_timestamp",
            "1",
            "-ss",
            seconds_arg(float(keyframe * tb)),
            "-i",
            str(info.path),
        ]
        mid_args += ["-map", f"0:{info.video.index}", "-an", "-sn", "-dn", "-c:v", "copy"]
        mid_args += ["-frames:v", str(mid_count), "-video_track_timescale", str(tb.denominator)]
        mid_args += ["-map_metadata", "-1", "-f", "mp4", str(mid)]
        run_ffmpeg(mid_args, duration=float((mid_end - keyframe) * tb), stop=stop)
        entries.append(f"file '{mid.name}'\n")
    if tail_count:
        entries.append(
            f"file '{tail.name}'\nduration {seconds_arg(float((frames.end - mid_end) * tb))}\n"
        )
    listing = work / "pieces.ffconcat"
    listing.write_text("ffconcat version 1.0\n" + "".join(entries), encoding="utf-8")
    # auto_convert 0: packets stay as they are in the pieces (no in-band parameter sets).
    args = ["-f", "concat", "-safe", "0", "-auto_convert", "0", "-i", str(listing)]
    if info.audio is not None:
        # The audio's length is a packet count (-frames:a below): -t on copied Opus ended the
        # audio up to three packets before the video.
        args += ["-seek_timestamp", "1", "-ss", seconds_arg(frames.start_s), "-i", str(info.path)]
    # Every further audio track and subtitle, with the tags (issue 23; streams.py).
    more_in, more_out, streams_note = join_stream_args(
        info.path,
        info.audio.index if info.audio is not None else None,
        frames.start_s,
        frames.duration_s,
        "mp4",
        work,
        next_input=2 if info.audio is not None else 1,
    )
    args += [*more_in, "-map", "0:v:0"]
    if info.audio is not None:
        args += ["-map", f"1:{info.audio.index}", "-c:a", "copy", "-copypriorss:a", "0"]
    args += ["-c:v", "copy", "-video_track_timescale", str(tb.denominator)]
    if info.audio is not None:
        args += [a.replace("-frames:a", "-frames:a:0") for a in _audio_frames_args(info, frames)]
    args += [*more_out, "-map_metadata", "-1", "-map_chapters", "-1"]
    if info.video.rotation:
        # Stored pixels everywhere; the MP4 muxer writes the display matrix from this tag
        # (ffprobe then reports the same rotation as the source's).
        args += ["-metadata:s:v:0", f"rotate={info.video.rotation}"]
    if same_ids or not encodes:
        args += [*container_args("mp4"), str(dest)]
    else:
        joined = work / "joined.mp4"
        args += ["-f", "mp4", str(joined)]
    run_ffmpeg(args, duration=frames.duration_s, on_progress=stages.callback(3), stop=stop)
    if not same_ids and encodes:
        try:
            pieces_avcc = parse_avcc(read_avcc(_read_moov(joined)))
            merged = merge_avcc(pieces_avcc, source_avcc)
            for _, _, piece in encodes:
                merged = merge_avcc(merged, parse_avcc(read_avcc(_read_moov(piece))))
            rewrite_mp4(joined, dest, build_avcc(merged))
        except BitstreamError as exc:
            return f"the clip's avcC could not be rewritten ({exc})"
    if head_count:
        job.joins.append(float((keyframe - frames.first) * tb))
    if tail_count:
        job.joins.append(float((mid_end - frames.first) * tb))
    parts = [f"re-encoded {head_count} head frame(s)"]
    if tail_count:
        parts.append(f"{tail_count} tail frame(s)")
    note = f"smart: {' and '.join(parts)}, stream-copied {mid_count} (of {frames.count} frames)"
    if encodes:
        note += f"; re-encoded pieces use {how}"
    if info.vfr:
        note += "; variable frame rate kept (source timestamps)"
    if streams_note:
        note += f"; {streams_note}"
    return "smart", 0.0, note


def _read_moov(path: Path) -> bytes:
    moov = _mp4_moov(path)
    if moov is None:
        raise BitstreamError(f"{path.name} has no moov box")
    return moov


def _source_avcc(path: Path) -> AvcC | str:
    """The source's ``avcC`` record, or why there is none to join to."""
    moov = _mp4_moov(path)
    if moov is None:
        return "the source is not an MP4 file, so its H.264 configuration (avcC) cannot be reused"
    try:
        record = parse_avcc(read_avcc(moov))
    except BitstreamError as exc:
        return f"the source's avcC cannot be read ({exc})"
    if record.length_size != 4:
        return f"the source uses {record.length_size}-byte NAL lengths (x264 writes 4)"
    return record


def _piece_problems(
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


def _keyframe_codec_fallback_reason(info: MediaInfo, fmt: Format) -> str | None:
    """Why a VP9 or AV1 source cannot be smart-cut into ``fmt``, or None."""
    video = info.video
    allowed = _VP9_PIX_FMTS if video.codec == "vp9" else _AV1_PIX_FMTS
    if video.pix_fmt not in allowed:
        return (
            f"the source pixel format is {video.pix_fmt} ({video.codec} smart cutting: "
            f"{', '.join(sorted(allowed))} only)"
        )
    if video.index != 0:
        return "the video is not the source's first stream (the concat demuxer needs that)"
    if video.rotation:
        return "the source is rotated (the re-encoded head would be turned upright)"
    return None


def _colour_args(info: MediaInfo) -> list[str]:
    args: list[str] = []
    for key, value in info.video.colour:
        args += [_COLOUR_OPTIONS[key], value]
    return args


def _head_input_args(info: MediaInfo, frames: FrameRange, count: int, threads: int) -> list[str]:
    """Input options reading the first ``count`` frames of ``frames`` (source timestamps kept)."""
    args: list[str] = []
    if threads > 0:
        args += ["-threads", str(threads)]
    args += ["-seek_timestamp", "1", "-ss", seconds_arg(frames.start_s)]
    until = frames.start_s + count * info.video.frame_duration
    if info.vfr:  # frames may be farther apart than the nominal rate says
        after = sorted(p.pts for p in frames.packets if p.pts >= frames.first)
        until = frames.seconds(after[min(count, len(after) - 1)])
    args += ["-t", seconds_arg(until - frames.start_s + 0.5), "-i", str(info.path)]
    args += ["-map", f"0:{info.video.index}", "-an", "-sn", "-dn"]
    # Source timestamps go through to the encoder and the piece unchanged (VFR stays VFR).
    args += ["-fps_mode", "passthrough", "-enc_time_base:v", "-1", "-frames:v", str(count)]
    return args


def _head_output_args(info: MediaInfo, dest: Path) -> list[str]:
    """The head piece: MP4 in the source's time base (no rounding of copied timestamps)."""
    tb = info.video.time_base
    args = ["-video_track_timescale", str(tb.denominator), "-map_metadata", "-1"]
    return [*args, "-f", "mp4", str(dest)]


def vp9_head_args(
    info: MediaInfo, frames: FrameRange, count: int, quality: Quality, threads: int, dest: Path
) -> list[str]:
    """Re-encode the first ``count`` frames of ``frames`` with libvpx-vp9 in the source's
    profile, bit depth and colour."""
    pix_fmt = info.video.pix_fmt or "yuv420p"
    args = _head_input_args(info, frames, count, threads)
    args += ["-c:v", "libvpx-vp9", "-crf", str(quality.crf or VP9_CRF_DEFAULT), "-b:v", "0"]
    args += ["-deadline", "realtime", "-cpu-used", str(_VP9_SPEED.get(quality.preset, 8))]
    args += ["-row-mt", "1", "-pix_fmt", pix_fmt, "-profile:v", _VP9_PIX_FMTS[pix_fmt]]
    if threads > 0:
        args += ["-threads", str(threads)]
    args += _colour_args(info)
    return [*args, *_head_output_args(info, dest)]


def av1_head_args(
    info: MediaInfo,
    frames: FrameRange,
    count: int,
    quality: Quality,
    threads: int,
    dest: Path,
    encoder: str,
    source: av1bits.SequenceHeader,
) -> list[str]:
    """Re-encode the first ``count`` frames of ``frames`` to AV1 with ``encoder`` (libsvtav1 or
    libaom-av1), asking for the source's sequence-header tools where the encoder lets us."""
    pix_fmt = info.video.pix_fmt or "yuv420p"
    crf = str(quality.crf or AV1_CRF_DEFAULT)
    args = _head_input_args(info, frames, count, threads)
    args += ["-pix_fmt", pix_fmt, *_colour_args(info)]
    if encoder == "libsvtav1":
        args += ["-c:v", "libsvtav1", "-preset", str(_SVT_PRESET.get(quality.preset, 10))]
        args += ["-crf", crf]
        params = [f"lp={threads}"] if threads > 0 else []
        # No keyframe but the first: the head ends where the source's keyframe takes over.
        args += ["-g", str(count + 1)]
        if params:
            args += ["-svtav1-params", ":".join(params)]
    else:
        args += ["-c:v", "libaom-av1", "-usage", "good", "-cpu-used", "8", "-crf", crf]
        args += ["-b:v", "0", "-row-mt", "1", "-g", str(count + 1)]
        if threads > 0:
            args += ["-threads", str(threads)]
        for flag, option in _AOM_TOOL_OPTIONS.items():
            args += [option, str(int(source[flag]))]
        args += ["-aom-params", f"sb-size={128 if source['use_128x128_superblock'] else 64}"]
    return [*args, *_head_output_args(info, dest)]


def _av1_header(path: Path, at: float | None = None) -> av1bits.SequenceHeader | str:
    """The sequence header of ``path``'s first video packet (at ``at`` seconds), or why not."""
    try:
        header = av1bits.sequence_header_of(first_video_packet(path, at))
    except BitstreamError as exc:
        return f"its AV1 sequence header cannot be parsed ({exc})"
    return header if header is not None else "its keyframe carries no AV1 sequence header"


def _encode_av1_head(
    job: SmartCut,
    count: int,
    dest: Path,
    keyframe_s: float,
    on_progress: Callable[[float], None] | None = None,
) -> tuple[str, str] | str:
    """Encode the AV1 head with the first encoder whose sequence header matches the source's:
    (encoder, note) or why none did."""
    info, frames = job.info, job.frames
    source = _av1_header(info.path, keyframe_s)
    if isinstance(source, str):
        return f"the source's keyframe: {source}"
    problems = []
    for encoder in AV1_HEAD_ENCODERS:
        run_ffmpeg(
            av1_head_args(info, frames, count, job.quality, job.threads, dest, encoder, source),
            duration=keyframe_s - frames.start_s,
            on_progress=on_progress,
            stop=job.stop,
        )
        head = _av1_header(dest)
        if isinstance(head, str):
            problems.append(f"{encoder}: the head's {head}")
            continue
        diff = av1bits.differences(source, head)
        if not diff:
            return encoder, ""
        problems.append(f"{encoder}: {'; '.join(diff[:4])}")
    return (
        "no AV1 encoder here makes a sequence header that matches the source's "
        f"({' / '.join(problems)})"
    )


def _run_smart_keyframes(job: SmartCut) -> SmartResult:
    """VP9 and AV1: re-encoded head up to the first keyframe, then the source copied to the exact
    end.

    VP9 and AV1 packets come in presentation order (a hidden alt-ref frame travels inside the
    packet of the frame shown with it, AV1's temporal unit holds exactly one shown frame), so any
    prefix of the packets from a keyframe shows exactly those frames: no tail needs re-encoding.
    A keyframe resets every reference, so the copied part does not depend on the head's encoder
    settings beyond what its headers declare: VP9's profile, bit depth and frame size; AV1's
    whole sequence header (tool flags included), checked structurally after encoding.
    """
    info, frames, fmt, dest, work = job.info, job.frames, job.fmt, job.dest, job.work
    codec = info.video.codec
    tb = info.video.time_base
    packets = list(frames.packets)
    key_index = next(
        (i for i, p in enumerate(packets) if p.key and frames.first <= p.pts <= frames.last),
        None,
    )
    if key_index is None:
        return "no keyframe inside the segment, so nothing can be stream-copied"
    if has_leading_pictures(packets, key_index):
        return "the source's packets are not in presentation order"
    keyframe = packets[key_index].pts
    head_count = sum(1 for p in packets if frames.first <= p.pts < keyframe)
    mid_count = frames.count - head_count
    stages = _Stages([head_count * 1.0, mid_count * 0.03], job.on_progress)
    mid_start = float(keyframe * tb)
    entries: list[str] = []
    how = ""
    if head_count:
        head = work / "head.mp4"
        if codec == "av1":
            encoded = _encode_av1_head(job, head_count, head, mid_start, stages.callback(0))
            if isinstance(encoded, str):
                return encoded
            how = f" with {encoded[0]} (sequence header matches the source's)"
        else:
            run_ffmpeg(
                vp9_head_args(info, frames, head_count, job.quality, job.threads, head),
                duration=mid_start - frames.start_s,
                on_progress=stages.callback(0),
                stop=job.stop,
            )
            pix_fmt = info.video.pix_fmt or "yuv420p"
            how = f" with libvpx-vp9 ({pix_fmt}, profile {_VP9_PIX_FMTS[pix_fmt]})"
        entries.append(f"file '{head.name}'\nduration {seconds_arg(mid_start - frames.start_s)}\n")
    entry = f"file '{_concat_quote(info.path.resolve())}'\ninpoint {seconds_arg(mid_start)}\n"
    if not frames.at_eof:
        entry += f"outpoint {_floor_us(frames.end * tb)}\n"
    entry += f"duration {seconds_arg(float((frames.end - keyframe) * tb))}\n"
    entries.append(entry)
    listing = work / "pieces.ffconcat"
    listing.write_text("ffconcat version 1.0\n" + "".join(entries), encoding="utf-8")
    args = ["-f", "concat", "-safe", "0", "-i", str(listing)]
    if info.audio is not None:
        # The audio's length is a packet count (-frames:a below): -t on copied Opus ended the
        # audio up to three packets before the video.
        args += ["-seek_timestamp", "1", "-ss", seconds_arg(frames.start_s), "-i", str(info.path)]
    # No -frames:v: reaching it ends every stream of the output, and the audio lost its last
    # packets; the concat entries' outpoint and duration end the video.
    args += ["-map", "0:v:0", "-c:v", "copy"]
    audio_note = ""
    if info.audio is not None:
        args += ["-map", f"1:{info.audio.index}"]
        if info.audio.codec in _COPYABLE_AUDIO[fmt]:
            args += ["-c:a", "copy", "-copypriorss:a", "0"]
        else:  # one piece from the source, so re-encoding it costs no join
            encoder = audio_encoder_args(fmt, job.quality)
            args += encoder
            audio_note = (
                f"; the {info.audio.codec} audio was re-encoded to "
                f"{encoder[1].removeprefix('lib')} ({fmt} cannot carry it)"
            )
    if fmt == "mp4":
        args += ["-video_track_timescale", str(tb.denominator)]
    if info.audio is not None and info.audio.codec in _COPYABLE_AUDIO[fmt]:
        args += _audio_frames_args(info, frames)
    elif info.audio is not None:  # re-encoded: trimmed by its own timestamps
        args += ["-af", f"atrim=end={seconds_arg(frames.duration_s)}"]
    args += ["-map_metadata", "-1", "-map_chapters", "-1", *container_args(fmt), str(dest)]
    run_ffmpeg(args, duration=frames.duration_s, on_progress=stages.callback(1), stop=job.stop)
    if head_count:
        job.joins.append(mid_start - frames.start_s)
    note = (
        f"smart: re-encoded {head_count} head frame(s){how}, "
        f"stream-copied {mid_count} (of {frames.count} frames) to the exact end"
    )
    if info.vfr:
        note += "; variable frame rate kept (source timestamps)"
    return "smart", 0.0, note + audio_note


def _audio_frames_args(info: MediaInfo, frames: FrameRange) -> list[str]:
    """``-frames:a N``: the source's audio packets that start in the clip's time range (copied
    with ``-copypriorss 0``, so the first is the first at or after its start)."""
    assert info.audio is not None
    start, end = frames.start_s, frames.start_s + frames.duration_s
    rows = ffprobe_csv(
        ["-select_streams", f"{info.audio.index}", "-read_intervals", f"{start:.6f}%{end + 1:.6f}"]
        + ["-show_entries", "packet=pts_time", str(info.path)]
    )
    times = [float(r[0]) for r in rows if r and r[0] not in ("", "N/A")]
    count = sum(1 for t in times if start - float(TOLERANCE) <= t < end - float(TOLERANCE))
    return ["-frames:a", str(max(1, count))] if times else ["-t", seconds_arg(frames.duration_s)]


def has_leading_pictures(packets: Sequence[Packet], index: int) -> bool:
    """True when a packet after ``packets[index]`` in decode order is shown before it (pure):
    leading pictures, as an open GOP has, which may refer to the previous GOP."""
    key = packets[index].pts
    return any(p.pts < key for p in packets[index + 1 :])


def _concat_quote(path: Path) -> str:
    """A path for an ffconcat ``file`` line (single quotes escaped)."""
    return str(path).replace("'", "'\\''")


def _floor_us(seconds: Fraction) -> str:
    """Seconds rounded down to the microsecond (for a strict ``>=`` comparison)."""
    micro = math.floor(seconds * 1_000_000)
    return f"{micro // 1_000_000}.{micro % 1_000_000:06d}"


def thumbnail_args(source: Path, at: float, dest: Path, width: int = 640) -> list[str]:
    """Arguments for one JPEG frame at ``at`` seconds, at most ``width`` pixels wide."""
    import ffmpeg as ffmpeg_python

    stream = (
        ffmpeg_python.input(str(source), ss=seconds_arg(max(0.0, at)))
        .filter("scale", f"min({width},iw)", -2)
        .output(str(dest), vframes=1, **{"q:v": 3, "f": "image2", "update": 1})
    )
    return compile_args(stream.overwrite_output())


def make_thumbnail(source: Path, at: float, dest: Path) -> None:
    """Write a JPEG of the frame at ``at`` seconds (the first frame when ``at`` is past the end)."""
    dest = Path(dest)
    for when in (at, 0.0):
        dest.unlink(missing_ok=True)
        run_ffmpeg(thumbnail_args(Path(source), when, dest))
        if dest.exists() and dest.stat().st_size > 0:
            return
    raise WorkerError(ExitCode.MEDIA_TOOL, "NoThumbnail", f"no frame to make {dest.name} from")
