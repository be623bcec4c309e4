"""Every audio track, subtitle stream and language tag kept; AC-3 kept in MP4 (issue 23).

Sources: a frame-numbered video muxed with a second audio track (AC-3, German, titled), a
SubRip subtitle (French) and language tags, in Matroska; an H.264 MP4 whose audio is AC-3.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from tests.mediakit import ffprobe_json, frame_numbers, make_video, run_ffmpeg, source_times
from videojobs.models import PlannedSegment, Quality
from videojobs_worker.cut import CutOutcome, CutRequest, cut_clip
from videojobs_worker.probe import probe
from videojobs_worker.streams import SourceStream, describe, extra_stream_plan

pytestmark = pytest.mark.media

SIZE = (192, 108)
SEGMENT = (1.37, 4.61)
SRT = """1
00:00:00,500 --> 00:00:02,000
First line

2
00:00:02,500 --> 00:00:04,000
Second line

3
00:00:04,200 --> 00:00:05,800
Third line
"""


def with_streams(video: Path, dest: Path) -> Path:
    """``video`` plus a German AC-3 commentary track, French SubRip subtitles and tags."""
    srt = dest.with_suffix(".srt")
    srt.write_text(SRT, encoding="utf-8")
    tone = "sine=frequency=880:sample_rate=48000:duration=6"
    run_ffmpeg(
        ["-i", str(video), "-f", "lavfi", "-i", tone, "-i", str(srt)]
        + ["-map", "0:v", "-map", "0:a", "-map", "1:a", "-map", "2:s", "-c:v", "copy"]
        + ["-c:a:0", "copy", "-c:a:1", "ac3", "-b:a:1", "96k", "-c:s", "srt"]
        + ["-metadata:s:a:0", "language=eng", "-metadata:s:a:1", "language=ger"]
        + ["-metadata:s:a:1", "title=Kommentar", "-metadata:s:s:0", "language=fra", str(dest)]
    )
    return dest


def cut(src: Path, precision: str, dest: Path) -> CutOutcome:
    segment = PlannedSegment(index=1, title="clip", start=SEGMENT[0], end=SEGMENT[1], stem="c")
    return cut_clip(CutRequest(src, probe(src), segment, "mp4", precision, Quality(), dest))  # type: ignore[arg-type]


def subtitle_text(path: Path) -> str:
    return subprocess.run(
        ["ffmpeg", "-v", "error", "-i", str(path), "-map", "0:s:0", "-f", "srt", "-"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout


@pytest.mark.parametrize("vcodec", ["libx265", "libx264"])
def test_mkv_tracks_subtitles_and_languages_are_kept(vcodec: str, tmp_path: Path) -> None:
    video = make_video(
        tmp_path / "video.mkv", duration=6, size=SIZE, gop=45, numbered=True, vcodec=vcodec,
        preset="ultrafast",
    )  # fmt: skip
    src = with_streams(video, tmp_path / "multi.mkv")
    outcome = cut(src, "smart", tmp_path / "clip.mp4")
    note = outcome.note or ""
    assert outcome.precision_used == "smart", note
    times = source_times(src)
    planned = [i for i, t in enumerate(times) if SEGMENT[0] - 5e-4 <= t < SEGMENT[1] - 5e-4]
    assert frame_numbers(outcome.path) == planned
    streams = ffprobe_json(outcome.path)["streams"]
    kinds = [(s["codec_type"], s["codec_name"], s.get("tags", {}).get("language")) for s in streams]
    assert kinds[1:] == [
        ("audio", "aac", "eng"),
        ("audio", "ac3", "ger"),
        ("subtitle", "mov_text", "fra"),
    ], note
    assert "audio stream 2 (ac3, ger)" in note and "subtitle stream 3" in note, note
    # The cues inside the clip, at clip times (the clip starts at the first frame shown); a
    # Matroska source goes through an MP4 copy of its range, whose millisecond alignment moves
    # the cues by up to a few milliseconds (5 ms seen): within a third of a frame.
    first = times[planned[0]]
    text = subtitle_text(outcome.path)
    assert text.count("-->") == 3 and "First line" in text and "Third line" in text, text
    second = [line for line in text.splitlines() if "-->" in line][1]
    start = second.split(" --> ")[0]
    h, m, s = start.replace(",", ".").split(":")
    assert abs(int(h) * 3600 + int(m) * 60 + float(s) - (2.5 - first)) < 0.011, text
    for stream in streams[1:3]:  # every audio track as long as the video, within 1 audio frame
        assert abs(float(stream["duration"]) - float(streams[0]["duration"])) < 0.033, streams


def kept_streams(outcome: CutOutcome, audio: tuple[str, str], subtitle: str, slack: float) -> str:
    """Check that the clip holds the video, both audio tracks (codecs ``audio``) in the source's
    order with their languages (ffmpeg's MP4 muxer stores no track title), and the French
    subtitle with its three cues; every audio track within ``slack`` seconds of the video's
    length. Returns the note."""
    note = outcome.note or ""
    streams = ffprobe_json(outcome.path)["streams"]
    kinds = [(s["codec_type"], s["codec_name"], s.get("tags", {}).get("language")) for s in streams]
    assert kinds[1:] == [
        ("audio", audio[0], "eng"),
        ("audio", audio[1], "ger"),
        ("subtitle", subtitle, "fra"),
    ], note
    assert "audio stream 2 (ac3, ger)" in note and "subtitle stream 3" in note, note
    assert "left out" not in note, note
    text = subprocess.run(
        ["ffmpeg", "-v", "error", "-i", str(outcome.path), "-map", "0:s:0", "-f", "srt", "-"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert text.count("-->") == 3 and "First line" in text and "Third line" in text, text
    video = stream_seconds(streams[0])
    for stream in streams[1:3]:
        assert abs(stream_seconds(stream) - video) < slack, (note, streams)
    return note


def stream_seconds(stream: dict) -> float:
    """A stream's duration: MP4's, or the ``DURATION`` tag Matroska/WebM write."""
    if "duration" in stream:
        return float(stream["duration"])
    h, m, s = stream["tags"]["DURATION"].split(":")
    return int(h) * 3600 + int(m) * 60 + float(s)


@pytest.mark.parametrize("precision", ["accurate", "copy"])
def test_every_track_and_subtitle_kept_by_accurate_and_copy(precision: str, tmp_path: Path) -> None:
    """``accurate`` and ``copy`` keep every audio track and the subtitles with their tags, as
    the smart fast path does (they kept only the first audio track; issue 23). ``accurate``
    re-encodes every track like the first; ``copy`` copies what MP4 carries (AC-3 stays)."""
    video = make_video(
        tmp_path / "video.mkv", duration=6, size=SIZE, gop=45, numbered=True, preset="veryfast"
    )
    src = with_streams(video, tmp_path / "multi.mkv")
    outcome = cut(src, precision, tmp_path / f"{precision}.mp4")
    assert outcome.precision_used == precision, outcome.note
    if precision == "accurate":  # every track re-encoded, within one AAC frame of the video
        note = kept_streams(outcome, ("aac", "aac"), "mov_text", 0.022)
        assert "re-encoded to aac like the first" in note, note
        times = source_times(src)
        planned = [i for i, t in enumerate(times) if SEGMENT[0] - 5e-4 <= t < SEGMENT[1] - 5e-4]
        assert frame_numbers(outcome.path) == planned
    else:  # copy: ended by the video's packet count (COPY_AUDIO_SLACK) plus one AC-3 frame
        kept_streams(outcome, ("aac", "ac3"), "mov_text", 0.25 + 0.032)


@pytest.mark.parametrize("fmt", ["webm", "mp4"])
def test_every_track_and_subtitle_kept_by_the_vp9_fast_path(fmt: str, tmp_path: Path) -> None:
    """The VP9/AV1 keyframe smart path keeps every audio track and the subtitles (WebVTT in
    WebM, ``mov_text`` in MP4) with their tags; the AC-3 track is converted for WebM."""
    video = make_video(
        tmp_path / "video.webm", duration=6, size=SIZE, gop=45, numbered=True,
        vcodec="libvpx-vp9",
    )  # fmt: skip
    src = with_streams(video, tmp_path / "multi.mkv")
    segment = PlannedSegment(index=1, title="clip", start=SEGMENT[0], end=SEGMENT[1], stem="c")
    dest = tmp_path / f"smart.{fmt}"
    outcome = cut_clip(CutRequest(src, probe(src), segment, fmt, "smart", Quality(), dest))  # type: ignore[arg-type]
    assert outcome.precision_used == "smart", outcome.note
    assert "stream-copied" in (outcome.note or ""), outcome.note
    if fmt == "webm":
        note = kept_streams(outcome, ("opus", "opus"), "webvtt", 0.021)
        assert "converted audio stream 2 (ac3, ger) to opus" in note, note
    else:
        kept_streams(outcome, ("opus", "ac3"), "mov_text", 0.033)
    times = source_times(src)
    planned = [i for i, t in enumerate(times) if SEGMENT[0] - 5e-4 <= t < SEGMENT[1] - 5e-4]
    assert frame_numbers(outcome.path) == planned


def test_ac3_stays_ac3_in_mp4(tmp_path: Path) -> None:
    video = make_video(tmp_path / "v.mp4", duration=6, size=SIZE, gop=45, numbered=True,
                       preset="veryfast")  # fmt: skip
    src = tmp_path / "ac3.mp4"
    run_ffmpeg(["-i", str(video), "-c:v", "copy", "-c:a", "ac3", "-b:a", "96k", str(src)])
    for precision in ("smart", "copy"):
        outcome = cut(src, precision, tmp_path / f"{precision}.mp4")
        assert outcome.precision_used == precision, outcome.note
        audio = [s for s in ffprobe_json(outcome.path)["streams"] if s["codec_type"] == "audio"]
        assert [s["codec_name"] for s in audio] == ["ac3"], outcome.note
        assert "re-encoded to aac" not in (outcome.note or "")


def test_plan_names_what_is_left_out() -> None:
    streams = [
        SourceStream(1, "audio", "aac", "eng"),
        SourceStream(2, "audio", "vorbis", "ger"),
        SourceStream(3, "audio", "eac3", None),
        SourceStream(4, "subtitle", "subrip", "fra"),
        SourceStream(5, "subtitle", "hdmv_pgs_subtitle", "spa"),
    ]
    plan = extra_stream_plan(streams, "mp4", 1)
    assert [s.index for s in plan.audio] == [2, 3]  # in the source's order
    assert [s.index for s in plan.subtitles] == [4]
    note = describe(plan)
    assert "kept audio stream 3 (eac3) as it is" in note
    assert "converted audio stream 2 (vorbis, ger) to aac" in note
    assert "converted subtitle stream 4 (subrip, fra) to mov_text" in note
    assert "left out subtitle stream 5 (hdmv_pgs_subtitle, spa) (MP4 carries only text" in note
    webm = extra_stream_plan(streams, "webm", 1)
    assert ("3", "opus") in [(str(s.index), c) for s, c in webm.convert]
    assert any(c == "webvtt" for _, c in webm.convert)
