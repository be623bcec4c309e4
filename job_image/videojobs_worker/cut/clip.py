"""Cutting one clip: the request resolved to the source's frames, the mode run (with its
fallbacks), and the clip checked against the plan (:mod:`videojobs_worker.verify`)."""

from __future__ import annotations

import shutil
import tempfile
from dataclasses import replace
from fractions import Fraction
from pathlib import Path

from videojobs.models import ExitCode
from videojobs_worker.cut.accurate import (
    UNINDEXED_FORMATS,
    UNINDEXED_PREROLL,
    accurate_expected,
    run_accurate,
)
from videojobs_worker.cut.args import COPYABLE_VIDEO
from videojobs_worker.cut.frames import FrameRange, frame_range, longest_frame, nominal_rate
from videojobs_worker.cut.h264smart import SMART_PIX_FMTS, fallback_reason, run_smart
from videojobs_worker.cut.keyframes import keyframe_codec_fallback_reason, run_smart_keyframes
from videojobs_worker.cut.request import (
    CutJob,
    CutOutcome,
    CutRequest,
    Format,
    ModeResult,
    PrecisionMode,
)
from videojobs_worker.cut.streamcopy import run_copy
from videojobs_worker.cut.vfr import held_frame_reason
from videojobs_worker.depth import interlaced_reason
from videojobs_worker.errors import WorkerError
from videojobs_worker.ffmpeg import ffprobe, run_ffmpeg, seconds_arg
from videojobs_worker.probe import (
    MediaInfo,
    hidden_preroll,
    mp4_sample_table,
    video_packets,
)
from videojobs_worker.streams import range_copy_args
from videojobs_worker.verify import Expected, clip_facts, mismatches, verify_clip


def cut_clip(request: CutRequest) -> CutOutcome:
    """Cut ``request.segment`` out of ``request.source`` into ``request.dest``.

    Writes only ``dest`` (pieces live in a temporary directory next to it, removed on every
    path); on any failure or stop ``dest`` is removed. Raises ``WorkerError(TERMINATED)`` when
    ``stop`` is set while ffmpeg runs.
    """
    info, segment = request.info, request.segment
    if info.path != Path(request.source):
        info = replace(info, path=Path(request.source))
    dest = Path(request.dest)
    request = replace(request, info=info, dest=dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    if min(segment.end, info.duration) <= segment.start:
        raise WorkerError(
            ExitCode.PLAN_ERROR,
            "SegmentPastEnd",
            f"segment {segment.index} ({segment.start:.3f}s-{segment.end:.3f}s) starts after "
            f"the end of the source ({info.duration:.3f}s)",
        )
    work = Path(tempfile.mkdtemp(prefix=f".{dest.name}.", dir=dest.parent))
    route = _mp4_range_route(info, request.fmt, request.precision)
    if route is not None:
        try:
            return _cut_from_mp4_range(request, work, route)
        finally:
            shutil.rmtree(work, ignore_errors=True)
    try:
        precision_used, offset, note = _cut(_job(request, work))
        stop = request.stop
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
    if request.on_progress is not None:
        request.on_progress(1.0)
    return CutOutcome(dest, precision_used, offset, duration, note)


def _job(request: CutRequest, work: Path) -> CutJob:
    """The request in the source's timestamps (plan times are relative to its time zero), with
    the frames it covers."""
    info, segment = request.info, request.segment
    origin = info.origin
    start = round(segment.start + origin, 6)
    end = round(min(segment.end, info.duration) + origin, 6)
    packets = video_packets(info.path, start, end + 2.0)
    frames = frame_range(
        packets, info.video.time_base, start, end, Fraction(info.video.frame_duration)
    )
    return CutJob(
        info=info,
        frames=frames,
        start=start,
        end=end,
        label=f"clip {segment.index} ({segment.stem}.{request.fmt})",
        fmt=request.fmt,
        precision=request.precision,
        quality=request.quality,
        dest=request.dest,
        work=work,
        threads=request.threads,
        on_progress=request.on_progress,
        stop=request.stop,
    )


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
        and info.video.pix_fmt in SMART_PIX_FMTS
        and info.format_name in _CONTAINER_NAMES
    ):
        codec, container = _RANGE_CODECS[info.video.codec], _CONTAINER_NAMES[info.format_name]
        return f"{codec} in {container}, whose stream the join cannot use"
    return None


