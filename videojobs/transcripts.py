"""Transcript parsers: WebVTT, SRT, JSON cue lists, Whisper JSON and the seed JSON document.

``parse_transcript(text, fmt)`` returns a :class:`~videojobs.models.Transcript` or raises a
:class:`~videojobs.errors.TranscriptError` whose :class:`~videojobs.errors.Problem` names the line
(1-based, in ``text``) and what was expected there.

- **webvtt**: a line-numbered block scanner (webvtt-py has no line numbers and skips what it
  cannot read); webvtt-py's ``Caption`` does the timestamps and removes inline tags
  (``<v Bob>``, ``<b>``, ``<c.x>``, ``<00:01.000>``). Header text, ``NOTE``, ``STYLE`` and
  ``REGION`` blocks are skipped, cue ids and cue settings are read, BOM and CRLF/CR line ends are
  accepted. A block that is none of those is an error.
- **srt**: the ``srt`` library (BOM, CRLF, missing final blank line, ``,`` or ``.`` before the
  milliseconds); its character offsets are turned into line numbers. HTML-like tags and ASS
  overrides (``{\\an8}``) are removed.
- **json**: a list of ``{"start", "end", "text"}`` objects; times are seconds (numbers) or
  timestamp strings (any form of :func:`videojobs.times.parse_time`). An optional ``id`` is kept.
- **whisper-json**: ``{"segments": [{"start", "end", "text", ...}], "language": ...}``.
- **seed-json**: ``{"transcript": [...], "knowledge_points": [...]}``: transcript entries use
  ``start_time``/``end_time`` (or ``start``/``end``) and ``text``; knowledge points use
  ``knowledge_id``, ``title``, ``description``, ``start_time`` and ``end_time``, and become
  :attr:`Transcript.knowledge_points`.

``auto`` looks at the first characters: ``WEBVTT`` → webvtt; ``{`` with ``segments`` →
whisper-json, with ``transcript`` or ``knowledge_points`` → seed-json; ``[`` → json; a cue number
or a ``-->`` line → srt.

Cues come out sorted by start time (stable), indexed 1..n in that order; a transcript with no
cues is an error.
"""

from __future__ import annotations

import html
import json
import re
from collections.abc import Iterator
from typing import Any

import srt
from pydantic import ValidationError
from webvtt.errors import MalformedCaptionError
from webvtt.models import Caption

from videojobs.errors import Problem, TranscriptError
from videojobs.models import Cue, KnowledgePoint, Transcript
from videojobs.times import TimeValueError, parse_time, round_ms

FORMATS = ("webvtt", "srt", "json", "whisper-json", "seed-json")

_VTT_TIMESTAMP = r"(?:\d+:)?\d{1,2}:\d{1,2}\.\d{1,3}"
_VTT_TIMINGS = re.compile(
    rf"^\s*({_VTT_TIMESTAMP})[ \t]+-->[ \t]+({_VTT_TIMESTAMP})(?:[ \t]+(.*))?$"
)
_VTT_EXPECTED = "cue timings 'HH:MM:SS.mmm --> HH:MM:SS.mmm' (optionally followed by settings)"
_SRT_EXPECTED_TIMINGS = "timings 'HH:MM:SS,mmm --> HH:MM:SS,mmm'"
_TAGS = re.compile(r"<[^>]*>|\{\\[^}]*\}")


class _Errors:
    """Builds TranscriptErrors with one source label (``spec.transcript.inline``, a file name)."""

    def __init__(self, source: str) -> None:
        self.source = source

    def __call__(self, message: str, line: int | None = None) -> TranscriptError:
        return TranscriptError(Problem(self.source, message, line))


def _split_lines(text: str) -> list[str]:
    if text.startswith("\ufeff"):
        text = text[1:]
    return text.replace("\r\n", "\n").replace("\r", "\n").split("\n")


def _clean_text(text: str) -> str:
    lines = [html.unescape(_TAGS.sub("", line)).strip() for line in text.split("\n")]
    return "\n".join(line for line in lines if line)


