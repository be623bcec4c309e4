"""The source's other streams in a clip: every audio track, subtitle stream, and their language
and title tags (issue 23: "keep every audio track, subtitle stream ... language and title tags";
"where a stream cannot be kept, the note says which and why").

The cutter takes the video and the first audio track itself; :func:`extra_stream_plan` decides
for each further audio track and each subtitle stream whether it is copied, converted (text
subtitles to ``mov_text`` for MP4 and WebVTT for WebM; audio the output container cannot carry
re-encoded to AAC or Opus) or left out (bitmap subtitles, attachments), and says so;
:func:`extra_stream_args` turns the plan into ffmpeg options for the run that writes the clip.
"""

from __future__ import annotations

import functools
import subprocess
from dataclasses import dataclass
from pathlib import Path

from videojobs.transcripts import TranscriptError, parse_transcript
from videojobs_worker.ffmpeg import FFMPEG, ffprobe, ffprobe_csv
from videojobs_worker.subtitles import slice_vtt

MP4_AUDIO = frozenset({"aac", "opus", "ac3", "eac3", "mp3"})
"""Audio codecs an MP4 clip carries as they are (AC-3 and E-AC-3 included: ETSI TS 102 366
Annex F; ffmpeg's muxer writes them)."""
WEBM_AUDIO = frozenset({"opus", "vorbis"})
TEXT_SUBTITLES = frozenset({"subrip", "ass", "ssa", "webvtt", "mov_text", "text"})
"""Subtitle codecs that are text, so that they convert to ``mov_text`` or WebVTT."""
_SUBTITLE_CODEC = {"mp4": "mov_text", "webm": "webvtt"}
_AUDIO_ENCODER = {"mp4": "aac", "webm": "libopus"}


@dataclass(frozen=True)
class SourceStream:
    """One audio or subtitle stream of the source, with its tags."""

    index: int
    kind: str
    """``audio`` or ``subtitle``."""
    codec: str
    language: str | None = None
    title: str | None = None


@dataclass(frozen=True)
class StreamPlan:
    """What happens to each further stream: kept as is, converted, or dropped (and why)."""

    copy: tuple[SourceStream, ...] = ()
    convert: tuple[tuple[SourceStream, str], ...] = ()
    """(stream, codec it is converted to)."""
    dropped: tuple[tuple[SourceStream, str], ...] = ()
    """(stream, why it cannot be kept)."""

    @property
    def subtitles(self) -> tuple[SourceStream, ...]:
        kept = sorted((*self.copy, *(s for s, _ in self.convert)), key=lambda s: s.index)
        return tuple(s for s in kept if s.kind == "subtitle")

    @property
    def audio(self) -> tuple[SourceStream, ...]:
        kept = sorted((*self.copy, *(s for s, _ in self.convert)), key=lambda s: s.index)
        return tuple(s for s in kept if s.kind == "audio")


def parse_streams(data: dict) -> list[SourceStream]:
    """The audio and subtitle streams of an ffprobe ``-show_streams`` result (pure)."""
    out = []
    for stream in data.get("streams") or []:
        kind = stream.get("codec_type")
        if kind not in ("audio", "subtitle"):
            continue
        tags = {str(k).lower(): str(v) for k, v in (stream.get("tags") or {}).items()}
        language = tags.get("language")
        out.append(
            SourceStream(
                int(stream["index"]),
                kind,
                str(stream.get("codec_name") or "unknown"),
                None if language in (None, "und") else language,
                tags.get("title") or None,
            )
        )
    return out


@functools.lru_cache(maxsize=16)
def _source_streams(path: Path, size: int, mtime_ns: int) -> tuple[SourceStream, ...]:
    del size, mtime_ns  # cache key only
    return tuple(parse_streams(ffprobe(path)))


def source_streams(path: Path) -> tuple[SourceStream, ...]:
    """:func:`parse_streams` of a file (one ffprobe run per file version)."""
    stat = path.stat()
    return _source_streams(path, stat.st_size, stat.st_mtime_ns)


