"""Check a cut clip against its plan before it is published (issue 23: "never a wrong clip").

A clip is published only when what its container says matches what the cutter planned:

- the video holds exactly the planned number of frames (one packet per shown frame: no hidden
  pre-roll, no GOP copied twice) and its decode times only go forward;
- the first frame is shown at the clip's start, and the video lasts as long as the planned
  frames do (to half a frame);
- the container's stream start times agree with the first packets;
- the audio starts and ends within one audio frame of the video;
- the parts where re-encoded and copied pieces meet decode without errors.

An audio-only clip (issue 23) is checked by :func:`audio_mismatches`: one audio stream and no
video, starting at zero, lasting the planned duration within one audio frame.

:func:`clip_facts` reads what is needed with one ffprobe run (demux only: no decoding) and
:func:`decode_errors` decodes the given windows; :func:`mismatches` compares (pure).
:func:`verify_clip` does all three and returns the list of mismatches (empty: the clip is right).
"""

from __future__ import annotations

import subprocess
from collections.abc import Sequence
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path

from videojobs.models import ExitCode
from videojobs_worker.errors import WorkerError
from videojobs_worker.ffmpeg import FFPROBE, classify_failure, seconds_arg

TIME_TOLERANCE = 0.0015
"""Seconds of slack on start times and durations besides the frame-based ones: millisecond
time bases (WebM) and the rounding of ffprobe's printed times."""
FIRST_PTS_SLACK = 0.0075
"""A WebM clip may start this late: the Matroska muxer shifts every stream by Opus' 6.5 ms
pre-skip so that no timestamp is negative."""
DECODE_WINDOW = 1.0
"""Seconds decoded after a join (and before it, within the GOP the decoder needs)."""


@dataclass(frozen=True)
class Expected:
    """What a clip must look like, from the cutter's plan."""

    frames: int
    """Video frames (and packets) in the clip."""
    duration: float
    """From the first frame shown to the end of the last one, seconds."""
    frame_duration: float
    """Nominal duration of one frame, seconds (tolerances)."""
    audio: bool
    """Whether the clip must have an audio stream."""
    frame_slack: int = 0
    """Frames the count may differ by (a VFR source normalised to a constant rate: the number
    of repeated frames depends on rounding)."""
    joins: tuple[float, ...] = ()
    """Clip times (seconds) where re-encoded and stream-copied pieces meet: decoded around."""
    decode_all: bool = False
    """Decode the whole clip."""
    audio_slack: float = 0.0
    """Seconds the audio may start or end away from the video besides one audio frame."""


@dataclass(frozen=True)
class StreamFacts:
    """One stream of a clip as the container presents it (no decoding)."""

    kind: str
    codec: str
    start: float | None
    """The container's start time of the stream, seconds."""
    packets: int
    first_pts: float | None
    last_pts: float | None
    last_duration: float | None
    """Duration of the packet shown last (``None``: the container does not say)."""
    dts_backwards: int
    """Packets whose decode time is not after the one before."""
    duplicate_pts: int
    max_packet_duration: float

    def end(self, default_duration: float) -> float | None:
        """When the last frame (or audio packet) ends, seconds."""
        if self.last_pts is None:
            return None
        if self.last_duration is None or self.last_duration <= 0:
            return self.last_pts + default_duration
        return self.last_pts + self.last_duration


@dataclass(frozen=True)
class ClipFacts:
    video: StreamFacts | None
    audio: StreamFacts | None
    decode_errors: tuple[str, ...] = field(default=())
    more_audio: tuple[StreamFacts, ...] = ()
    """Audio tracks after the first (a source's second language, a commentary)."""


def _float(text: str) -> float | None:
    try:
        return float(text)
    except ValueError:
        return None


def _stream_facts(kind: str, codec: str, start: float | None, rows: list[list[str]]) -> StreamFacts:
    pts_values: list[float] = []
    dts_values: list[float] = []
    durations: list[float] = []
    last: tuple[float, float | None] | None = None
    for pts_s, dts_s, dur_s in rows:
        pts = _float(pts_s)
        dts = _float(dts_s)
        dur = _float(dur_s)
        if pts is None:
            pts = dts
        if pts is not None:
            pts_values.append(pts)
            if last is None or pts > last[0]:
                last = (pts, dur)
        if dts is not None:
            dts_values.append(dts)
        if dur is not None:
            durations.append(dur)
    backwards = sum(1 for a, b in zip(dts_values, dts_values[1:], strict=False) if b <= a)
    duplicates = len(pts_values) - len(set(pts_values))
    return StreamFacts(
        kind=kind,
        codec=codec,
        start=start,
        packets=len(rows),
        first_pts=min(pts_values) if pts_values else None,
        last_pts=last[0] if last else None,
        last_duration=last[1] if last else None,
        dts_backwards=backwards,
        duplicate_pts=duplicates,
        max_packet_duration=max(durations, default=0.0),
    )


