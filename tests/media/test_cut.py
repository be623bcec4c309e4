"""cut_clip, probe and make_thumbnail with real ffmpeg on generated sources.

Every clip is checked with ffprobe and by matching its first and last frames against the source
frames: frame-exact modes must start on the first source frame at or after the planned start and
end on the last one before the planned end, with no hidden (edit-list) pre-roll.
"""

from __future__ import annotations

import functools
import math
import os
import threading
from pathlib import Path

import pytest

from tests.media.conftest import (
    FPS,
    GOP,
    Sources,
    best_match,
    decode_errors,
    probe_streams,
    tiny_frames,
    video_packet_pts,
)
from tests.mediakit import run_ffmpeg
from videojobs.models import ExitCode, PlannedSegment, Quality
from videojobs_worker.cut import CutOutcome, CutRequest, cut_clip, make_thumbnail
from videojobs_worker.errors import WorkerError
from videojobs_worker.probe import keyframes, probe, to_source_info

pytestmark = pytest.mark.media


def segment(start: float, end: float) -> PlannedSegment:
    return PlannedSegment(index=1, title="clip", start=start, end=end, stem="clip")


def cut(
    src: Path, start: float, end: float, fmt: str, precision: str, dest_dir: Path, **kwargs
) -> CutOutcome:
    quality = kwargs.pop("quality", Quality())
    dest = dest_dir / f"clip-{precision}.{fmt}"
    return cut_clip(
        CutRequest(src, probe(src), segment(start, end), fmt, precision, quality, dest, **kwargs)
    )


def first_frame_at(t: float) -> int:
    """Number of the first 30 fps frame at or after ``t`` (plans are millisecond-rounded)."""
    return math.ceil(round((t - 0.0005) * FPS, 6))


@functools.cache
def source_frames(path: Path) -> list[bytes]:
    return tiny_frames(path)


def assert_frame_exact(src: Path, out: Path, start: float, end: float) -> None:
    first, stop = first_frame_at(start), first_frame_at(end)
    count = stop - first
    streams = probe_streams(out)
    video = streams["video"]
    # WebM: ffmpeg shifts both streams by Opus' 6.5 ms pre-skip so no timestamp is negative.
    shift = 0.0075 if streams["format"]["format_name"].endswith("webm") else 1e-3
    assert abs(float(video["start_time"])) < shift, "the clip must start at 0"
    # No hidden pre-roll: every packet is shown, none has a negative timestamp.
    assert int(video["nb_read_packets"]) == int(video["nb_read_frames"]) == count
    assert min(video_packet_pts(out)) >= 0
    assert abs(float(video.get("duration") or streams["format"]["duration"]) - (end - start)) < (
        1 / FPS + shift
    )
    frames = tiny_frames(out)
    assert len(frames) == count
    assert best_match(frames[0], source_frames(src)) == first, "first frame is not the planned one"
    assert best_match(frames[-1], source_frames(src)) == stop - 1, (
        "last frame is not the planned one"
    )
    assert decode_errors(out) == ""


# ---------------------------------------------------------------- probe


def test_probe_direct_mp4(sources: Sources) -> None:
    info = probe(sources.mp4)
    assert info.container == "mp4"
    assert info.duration == pytest.approx(8.0, abs=0.05)
    assert (info.video.codec, info.video.width, info.video.height) == ("h264", 320, 240)
    assert info.video.fps == 30 and not info.vfr
    assert info.video.pix_fmt == "yuv420p" and info.video.has_b_frames > 0
    assert info.audio is not None and info.audio.codec == "aac"
    assert info.size_bytes == sources.mp4.stat().st_size
    source = to_source_info(info)
    assert (source.width, source.height, source.video_codec, source.audio_codec) == (
        320,
        240,
        "h264",
        "aac",
    )
    assert keyframes(sources.mp4, 2.0, 5.0) == pytest.approx([1.5, 3.0, 4.5])


def test_probe_webm_silent_rotated_vfr(sources: Sources) -> None:
    webm = probe(sources.webm)
    assert (webm.container, webm.video.codec, webm.audio and webm.audio.codec) == (
        "webm",
        "vp9",
        "opus",
    )
    assert probe(sources.silent).audio is None
    rotated = probe(sources.rotated)
    assert rotated.video.rotation in (90, 270)
    assert rotated.video.display_size == (240, 320)
    assert to_source_info(rotated).width == 240
    vfr = probe(sources.vfr)
    assert vfr.vfr and not probe(sources.mp4).vfr


