"""Sources whose timestamps are not plain media time, checked frame by frame (issue 23, items 2
and 3).

- MPEG-TS (HLS segments saved as ``.ts``, DVB/ATSC recordings): the first timestamp is not 0
  (1.4 s after ffmpeg's muxer) and the file has no index. Clips started 21-57 frames late, were
  short, and their video started up to 1.9 s after their audio.
- MPEG-4 Part 2 with B-frames in AVI (DivX/Xvid): the I and P packets carry no presentation
  time, and every clip held about half its planned frames.

Each source is a frame-numbered master (``make_video(numbered=True)``); the plan is made from
the times the decoder gives each frame, relative to the file's start, as a player shows them.
"""

from __future__ import annotations

import functools
import subprocess
from pathlib import Path

import pytest

from tests.mediakit import frame_numbers, make_video, run_ffmpeg
from videojobs.models import PlannedSegment, Quality
from videojobs_worker.cut import CutRequest, cut_clip
from videojobs_worker.probe import probe

pytestmark = pytest.mark.media

TOL = 0.0005
SIZE = (192, 108)
SEGMENTS = [(1.37, 4.61), (5.2, 9.53), (9.9, 11.9)]  # none starts on a keyframe


@pytest.fixture(scope="module")
def make_source(tmp_path_factory: pytest.TempPathFactory):
    root = tmp_path_factory.mktemp("clock-sources")

    @functools.cache
    def build(kind: str) -> Path:
        common = {"duration": 12, "size": SIZE, "gop": 45, "numbered": True}
        if kind == "h264_ts":
            return make_video(root / "h264.ts", preset="veryfast", **common)
        if kind == "h264_mkv":
            return make_video(root / "h264.mkv", preset="veryfast", **common)
        if kind == "mpeg2_ts":
            return make_video(
                root / "mpeg2.ts", vcodec="mpeg2video", extra=["-bf", "2", "-q:v", "4"], **common
            )
        assert kind == "mpeg4_avi"
        master = make_video(root / "master.mp4", crf=10, **common)
        out = root / "mpeg4.avi"
        run_ffmpeg(
            ["-i", str(master), "-c:v", "mpeg4", "-bf", "2", "-q:v", "3", "-g", "45"]
            + ["-c:a", "libmp3lame", str(out)]
        )
        return out

    return build