def extra_stream_plan(
    streams: tuple[SourceStream, ...] | list[SourceStream], fmt: str, main_audio: int | None
) -> StreamPlan:
    """Decide for every stream but the main audio track (``main_audio``) what the ``fmt``
    clip does with it (pure)."""
    copy: list[SourceStream] = []
    convert: list[tuple[SourceStream, str]] = []
    dropped: list[tuple[SourceStream, str]] = []
    carried = MP4_AUDIO if fmt == "mp4" else WEBM_AUDIO
    target = _SUBTITLE_CODEC.get(fmt, "mov_text")
    for stream in streams:
        if stream.index == main_audio:
            continue
        if stream.kind == "audio":
            if stream.codec in carried:
                copy.append(stream)
            else:
                convert.append((stream, _AUDIO_ENCODER[fmt].removeprefix("lib")))
        elif stream.codec in TEXT_SUBTITLES:  # sliced as text (see subtitle_slice)
            convert.append((stream, target))
        else:
            why = f"{fmt.upper()} carries only text subtitles ({target}), this one is a picture"
            dropped.append((stream, why))
    return StreamPlan(tuple(copy), tuple(convert), tuple(dropped))


def describe(plan: StreamPlan) -> str:
    """The note's part about the further streams (empty when there are none)."""
    parts = []
    if plan.copy:
        how = "it is" if len(plan.copy) == 1 else "they are"
        parts.append(f"kept {_names(plan.copy)} as {how}")
    for stream, codec in plan.convert:
        if stream.codec == codec:  # text subtitles are always sliced and written again
            parts.append(f"kept {_name(stream)} (its text, sliced to the clip)")
        else:
            parts.append(f"converted {_name(stream)} to {codec}")
    for stream, why in plan.dropped:
        parts.append(f"left out {_name(stream)} ({why})")
    return "; ".join(parts)


def _name(stream: SourceStream) -> str:
    label = f"{stream.kind} stream {stream.index} ({stream.codec}"
    if stream.language:
        label += f", {stream.language}"
    return label + ")"


def _names(streams: tuple[SourceStream, ...]) -> str:
    return ", ".join(_name(s) for s in streams)


def _packets_in(path: Path, index: int, start: float, end: float) -> int | None:
    """Packets of stream ``index`` starting in [start, end) (None: no timestamps listed)."""
    rows = ffprobe_csv(
        ["-select_streams", str(index), "-read_intervals", f"{start:.6f}%{end + 1:.6f}"]
        + ["-show_entries", "packet=pts_time", str(path)]
    )
    times = [float(r[0]) for r in rows if r and r[0] not in ("", "N/A")]
    if not times:
        return None
    return max(1, sum(1 for t in times if start - 0.0005 <= t < end - 0.0005))


def extra_stream_args(
    plan: StreamPlan,
    path: Path,
    start: float,
    duration: float,
    *,
    audio_input: int,
    first_audio_output: int,
    subtitle_inputs: list[int],
    subtitle_codec: str = "mov_text",
) -> list[str]:
    """ffmpeg output options mapping the plan's streams: further audio tracks from input
    ``audio_input`` (the source, seeked to ``start``; output audio streams numbered from
    ``first_audio_output``), each ended by its own packet count; subtitles from the inputs
    numbered ``subtitle_inputs`` (made by :func:`subtitle_inputs`), encoded with
    ``subtitle_codec``. Tags are set from the source's."""
    args: list[str] = []
    converted = {s.index: codec for s, codec in plan.convert}
    for n, stream in enumerate(plan.audio, start=first_audio_output):
        args += ["-map", f"{audio_input}:{stream.index}"]
        codec = converted.get(stream.index)
        if codec is None:
            args += [f"-c:a:{n}", "copy"]
            count = _packets_in(path, stream.index, start, start + duration)
            if count is not None:
                args += [f"-frames:a:{n}", str(count)]
        else:  # re-encoded: ended by its own timestamps (it would run to the source's end)
            args += [f"-c:a:{n}", "libopus" if codec == "opus" else codec]
            args += [f"-filter:a:{n}", f"atrim=end={duration:.6f}"]
        args += _tags(f"a:{n}", stream)
    for n, (stream, number) in enumerate(zip(plan.subtitles, subtitle_inputs, strict=True)):
        args += ["-map", f"{number}:0", f"-c:s:{n}", subtitle_codec, *_tags(f"s:{n}", stream)]
    return args


