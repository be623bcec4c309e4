"""Ranged downloads and mid-GOP edit lists, checked frame by frame (issue 23, items 0 and 1).

Every source here is a frame-numbered master (``make_video(numbered=True)``: each frame carries
its own number), so a clip's frames are read back one by one and compared with the plan. The
sources are a minute of tiny video: long enough for separate ranges (``partialDownload:
always``; ranges further apart than ``RANGE_MERGE_GAP`` are separate files), short enough that
each test takes seconds.
"""

from __future__ import annotations

import functools
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.httpserver import MediaServer
from tests.media.conftest import probe_streams
from tests.mediakit import frame_numbers, make_video, source_times
from videojobs.models import ExitCode, PlannedSegment, Quality
from videojobs_worker.cut import CutOutcome, CutRequest, cut_clip
from videojobs_worker.download import Downloader, part_for, plan_ranges
from videojobs_worker.errors import WorkerError
from videojobs_worker.probe import probe
from videojobs_worker.verify import Expected, verify_clip

pytestmark = pytest.mark.media

FPS = 30
GOP = 90  # 3 s: segments start and end between keyframes
SIZE = (192, 108)  # the frame number needs 192 pixels
DURATION = 60
TOL = 0.0005
SEGMENTS = [(12.37, 18.87), (53.2, 58.47)]  # more than 30 s apart: two range files
KINDS = {
    "h264": ("mp4", {"preset": "veryfast"}),
    "vp9": ("webm", {"vcodec": "libvpx-vp9"}),
    "av1": ("mp4", {"vcodec": "libsvtav1"}),
}


@pytest.fixture(scope="module")
def masters(tmp_path_factory: pytest.TempPathFactory):
    root = tmp_path_factory.mktemp("numbered")

    @functools.cache
    def build(kind: str) -> Path:
        suffix, options = KINDS[kind]
        return make_video(
            root / f"{kind}.{suffix}",
            duration=DURATION,
            size=SIZE,
            gop=GOP,
            numbered=True,
            **options,
        )

    return root, build


@pytest.fixture(scope="module")
def server(masters) -> Iterator[MediaServer]:
    with MediaServer(masters[0]) as srv:
        yield srv


def planned_numbers(master: Path, start: float, end: float) -> list[int]:
    """The master's frames a clip of [start, end) must hold (frame n of the master is its
    n-th frame in presentation order, numbered n)."""
    return [n for n, t in enumerate(source_times(master)) if start - TOL <= t < end - TOL]


def cut(src: Path, start: float, end: float, fmt: str, precision: str, dest: Path) -> CutOutcome:
    segment = PlannedSegment(index=1, title="clip", start=start, end=end, stem="clip")
    return cut_clip(CutRequest(src, probe(src), segment, fmt, precision, Quality(), dest))  # type: ignore[arg-type]


def decode_errors(path: Path) -> str:
    proc = subprocess.run(
        ["ffmpeg", "-nostdin", "-v", "error", "-xerror", "-i", str(path), "-f", "null", "-"],
        capture_output=True,
        text=True,
        check=False,
    )
    return proc.stderr.strip() if proc.returncode == 0 else f"exit {proc.returncode}"


def check_copy(
    numbers: list[int], planned: list[int], start: float, times: list[float], outcome: CutOutcome
) -> None:
    """``copy`` as documented: from the keyframe at or before the start, every frame in order,
    ending within a mini-GOP of the planned end; the offset reported."""
    keyframe = planned[0] // GOP * GOP
    assert numbers[0] == keyframe, outcome.note
    assert numbers == list(range(numbers[0], numbers[0] + len(numbers))), outcome.note
    assert abs(numbers[-1] - planned[-1]) <= 3, outcome.note
    assert abs(outcome.start_offset - (times[keyframe] - start)) < 0.002


@pytest.mark.parametrize("kind", list(KINDS))
def test_ranged_download_clips_are_frame_exact(
    kind: str, masters, server: MediaServer, tmp_path: Path
) -> None:
    master = masters[1](kind)
    fmt = KINDS[kind][0]
    ranges = plan_ranges(SEGMENTS, float(DURATION))
    assert len(ranges) == 2
    downloaded = Downloader(tmp_path / "dl", policy=None).download(
        server.url(master.name), ranges=ranges
    )
    assert downloaded.partial and len(downloaded.parts) == 2
    for start, end in SEGMENTS:
        part = part_for(downloaded.parts, start, end)
        assert part.start <= start
        rebased = (round(start - part.start, 3), round(end - part.start, 3))
        planned = planned_numbers(master, start, end)
        for precision in ("smart", "accurate", "copy"):
            outcome = cut(part.path, *rebased, fmt, precision, tmp_path / f"{precision}.{fmt}")
            numbers = frame_numbers(outcome.path)
            assert decode_errors(outcome.path) == "", (kind, precision)
            if precision == "copy":
                check_copy(numbers, planned, start, source_times(master), outcome)
                continue
            assert numbers == planned, (kind, precision, start, numbers[:3], planned[:3])
            if precision == "smart":
                assert outcome.precision_used == "smart", outcome.note
        # The same cut of the whole file gives the same frames.
        whole = cut(master, start, end, fmt, "smart", tmp_path / f"whole.{fmt}")
        assert frame_numbers(whole.path) == planned