def shown_times(path: Path) -> list[float | None]:
    """The time the decoder gives each shown frame, in order (as a player shows it; ``None``
    when it gives none)."""
    out = subprocess.run(
        ["ffprobe", "-v", "error", "-select_streams", "v:0"]
        + ["-show_entries", "frame=best_effort_timestamp_time", "-of", "csv=p=0", str(path)],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    values = [line.split(",")[0] for line in out.split()]
    return [None if v == "N/A" else float(v) for v in values]


FAST = {"h264_ts", "h264_mkv"}
"""Kinds smart cuts on its fast path (from an MP4 copy of the segment's range)."""


@pytest.mark.parametrize("kind", ["h264_ts", "h264_mkv", "mpeg2_ts", "mpeg4_avi"])
def test_clips_hold_exactly_the_planned_frames(kind: str, make_source, tmp_path: Path) -> None:
    src = make_source(kind)
    info = probe(src)
    zero = info.start_time if src.suffix == ".ts" else 0.0
    times = shown_times(src)
    numbers = frame_numbers(src)
    assert len(times) == len(numbers)
    for start, end in SEGMENTS:
        planned = [
            n
            for n, t in zip(numbers, times, strict=True)
            if t is not None and start - TOL <= t - zero < end - TOL
        ]
        for precision in ("smart", "accurate"):
            segment = PlannedSegment(index=1, title="c", start=start, end=end, stem="c")
            dest = tmp_path / f"{precision}.mp4"
            outcome = cut_clip(CutRequest(src, info, segment, "mp4", precision, Quality(), dest))
            got = frame_numbers(outcome.path)
            assert got == planned, (kind, precision, start, got[:3], planned[:3], len(got))
            if precision == "smart" and kind in FAST:
                assert outcome.precision_used == "smart", outcome.note
                assert "cut from an MP4 copy of the source" in (outcome.note or "")
            else:
                assert outcome.precision_used == "accurate", outcome.note
            errors = subprocess.run(
                ["ffmpeg", "-nostdin", "-v", "error", "-i", str(outcome.path), "-f", "null", "-"],
                capture_output=True,
                text=True,
                check=False,
            ).stderr.strip()
            assert errors == "", errors


TS_SMART_SEGMENTS = [(3.1, 11.45), (1.37, 4.61), (5.2, 9.53)]
"""None starts on a keyframe (GOP 45); the first is the benchmark's (``--kinds-devices``)."""


def planned_numbers(src: Path, start: float, end: float) -> list[int]:
    """The numbers of the frames a plan from ``start`` to ``end`` holds, in source time (the
    file's time zero is its start time, as a player shows it)."""
    zero = probe(src).start_time
    times = shown_times(src)
    numbers = frame_numbers(src)
    return [
        n
        for n, t in zip(numbers, times, strict=True)
        if t is not None and start - TOL <= t - zero < end - TOL
    ]


def test_ts_smart_clips_hold_the_source_time_plan(make_source, tmp_path: Path) -> None:
    """H.264 in MPEG-TS with ``smart`` (the MP4 range route): each of 3 clips holds exactly the
    frames the plan selects in source time, frame by frame."""
    src = make_source("h264_ts")
    info = probe(src)
    assert info.start_time > 1.0  # the muxer's offset: time zero is not timestamp zero
    for start, end in TS_SMART_SEGMENTS:
        segment = PlannedSegment(index=2, title="c", start=start, end=end, stem="c")
        dest = tmp_path / "smart.mp4"
        outcome = cut_clip(CutRequest(src, info, segment, "mp4", "smart", Quality(), dest))
        planned = planned_numbers(src, start, end)
        got = frame_numbers(outcome.path)
        assert got == planned, (start, len(got), len(planned), got[:2], planned[:2])
        assert outcome.precision_used == "smart", outcome.note
        assert "cut from an MP4 copy of the source" in (outcome.note or "")


def test_ts_range_copy_shifted_by_a_frame_fails_naming_the_clip(
    make_source, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A range copy whose time zero is off by one frame (a rounding, a start offset counted
    twice) shifts the plan with it: the clip's own check cannot see it, the check in source
    time must (exit 30 naming the clip), and no clip is left behind."""
    from videojobs.models import ExitCode
    from videojobs_worker import download
    from videojobs_worker.errors import WorkerError

    real = download.normalise_range

    def off_by_a_frame(part, sei_filter=None, *, align=0.0):
        done = real(part, sei_filter, align=align)
        return download.DownloadedPart(done.path, round(done.start + 1 / 30, 6), done.end)

    monkeypatch.setattr(download, "normalise_range", off_by_a_frame)
    src = make_source("h264_ts")
    segment = PlannedSegment(index=3, title="c", start=5.2, end=9.53, stem="third")
    dest = tmp_path / "third.mp4"
    with pytest.raises(WorkerError) as caught:
        cut_clip(CutRequest(src, probe(src), segment, "mp4", "smart", Quality(), dest))
    assert caught.value.exit_code == ExitCode.CLIP_MISMATCH == 30
    assert "clip 3 (third.mp4)" in str(caught.value)
    assert not dest.exists()


def keyframe_times(path: Path) -> list[float]:
    """Presentation times of the video keyframes (the file's own timestamps)."""
    out = subprocess.run(
        ["ffprobe", "-v", "error", "-select_streams", "v:0"]
        + ["-show_entries", "packet=pts_time,flags", "-of", "csv=p=0", str(path)],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    rows = [line.split(",") for line in out.split()]
    return sorted(float(r[0]) for r in rows if len(r) > 1 and "K" in r[1] and r[0] != "N/A")


@pytest.mark.parametrize("kind", ["h264_mkv", "h264_ts"])
def test_copy_clips_hold_every_frame_from_the_keyframe_to_the_end(
    kind: str, make_source, tmp_path: Path
) -> None:
    """``copy`` of H.264 with B-frames from Matroska (and MPEG-TS): each clip starts on the
    keyframe at or before the planned start and holds every frame from there to the planned
    end (within a mini-GOP), one packet per shown frame. Matroska clips ended a GOP early: the
    seek landed a GOP before the keyframe (ffmpeg's 3/23 s backoff), that GOP was copied at
    negative times, hidden by the edit list and counted in ``-frames:v`` (issue 23)."""
    src = make_source(kind)
    info = probe(src)
    zero = info.start_time if src.suffix == ".ts" else 0.0
    times = shown_times(src)
    numbers = frame_numbers(src)
    keys = keyframe_times(src)
    for start, end in SEGMENTS:
        key = max(k for k in keys if k - zero <= start + TOL)
        wanted = [
            n
            for n, t in zip(numbers, times, strict=True)
            if t is not None and key - TOL <= t < end + zero - TOL
        ]
        segment = PlannedSegment(index=1, title="c", start=start, end=end, stem="c")
        dest = tmp_path / "copy.mp4"
        outcome = cut_clip(CutRequest(src, info, segment, "mp4", "copy", Quality(), dest))
        assert outcome.precision_used == "copy", outcome.note
        assert outcome.start_offset == pytest.approx(key - zero - start, abs=0.001)
        got = frame_numbers(outcome.path)
        assert got[0] == wanted[0], (kind, start, got[:3], wanted[:3])
        assert got == list(range(got[0], got[0] + len(got))), (kind, start)  # no gap, no repeat
        assert abs(len(got) - len(wanted)) <= 3, (kind, start, len(got), len(wanted))
        packets = subprocess.run(
            ["ffprobe", "-v", "error", "-ignore_editlist", "1", "-select_streams", "v:0"]
            + ["-show_entries", "packet=pts"]
            + ["-of", "csv=p=0", str(outcome.path)],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.split()
        assert len(packets) == len(got)  # nothing hidden by an edit list