def _cut_from_mp4_range(request: CutRequest, work: Path, route: str) -> CutOutcome:
    """Cut a clip from an MP4 copy of its range (see :func:`_mp4_range_route` for when).

    The frames the segment needs are stream-copied, with their timestamps, from the keyframe at
    or before its start into an MP4, which is rewritten like a ranged download
    (:func:`videojobs_worker.download.normalise_range`: nothing hidden, time zero a known
    millisecond after the source's time zero); the clip is cut from that, with the plan shifted
    by the same milliseconds.
    """
    from videojobs_worker.download import DownloadedPart, normalise_range
    from videojobs_worker.probe import probe as probe_file

    info, segment = request.info, request.segment
    origin = info.origin
    start = segment.start + origin
    end = min(segment.end, info.duration) + origin + HIDDEN_PREROLL_MARGIN
    seek = start
    if info.format_name in UNINDEXED_FORMATS:  # bisecting seeks land late: from the keyframe
        keys = [p.pts for p in video_packets(info.path, start, start + 0.1) if p.key]
        if keys:
            seek = max(info.start_time, float(keys[0] * info.video.time_base) - UNINDEXED_PREROLL)
    piece = work / "range.mp4"
    args = ["-copyts", "-seek_timestamp", "1", "-ss", seconds_arg(seek)]
    args += ["-t", seconds_arg(end - seek), "-i", str(info.path)]
    # Every audio track and text subtitle, with its language and title (issue 23).
    args += ["-c", "copy", *range_copy_args(info.path, info.video.index)]
    args += ["-map_metadata", "-1", "-movie_timescale", "90000", "-f", "mp4"]
    run_ffmpeg([*args, str(piece)], stop=request.stop)
    # The copy keeps the source's timestamps (-copyts): the plan in source time, before the
    # rewrite below shifts them.
    planned = _source_frames(probe_file(piece), start, min(segment.end, info.duration) + origin)
    part = normalise_range(DownloadedPart(piece), align=origin)
    zero = part.start - origin  # whole milliseconds
    shifted = segment.model_copy(
        update={
            "start": round(segment.start - zero, 3),
            "end": round(min(segment.end, info.duration) - zero, 3),
        }
    )
    part_info = probe_file(part.path)
    label = f"clip {segment.index} ({segment.stem}.{request.fmt})"
    _check_same_frames(label, planned, _source_frames(part_info, shifted.start, shifted.end))
    outcome = cut_clip(replace(request, source=part.path, info=part_info, segment=shifted))
    _check_against_source_plan(label, info, outcome, planned)
    why = (
        f"cut from an MP4 copy of the source from {zero:.3f}s ({route}); times above are "
        "relative to that"
    )
    return replace(outcome, note=f"{outcome.note}; {why}" if outcome.note else why)


def _source_frames(info: MediaInfo, start: float, end: float) -> tuple[int, FrameRange]:
    """The frames with ``start <= t < end`` (the file's own timestamps) and the index of the
    first of them among all the file's frames in presentation order."""
    video = info.video
    frames = frame_range(
        video_packets(info.path, 0.0, end + 2.0),
        video.time_base,
        start,
        end,
        Fraction(video.frame_duration),
    )
    times = sorted({p.pts for p in frames.packets})
    return times.index(frames.first), frames


def _check_same_frames(
    label: str, planned: tuple[int, FrameRange], shifted: tuple[int, FrameRange]
) -> None:
    """Fail unless the plan shifted to the rewritten range copy selects the frames the plan in
    source time does (the same packets: same position, same count)."""
    (first, frames), (first_after, after) = planned, shifted
    if (first, frames.count) != (first_after, after.count):
        raise WorkerError(
            ExitCode.CLIP_MISMATCH,
            "ClipMismatch",
            f"{label}: the plan shifted to the MP4 copy of its range selects frames "
            f"{first_after}-{first_after + after.count - 1} of the copy, but in source time it "
            f"holds frames {first}-{first + frames.count - 1} (source {frames.start_s:.3f}s, "
            f"{frames.count} frames)",
        )