def test_probe_rejects_non_videos(sources: Sources, tmp_path: Path) -> None:
    empty = tmp_path / "empty.mp4"
    empty.write_bytes(b"")
    html = tmp_path / "page.mp4"
    html.write_text("<html><body>Not found</body></html>")
    faststart = sources.mp4.read_bytes()
    cut_short = tmp_path / "cut-short.mp4"  # moov up front, mdat cut in half
    cut_short.write_bytes(faststart[: len(faststart) // 2])
    last_bytes = tmp_path / "last-bytes.mp4"  # only the last sample's last bytes missing
    last_bytes.write_bytes(faststart[:-16])
    webm = sources.webm.read_bytes()
    webm_short = tmp_path / "cut-short.webm"  # no sample table: ffprobe reads the last second
    webm_short.write_bytes(webm[: len(webm) * 2 // 3])
    audio_only = tmp_path / "audio.m4a"
    run_ffmpeg(["-f", "lavfi", "-i", "sine=duration=1", "-c:a", "aac", str(audio_only)])
    cases = {
        empty: "empty",
        html: "cannot read",
        cut_short: "truncated",
        last_bytes: "truncated",
        webm_short: "truncated",
        audio_only: "no video stream",
        tmp_path / "missing.mp4": "does not exist",
    }
    for path, words in cases.items():
        with pytest.raises(WorkerError) as caught:
            probe(path)
        assert caught.value.exit_code == ExitCode.NOT_A_VIDEO
        assert words in caught.value.message, caught.value.message


def test_mp4_headers_are_read_in_python_as_ffmpeg_shows_them(
    sources: Sources, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An MP4's parameter sets and x264 options come from ``avcC`` and the first sample (no
    ffmpeg run per source); they equal what ``h264_mp4toannexb`` presents. A WebM still needs
    the ffmpeg run."""
    from videojobs_worker import probe as probing

    mkv = tmp_path / "same.mkv"
    run_ffmpeg(["-i", str(sources.mp4), "-c", "copy", str(mkv)])
    expected = probing.h264_headers(mkv)  # no sample table: the ffmpeg path
    assert expected.parameter_sets and expected.x264_options.get("bframes")

    def no_ffmpeg(path: Path) -> bytes:
        raise AssertionError(f"ffmpeg run for {path}")

    monkeypatch.setattr(probing, "_first_video_packet_annexb", no_ffmpeg)
    assert probing.h264_headers(sources.mp4) == expected
    silent = probing.h264_headers(sources.silent)  # ultrafast: other options, same reading
    assert silent.x264_options["bframes"] == "0" and len(silent.parameter_sets) == 2
    with pytest.raises(AssertionError, match="ffmpeg run"):
        probing.h264_headers(mkv)


# ---------------------------------------------------------------- frame-exact modes


@pytest.mark.parametrize(
    ("start", "end"),
    [
        (1.37, 5.61),  # head, copied middle, tail
        (0.5, 7.97),
        (3.0, 6.0),  # starts on a keyframe: nothing to re-encode at the head
        (1.6, 2.9),  # no keyframe inside: re-encoded whole
        (6.2, 12.0),  # past the end: clamped to the source
    ],
)
def test_smart_is_frame_exact(sources: Sources, tmp_path: Path, start: float, end: float) -> None:
    outcome = cut(sources.mp4, start, end, "mp4", "smart", tmp_path)
    end = min(end, 8.0)
    assert_frame_exact(sources.mp4, outcome.path, start, end)
    assert outcome.start_offset == 0
    assert outcome.duration == pytest.approx(end - start, abs=1 / FPS)
    if (start, end) == (1.6, 2.9):
        assert outcome.precision_used == "accurate"
        assert "no keyframe inside" in (outcome.note or "")
    else:
        assert outcome.precision_used == "smart", outcome.note
    streams = probe_streams(outcome.path)
    assert streams["video"]["codec_name"] == "h264" and streams["audio"]["codec_name"] == "aac"


def test_accurate_mp4_and_webm(sources: Sources, tmp_path: Path) -> None:
    mp4 = cut(sources.mp4, 1.37, 5.61, "mp4", "accurate", tmp_path)
    assert (mp4.precision_used, mp4.start_offset, mp4.note) == ("accurate", 0, None)
    assert_frame_exact(sources.mp4, mp4.path, 1.37, 5.61)
    webm = cut(sources.mp4, 1.37, 5.61, "webm", "accurate", tmp_path)
    assert_frame_exact(sources.mp4, webm.path, 1.37, 5.61)
    streams = probe_streams(webm.path)
    assert streams["format"]["format_name"] == "matroska,webm"
    assert (streams["video"]["codec_name"], streams["audio"]["codec_name"]) == ("vp9", "opus")
    assert float(streams["audio"]["start_time"]) == pytest.approx(0, abs=0.01)


def test_smart_webm_falls_back_to_accurate(sources: Sources, tmp_path: Path) -> None:
    outcome = cut(sources.mp4, 1.37, 5.61, "webm", "smart", tmp_path)
    assert outcome.precision_used == "accurate"
    assert "WebM" in (outcome.note or "")
    assert_frame_exact(sources.mp4, outcome.path, 1.37, 5.61)


def test_webm_source(sources: Sources, tmp_path: Path) -> None:
    smart = cut(sources.webm, 0.9, 4.2, "mp4", "smart", tmp_path)
    assert smart.precision_used == "smart" and "libvpx-vp9" in (smart.note or "")
    assert_frame_exact(sources.webm, smart.path, 0.9, 4.2)
    assert probe_streams(smart.path)["video"]["codec_name"] == "vp9"  # vp09 in MP4
    copied = cut(sources.webm, 2.0, 4.5, "webm", "copy", tmp_path)
    assert copied.precision_used == "copy"
    keyframe = keyframes(sources.webm, 2.0, 2.0)[-1]  # 1.5 s after the source's 7 ms shift
    assert copied.start_offset == pytest.approx(keyframe - 2.0, abs=0.001)
    assert keyframe == pytest.approx(1.5, abs=0.01)
    streams = probe_streams(copied.path)
    assert streams["video"]["codec_name"] == "vp9" and streams["audio"]["codec_name"] == "opus"
    assert decode_errors(copied.path) == ""


def test_no_audio(sources: Sources, tmp_path: Path) -> None:
    for precision in ("accurate", "smart", "copy"):
        outcome = cut(sources.silent, 1.37, 4.4, "mp4", precision, tmp_path)
        streams = probe_streams(outcome.path)
        assert "audio" not in streams
        assert decode_errors(outcome.path) == ""
        if precision != "copy":
            assert outcome.precision_used == precision, outcome.note
            assert_frame_exact(sources.silent, outcome.path, 1.37, 4.4)


def test_rotated_source(sources: Sources, tmp_path: Path) -> None:
    accurate = cut(sources.rotated, 1.0, 3.0, "mp4", "accurate", tmp_path)
    video = probe_streams(accurate.path)["video"]
    # Re-encoding applies the rotation to the pixels: shown upright, no rotation left to apply.
    assert (video["width"], video["height"]) == (240, 320)
    assert not any("rotation" in s for s in video.get("side_data_list", []))
    smart = cut(sources.rotated, 1.0, 3.0, "mp4", "smart", tmp_path)
    assert smart.precision_used == "smart", smart.note
    # Smart keeps the stored pixels (copied or re-encoded alike) and the display rotation.
    assert probe(smart.path).video.rotation == probe(sources.rotated).video.rotation
    copied = cut(sources.rotated, 1.6, 3.0, "mp4", "copy", tmp_path)
    info = probe(copied.path)
    assert info.video.display_size == (240, 320)
    assert info.video.rotation == probe(sources.rotated).video.rotation
    for outcome in (accurate, smart, copied):
        assert decode_errors(outcome.path) == ""


def test_vfr_source(sources: Sources, tmp_path: Path) -> None:
    accurate = cut(sources.vfr, 1.37, 5.5, "mp4", "accurate", tmp_path)
    assert "constant 30 fps" in (accurate.note or "")
    streams = probe_streams(accurate.path)
    video = streams["video"]
    assert video["r_frame_rate"] == video["avg_frame_rate"] == "30/1"
    assert abs(float(video["duration"]) - (5.5 - 1.37)) < 1 / FPS
    assert int(video["nb_read_frames"]) == first_frame_at(5.5) - first_frame_at(1.37)
    assert float(video["start_time"]) == 0 and "audio" in streams
    assert decode_errors(accurate.path) == ""
    smart = cut(sources.vfr, 1.37, 5.5, "mp4", "smart", tmp_path)
    assert smart.precision_used == "smart", smart.note
    assert "variable frame rate kept" in (smart.note or "")
    assert decode_errors(smart.path) == ""


# ---------------------------------------------------------------- copy


def test_copy_reports_its_keyframe_snap(sources: Sources, tmp_path: Path) -> None:
    start, end = 2.2, 6.1
    outcome = cut(sources.mp4, start, end, "mp4", "copy", tmp_path)
    keyframe = (int(start * FPS) // GOP) * GOP  # frame 45, 1.5 s
    assert outcome.precision_used == "copy"
    assert outcome.start_offset == pytest.approx(keyframe / FPS - start, abs=0.001)
    assert "keyframe at 1.500s" in (outcome.note or "")
    streams = probe_streams(outcome.path)
    video = streams["video"]
    # Honest snap: the clip really starts on the keyframe, nothing hidden before it.
    assert abs(float(video["start_time"])) < 1e-3
    assert int(video["nb_read_packets"]) == int(video["nb_read_frames"])
    assert min(video_packet_pts(outcome.path)) >= 0
    frames = tiny_frames(outcome.path)
    assert best_match(frames[0], source_frames(sources.mp4)) == keyframe
    # The end is a clean stream-copy cut point within a mini-GOP of the planned end.
    last = best_match(frames[-1], source_frames(sources.mp4))
    assert abs(last + 1 - first_frame_at(end)) <= 4
    assert outcome.duration == pytest.approx((last + 1 - keyframe) / FPS, abs=0.002)
    assert streams["audio"]["codec_name"] == "aac"
    assert decode_errors(outcome.path) == ""


def test_copy_into_webm_reencodes(sources: Sources, tmp_path: Path) -> None:
    outcome = cut(sources.mp4, 2.2, 4.0, "webm", "copy", tmp_path)
    assert outcome.precision_used == "accurate" and outcome.start_offset == 0
    assert "cannot be copied into webm" in (outcome.note or "")
    assert_frame_exact(sources.mp4, outcome.path, 2.2, 4.0)


# ---------------------------------------------------------------- options, progress, stop


def test_max_height_and_progress(sources: Sources, tmp_path: Path) -> None:
    seen: list[float] = []
    outcome = cut(
        sources.mp4,
        0.5,
        6.5,
        "mp4",
        "accurate",
        tmp_path,
        quality=Quality(max_height=144, crf=30),
        on_progress=seen.append,
    )
    video = probe_streams(outcome.path)["video"]
    assert video["height"] == 144 and video["width"] % 2 == 0
    assert seen and seen[-1] == 1.0
    assert seen == sorted(seen) and all(0 <= f <= 1 for f in seen)


def _ffmpeg_children() -> list[int]:
    me = str(os.getpid())
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        fields = stat.rsplit(")", 1)[1].split()
        if fields[1] == me and "ffmpeg" in stat.split(")")[0]:
            found.append(int(entry.name))
    return found


@pytest.mark.parametrize("precision", ["accurate", "smart"])
def test_stop_kills_ffmpeg_and_leaves_nothing(
    sources: Sources, tmp_path: Path, precision: str
) -> None:
    stop = threading.Event()
    started = threading.Event()
    dest_dir = tmp_path / "out"
    dest_dir.mkdir()
    timer = threading.Thread(target=lambda: started.wait(30) and stop.set(), daemon=True)
    timer.start()
    with pytest.raises(WorkerError) as caught:
        cut(
            sources.long,
            0.7,
            19.5,
            "mp4",
            precision,
            dest_dir,
            quality=Quality(preset="slow"),
            on_progress=lambda fraction: started.set(),
            stop=stop,
        )
    assert caught.value.exit_code == ExitCode.TERMINATED
    assert list(dest_dir.iterdir()) == []  # no clip, no pieces
    assert _ffmpeg_children() == []


def test_segment_past_the_end(sources: Sources, tmp_path: Path) -> None:
    with pytest.raises(WorkerError) as caught:
        cut(sources.mp4, 9.0, 12.0, "mp4", "accurate", tmp_path)
    assert caught.value.exit_code == ExitCode.PLAN_ERROR
    assert list(tmp_path.iterdir()) == []


def test_thumbnail(sources: Sources, tmp_path: Path) -> None:
    for at in (2.5, 99.0):  # past the end falls back to the first frame
        dest = tmp_path / f"thumb-{at}.jpg"
        make_thumbnail(sources.mp4, at, dest)
        assert dest.read_bytes()[:3] == b"\xff\xd8\xff"
        video = probe_streams(dest)["video"]
        assert (video["width"], video["height"]) == (320, 240)
    rotated = tmp_path / "rotated.jpg"
    make_thumbnail(sources.rotated, 1.0, rotated)
    video = probe_streams(rotated)["video"]
    assert (video["width"], video["height"]) == (240, 320)


def test_mp4_sample_table_matches_ffprobe(sources: Sources, tmp_path: Path) -> None:
    """The Python reading of MP4 sample tables gives ffprobe's packets and durations."""
    import json
    import subprocess

    from videojobs_worker.probe import mp4_sample_table

    clip = cut(sources.mp4, 1.37, 5.61, "mp4", "smart", tmp_path).path
    for path in (sources.mp4, sources.rotated, sources.vfr, clip):
        out = subprocess.run(
            ["ffprobe", "-v", "error", "-select_streams", "v:0", "-of", "json"]
            + ["-show_entries", "packet=pts,dts,flags:stream=duration", str(path)],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        data = json.loads(out)
        expected = [(int(p["pts"]), int(p["dts"]), "K" in p["flags"]) for p in data["packets"]]
        table = mp4_sample_table(path)
        assert table is not None
        assert [(p.pts, p.dts, p.key) for p in table.packets] == expected
        assert table.duration == pytest.approx(float(data["streams"][0]["duration"]), abs=1e-3)
    assert mp4_sample_table(sources.webm) is None