def _make_transcript(
    fmt: str,
    raw: list[dict[str, Any]],
    err: _Errors,
    *,
    language: str | None = None,
    knowledge_points: list[KnowledgePoint] | None = None,
) -> Transcript:
    """Sort raw cues (dicts with start, end, text, id, line) and build the model."""
    if not raw:
        raise err("the transcript has no cues; expected at least one timed cue")
    for item in raw:
        if item["end"] < item["start"]:
            raise err(
                f"cue ends ({item['end']:g}s) before it starts ({item['start']:g}s); "
                "expected the end time after the start time",
                item.get("line"),
            )
    ordered = sorted(raw, key=lambda c: (c["start"], c["end"]))
    cues = [
        Cue(
            index=i,
            id=c.get("id"),
            start=round_ms(c["start"]),
            end=round_ms(c["end"]),
            text=c["text"],
            line=c.get("line"),
        )
        for i, c in enumerate(ordered, start=1)
    ]
    return Transcript(
        format=fmt, cues=cues, language=language, knowledge_points=knowledge_points or []
    )


# --- WebVTT -------------------------------------------------------------------------------


def _vtt_blocks(lines: list[str]) -> Iterator[tuple[int, list[str]]]:
    """Blocks of non-blank lines with the 1-based number of their first line.

    As in webvtt-py, a ``-->`` line that cannot be the timings line of the current block (a
    missing blank line) starts a new block.
    """
    block: list[str] = []
    first = 0
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            if block:
                yield first, block
                block = []
            continue
        if block and "-->" in line and (first == 1 or len(block) > 1 or "-->" in block[0]):
            yield first, block
            block = []
        if not block:
            first = number
        block.append(line)
    if block:
        yield first, block


def _is_keyword_block(line: str, keyword: str) -> bool:
    return line == keyword or line.startswith((keyword + " ", keyword + "\t"))


def parse_webvtt(text: str, *, source: str = "transcript") -> Transcript:
    """Parse WebVTT (see the module docstring)."""
    err = _Errors(source)
    lines = _split_lines(text)
    if not _is_keyword_block(lines[0], "WEBVTT"):
        raise err(f"expected the 'WEBVTT' header, got {lines[0][:40]!r}", 1)
    raw: list[dict[str, Any]] = []
    for first, block in _vtt_blocks(lines):
        if first == 1:
            continue  # the header: WEBVTT, header text and metadata lines
        head = block[0]
        if _is_keyword_block(head, "NOTE"):
            continue
        if "-->" not in head and (
            _is_keyword_block(head, "STYLE") or _is_keyword_block(head, "REGION")
        ):
            continue
        if "-->" in head:
            cue_id, timing_at = None, 0
        elif len(block) > 1 and "-->" in block[1]:
            cue_id, timing_at = head.strip(), 1
        else:
            raise err(
                f"expected {_VTT_EXPECTED}, a cue id followed by them, or a NOTE, STYLE or "
                f"REGION block; got {head[:60]!r}",
                first,
            )
        timing_line = first + timing_at
        match = _VTT_TIMINGS.match(block[timing_at])
        if not match:
            raise err(f"expected {_VTT_EXPECTED}, got {block[timing_at][:60]!r}", timing_line)
        try:
            caption = Caption(match[1], match[2], block[timing_at + 1 :])
        except MalformedCaptionError as exc:
            raise err(f"expected {_VTT_EXPECTED}: {exc}", timing_line) from None
        raw.append(
            {
                "id": cue_id,
                "start": caption.start_time.in_milliseconds() / 1000,
                "end": caption.end_time.in_milliseconds() / 1000,
                "text": _clean_text(caption.text),
                "line": first,
            }
        )
    return _make_transcript("webvtt", raw, err)


# --- SRT ----------------------------------------------------------------------------------


def _line_of(text: str, offset: int) -> int:
    return text.count("\n", 0, offset) + 1


