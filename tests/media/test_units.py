"""Pure parts of the cutting code: argument lists, progress parsing, cut points, WebVTT slices.

No ffmpeg runs here.
"""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import pytest

from videojobs.models import Cue, ExitCode, Quality, Transcript
from videojobs_worker.cut.accurate import accurate_args
from videojobs_worker.cut.args import video_encoder_args
from videojobs_worker.cut.frames import (
    FrameRange,
    Layout,
    clean_cut_points,
    frame_range,
    layout_from_keyframe,
)
from videojobs_worker.cut.streamcopy import copy_args
from videojobs_worker.cut.thumbnail import thumbnail_args
from videojobs_worker.cut.x264 import x264_params_like
from videojobs_worker.errors import WorkerError
from videojobs_worker.ffmpeg import (
    ProgressParser,
    classify_failure,
    ffmpeg_argv,
    seconds_arg,
)
from videojobs_worker.probe import Packet, is_vfr, parse_probe, rotation_of
from videojobs_worker.subtitles import slice_vtt

TB = Fraction(1, 15360)
FRAME = 512  # ticks per frame at 30 fps


def probe_json(**video: object) -> dict:
    stream = {
        "index": 0,
        "codec_type": "video",
        "codec_name": "h264",
        "profile": "High",
        "level": 31,
        "pix_fmt": "yuv420p",
        "width": 1280,
        "height": 720,
        "r_frame_rate": "30/1",
        "avg_frame_rate": "30/1",
        "time_base": "1/15360",
        "has_b_frames": 2,
        "refs": 1,
        "duration": "10.000000",
    }
    stream.update(video)
    audio = {
        "index": 1,
        "codec_type": "audio",
        "codec_name": "aac",
        "sample_rate": "48000",
        "channels": 2,
        "time_base": "1/48000",
    }
    return {
        "format": {"format_name": "mov,mp4,m4a,3gp,3g2,mj2", "duration": "10.010000"},
        "streams": [stream, audio],
    }


def test_parse_probe() -> None:
    info = parse_probe(Path("x.mp4"), probe_json(), 1234)
    assert info.container == "mp4" and info.duration == 10.01 and info.size_bytes == 1234
    assert (info.video.codec, info.video.fps, info.video.level) == ("h264", 30.0, 31)
    assert info.video.time_base == TB and not info.vfr
    assert info.audio is not None and (info.audio.codec, info.audio.channels) == ("aac", 2)
    rotated = parse_probe(Path("x.mp4"), probe_json(side_data_list=[{"rotation": -90}]), 1).video
    assert rotated.rotation == 270 and rotated.display_size == (720, 1280)
    assert parse_probe(Path("x.mp4"), probe_json(avg_frame_rate="4050/179"), 1).vfr


@pytest.mark.parametrize(
    ("data", "words"),
    [
        ({"format": {"duration": "3"}, "streams": [{"codec_type": "audio"}]}, "no video stream"),
        (
            {"format": {}, "streams": [probe_json()["streams"][0] | {"duration": None}]},
            "no duration",
        ),
        (
            {"format": {"duration": "3"}, "streams": [probe_json()["streams"][0] | {"width": 0}]},
            "no frame size",
        ),
    ],
)
def test_parse_probe_rejects(data: dict, words: str) -> None:
    with pytest.raises(WorkerError) as caught:
        parse_probe(Path("bad.mp4"), data, 10)
    assert caught.value.exit_code == ExitCode.NOT_A_VIDEO
    assert words in caught.value.message and "bad.mp4" in caught.value.message


def test_rotation_and_vfr_helpers() -> None:
    assert rotation_of({"side_data_list": [{"rotation": 90}]}) == 90
    assert rotation_of({"tags": {"rotate": "180"}}) == 180
    assert rotation_of({}) == 0
    assert is_vfr(Fraction(30), Fraction(4050, 179))
    assert not is_vfr(Fraction(30000, 1001), Fraction(2997, 100))
    assert not is_vfr(None, Fraction(30))


def test_progress_parser() -> None:
    parser = ProgressParser(duration=10.0)
    block = ["frame=10", "out_time_us=2500000", "out_time_ms=2500000", "progress=continue"]
    results = [parser.feed(line + "\n") for line in block]
    assert results == [None, None, None, 0.25]
    assert parser.feed("out_time_us=N/A") is None and parser.feed("progress=continue") == 0.25
    assert parser.feed("out_time_us=99000000") is None and parser.feed("progress=continue") == 1.0
    assert parser.feed("progress=end") == 1.0 and parser.ended
    assert ProgressParser(duration=None).feed("progress=continue") == 0.0
    assert ProgressParser(duration=5).feed("garbage without equals") is None