def _check_against_source_plan(
    label: str, info: MediaInfo, outcome: CutOutcome, planned: tuple[int, FrameRange]
) -> None:
    """Check a clip cut from a range copy against the plan in source time (not only against
    the shifted one the inner cut checked): a mismatch removes the clip and fails the cut."""
    if outcome.precision_used == "copy":  # starts on a keyframe: checked by its own plan
        return
    frames = planned[1]
    if outcome.precision_used == "accurate":
        expected = accurate_expected(info, frames)
    else:
        expected = Expected(
            frames.count, frames.duration_s, longest_frame(info, frames), info.audio is not None
        )
    problems = mismatches(expected, clip_facts(outcome.path))
    if problems:
        outcome.path.unlink(missing_ok=True)
        raise WorkerError(
            ExitCode.CLIP_MISMATCH,
            "ClipMismatch",
            f"{label} ({outcome.precision_used}, from {frames.start_s:.3f}s of the source) "
            f"does not match its plan in source time: {'; '.join(problems)}",
        )


def _cut(job: CutJob) -> ModeResult:
    """Cut, then check the clip against the plan (:mod:`videojobs_worker.verify`).

    A ``smart`` clip that does not match is cut again with ``accurate`` (the note says so); a
    clip that still does not match (or an ``accurate``/``copy`` one) fails the cut with
    ``WorkerError(CLIP_MISMATCH, "ClipMismatch")`` (permanent) naming the clip, the expected
    and found values.
    """
    precision_used, offset, note, expected = _cut_once(job)
    problems = verify_clip(job.dest, expected)
    if problems and precision_used == "smart":
        job.dest.unlink(missing_ok=True)
        streams = run_accurate(job)
        note = (
            f"smart clip failed its check ({'; '.join(problems)}), so it was re-cut with accurate"
        )
        note = "; ".join(n for n in (note, streams) if n)
        precision_used, offset = "accurate", 0.0
        problems = verify_clip(job.dest, accurate_expected(job.info, job.frames))
    if problems:
        raise WorkerError(
            ExitCode.CLIP_MISMATCH,
            "ClipMismatch",
            f"{job.label} ({precision_used}, {job.start:.3f}s-{job.end:.3f}s of the source) "
            f"does not match its plan: {'; '.join(problems)}",
        )
    return precision_used, offset, note


_Once = tuple[PrecisionMode, float, str | None, Expected]


def _cut_once(job: CutJob) -> _Once:
    """Run the job's mode: (precision used, start offset, note, what the clip should hold)."""
    if job.precision == "copy":
        return _copy(job)
    if job.precision == "smart":
        return _smart(job)
    note = None
    if job.info.vfr:
        rate = float(nominal_rate(job.info))
        note = f"variable frame rate source re-encoded at a constant {rate:g} fps"
    return _accurate(job, note)


def _accurate(job: CutJob, note: str | None) -> _Once:
    streams = run_accurate(job)  # every further stream kept; the note says how (issue 23)
    note = "; ".join(n for n in (note, streams) if n) or None
    return "accurate", 0.0, note, accurate_expected(job.info, job.frames)


def _copy(job: CutJob) -> _Once:
    """Stream copy, or frame-exact re-encoding when the codec cannot go into the format."""
    codec = job.info.video.codec
    if codec not in COPYABLE_VIDEO[job.fmt]:
        note = (
            f"copy: a {codec} stream cannot be copied into {job.fmt}; "
            "re-encoded frame-exact instead"
        )
        return _accurate(job, note)
    return run_copy(job)


def _smart(job: CutJob) -> _Once:
    """The smart cut for the source's codec, or accurate (the note says why) when it cannot."""
    info = job.info
    if info.video.codec in ("vp9", "av1"):
        reason, runner = keyframe_codec_fallback_reason(info, job.fmt), run_smart_keyframes
    elif info.video.codec == "hevc":
        from videojobs_worker.cut.hevcsmart import hevc_fallback_reason, run_smart_hevc

        reason, runner = hevc_fallback_reason(info, job.fmt), run_smart_hevc
    else:
        reason, runner = fallback_reason(info, job.fmt), run_smart
    if reason is None:  # VFR gaps and interlacing: smart cannot keep them (issue 23)
        reason = held_frame_reason(info, job.frames) or interlaced_reason(info)
    if reason is None:
        result = runner(job)
        if not isinstance(result, str):
            frames = job.frames
            expected = Expected(
                frames.count,
                frames.duration_s,
                longest_frame(info, frames),
                info.audio is not None,
                joins=tuple(job.joins),
            )
            return (*result, expected)
        reason = result
    return _accurate(job, f"smart fell back to accurate: {reason}")