def clip_facts(path: Path) -> ClipFacts:
    """The clip's first video and first audio stream, from one ffprobe run (demux only)."""
    argv = [FFPROBE, "-v", "error", "-of", "csv=p=1"]
    argv += ["-show_entries", "stream=index,codec_name,codec_type,start_time"]
    argv += ["-show_entries", "packet=stream_index,pts_time,dts_time,duration_time", str(path)]
    try:
        proc = subprocess.run(argv, capture_output=True, text=True, check=False)
    except FileNotFoundError as exc:
        raise WorkerError(
            ExitCode.MEDIA_TOOL, "MediaToolMissing", f"ffprobe is not installed: {exc}"
        ) from exc
    if proc.returncode != 0:
        raise classify_failure(argv, proc.returncode, proc.stderr.splitlines())
    streams: dict[int, tuple[str, str, float | None]] = {}
    packets: dict[int, list[list[str]]] = {}
    for line in proc.stdout.splitlines():
        row = line.strip().split(",")
        if row[0] == "stream" and len(row) >= 5:
            streams[int(row[1])] = (row[3], row[2], _float(row[4]))
        elif row[0] == "packet" and len(row) >= 5:
            packets.setdefault(int(row[1]), []).append(row[2:5])
    found: dict[str, StreamFacts] = {}
    more: list[StreamFacts] = []
    for index in sorted(streams):
        kind, codec, start = streams[index]
        if kind not in ("video", "audio"):
            continue
        facts = _stream_facts(kind, codec, start, packets.get(index, []))
        if kind not in found:
            found[kind] = facts
        elif kind == "audio":
            more.append(facts)
    return ClipFacts(found.get("video"), found.get("audio"), more_audio=tuple(more))


def decode_errors(path: Path, windows: Sequence[tuple[float, float | None]]) -> list[str]:
    """Decode each ``(start, duration)`` window of ``path`` (``None``: to the end); the errors
    ffmpeg reports, one string per failing window."""
    errors = []
    for start, duration in windows:
        argv = ["ffmpeg", "-nostdin", "-hide_banner", "-v", "error"]
        if start > 0:
            argv += ["-ss", seconds_arg(start)]
        argv += ["-i", str(path)]
        if duration is not None:
            argv += ["-t", seconds_arg(duration)]
        argv += ["-map", "0:v:0", "-f", "null", "-"]
        proc = subprocess.run(argv, capture_output=True, text=True, check=False)
        text = proc.stderr.strip()
        if proc.returncode != 0 or text:
            where = f"{start:.3f}s" + ("" if duration is None else f"+{duration:.3f}s")
            lines = text.splitlines()[-3:] or [f"ffmpeg exited with {proc.returncode}"]
            errors.append(f"decoding {where}: " + " | ".join(lines))
    return errors


def decode_windows(expected: Expected) -> list[tuple[float, float | None]]:
    """The parts of a clip to decode: around every join (or all of it)."""
    if expected.decode_all or not expected.joins:
        return [(0.0, None)] if expected.decode_all else []
    windows: list[tuple[float, float | None]] = []
    for join in sorted(expected.joins):
        start = max(0.0, join - DECODE_WINDOW)
        windows.append((start, join - start + DECODE_WINDOW))
    return windows


def mismatches(expected: Expected, facts: ClipFacts) -> list[str]:
    """What differs between the plan and the clip, each as "what: expected X, found Y" (pure)."""
    out: list[str] = []
    video = facts.video
    if video is None:
        return ["video stream: expected one, found none"]
    frame = expected.frame_duration
    if abs(video.packets - expected.frames) > expected.frame_slack:
        out.append(f"video frames: expected {expected.frames}, found {video.packets}")
    if video.dts_backwards:
        out.append(f"video decode times: expected increasing, {video.dts_backwards} go backwards")
    if video.duplicate_pts:
        out.append(f"video frame times: expected distinct, {video.duplicate_pts} repeated")
    video_end = video.end(frame)
    if video.first_pts is None or video_end is None:
        out.append("video times: expected some, found none")
        return out + list(facts.decode_errors)
    if not -TIME_TOLERANCE <= video.first_pts <= FIRST_PTS_SLACK + TIME_TOLERANCE:
        out.append(f"first video frame time: expected 0.000s, found {video.first_pts:.3f}s")
    if video.start is not None and abs(video.start - video.first_pts) > TIME_TOLERANCE:
        out.append(
            f"video stream start time: expected {video.first_pts:.3f}s (its first frame), "
            f"found {video.start:.3f}s"
        )
    span = video_end - video.first_pts
    allowed = frame / 2 + expected.frame_slack * frame + TIME_TOLERANCE
    if abs(span - expected.duration) > allowed:
        out.append(f"video duration: expected {expected.duration:.3f}s, found {span:.3f}s")
    audio = facts.audio
    if expected.audio and audio is None:
        out.append("audio stream: expected one, found none")
    elif not expected.audio and audio is not None:
        out.append("audio stream: expected none, found one")
    if expected.audio and audio is not None:
        for n, track in enumerate((audio, *facts.more_audio)):
            label = "audio" if n == 0 else f"audio track {n + 1}"
            out += _audio_sync(expected, track, video.first_pts, video_end, label)
    return out + list(facts.decode_errors)