def _srt_problem(text: str, offset: int, err: _Errors) -> TranscriptError:
    """Explain why the block at ``offset`` is not a subtitle."""
    line = _line_of(text, offset)
    rest = text[offset:].replace("\r\n", "\n").replace("\r", "\n").split("\n")
    while rest and not rest[0].strip():
        rest.pop(0)
        line += 1
    if not rest:
        return err("unexpected end of input", line)
    head = rest[0].strip()
    if "-->" in head:
        number_ok, timing_at = True, 0
    else:
        number_ok, timing_at = head.isdigit(), 1
    if not number_ok:
        return err(f"expected a subtitle number (a line with digits only), got {head[:60]!r}", line)
    if timing_at >= len(rest) or "-->" not in rest[timing_at]:
        got = rest[timing_at][:60] if timing_at < len(rest) else ""
        return err(f"expected {_SRT_EXPECTED_TIMINGS}, got {got!r}", line + timing_at)
    return err(
        f"expected {_SRT_EXPECTED_TIMINGS}, got {rest[timing_at].strip()[:60]!r}",
        line + timing_at,
    )


def parse_srt(text: str, *, source: str = "transcript") -> Transcript:
    """Parse SRT (see the module docstring)."""
    err = _Errors(source)
    body = text[1:] if text.startswith("\ufeff") else text
    lines = body.split("\n")
    matches = list(srt.SRT_REGEX.finditer(body))
    try:
        subtitles = list(srt.parse(body))
    except srt.SRTParseError as exc:
        raise _srt_problem(body, exc.expected_start, err) from None
    raw = []
    for subtitle, match in zip(subtitles, matches, strict=True):
        line = _line_of(body, match.start())
        while not lines[line - 1].strip():
            line += 1
        # srt reads a malformed block (e.g. a bad number line) as text of the previous cue
        content_line = _line_of(body, match.start(5))
        for j, text_line in enumerate(subtitle.content.split("\n")):
            if "-->" in text_line:
                bad = content_line + j - 1
                if lines[bad - 1].strip():
                    raise err(
                        "expected a subtitle number (a line with digits only), got "
                        f"{lines[bad - 1].strip()[:60]!r}",
                        bad,
                    )
                raise err("expected a subtitle number before the timings", bad + 1)
        # srt reads "00:00:0x,000" as the end time "00:00:0" followed by settings "x,000"
        if body[match.end(3) : match.end(3) + 1] not in ("", " ", "\t", "\r", "\n"):
            timing_line = _line_of(body, match.start(2))
            raise err(
                f"expected {_SRT_EXPECTED_TIMINGS}, got {lines[timing_line - 1].strip()[:60]!r}",
                timing_line,
            )
        raw.append(
            {
                "id": str(subtitle.index) if subtitle.index is not None else None,
                "start": subtitle.start.total_seconds(),
                "end": subtitle.end.total_seconds(),
                "text": _clean_text(subtitle.content),
                "line": line,
            }
        )
    return _make_transcript("srt", raw, err)


# --- JSON ---------------------------------------------------------------------------------

_WS = " \t\r\n"


def _skip_ws(text: str, i: int) -> int:
    while i < len(text) and text[i] in _WS:
        i += 1
    return i


def _value_offsets(text: str, at: int) -> list[int] | dict[str, int]:
    """Offsets where the members of the array or object starting at ``at`` begin."""
    decoder = json.JSONDecoder()
    opener = text[at]
    i = _skip_ws(text, at + 1)
    items: list[int] = []
    keys: dict[str, int] = {}
    while i < len(text) and text[i] not in "]}":
        if opener == "{":
            key, i = decoder.raw_decode(text, i)
            i = _skip_ws(text, _skip_ws(text, i) + 1)  # past ':'
            keys[key] = i
        else:
            items.append(i)
        _, i = decoder.raw_decode(text, i)
        i = _skip_ws(text, i)
        if i < len(text) and text[i] == ",":
            i = _skip_ws(text, i + 1)
    return keys if opener == "{" else items


def _load_json(text: str, err: _Errors) -> tuple[Any, str]:
    body = text[1:] if text.startswith("\ufeff") else text
    try:
        return json.loads(body), body
    except json.JSONDecodeError as exc:
        raise err(f"invalid JSON: {exc.msg} (column {exc.colno})", exc.lineno) from None