def test_failure_classification() -> None:
    full = classify_failure(
        ["ffmpeg"], 1, ["frame=1", "av_interleaved_write_frame(): No space left on device"]
    )
    assert full.exit_code == ExitCode.NO_SPACE and "scratch" in full.message
    other = classify_failure(["ffmpeg"], 1, [f"line {i}" for i in range(30)] + ["Invalid data"])
    assert other.exit_code == ExitCode.MEDIA_TOOL
    assert "Invalid data" in other.message and "line 29" in other.message
    assert "line 5" not in other.message  # only the tail is kept


def test_ffmpeg_argv_and_times() -> None:
    argv = ffmpeg_argv(["-i", "in.mp4", "out.mp4"])
    assert argv[0] == "ffmpeg" and "-nostdin" in argv and argv[-2:] == ["in.mp4", "out.mp4"]
    assert argv[argv.index("-progress") + 1] == "pipe:1" and "-nostats" in argv
    assert "-progress" not in ffmpeg_argv(["x"], progress=False)
    # Microsecond precision: ffmpeg rounds that to exactly the frame's tick.
    assert seconds_arg(float(128000 * TB)) == "8.333333"
    assert round(float(Fraction(seconds_arg(float(128000 * TB)))) / float(TB)) == 128000


def packets(*spec: tuple[int, bool]) -> list[Packet]:
    """Packets in decode order from (frame number, keyframe) pairs."""
    return [Packet(n * FRAME, n * FRAME - 2 * FRAME, key) for n, key in spec]


# x264-like order with B-frames: I0 P3 B1 B2 P4 P7 B5 B6 P8 | I9 ...
GOP = packets(
    (0, True), (3, False), (1, False), (2, False), (4, False), (7, False), (5, False),
    (6, False), (8, False), (9, True), (10, False),
)  # fmt: skip


def test_clean_cut_points() -> None:
    points = clean_cut_points(GOP, 0)
    # After I0 (shows frame 0), after the B2 (frames 0-2 + P3 shown), after P4, after B6, ...
    assert points[:4] == [(1, FRAME), (4, 4 * FRAME), (5, 5 * FRAME), (8, 8 * FRAME)]
    assert (2, 3 * FRAME) not in points  # I0 P3 alone would leave frames 1-2 out
    assert clean_cut_points(GOP, 9) == [(1, 10 * FRAME)]  # the rest is not known to be the end
    assert clean_cut_points(GOP, 9, end_of_stream=11 * FRAME) == [(1, 10 * FRAME), (2, 11 * FRAME)]
    assert clean_cut_points(GOP, 0)[-1][0] < len(GOP)


def test_frame_range() -> None:
    frames = frame_range(GOP, TB, start=1 / 30 - 0.0003, end=7 / 30 + 0.001, frame=Fraction(1, 30))
    assert (frames.first, frames.last, frames.count, frames.end) == (FRAME, 7 * FRAME, 7, 8 * FRAME)
    # A millisecond-rounded start just after a frame's exact time still includes that frame.
    assert frame_range(GOP, TB, 0.133, 0.3, Fraction(1, 30)).first == 4 * FRAME
    last = frame_range(GOP, TB, 0.2, 99.0, Fraction(1, 30))
    assert last.last == 10 * FRAME and last.end == 11 * FRAME
    with pytest.raises(WorkerError) as caught:
        frame_range(GOP, TB, 50.0, 60.0, Fraction(1, 30))
    assert caught.value.exit_code == ExitCode.PLAN_ERROR


def test_layout_from_keyframe() -> None:
    # Frames 2 to the end of the stream, copied from I9: frames 2-8 are the head, no tail.
    to_end = frame_range(GOP, TB, 2 / 30, 99.0, Fraction(1, 30))
    assert layout_from_keyframe(GOP, 9, to_end) == Layout(
        GOP, key_index=9, keyframe=9 * FRAME, head_count=7, mid_count=2, mid_end=11 * FRAME,
        tail_count=0,
    )  # fmt: skip
    # Frames 0-6 from I0: the copy stops after P4 (5 packets show frames 0-4); B5 and B6 need
    # P7, after the clip's end, so frames 5 and 6 are the re-encoded tail.
    head = frame_range(GOP, TB, 0.0, 6.5 / 30, Fraction(1, 30))
    layout = layout_from_keyframe(GOP, 0, head)
    assert isinstance(layout, Layout)
    assert (layout.head_count, layout.mid_count, layout.mid_end, layout.tail_count) == (
        0, 5, 5 * FRAME, 2,
    )  # fmt: skip
    assert layout.reencoded() == "re-encoded 0 head frame(s) and 2 tail frame(s)"
    # A clip that ends before the first clean cut point after its keyframe: no middle to copy.
    short = FrameRange(TB, 9 * FRAME, 9 * FRAME, 1, 9 * FRAME, tuple(GOP))
    assert layout_from_keyframe(GOP, 9, short) == (
        "no clean cut point between the keyframe and the end"
    )