def _audio_sync(
    expected: Expected, audio: StreamFacts, video_start: float, video_end: float, label: str
) -> list[str]:
    """An audio track's start and end against the video's: within one audio frame (pure)."""
    audio_end = audio.end(0.0)
    if audio.first_pts is None or audio_end is None:
        return [f"{label} packets: expected some, found none"]
    out = []
    one = audio.max_packet_duration + TIME_TOLERANCE + expected.audio_slack
    # Where the container says the audio starts (an MP4 edit list trims AAC priming).
    audio_start = audio.start if audio.start is not None else audio.first_pts
    if abs(audio_start - video_start) > one:
        out.append(
            f"{label} start: expected within {one:.3f}s of the video's "
            f"{video_start:.3f}s, found {audio_start:.3f}s"
        )
    # One audio frame at the end too (issue 23); a VFR source normalised to a constant rate
    # may add its frame slack.
    end_slack = one + expected.frame_slack * expected.frame_duration
    if abs(audio_end - video_end) > end_slack:
        out.append(
            f"{label} end: expected within {end_slack:.3f}s of the video's "
            f"{video_end:.3f}s, found {audio_end:.3f}s"
        )
    return out


def verify_clip(path: Path, expected: Expected) -> list[str]:
    """Mismatches between ``path`` and ``expected`` (empty when the clip is right)."""
    facts = clip_facts(path)
    problems = mismatches(expected, facts)
    if problems:  # no need to decode: it is wrong already
        return problems
    errors = decode_errors(path, decode_windows(expected))
    return [f"decode errors: {e}" for e in errors]


def audio_start(audio: StreamFacts) -> float:
    """Where an audio-only clip's audio starts: the stream's start time when the container says
    (an MP4 edit list hiding the pre-roll frame, MP3's LAME delay, Ogg Opus' pre-skip), else its
    first packet."""
    if audio.start is not None:
        return audio.start
    return audio.first_pts if audio.first_pts is not None else 0.0


def audio_mismatches(planned: float, aimed: float, facts: ClipFacts) -> list[str]:
    """What differs between an audio-only clip and its plan (pure): one audio stream and no
    video, starting at zero, lasting ``planned`` seconds within one audio frame (and ``aimed``,
    what the cut aimed at, within one frame too), decode times going forward."""
    out: list[str] = []
    if facts.video is not None:
        out.append("video stream: expected none, found one")
    audio = facts.audio
    if audio is None:
        return out + ["audio stream: expected one, found none"]
    end = audio.end(0.0)
    if audio.first_pts is None or end is None:
        return out + ["audio packets: expected some, found none"]
    frame = audio.max_packet_duration + TIME_TOLERANCE
    start = audio_start(audio)
    if abs(start) > frame:
        out.append(f"audio start: expected 0.000s (within {frame:.3f}s), found {start:.3f}s")
    span = end - start
    for what, value in (("planned", planned), ("cut", aimed)):
        if abs(span - value) > frame:
            out.append(
                f"audio duration: expected {value:.3f}s ({what}, within one audio frame of "
                f"{frame:.3f}s), found {span:.3f}s"
            )
    if audio.dts_backwards:
        out.append(f"audio decode times: expected increasing, {audio.dts_backwards} go backwards")
    return out


def verify_audio_clip(path: Path, planned: float, aimed: float) -> list[str]:
    """Mismatches between the audio-only clip ``path`` and its plan (empty when it is right)."""
    return audio_mismatches(planned, aimed, clip_facts(path))


def frames_of(duration: Fraction | float, rate: Fraction) -> int:
    """Frames a constant-rate encode of ``duration`` seconds at ``rate`` holds (pure)."""
    return round(Fraction(duration) * rate)