def test_mid_gop_edit_list_mp4_is_cut_exact(masters, tmp_path: Path) -> None:
    """Item 1: what ``ffmpeg -ss X -i in.mp4 -c copy out.mp4`` writes (an edit list starting in
    the middle of a GOP). ``smart`` copied the middle from a GOP too early (345 frames for 255)
    and ``copy`` lost a GOP; now ``smart`` takes its fast path with exactly the planned frames
    and ``copy`` starts on the keyframe before the start."""
    master = masters[1]("h264")
    cut_src = tmp_path / "lossless-cut.mp4"
    subprocess.run(
        ["ffmpeg", "-nostdin", "-v", "error", "-y", "-ss", "10.37", "-t", "20", "-i", str(master)]
        + ["-c", "copy", str(cut_src)],
        check=True,
    )
    shown = frame_numbers(cut_src)
    times = source_times(cut_src)
    visible = [t for t in times if t >= -TOL]
    assert len(visible) == len(shown)  # the hidden pre-roll is not shown
    for start, end in [(2.0, 10.5), (11.23, 17.5)]:
        planned = [shown[i] for i, t in enumerate(visible) if start - TOL <= t < end - TOL]
        for precision in ("smart", "accurate", "copy"):
            outcome = cut(cut_src, start, end, "mp4", precision, tmp_path / f"{precision}.mp4")
            numbers = frame_numbers(outcome.path)
            assert decode_errors(outcome.path) == ""
            assert outcome.precision_used == precision, outcome.note  # smart: the fast path
            assert "its MP4 edit list hides frames" in (outcome.note or "")
            if precision == "copy":  # from the keyframe before the start (a hidden one too)
                assert numbers[0] == planned[0] // GOP * GOP
                assert numbers == list(range(numbers[0], numbers[0] + len(numbers)))
                assert abs(numbers[-1] - planned[-1]) <= 3
            else:
                assert numbers == planned, (precision, outcome.note)


def test_a_wrong_clip_is_named_with_expected_and_found(masters, tmp_path: Path) -> None:
    """The check itself: a clip that differs from the plan is reported, never passed."""
    master = masters[1]("h264")
    clip = tmp_path / "c.mp4"
    outcome = cut(master, 12.37, 18.87, "mp4", "accurate", clip)
    frames = len(frame_numbers(outcome.path))
    right = Expected(frames, frames / FPS, 1 / FPS, audio=True, decode_all=True)
    assert verify_clip(clip, right) == []
    problems = verify_clip(clip, Expected(frames + 50, (frames + 50) / FPS, 1 / FPS, True))
    assert f"video frames: expected {frames + 50}, found {frames}" in problems
    assert any(p.startswith("video duration: expected") for p in problems)
    assert verify_clip(clip, Expected(frames, frames / FPS, 1 / FPS, audio=False)) == [
        "audio stream: expected none, found one"
    ]


def test_a_clip_that_fails_its_check_fails_the_cut(
    masters, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """accurate has no safer method: a mismatch is a WorkerError naming clip, expected, found.
    smart retries with accurate and says so."""
    import videojobs_worker.cut.clip as cutting

    master = masters[1]("h264")
    real = cutting.accurate_expected

    def one_more(info, frames):
        found = real(info, frames)
        return Expected(found.frames + 1, found.duration, found.frame_duration, found.audio)

    monkeypatch.setattr(cutting, "accurate_expected", one_more)
    with pytest.raises(WorkerError) as caught:
        cut(master, 12.37, 18.87, "mp4", "accurate", tmp_path / "a.mp4")
    assert caught.value.reason == "ClipMismatch"
    assert caught.value.exit_code == ExitCode.CLIP_MISMATCH and caught.value.exit_code.permanent
    assert "clip 1 (clip.mp4)" in caught.value.message
    assert "video frames: expected 196, found 195" in caught.value.message
    assert not (tmp_path / "a.mp4").exists()

    monkeypatch.setattr(cutting, "accurate_expected", real)
    real_verify = cutting.verify_clip
    calls: list[Expected] = []

    def smart_fails_once(path: Path, expected: Expected) -> list[str]:
        calls.append(expected)
        if len(calls) == 1:
            return ["video frames: expected 195, found 245"]
        return real_verify(path, expected)

    monkeypatch.setattr(cutting, "verify_clip", smart_fails_once)
    outcome = cut(master, 12.37, 18.87, "mp4", "smart", tmp_path / "s.mp4")
    assert outcome.precision_used == "accurate"
    assert "smart clip failed its check (video frames: expected 195, found 245)" in (
        outcome.note or ""
    )
    assert "re-cut with accurate" in (outcome.note or "")
    assert frame_numbers(outcome.path) == planned_numbers(master, 12.37, 18.87)


def test_ranged_dash_download_merges_video_and_audio_exactly(masters, tmp_path: Path) -> None:
    """Separate video and audio formats (DASH, as YouTube serves them): each range is fetched
    per format and merged; the merge keeps the timestamps too, so clips stay frame-exact."""
    from tests.mediakit import run_ffmpeg

    master = masters[1]("h264")
    root = tmp_path / "dash"
    root.mkdir()
    run_ffmpeg(
        ["-i", str(master), "-map", "0:v", "-map", "0:a", "-c", "copy", "-f", "dash"]
        + ["-seg_duration", "3", str(root / "manifest.mpd")]
    )
    with MediaServer(root) as srv:
        downloaded = Downloader(tmp_path / "dl", policy=None).download(
            srv.url("manifest.mpd"), ranges=plan_ranges(SEGMENTS, float(DURATION))
        )
    assert downloaded.partial
    assert set(probe_streams(downloaded.parts[0].path)) == {"format", "video", "audio"}
    for start, end in SEGMENTS:
        part = part_for(downloaded.parts, start, end)
        rebased = (round(start - part.start, 3), round(end - part.start, 3))
        for precision in ("smart", "accurate"):
            outcome = cut(part.path, *rebased, "mp4", precision, tmp_path / f"{precision}.mp4")
            assert frame_numbers(outcome.path) == planned_numbers(master, start, end), precision
            assert outcome.precision_used == precision, outcome.note