def test_encoder_args() -> None:
    h264 = video_encoder_args("mp4", Quality(), threads=2)
    assert h264[:6] == ["-c:v", "libx264", "-preset", "veryfast", "-crf", "20"]
    assert h264[-2:] == ["-threads", "2"]
    vp9 = video_encoder_args("webm", Quality(preset="fast"), threads=0)
    joined = " ".join(vp9)
    assert "libvpx-vp9 -crf 32 -b:v 0 -deadline realtime -cpu-used 6 -row-mt 1" in joined
    assert "-threads" not in vp9
    assert "-crf 25" in " ".join(video_encoder_args("mp4", Quality(crf=25), threads=1))


def _info(**video: object):
    return parse_probe(Path("/media/src.mp4"), probe_json(**video), 1)


def test_accurate_args() -> None:
    info = _info()
    frames = FrameRange(TB, 300 * FRAME, 449 * FRAME, 150, 450 * FRAME, (), 15.0)
    args = accurate_args(info, frames, "mp4", Quality(max_height=480), Path("/tmp/o.mp4"), 0)
    # the seek is a source timestamp (not offset by the file's start time)
    assert args[:6] == ["-seek_timestamp", "1", "-ss", "10.000000", "-i", "/media/src.mp4"]
    # the frame count ends the video (a trim filter: -frames:v would end the audio with it),
    # the audio is trimmed to the same length by its own timestamps
    assert "-t" not in args and "-frames:v" not in args
    assert args[args.index("-vf") + 1] == "trim=end_frame=150,scale=-2:480"
    assert args[args.index("-af") + 1] == "atrim=end=5.000000"
    assert "+faststart" in args and args[-1] == "/tmp/o.mp4"
    assert args[args.index("-c:a") + 1] == "aac"
    webm = accurate_args(info, frames, "webm", Quality(), Path("/tmp/o.webm"), 0)
    assert webm[webm.index("-c:a") + 1] == "libopus"
    assert webm[webm.index("-vf") + 1] == "trim=end_frame=150"
    vfr = accurate_args(_info(avg_frame_rate="20/1"), frames, "mp4", Quality(), Path("o"), 0)
    assert "-frames:v" not in vfr
    assert vfr[vfr.index("-fps_mode") + 1 : vfr.index("-fps_mode") + 4] == ["cfr", "-r", "30"]
    # the last frame held across a gap up to the planned end (a screen recording, issue 23):
    # the fps filter repeats it; -fps_mode cfr stopped at it
    held = FrameRange(TB, 300 * FRAME, 449 * FRAME, 150, 500 * FRAME, (), 16.5)
    gap = accurate_args(_info(avg_frame_rate="20/1"), held, "mp4", Quality(), Path("o"), 0)
    assert gap[gap.index("-vf") + 1] == "fps=30"
    assert gap[gap.index("-fps_mode") + 1] == "passthrough"


def test_copy_args() -> None:
    args = copy_args(_info(), 250 * FRAME, 900, 1150 * FRAME, "mp4", Quality(), Path("c.mp4"))
    assert args[:4] == ["-seek_timestamp", "1", "-ss", "8.333333"]
    assert "-frames:v" not in args  # it would end the audio with the video
    assert args[args.index("-bsf:v") + 1] == "noise=drop=gte(n\\,900)"
    assert args[args.index("-t") + 1] == "30.000000"
    assert args[args.index("-c:a") + 1] == "copy"
    assert args[args.index("-video_track_timescale") + 1] == "15360"


def test_x264_params_like() -> None:
    options = {
        "cabac": "1",
        "ref": "3",
        "deblock": "1:-1:-1",
        "bframes": "3",
        "b_pyramid": "2",
        "direct": "1",
        "psy_rd": "1.00:0.00",
        "crf": "23.0",
        "threads": "6",
    }
    params = x264_params_like(options, 40).split(":")
    assert "cabac=1" in params and "ref=3" in params and "direct=spatial" in params
    assert "b-pyramid=2" in params and "level=4.0" in params
    assert not any(p.startswith("threads") for p in params)
    joined = x264_params_like(options, None)
    assert "deblock=-1\\:-1" in joined and "psy-rd=1.00\\:0.00" in joined
    assert "no-deblock=1" in x264_params_like({"deblock": "0:0:0"}, None)


