"""``copy``: stream-copy whole packets from the keyframe at or before the start up to the clean
cut point nearest the end (no re-encoding; the clip starts on the keyframe)."""

from __future__ import annotations

from pathlib import Path

from videojobs.models import Quality
from videojobs_worker.cut.args import COPYABLE_AUDIO, audio_encoder_args, container_args
from videojobs_worker.cut.frames import clean_cut_points, longest_frame
from videojobs_worker.cut.request import CutJob, Format, PrecisionMode
from videojobs_worker.ffmpeg import run_ffmpeg, seconds_arg
from videojobs_worker.probe import MediaInfo
from videojobs_worker.verify import Expected

COPY_AUDIO_SLACK = 0.25
"""Seconds a ``copy`` clip's audio may start or end away from its video, besides one audio
frame: the video is cut by packet count (``-frames:v``), and reaching that count ends the
audio too, up to a few audio packets early (measured: 0.15 s on a VFR source)."""


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
        if info.audio.codec in COPYABLE_AUDIO[fmt]:
            args += ["-c:a", "copy"]
        else:
            args += audio_encoder_args(fmt, quality)
    if fmt == "mp4":
        args += ["-video_track_timescale", str(tb.denominator)]
    args += ["-map_metadata", "-1", "-map_chapters", "-1", "-sn", "-dn"]
    args += container_args(fmt)
    return [*args, str(dest)]


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
    args = copy_args(info, keyframe, n, x, fmt, quality, dest)
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
    expected = Expected(
        n,
        float((x - keyframe) * tb),
        longest_frame(info, frames),
        info.audio is not None,
        audio_slack=COPY_AUDIO_SLACK,
    )
    return "copy", offset, note, expected
