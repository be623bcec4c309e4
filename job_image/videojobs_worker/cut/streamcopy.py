"""``copy``: stream-copy whole packets from the keyframe at or before the start up to the clean
cut point nearest the end (no re-encoding; the clip starts on the keyframe)."""

from __future__ import annotations

import math
from fractions import Fraction
from pathlib import Path

from videojobs.models import Quality
from videojobs_worker import hevcbits
from videojobs_worker.cut.accurate import UNINDEXED_FORMATS
from videojobs_worker.cut.args import COPYABLE_AUDIO, audio_encoder_args, container_args
from videojobs_worker.cut.frames import clean_cut_points, longest_frame
from videojobs_worker.cut.request import CutJob, Format, PrecisionMode
from videojobs_worker.ffmpeg import run_ffmpeg, seconds_arg
from videojobs_worker.probe import MediaInfo, first_video_packet
from videojobs_worker.streams import copied_stream_args, with_inputs, with_outputs
from videojobs_worker.verify import Expected

COPY_AUDIO_SLACK = 0.25
"""Seconds a ``copy`` clip's audio may start or end away from its video, besides one audio
frame: the video is cut by packet count and the audio by ``-t``, which compares decode times
(B-frames: up to a few frames before the video's end)."""


DTS_SEEK_BACKOFF = Fraction(3 * 1_000_000 // 23, 1_000_000)
"""What ffmpeg subtracts from an input ``-ss`` (3/23 s, in microseconds: fftools' "dts
heuristic") when the container does not seek by presentation time and a video stream has
B-frames: every container but MP4/MOV (Matroska among them)."""

_PTS_SEEKING = ("mov,mp4",)
"""ffprobe format names (prefixes) of the demuxers that seek by presentation time."""


def copy_seek(info: MediaInfo, keyframe: int) -> tuple[Fraction, Fraction]:
    """(the input ``-ss``, the shift the output needs) so that a stream copy starts on the
    keyframe at pts ``keyframe`` with that keyframe at time 0 (pure).

    ffmpeg moves the seek of a container that does not seek by presentation time 3/23 s earlier
    when the video has B-frames, so a seek to the keyframe itself landed on the keyframe a GOP
    before; that GOP was copied too (at negative times, hidden by the MP4 edit list) and
    counted in ``-frames:v``, so the clip ended a GOP early (issue 23: H.264 in Matroska,
    "video frames: expected 283, found 223"). Such a seek is aimed the backoff (rounded up to
    whole ticks) after the keyframe, and the output shifted back by as much. MPEG-TS and other
    unindexed files are bisected by decode time and keep the backoff (the seek then lands
    before the keyframe, and the copy starts at it)."""
    tb = info.video.time_base
    at = keyframe * tb
    if (
        info.video.has_b_frames <= 0
        or info.format_name.startswith(_PTS_SEEKING)
        or info.format_name in UNINDEXED_FORMATS
    ):
        return at, Fraction(0)
    # Whole ticks, and strictly past the backoff (the -ss is parsed to the microsecond).
    ticks = math.floor(DTS_SEEK_BACKOFF / tb) + 1
    shift = ticks * tb
    return at + shift, shift


def copy_args(
    info: MediaInfo,
    keyframe: int,
    packet_count: int,
    end: int,
    fmt: Format,
    quality: Quality,
    dest: Path,
    hevc_tag: str = "hvc1",
) -> list[str]:
    """Stream copy from the keyframe at pts ``keyframe`` for ``packet_count`` video packets
    (``hevc_tag``: the MP4 sample entry of an HEVC stream, see :func:`hevc_sample_entry`)."""
    tb = info.video.time_base
    seek, shift = copy_seek(info, keyframe)
    args = ["-seek_timestamp", "1", "-ss", seconds_arg(float(seek))]
    if shift:  # a re-encoded audio track starts where the copy does, not at the -ss
        args += ["-noaccurate_seek"]
    args += ["-i", str(info.path)]
    args += ["-map", f"0:{info.video.index}"]
    if info.audio is not None:
        args += ["-map", f"0:{info.audio.index}"]
    args += ["-t", seconds_arg(float(end * tb - seek))]
    # The packet count ends the video alone (the noise filter drops the packets after it):
    # -frames:v ends every stream of the output at once, and an MPEG-TS source's audio, muxed
    # up to 0.7 s behind its video, ended 0.29 s early in a 60 s clip. -t ends the audio.
    args += ["-c:v", "copy", "-bsf:v", f"noise=drop=gte(n\\,{packet_count})"]
    if info.video.codec == "hevc" and fmt == "mp4":  # the muxer's default would be hev1
        args += ["-tag:v", hevc_tag]
    if info.audio is not None:
        if info.audio.codec in COPYABLE_AUDIO[fmt]:
            args += ["-c:a", "copy"]
        else:
            args += audio_encoder_args(fmt, quality)
    if fmt == "mp4":
        args += ["-video_track_timescale", str(tb.denominator)]
    if shift:  # the keyframe back to time 0 (see copy_seek)
        args += ["-output_ts_offset", seconds_arg(float(shift))]
    args += ["-map_metadata", "-1", "-map_chapters", "-1", "-sn", "-dn"]
    args += container_args(fmt)
    return [*args, str(dest)]


def hevc_sample_entry(info: MediaInfo, at: float) -> str:
    """``hvc1`` when the HEVC samples from the keyframe at ``at`` seconds carry no parameter
    set (VPS/SPS/PPS) in-band, so that the ``hvcC`` holds them all (what Apple players need;
    ISO/IEC 14496-15 8.4.1), else ``hev1`` (MPEG-TS always carries them in-band; so do streams
    encoded with repeated headers). Reads one packet."""
    if info.format_name in UNINDEXED_FORMATS:
        return "hev1"
    data = first_video_packet(info.path, at)
    try:
        units = hevcbits.sample_units(data, 4)
    except hevcbits.BitstreamError:
        return "hev1"  # not length-prefixed as read: Annex B, parameter sets in-band
    kinds = {(unit[0] >> 1) & 0x3F for unit in units if unit}
    in_band = kinds & {hevcbits.NAL_VPS, hevcbits.NAL_SPS, hevcbits.NAL_PPS}
    return "hev1" if in_band or not units else "hvc1"


def run_copy(job: CutJob) -> tuple[PrecisionMode, float, str | None, Expected]:
    """Stream-copy the job's range into its ``dest``: (precision, start offset, note, what the
    clip holds)."""
    info, frames, fmt, quality = job.info, job.frames, job.fmt, job.quality
    start, end, dest, on_progress, stop = job.start, job.end, job.dest, job.on_progress, job.stop
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
    tag = "hvc1"
    if info.video.codec == "hevc" and fmt == "mp4":
        tag = hevc_sample_entry(info, float(keyframe * tb))
    args = copy_args(info, keyframe, n, x, fmt, quality, dest, tag)
    # Every further audio track and text subtitle, with the tags (issue 23; streams.py).
    more_in, more_out, streams_note = copied_stream_args(
        info.path,
        info.audio.index if info.audio is not None else None,
        float(keyframe * tb),
        float((x - keyframe) * tb),
        fmt,
        job.work,
        next_input=1,
    )
    args = with_outputs(with_inputs(args, str(info.path), more_in), more_out)
    run_ffmpeg(args, duration=float((x - keyframe) * tb), on_progress=on_progress, stop=stop)
    offset = round(float(keyframe * tb) - start, 6)
    actual_end = float(x * tb)
    note = (
        f"copy: starts on the keyframe at {float(keyframe * tb):.3f}s "
        f"({-offset:.3f}s before the planned start) and ends at {actual_end:.3f}s "
        f"(planned {end:.3f}s); stream copy cannot start between keyframes"
    )
    if info.audio is not None and info.audio.codec not in COPYABLE_AUDIO[fmt]:
        codec = audio_encoder_args(fmt, quality)[1].removeprefix("lib")
        note += f"; the {info.audio.codec} audio was re-encoded to {codec} ({fmt} cannot carry it)"
    if streams_note:
        note += f"; {streams_note}"
    if tag == "hev1" and info.video.codec == "hevc" and fmt == "mp4":
        note += (
            "; the HEVC samples carry their parameter sets in-band, so the clip's sample "
            "entry is hev1 (not hvc1)"
        )
    expected = Expected(
        n,
        float((x - keyframe) * tb),
        longest_frame(info, frames),
        info.audio is not None,
        audio_slack=COPY_AUDIO_SLACK,
    )
    return "copy", offset, note, expected