def subtitle_slice(path: Path, index: int, start: float, end: float, dest: Path) -> Path:
    """Write the cues of subtitle stream ``index`` overlapping [start, end) of ``path`` (source
    times, seconds) as WebVTT shifted to the clip's zero (clipped at its edges) into ``dest``.

    The stream is read whole (subtitles are small) and sliced in Python: a stream copy with an
    input seek kept cues from before the clip at wrong times."""
    argv = [FFMPEG, "-nostdin", "-v", "error", "-i", str(path), "-map", f"0:{index}"]
    proc = subprocess.run(
        [*argv, "-c:s", "webvtt", "-f", "webvtt", "pipe:1"], capture_output=True, check=False
    )
    text = proc.stdout.decode("utf-8", "replace") if proc.returncode == 0 else ""
    try:
        transcript = parse_transcript(text, "webvtt", source=dest.name, rolling=False)
        body = slice_vtt(transcript, start, end)
    except TranscriptError:  # no cues at all
        body = "WEBVTT\n"
    dest.write_text(body, encoding="utf-8")
    return dest


def subtitle_inputs(
    plan: StreamPlan, path: Path, start: float, end: float, work: Path
) -> list[str]:
    """Input options for the sliced subtitles of ``plan`` (one WebVTT file each, in ``work``)."""
    args: list[str] = []
    for stream in plan.subtitles:
        piece = subtitle_slice(path, stream.index, start, end, work / f"subs{stream.index}.vtt")
        args += ["-f", "webvtt", "-i", str(piece)]
    return args


def _tags(spec: str, stream: SourceStream) -> list[str]:
    args = [f"-metadata:s:{spec}", f"language={stream.language or 'und'}"]
    if stream.title:
        args += [f"-metadata:s:{spec}", f"title={stream.title}"]
    return args


def main_audio_tags(stream: SourceStream | None) -> list[str]:
    """Language and title of the main audio track (output audio stream 0)."""
    return _tags("a:0", stream) if stream is not None else []


def range_copy_args(path: Path, video_index: int) -> list[str]:
    """Output options of an MP4 copy of a source's range (``cut._cut_from_mp4_range``): the
    video, every audio track (re-encoded to AAC where MP4 cannot carry it), every text subtitle
    as ``mov_text``, each with its language and title; picture subtitles are left out (the
    clip's note says so, from :func:`extra_stream_plan` of the source)."""
    args = ["-map", f"0:{video_index}"]
    audio = subtitle = 0
    for stream in source_streams(path):
        if stream.kind == "audio":
            args += ["-map", f"0:{stream.index}", f"-c:a:{audio}"]
            args += ["copy" if stream.codec in MP4_AUDIO else "aac", *_tags(f"a:{audio}", stream)]
            audio += 1
        elif stream.codec in TEXT_SUBTITLES:
            args += ["-map", f"0:{stream.index}", f"-c:s:{subtitle}", "mov_text"]
            args += _tags(f"s:{subtitle}", stream)
            subtitle += 1
    return args


def join_stream_args(
    path: Path,
    main_audio: int | None,
    start: float,
    duration: float,
    fmt: str,
    work: Path,
    *,
    next_input: int,
) -> tuple[list[str], list[str], str]:
    """For a run that already maps the main audio track from input 1 (the source, seeked to
    ``start``) as output audio stream 0: (input options to append, output options, the note's
    part) keeping every further track and subtitle (``next_input``: the number the first
    appended input gets)."""
    found = source_streams(path)
    plan = extra_stream_plan(found, fmt, main_audio)
    inputs = subtitle_inputs(plan, path, start, start + duration, work)
    outputs = main_audio_tags(next((s for s in found if s.index == main_audio), None))
    outputs += extra_stream_args(
        plan,
        path,
        start,
        duration,
        audio_input=1,
        first_audio_output=1,
        subtitle_inputs=list(range(next_input, next_input + len(plan.subtitles))),
        subtitle_codec=_SUBTITLE_CODEC.get(fmt, "mov_text"),
    )
    return inputs, outputs, describe(plan)


