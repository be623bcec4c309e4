"""``accurate``: decode from the keyframe before the start and re-encode exactly the planned
frames (the audio alongside); also every other mode's fallback."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

from videojobs.models import Quality
from videojobs_worker.cut.args import (
    audio_encoder_args,
    container_args,
    scale_filter,
    video_encoder_args,
)
from videojobs_worker.cut.frames import FrameRange, nominal_rate
from videojobs_worker.cut.request import CutJob, Format
from videojobs_worker.cut.vfr import held_frame_reason
from videojobs_worker.depth import keep_format_args
from videojobs_worker.ffmpeg import run_ffmpeg, seconds_arg
from videojobs_worker.probe import MediaInfo
from videojobs_worker.streams import reencoded_stream_args, with_inputs, with_outputs
from videojobs_worker.verify import Expected

UNINDEXED_FORMATS = frozenset({"mpegts", "mpeg", "mpegvideo"})
"""Containers without an index: ffmpeg's seek lands near the target by bisecting the file, not
on the keyframe before it, so the decoder dropped frames up to the next keyframe (clips started
up to a GOP late, video after audio). These are read from well before the keyframe and trimmed
by timestamp."""


UNINDEXED_PREROLL = 0.2
"""Seconds before the keyframe that an unindexed source is read from."""


def held_gap(info: MediaInfo, frames: FrameRange) -> bool:
    """True when the clip's last frame is held across a gap up to the planned end (pure)."""
    return held_frame_reason(info, frames) is not None


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
    if info.format_name in UNINDEXED_FORMATS:
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
        if held_gap(info, frames):
            # The fps filter (below): it repeats a frame shown across a long gap (a screen
            # recording) up to the planned end; -fps_mode cfr ended such a clip at that frame.
            args += ["-fps_mode", "passthrough"]
        else:
            args += ["-fps_mode", "cfr", "-r", str(nominal_rate(info))]
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
    elif held_gap(info, frames):
        scale = ["-vf", ",".join([f"fps={nominal_rate(info)}", *scale[1:]])]
    args += scale
    args += video_encoder_args(fmt, quality, threads)
    args += keep_format_args(info, fmt)  # 10-bit, field order and colour kept (issue 23)
    if info.audio is not None:
        args += audio_encoder_args(fmt, quality)
    args += ["-map_metadata", "-1", "-map_chapters", "-1", "-sn", "-dn"]
    args += container_args(fmt)
    return [*args, str(dest)]


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
    chain = [f"fps={nominal_rate(info)}"] if held_gap(info, frames) else []  # accurate_args
    chain += [
        f"trim=start={seconds_arg(begin - half)}:end={seconds_arg(begin + length - half)}",
        "setpts=PTS-STARTPTS",
    ]
    scale = scale_filter(info, quality)
    chain += scale[1:]
    args += ["-vf", ",".join(chain)]
    if info.vfr and not held_gap(info, frames):
        args += ["-fps_mode", "cfr", "-r", str(nominal_rate(info))]
    else:
        args += ["-fps_mode", "passthrough"]
    if info.audio is not None:
        args += [
            "-af",
            f"atrim=start={seconds_arg(begin)}:end={seconds_arg(begin + length)},"
            "asetpts=PTS-STARTPTS",
        ]
    args += video_encoder_args(fmt, quality, threads)
    args += keep_format_args(info, fmt)  # 10-bit, field order and colour kept (issue 23)
    if info.audio is not None:
        args += audio_encoder_args(fmt, quality)
    args += ["-map_metadata", "-1", "-map_chapters", "-1", "-sn", "-dn"]
    args += container_args(fmt)
    return [*args, str(dest)]


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


def run_accurate(job: CutJob) -> str:
    """Re-encode the job's frames into its ``dest``; the note's part about the further streams
    (every audio track re-encoded, text subtitles sliced; issue 23)."""
    info, frames = job.info, job.frames
    args = accurate_args(info, frames, job.fmt, job.quality, job.dest, job.threads)
    more_in, more_out, note = reencoded_stream_args(
        info.path,
        info.audio.index if info.audio is not None else None,
        frames.start_s,
        frames.duration_s,
        job.fmt,
        job.work,
        next_input=1,
    )
    args = with_outputs(with_inputs(args, str(info.path), more_in), more_out)
    run_ffmpeg(args, duration=frames.duration_s, on_progress=job.on_progress, stop=job.stop)
    return note