def _entry_lines(body: str, path: tuple[str, ...]) -> list[int]:
    """Line numbers of the entries of the array at ``path`` (keys of nested objects)."""
    at = _skip_ws(body, 0)
    for key in path:
        offsets = _value_offsets(body, at)
        assert isinstance(offsets, dict)
        at = offsets[key]
    offsets = _value_offsets(body, at)
    assert isinstance(offsets, list)
    return [_line_of(body, o) for o in offsets]


def _entry_time(entry: dict[str, Any], names: tuple[str, ...], what: str) -> float:
    for name in names:
        if name in entry:
            value = entry[name]
            if isinstance(value, bool) or not isinstance(value, int | float | str):
                raise ValueError(f"'{name}' must be seconds or a timestamp, got {value!r}")
            try:
                return parse_time(value)
            except TimeValueError as exc:
                raise ValueError(f"'{name}': {exc}") from None
    raise ValueError(f"missing the {what} time ('{names[0]}')")


def _json_cues(
    entries: Any,
    lines: list[int],
    err: _Errors,
    where: str,
    *,
    start_names: tuple[str, ...] = ("start",),
    end_names: tuple[str, ...] = ("end",),
) -> list[dict[str, Any]]:
    if not isinstance(entries, list):
        raise err(f"expected {where} to be a list of cues, got {type(entries).__name__}", 1)
    raw = []
    for i, entry in enumerate(entries):
        line = lines[i] if i < len(lines) else None
        label = f"{where}[{i}]"
        try:
            if not isinstance(entry, dict):
                raise ValueError(f"expected an object, got {type(entry).__name__}")
            start = _entry_time(entry, start_names, "start")
            end = _entry_time(entry, end_names, "end")
            text = entry.get("text")
            if not isinstance(text, str):
                raise ValueError("expected a 'text' string")
            cue_id = entry.get("id")
        except ValueError as exc:
            raise err(f"{label}: {exc}; expected {{start, end, text}}", line) from None
        raw.append(
            {
                "id": None if cue_id is None else str(cue_id),
                "start": start,
                "end": end,
                "text": _clean_text(text),
                "line": line,
            }
        )
    return raw


def parse_json_cues(text: str, *, source: str = "transcript") -> Transcript:
    """Parse a JSON list of ``{start, end, text}`` objects."""
    err = _Errors(source)
    data, body = _load_json(text, err)
    if not isinstance(data, list):
        raise err("expected a JSON list of {start, end, text} objects", 1)
    return _make_transcript("json", _json_cues(data, _entry_lines(body, ()), err, "entries"), err)


def parse_whisper_json(text: str, *, source: str = "transcript") -> Transcript:
    """Parse Whisper's JSON output (``{"segments": [...], "language": ...}``)."""
    err = _Errors(source)
    data, body = _load_json(text, err)
    if not isinstance(data, dict) or "segments" not in data:
        raise err('expected a JSON object with a "segments" list (Whisper JSON)', 1)
    lines = _entry_lines(body, ("segments",)) if isinstance(data["segments"], list) else []
    raw = _json_cues(data["segments"], lines, err, "segments")
    for item in raw:
        item["id"] = None  # Whisper numbers segments from 0; cue indices are 1-based
    language = data.get("language") if isinstance(data.get("language"), str) else None
    return _make_transcript("whisper-json", raw, err, language=language)


_SEED_KP_FIELDS = {
    "knowledge_id": "id",
    "id": "id",
    "title": "title",
    "description": "description",
    "start_time": "start",
    "start": "start",
    "end_time": "end",
    "end": "end",
    "quote": "quote",
    "cues": "cues",
}