def reencoded_stream_args(
    path: Path,
    main_audio: int | None,
    start: float,
    duration: float,
    fmt: str,
    work: Path,
    *,
    next_input: int,
) -> tuple[list[str], list[str], str]:
    """For a run that re-encodes the source (input 0, its main audio track as output audio
    stream 0, with encoder and filter options that apply to every audio stream): (input options
    to append, output options, the note's part) keeping every further audio track, re-encoded
    like the main one and cut by the same filter, and every text subtitle, sliced to
    ``start``-``start + duration`` (source times) and converted for ``fmt``; with the tags
    (issue 23). ``next_input``: the number the first appended input gets."""
    found = source_streams(path)
    plan = extra_stream_plan(found, fmt, main_audio)
    inputs = subtitle_inputs(plan, path, start, start + duration, work)
    outputs = main_audio_tags(next((s for s in found if s.index == main_audio), None))
    for n, stream in enumerate(plan.audio, start=1):
        outputs += ["-map", f"0:{stream.index}", *_tags(f"a:{n}", stream)]
    codec = _SUBTITLE_CODEC.get(fmt, "mov_text")
    for n, stream in enumerate(plan.subtitles):
        outputs += ["-map", f"{next_input + n}:0", f"-c:s:{n}", codec, *_tags(f"s:{n}", stream)]
    parts = []
    if plan.audio:
        encoder = _AUDIO_ENCODER.get(fmt, "aac").removeprefix("lib")
        parts.append(f"kept {_names(plan.audio)} re-encoded to {encoder} like the first")
    for stream in plan.subtitles:
        parts.append(f"kept {_name(stream)} (its text, sliced to the clip, as {codec})")
    parts += [f"left out {_name(stream)} ({why})" for stream, why in plan.dropped]
    return inputs, outputs, "; ".join(parts)


def copied_stream_args(
    path: Path,
    main_audio: int | None,
    start: float,
    duration: float,
    fmt: str,
    work: Path,
    *,
    next_input: int,
) -> tuple[list[str], list[str], str]:
    """For a stream copy of the source (input 0, seeked to ``start``, its main audio track as
    output audio stream 0): (input options to append, output options, the note's part) keeping
    every further audio track (copied where ``fmt`` carries it, each ended by its own packet
    count, else re-encoded) and every text subtitle, sliced and converted; with the tags."""
    found = source_streams(path)
    plan = extra_stream_plan(found, fmt, main_audio)
    inputs = subtitle_inputs(plan, path, start, start + duration, work)
    outputs = main_audio_tags(next((s for s in found if s.index == main_audio), None))
    outputs += extra_stream_args(
        plan,
        path,
        start,
        duration,
        audio_input=0,
        first_audio_output=1 if main_audio is not None else 0,
        subtitle_inputs=list(range(next_input, next_input + len(plan.subtitles))),
        subtitle_codec=_SUBTITLE_CODEC.get(fmt, "mov_text"),
    )
    return inputs, outputs, describe(plan)


def with_inputs(args: list[str], source: str, inputs: list[str]) -> list[str]:
    """``args`` (one ffmpeg run reading ``source`` as its first input) with ``inputs`` added
    right after that input (pure)."""
    if not inputs:
        return args
    at = args.index(source, args.index("-i")) + 1
    return [*args[:at], *inputs, *args[at:]]


def with_outputs(args: list[str], outputs: list[str]) -> list[str]:
    """``args`` (ending with the output file) with ``outputs`` added before that file, and
    without ``-sn`` when they map subtitles (pure)."""
    if any(a.startswith("-c:s:") for a in outputs):
        args = [a for a in args if a != "-sn"]
    return [*args[:-1], *outputs, args[-1]]