def test_thumbnail_args() -> None:
    args = thumbnail_args(Path("in.mp4"), 12.5, Path("t.jpg"))
    assert args[:4] == ["-ss", "12.500000", "-i", "in.mp4"]
    assert "t.jpg" in args and args[args.index("-vframes") + 1] == "1"


def transcript() -> Transcript:
    return Transcript(
        format="webvtt",
        language="en",
        cues=[
            Cue(index=1, start=0.0, end=4.0, text="Before & during <the> cut"),
            Cue(index=2, id="two", start=5.0, end=9.5, text="inside\n\nwith a blank line"),
            Cue(index=3, start=9.5, end=12.0, text="runs past the end"),
            Cue(index=4, start=12.0, end=13.0, text="only touches the end"),
            Cue(index=5, start=20.0, end=21.0, text="later"),
        ],
    )


def test_slice_vtt() -> None:
    text = slice_vtt(transcript(), 2.0, 12.0)
    assert text == (
        "WEBVTT\nLanguage: en\n\n"
        "00:00:00.000 --> 00:00:02.000\nBefore &amp; during &lt;the&gt; cut\n\n"
        "two\n00:00:03.000 --> 00:00:07.500\ninside\nwith a blank line\n\n"
        "00:00:07.500 --> 00:00:10.000\nruns past the end\n"
    )


def test_slice_vtt_empty_and_invalid() -> None:
    assert slice_vtt(transcript(), 14.0, 19.0) == "WEBVTT\nLanguage: en\n"
    with pytest.raises(ValueError):
        slice_vtt(transcript(), 5.0, 4.0)


@pytest.mark.parametrize(
    ("video", "fmt", "words"),
    [
        ({}, "webm", "WebM"),
        ({"codec_name": "hevc"}, "mp4", "hevc"),
        ({"pix_fmt": "yuv422p"}, "mp4", "yuv422p"),
        ({"index": 1}, "mp4", "first stream"),
    ],
)
def test_smart_fallback_reasons(video: dict, fmt: str, words: str) -> None:
    from videojobs_worker.cut.h264smart import fallback_reason as _fallback_reason

    reason = _fallback_reason(_info(**video), fmt)
    assert reason is not None and words in reason
    assert _fallback_reason(_info(), "mp4") is None


@pytest.mark.parametrize(
    ("video", "fmt", "words"),
    [
        ({"codec_name": "vp9", "pix_fmt": "yuv444p"}, "webm", "yuv444p"),
        ({"codec_name": "av1", "pix_fmt": "yuv422p"}, "mp4", "yuv422p"),
        ({"codec_name": "vp9", "side_data_list": [{"rotation": 90}]}, "mp4", "rotated"),
        ({"codec_name": "av1", "index": 1}, "webm", "first stream"),
    ],
)
def test_keyframe_codec_smart_fallback_reasons(video: dict, fmt: str, words: str) -> None:
    from videojobs_worker.cut.keyframes import keyframe_codec_fallback_reason as reason_for

    reason = reason_for(_info(**video), fmt)
    assert reason is not None and words in reason
    for codec in ("vp9", "av1"):
        assert reason_for(_info(codec_name=codec), "mp4") is None
        # VFR is cut with the source's timestamps; AAC audio is re-encoded into WebM.
        assert reason_for(_info(codec_name=codec, avg_frame_rate="20/1"), "webm") is None


def test_vp9_head_args_match_the_source() -> None:
    from videojobs_worker.cut.keyframes import vp9_head_args

    info = _info(codec_name="vp9", pix_fmt="yuv420p10le", color_primaries="bt709")
    frames = FrameRange(TB, 300 * FRAME, 449 * FRAME, 150, 450 * FRAME, (), 15.0)
    args = vp9_head_args(info, frames, 12, Quality(), 2, Path("/tmp/h.mkv"))
    assert args[args.index("-pix_fmt") + 1] == "yuv420p10le"
    assert args[args.index("-profile:v") + 1] == "2"
    assert args[args.index("-color_primaries") + 1] == "bt709"
    assert args[args.index("-frames:v") + 1] == "12" and args[-1] == "/tmp/h.mkv"


def test_missing_tool_is_a_media_tool_error() -> None:
    from videojobs_worker.ffmpeg import run_process

    with pytest.raises(WorkerError) as caught:
        run_process(["/nonexistent/ffmpeg", "-version"])
    assert caught.value.exit_code == ExitCode.MEDIA_TOOL
    assert caught.value.reason == "MediaToolMissing"