def parse_seed_json(text: str, *, source: str = "transcript") -> Transcript:
    """Parse the seed's REST-era document: ``transcript`` entries plus ``knowledge_points``."""
    err = _Errors(source)
    data, body = _load_json(text, err)
    if not isinstance(data, dict) or "transcript" not in data:
        raise err('expected a JSON object with "transcript" and "knowledge_points"', 1)
    lines = _entry_lines(body, ("transcript",)) if isinstance(data["transcript"], list) else []
    raw = _json_cues(
        data["transcript"],
        lines,
        err,
        "transcript",
        start_names=("start_time", "start"),
        end_names=("end_time", "end"),
    )
    points_data = data.get("knowledge_points", [])
    if not isinstance(points_data, list):
        raise err('expected "knowledge_points" to be a list', 1)
    kp_lines = _entry_lines(body, ("knowledge_points",)) if points_data else []
    points = []
    for i, entry in enumerate(points_data):
        line = kp_lines[i] if i < len(kp_lines) else None
        label = f"knowledge_points[{i}]"
        if not isinstance(entry, dict):
            raise err(f"{label}: expected an object, got {type(entry).__name__}", line)
        unknown = sorted(set(entry) - set(_SEED_KP_FIELDS))
        if unknown:
            raise err(
                f"{label}: unknown field {unknown[0]!r}; expected knowledge_id, title, "
                "description, start_time, end_time",
                line,
            )
        fields = {_SEED_KP_FIELDS[k]: v for k, v in entry.items() if v is not None}
        for name in ("start", "end"):
            if isinstance(fields.get(name), float):
                fields[name] = str(fields[name])  # JSON seconds; manifests forbid floats only
        try:
            points.append(KnowledgePoint.model_validate(fields))
        except ValidationError as exc:
            first = exc.errors()[0]
            at = ".".join(str(p) for p in first["loc"])
            msg = first["msg"].removeprefix("Value error, ")
            raise err(f"{label}: {at + ': ' if at else ''}{msg}", line) from None
    return _make_transcript("seed-json", raw, err, knowledge_points=points)


# --- detection ----------------------------------------------------------------------------


def detect_format(text: str) -> str | None:
    """The format ``text`` looks like, or None."""
    body = text.lstrip("\ufeff \t\r\n")
    if body.startswith("WEBVTT"):
        return "webvtt"
    if body.startswith("["):
        return "json"
    if body.startswith("{"):
        head = body[:4096]
        if re.search(r'"segments"\s*:', head):
            return "whisper-json"
        if re.search(r'"(transcript|knowledge_points)"\s*:', head):
            return "seed-json"
        try:
            data = json.loads(body)
        except json.JSONDecodeError:
            return "seed-json"
        return "whisper-json" if isinstance(data, dict) and "segments" in data else "seed-json"
    first = body.split("\n", 1)[0].strip()
    if first.isdigit() or "-->" in first:
        return "srt"
    return None


_PARSERS = {
    "webvtt": parse_webvtt,
    "srt": parse_srt,
    "json": parse_json_cues,
    "whisper-json": parse_whisper_json,
    "seed-json": parse_seed_json,
}


def parse_transcript(text: str, fmt: str = "auto", *, source: str = "transcript") -> Transcript:
    """Parse a transcript.

    Args:
        text: the transcript text.
        fmt: ``auto`` or one of :data:`FORMATS`.
        source: what the text is, for error messages (``spec.transcript.inline``, a file name).

    Raises:
        TranscriptError: the text is not in the format, or has no cues; the problem names the line.
    """
    err = _Errors(source)
    if fmt == "auto":
        if not text.strip("\ufeff \t\r\n"):
            raise err("the transcript is empty; expected WebVTT, SRT or JSON cues", 1)
        detected = detect_format(text)
        if detected is None:
            first = text.lstrip("\ufeff").split("\n", 1)[0].strip()
            raise err(
                "cannot detect the transcript format: expected a 'WEBVTT' header, an SRT "
                f"subtitle number, or JSON; got {first[:40]!r} (set transcript.format)",
                1,
            )
        fmt = detected
    parser = _PARSERS.get(fmt)
    if parser is None:
        raise err(f"unknown transcript format {fmt!r}; expected auto or {', '.join(FORMATS)}")
    if not text.strip("\ufeff \t\r\n"):
        raise err(f"the transcript is empty; expected {fmt} cues", 1)
    return parser(text, source=source)
