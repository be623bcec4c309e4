"""Transcript parsers: caption files, speech-to-text JSON and the seed JSON document.

``parse_transcript(text, fmt)`` returns a :class:`~videojobs.models.Transcript` or raises a
:class:`~videojobs.errors.TranscriptError` whose :class:`~videojobs.errors.Problem` names the line
(1-based, in ``text``) and what was expected there.

One module per family:

- :mod:`._text`: **webvtt** (line-numbered block scanner; webvtt-py does timestamps and inline
  tags), **srt** (the ``srt`` library, offsets turned into lines), **sbv** (YouTube).
- :mod:`._json`: **json** (a list of ``{start, end, text, words?}``; faster-whisper segments
  dumped as a list), **whisper-json** (``{"segments": [...]}`` from OpenAI Whisper, WhisperX and
  faster-whisper, ``words`` when present), **whisper-cpp-json** (``-oj``/``-ojf``),
  **aws-transcribe-json**, **youtube-json3** and **seed-json** (``transcript`` +
  ``knowledge_points``).
- :mod:`._markup`: **ttml** (TTML and DFXP), **sami**, **ass**/**ssa** through pysubs2, and
  **youtube-srv3**.

Formats with word times (whisper-json/json ``words``, whisper-cpp-json ``-ojf`` tokens, AWS
items, YouTube automatic captions in json3/srv3) fill :attr:`Cue.words`.

Limits (:data:`MAX_TRANSCRIPT_BYTES`, :data:`MAX_CUES`, :data:`MAX_WORDS`, :data:`MAX_NESTING`)
bound the work one transcript can cause; going over one is a TranscriptError naming it.

Cues come out sorted by start time (stable), indexed 1..n in that order; a transcript with no
cues is an error.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable

from videojobs.errors import TranscriptError
from videojobs.models import Transcript
from videojobs.transcripts._common import (
    MAX_CUES,
    MAX_NESTING,
    MAX_TRANSCRIPT_BYTES,
    MAX_WORDS,
    _Errors,
    check_size,
    paused_gc,
)
from videojobs.transcripts._decode import decode_transcript
from videojobs.transcripts._json import (
    is_call_analytics,
    load_json,
    parse_aws_transcribe_json,
    parse_json_cues,
    parse_seed_json,
    parse_whisper_cpp_json,
    parse_whisper_json,
    parse_youtube_json3,
)
from videojobs.transcripts._markup import (
    parse_sami,
    parse_substation,
    parse_ttml,
    parse_youtube_srv3,
)
from videojobs.transcripts._rolling import is_rolling, merge_rolling
from videojobs.transcripts._text import (
    SBV_TIMINGS,
    is_headerless_webvtt,
    parse_sbv,
    parse_srt,
    parse_webvtt,
)

__all__ = [
    "FORMATS",
    "MAX_CUES",
    "MAX_NESTING",
    "MAX_TRANSCRIPT_BYTES",
    "MAX_WORDS",
    "decode_transcript",
    "detect_format",
    "is_rolling",
    "merge_rolling",
    "parse_aws_transcribe_json",
    "parse_json_cues",
    "parse_sami",
    "parse_sbv",
    "parse_seed_json",
    "parse_srt",
    "parse_transcript",
    "parse_ttml",
    "parse_webvtt",
    "parse_whisper_cpp_json",
    "parse_whisper_json",
    "parse_youtube_json3",
    "parse_youtube_srv3",
]

Parser = Callable[..., Transcript]

_PARSERS: dict[str, Parser] = {
    "webvtt": parse_webvtt,
    "srt": parse_srt,
    "sbv": parse_sbv,
    "json": parse_json_cues,
    "whisper-json": parse_whisper_json,
    "whisper-cpp-json": parse_whisper_cpp_json,
    "aws-transcribe-json": parse_aws_transcribe_json,
    "youtube-json3": parse_youtube_json3,
    "youtube-srv3": parse_youtube_srv3,
    "ttml": parse_ttml,
    "sami": parse_sami,
    "ass": lambda text, source: parse_substation(text, source=source, fmt="ass"),
    "ssa": lambda text, source: parse_substation(text, source=source, fmt="ssa"),
    "seed-json": parse_seed_json,
}

FORMATS = tuple(_PARSERS)
"""Every explicit ``transcript.format`` value (``auto`` detects one of these)."""

# How auto recognises each format, for the error when it recognises none.
_TEXT_SIGNS = {
    "webvtt": "a first line 'WEBVTT' (or, without it, cue timings 'MM:SS.mmm --> MM:SS.mmm')",
    "srt": "a first line with a subtitle number or 'HH:MM:SS,mmm --> HH:MM:SS,mmm'",
    "sbv": "a first line 'H:MM:SS.mmm,H:MM:SS.mmm'",
    "ass/ssa": "a first line '[Script Info]'",
}
_JSON_SIGNS = {
    "json": "a top-level array of {start, end, text}",
    "whisper-json": 'an object with "segments"',
    "whisper-cpp-json": 'an object with "transcription"',
    "aws-transcribe-json": 'an object with "results": {"items"}, or "Transcript": '
    '[{"BeginOffsetMillis"}] (Call Analytics)',
    "youtube-json3": 'an object with "events"',
    "seed-json": 'an object with "transcript" (a list) and/or "knowledge_points"',
}
_XML_SIGNS = {
    "ttml": "root element <tt> (TTML/DFXP)",
    "youtube-srv3": "root element <timedtext>",
    "sami": "root element <SAMI>",
}
_HEADERLESS_WEBVTT = "webvtt (no header)"
"""What auto-detection returns for WebVTT cues without the WEBVTT line (read as webvtt)."""
_XML_PROLOGUE = re.compile(r"^(?:\s*<\?[^>]*\?>|\s*<!--.*?-->|\s*<!DOCTYPE[^>]*>)*\s*", re.S)
_ROOT = re.compile(r"<([A-Za-z_][\w.:-]*)")
_CLOCK = re.compile(r"\d:\d\d")


def _signs(signs: dict[str, str]) -> str:
    return "; ".join(f"{name}: {sign}" for name, sign in signs.items())


def _json_object_format(data: object) -> str | None:
    if isinstance(data, list):
        return "json"
    if not isinstance(data, dict):
        return None
    results = data.get("results")
    if "transcription" in data:
        return "whisper-cpp-json"
    if (isinstance(results, dict) and "items" in results) or is_call_analytics(data):
        return "aws-transcribe-json"
    if "events" in data:
        return "youtube-json3"
    if "segments" in data:
        return "whisper-json"
    if isinstance(data.get("transcript"), list) or "knowledge_points" in data:
        return "seed-json"
    return None


def _keys(data: object) -> str:
    if not isinstance(data, dict):
        return f"a JSON {type(data).__name__}"
    keys = list(data)
    shown = ", ".join(json.dumps(k) for k in keys[:10]) + (", ..." if len(keys) > 10 else "")
    return f"a JSON object with top-level keys {shown}" if keys else "an empty JSON object"


# Formats that are not read, recognised to say so instead of "invalid JSON" or "not SRT"
_UNSUPPORTED = (
    (
        re.compile(r"^\{\d+\}\{\d*\}"),
        "MicroDVD subtitles ('{start frame}{end frame}text', times in video frames)",
    ),
    (
        re.compile(
            r"^\[(?:\d{1,3}:\d{2}(?:[.:]\d{1,3})?|(?:ar|ti|al|by|offset|length|re|ve):)", re.I
        ),
        "LRC lyrics ('[mm:ss.xx]text')",
    ),
    (
        re.compile(r"^\[(?:INFORMATION|TITLE|AUTHOR)\]", re.I),
        "SubViewer subtitles ('[INFORMATION]' header)",
    ),
)


def _unsupported(first: str, err: _Errors) -> None:
    for pattern, name in _UNSUPPORTED:
        if pattern.match(first):
            raise err(
                f"cannot detect the transcript format: the document looks like {name}, which "
                f"videojobs does not read (first line {first[:60]!r}); convert it to SRT or "
                "WebVTT (for example with ffmpeg -i, or pysubs2 at the video's frame rate) and "
                f"set transcript.format if needed; the formats read are {', '.join(FORMATS)}",
                1,
            )


def _detect(text: str, err: _Errors) -> str:
    """The format of ``text``, or a TranscriptError saying what it looks like and what it
    could have been."""
    body = text.lstrip("\ufeff \t\r\n")
    first = body.split("\n", 1)[0].strip()
    if body.startswith("WEBVTT"):
        return "webvtt"
    _unsupported(first, err)
    if first.lower() == "[script info]":
        return "ass" if "v4.00+" in body[:4096].lower() or "[v4+ styles]" in body.lower() else "ssa"
    if body.startswith(("{", "[")):
        data, _ = load_json(text, err)  # a syntax error names its line
        found = _json_object_format(data)
        if found:
            return found
        raise err(
            f"cannot detect the transcript format: the document is {_keys(data)}; "
            f"the JSON formats are {_signs(_JSON_SIGNS)} (set transcript.format)",
            1,
        )
    if body.startswith("<"):
        root = _ROOT.match(_XML_PROLOGUE.sub("", body[:65536], count=1))
        name = root[1] if root else ""
        local = name.rsplit(":", 1)[-1].lower()
        if local == "tt":
            return "ttml"
        if local == "timedtext":
            return "youtube-srv3"
        if local == "sami":
            return "sami"
        raise err(
            "cannot detect the transcript format: the document is markup with root element "
            f"<{name[:40]}>, first line {first[:60]!r}; the markup formats are "
            f"{_signs(_XML_SIGNS)} (set transcript.format)",
            1,
        )
    if SBV_TIMINGS.match(first):
        return "sbv"
    if is_headerless_webvtt([line.strip() for line in body.split("\n", 2)[:2]]):
        return _HEADERLESS_WEBVTT
    if first.isdigit() or "-->" in first:
        return "srt"
    timed = any(_CLOCK.search(line) for line in body[:8192].split("\n")[:50])
    looks = "" if timed else " (no line of its start has a time: plain text without timings?)"
    raise err(
        f"cannot detect the transcript format: the first line is {first[:60]!r}{looks}; expected "
        f"{_signs(_TEXT_SIGNS)}; or JSON ({_signs(_JSON_SIGNS)}); or markup "
        f"({_signs(_XML_SIGNS)}) (set transcript.format)",
        1,
    )


def detect_format(text: str) -> str | None:
    """The format ``text`` looks like, or None."""
    try:
        found = _detect(text, _Errors("transcript"))
    except TranscriptError:
        return None
    return "webvtt" if found == _HEADERLESS_WEBVTT else found


def parse_transcript(
    text: str, fmt: str = "auto", *, source: str = "transcript", rolling: bool | None = None
) -> Transcript:
    """Parse a transcript.

    Args:
        text: the transcript text.
        fmt: ``auto`` or one of :data:`FORMATS`.
        source: what the text is, for error messages (``spec.transcript.inline``, a file name).
        rolling: merge rolling captions (:func:`merge_rolling`): None when they are detected
            (:func:`is_rolling`), True always (automatic captions), False never.

    Raises:
        TranscriptError: the text is not in the format, has no cues or goes over a limit; the
            problem names the line.
    """
    err = _Errors(source)
    check_size(text, err)
    if fmt != "auto" and fmt not in _PARSERS:
        raise err(f"unknown transcript format {fmt!r}; expected auto or {', '.join(FORMATS)}")
    if not text.strip("\ufeff \t\r\n"):
        expected = "cues" if fmt == "auto" else f"{fmt} cues"
        raise err(f"the transcript is empty; expected {expected}", 1)
    if fmt == "auto":
        fmt = _detect(text, err)
    with paused_gc():  # a large transcript allocates many objects, none of them cyclic
        if fmt == _HEADERLESS_WEBVTT:
            fmt = "webvtt"
            transcript = parse_webvtt(text, source=source, headerless=True)
        else:
            transcript = _PARSERS[fmt](text, source=source)
    if rolling or (rolling is None and fmt != "seed-json" and is_rolling(transcript.cues)):
        transcript = transcript.model_copy(update={"cues": merge_rolling(transcript.cues)})
    return transcript
