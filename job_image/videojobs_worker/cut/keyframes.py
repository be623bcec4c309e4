"""The VP9/AV1 smart cut: a re-encoded head up to the first keyframe, then the source copied to
the exact end (see :func:`run_smart_keyframes`)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from videojobs.models import Quality
from videojobs_worker import av1bits
from videojobs_worker.cut.args import (
    COPYABLE_AUDIO,
    VP9_CRF_DEFAULT,
    VP9_SPEED,
    audio_encoder_args,
    colour_args,
    container_args,
)
from videojobs_worker.cut.frames import FrameRange, has_leading_pictures
from videojobs_worker.cut.join import Stages, audio_frames_args, concat_quote, floor_us
from videojobs_worker.cut.request import CutJob, Format, SmartResult
from videojobs_worker.ffmpeg import run_ffmpeg, seconds_arg
from videojobs_worker.h264bits import BitstreamError
from videojobs_worker.probe import MediaInfo, first_video_packet
from videojobs_worker.streams import join_stream_args

_VP9_PIX_FMTS = {"yuv420p": "0", "yuv420p10le": "2"}


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


def keyframe_codec_fallback_reason(info: MediaInfo, fmt: Format) -> str | None:
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
    args += ["-deadline", "realtime", "-cpu-used", str(VP9_SPEED.get(quality.preset, 8))]
    args += ["-row-mt", "1", "-pix_fmt", pix_fmt, "-profile:v", _VP9_PIX_FMTS[pix_fmt]]
    if threads > 0:
        args += ["-threads", str(threads)]
    args += colour_args(info)
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
    args += ["-pix_fmt", pix_fmt, *colour_args(info)]
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
    job: CutJob,
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


def run_smart_keyframes(job: CutJob) -> SmartResult:
    """VP9 and AV1: re-encoded head up to the first keyframe, then the source copied to the exact
    end.

    VP9 and AV1 packets come in presentation order (a hidden alt-ref frame travels inside the
    packet of the frame shown with it, AV1's temporal unit holds exactly one shown frame), so any
    prefix of the packets from a keyframe shows exactly those frames: no tail needs re-encoding.
    A keyframe resets every reference, so the copied part does not depend on the head's encoder
    settings beyond what its headers declare: VP9's profile, bit depth and frame size; AV1's
    whole sequence header (tool flags included), checked structurally after encoding.
    """
    frames = job.frames
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
    stages = Stages([head_count * 1.0, mid_count * 0.03], job.on_progress)
    mid_start = frames.seconds(keyframe)
    how = ""
    if head_count:
        how, reason = _encode_head(job, head_count, mid_start, stages.callback(0))
        if reason is not None:
            return reason
    listing = _keyframe_listing(job, keyframe, head_count)
    audio_note = _keyframe_concat(job, listing, stages.callback(1))
    if head_count:
        job.joins.append(mid_start - frames.start_s)
    note = (
        f"smart: re-encoded {head_count} head frame(s){how}, "
        f"stream-copied {mid_count} (of {frames.count} frames) to the exact end"
    )
    if job.info.vfr:
        note += "; variable frame rate kept (source timestamps)"
    return "smart", 0.0, note + audio_note


def _encode_head(
    job: CutJob, count: int, mid_start: float, on_progress: Callable[[float], None] | None
) -> tuple[str, str | None]:
    """Re-encode the head into ``head.mp4``: (how, for the note; None), or ("", why not) when no
    AV1 encoder made a sequence header matching the source's."""
    info, frames = job.info, job.frames
    head = job.work / "head.mp4"
    if info.video.codec == "av1":
        encoded = _encode_av1_head(job, count, head, mid_start, on_progress)
        if isinstance(encoded, str):
            return "", encoded
        return f" with {encoded[0]} (sequence header matches the source's)", None
    run_ffmpeg(
        vp9_head_args(info, frames, count, job.quality, job.threads, head),
        duration=mid_start - frames.start_s,
        on_progress=on_progress,
        stop=job.stop,
    )
    pix_fmt = info.video.pix_fmt or "yuv420p"
    return f" with libvpx-vp9 ({pix_fmt}, profile {_VP9_PIX_FMTS[pix_fmt]})", None


def _keyframe_listing(job: CutJob, keyframe: int, head_count: int) -> Path:
    """The ffconcat listing: the head (if any), then the source from the keyframe to the end."""
    info, frames = job.info, job.frames
    tb = info.video.time_base
    mid_start = float(keyframe * tb)
    entries: list[str] = []
    if head_count:
        entries.append(f"file 'head.mp4'\nduration {seconds_arg(mid_start - frames.start_s)}\n")
    entry = f"file '{concat_quote(info.path.resolve())}'\ninpoint {seconds_arg(mid_start)}\n"
    if not frames.at_eof:
        entry += f"outpoint {floor_us(frames.end * tb)}\n"
    entry += f"duration {seconds_arg(float((frames.end - keyframe) * tb))}\n"
    entries.append(entry)
    listing = job.work / "pieces.ffconcat"
    listing.write_text("ffconcat version 1.0\n" + "".join(entries), encoding="utf-8")
    return listing


def _keyframe_concat(
    job: CutJob, listing: Path, on_progress: Callable[[float], None] | None
) -> str:
    """Join the listed pieces with the source's audio (one piece) into the clip; a note when
    the audio had to be re-encoded for the format."""
    info, frames, fmt = job.info, job.frames, job.fmt
    tb = info.video.time_base
    args = ["-f", "concat", "-safe", "0", "-i", str(listing)]
    if info.audio is not None:
        # The audio's length is a packet count (-frames:a below): -t on copied Opus ended the
        # audio up to three packets before the video.
        args += ["-seek_timestamp", "1", "-ss", seconds_arg(frames.start_s), "-i", str(info.path)]
    # No -frames:v: reaching it ends every stream of the output, and the audio lost its last
    # packets; the concat entries' outpoint and duration end the video.
    # Every further audio track and subtitle, with the tags (issue 23; streams.py).
    more_in, more_out, streams_note = join_stream_args(
        info.path,
        info.audio.index if info.audio is not None else None,
        frames.start_s,
        frames.duration_s,
        fmt,
        job.work,
        next_input=2 if info.audio is not None else 1,
    )
    args += [*more_in, "-map", "0:v:0", "-c:v", "copy"]
    audio_args, audio_note = _keyframe_audio_args(job)
    args += audio_args
    if fmt == "mp4":
        args += ["-video_track_timescale", str(tb.denominator)]
    if info.audio is not None and info.audio.codec in COPYABLE_AUDIO[fmt]:
        args += [a.replace("-frames:a", "-frames:a:0") for a in audio_frames_args(info, frames)]
    elif info.audio is not None:  # re-encoded: trimmed by its own timestamps
        args += ["-filter:a:0", f"atrim=end={seconds_arg(frames.duration_s)}"]
    args += [*more_out, "-map_metadata", "-1", "-map_chapters", "-1"]
    args += [*container_args(fmt), str(job.dest)]
    run_ffmpeg(args, duration=frames.duration_s, on_progress=on_progress, stop=job.stop)
    return f"{audio_note}; {streams_note}" if streams_note else audio_note


def _keyframe_audio_args(job: CutJob) -> tuple[list[str], str]:
    """The audio's map and codec options (copied, or re-encoded when the format cannot carry
    it: one piece from the source, so that costs no join), and the note for re-encoding."""
    audio, fmt = job.info.audio, job.fmt
    if audio is None:
        return [], ""
    args = ["-map", f"1:{audio.index}"]
    if audio.codec in COPYABLE_AUDIO[fmt]:
        return [*args, "-c:a", "copy", "-copypriorss:a", "0"], ""
    encoder = audio_encoder_args(fmt, job.quality)
    note = (
        f"; the {audio.codec} audio was re-encoded to "
        f"{encoder[1].removeprefix('lib')} ({fmt} cannot carry it)"
    )
    return [*args, *encoder], note
