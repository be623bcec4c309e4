"""JSON transcripts: cue lists, Whisper-family segments, whisper.cpp, AWS Transcribe, YouTube
json3 and the seed document."""

from __future__ import annotations

import json
import re
from typing import Any

from pydantic import ValidationError

from videojobs.errors import Problem, TranscriptError
from videojobs.models import KnowledgePoint, Transcript
from videojobs.times import TimeValueError, parse_time
from videojobs.transcripts._common import (
    MAX_NESTING,
    _Errors,
    chained_words,
    check_cue_count,
    clean_text,
    make_transcript,
    words_between,
)

MAX_PROBLEMS = 100
"""Most problems of one JSON transcript reported at once (the rest after those are fixed)."""

_STRINGS = re.compile(r'"(?:[^"\\]|\\.)*"')
_BRACKETS = re.compile(r"[\[\]{}]")


def json_depth_problem(body: str) -> int | None:
    """The line where arrays/objects nest deeper than :data:`MAX_NESTING`, or None."""
    depth = 0
    for match in _BRACKETS.finditer(_STRINGS.sub(_blank, body)):
        if match[0] in "[{":
            depth += 1
            if depth > MAX_NESTING:
                return body.count("\n", 0, match.start()) + 1
        else:
            depth -= 1
    return None


def _blank(match: re.Match[str]) -> str:
    """A string literal as as many spaces (offsets, hence lines, stay put)."""
    return " " * (match.end() - match.start())


def load_json(text: str, err: _Errors) -> tuple[Any, str]:
    """Parse JSON after the nesting check (the C decoder recurses once per level)."""
    body = text[1:] if text.startswith("\ufeff") else text
    line = json_depth_problem(body)
    if line is not None:
        raise err(
            f"JSON nests deeper than the limit of {MAX_NESTING} levels (MAX_NESTING); "
            "a transcript needs a few",
            line,
        )
    try:
        return json.loads(body), body
    except json.JSONDecodeError as exc:
        raise err(f"invalid JSON: {exc.msg} (column {exc.colno})", exc.lineno) from None
    except RecursionError:  # pragma: no cover - the depth check comes first
        raise err(f"JSON nests deeper than the limit of {MAX_NESTING} levels", 1) from None


def _lines_at(body: str, offsets: list[int]) -> list[int]:
    """1-based line of each (ascending) offset, counted in one pass."""
    lines, line, last = [], 1, 0
    for offset in offsets:
        line += body.count("\n", last, offset)
        last = offset
        lines.append(line)
    return lines


def entry_lines(body: str, path: tuple[str, ...]) -> list[int]:
    """Line numbers of the entries of the array at ``path`` (keys of nested objects); empty when
    the path does not lead to an array."""
    at = _skip_ws(body, 0)
    for key in path:
        if body[at : at + 1] != "{":
            return []
        offsets = _value_offsets(body, at)
        assert isinstance(offsets, dict)
        if key not in offsets:
            return []
        at = offsets[key]
    if body[at : at + 1] != "[":
        return []
    offsets = _value_offsets(body, at)
    assert isinstance(offsets, list)
    return _lines_at(body, offsets)


def _number(value: Any, what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"'{what}' must be a number, got {value!r}")
    return float(value)


def _seconds(value: Any, what: str) -> float:
    """Seconds given as a number or a numeric string (AWS writes "1.23")."""
    if isinstance(value, str):
        try:
            value = float(value)
        except ValueError:
            raise ValueError(f"'{what}' must be seconds, got {value!r}") from None
    seconds = _number(value, what)
    if not seconds >= 0 or seconds == float("inf"):
        raise ValueError(f"'{what}' must be seconds, 0 or more, got {value!r}")
    return seconds


def _segment_words(
    entry: dict[str, Any], label: str
) -> list[tuple[float | None, float | None, str]] | None:
    """Whisper/WhisperX/faster-whisper ``words``: ``{word|text, start, end, ...}``."""
    words = entry.get("words")
    if words is None:
        return None
    if not isinstance(words, list):
        raise ValueError(f"{label}.words: expected a list, got {type(words).__name__}")
    timed: list[tuple[float | None, float | None, str]] = []
    for j, word in enumerate(words):
        where = f"{label}.words[{j}]"
        if not isinstance(word, dict):
            raise ValueError(f"{where}: expected an object, got {type(word).__name__}")
        text = word.get("word", word.get("text"))
        if not isinstance(text, str):
            raise ValueError(f"{where}: expected a 'word' string")
        times = [
            None if word.get(k) is None else _seconds(word[k], f"{where}.{k}")
            for k in ("start", "end")
        ]
        timed.append((times[0], times[1], text))
    return timed


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
    check_cue_count(len(entries), err)
    raw = []
    problems: list[TranscriptError] = []
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
            timed = _segment_words(entry, label)
        except ValueError as exc:
            problems.append(err(f"{label}: {exc}; expected {{start, end, text}}", line))
            if len(problems) >= MAX_PROBLEMS:
                break
            continue
        raw.append(
            {
                "id": None if cue_id is None else str(cue_id),
                "start": start,
                "end": end,
                "text": clean_text(text),
                "line": line,
                "words": None if timed is None else words_between(timed, start, end),
            }
        )
    if problems:
        raise TranscriptError([p for e in problems for p in e.problems])
    return raw


def parse_json_cues(text: str, *, source: str = "transcript") -> Transcript:
    """Parse a JSON list of ``{start, end, text}`` objects."""
    err = _Errors(source)
    data, body = load_json(text, err)
    if not isinstance(data, list):
        raise err("expected a JSON list of {start, end, text} objects", 1)
    return make_transcript("json", _json_cues(data, entry_lines(body, ()), err, "entries"), err)


def parse_whisper_json(text: str, *, source: str = "transcript") -> Transcript:
    """Parse Whisper's JSON output (``{"segments": [...], "language": ...}``)."""
    err = _Errors(source)
    data, body = load_json(text, err)
    if not isinstance(data, dict) or "segments" not in data:
        raise err('expected a JSON object with a "segments" list (Whisper JSON)', 1)
    lines = entry_lines(body, ("segments",)) if isinstance(data["segments"], list) else []
    raw = _json_cues(data["segments"], lines, err, "segments")
    for item in raw:
        item["id"] = None  # Whisper numbers segments from 0; cue indices are 1-based
    language = data.get("language") if isinstance(data.get("language"), str) else None
    return make_transcript("whisper-json", raw, err, language=language)


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

_SEED_SPELLING = {"id": "knowledge_id", "start": "start_time", "end": "end_time"}
"""The seed document's names of a knowledge point's fields (when the entry does not spell one)."""


def parse_seed_json(text: str, *, source: str = "transcript") -> Transcript:
    """Parse the seed's REST-era document: ``transcript`` entries plus ``knowledge_points``.

    Every problem of the entries and the knowledge points is reported at once (up to
    :data:`MAX_PROBLEMS`), each with its entry's line."""
    err = _Errors(source)
    data, body = load_json(text, err)
    if not isinstance(data, dict) or "transcript" not in data:
        raise err('expected a JSON object with "transcript" and "knowledge_points"', 1)
    lines = entry_lines(body, ("transcript",)) if isinstance(data["transcript"], list) else []
    problems: list[Problem] = []
    raw: list[dict[str, Any]] = []
    try:
        raw = _json_cues(
            data["transcript"],
            lines,
            err,
            "transcript",
            start_names=("start_time", "start"),
            end_names=("end_time", "end"),
        )
    except TranscriptError as exc:
        problems += exc.problems
    points_data = data.get("knowledge_points", [])
    if not isinstance(points_data, list):
        raise TranscriptError([*problems, *err('expected "knowledge_points" to be a list', 1)
                               .problems])  # fmt: skip
    kp_lines = entry_lines(body, ("knowledge_points",)) if points_data else []
    points: list[KnowledgePoint] = []
    for i, entry in enumerate(points_data):
        line = kp_lines[i] if i < len(kp_lines) else None
        messages = _seed_point_problems(entry, f"knowledge_points[{i}]", points)
        problems += [err(m, line).problems[0] for m in messages]
        if len(problems) >= MAX_PROBLEMS:
            break
    if problems:
        raise TranscriptError(problems[:MAX_PROBLEMS])
    return make_transcript("seed-json", raw, err, knowledge_points=points)


def _seed_point_problems(entry: Any, label: str, points: list[KnowledgePoint]) -> list[str]:
    """A seed knowledge point's problems, each naming its field as the entry spells it
    (``knowledge_points[1].end_time: ...``); none (and the point appended) when it is valid."""
    if not isinstance(entry, dict):
        return [f"{label}: expected an object, got {type(entry).__name__}"]
    unknown = sorted(set(entry) - set(_SEED_KP_FIELDS))
    if unknown:
        return [
            f"{label}: unknown field {name!r}; expected knowledge_id, title, description, "
            "start_time, end_time, quote"
            for name in unknown
        ]
    fields = {_SEED_KP_FIELDS[k]: v for k, v in entry.items() if v is not None}
    for name in ("start", "end"):
        if isinstance(fields.get(name), float):
            fields[name] = str(fields[name])  # JSON seconds; manifests forbid floats only
    try:
        points.append(KnowledgePoint.model_validate(fields))
    except ValidationError as exc:
        spelled = {**_SEED_SPELLING, **{_SEED_KP_FIELDS[k]: k for k in entry}}
        out = []
        for error in exc.errors():
            msg = error["msg"].removeprefix("Value error, ")
            loc = [str(p) for p in error["loc"]]
            if not loc and re.match(r"end( \(| must)", msg):
                loc = ["end"]  # the model's check of end against start is about end
            value = error.get("input")
            if error["type"] == "missing":
                msg = "required field is missing"
            elif loc and isinstance(value, str | int | float) and repr(value) not in msg:
                msg += f" (got {repr(value)[:60]})"
            at = "." + spelled.get(loc[0], loc[0]) if loc else ""
            out.append(f"{label}{at}: {msg}")
        return out
    return []


# --- whisper.cpp ----------------------------------------------------------------------------

_SPECIAL_TOKEN = re.compile(r"^\s*(\[_[^\]]*\]|<\|[^|]*\|>)\s*$")


def _cpp_span(entry: dict[str, Any], label: str) -> tuple[float, float]:
    """``offsets`` (ms) or else ``timestamps`` ("HH:MM:SS,mmm") of a whisper.cpp entry."""
    offsets = entry.get("offsets")
    if isinstance(offsets, dict):
        return (
            _seconds(offsets.get("from"), f"{label}.offsets.from") / 1000,
            _seconds(offsets.get("to"), f"{label}.offsets.to") / 1000,
        )
    stamps = entry.get("timestamps")
    if isinstance(stamps, dict):
        try:
            return parse_time(stamps.get("from")), parse_time(stamps.get("to"))
        except TimeValueError as exc:
            raise ValueError(f"{label}.timestamps: {exc}") from None
    raise ValueError(f"{label}: expected 'offsets' {{from, to}} in milliseconds")


def _cpp_words(tokens: Any, label: str) -> list[tuple[float | None, float | None, str]] | None:
    """Words from ``-ojf`` tokens: special tokens dropped, a token without a leading space
    continues the word before it."""
    if not isinstance(tokens, list):
        return None
    words: list[list[Any]] = []
    for j, token in enumerate(tokens):
        where = f"{label}.tokens[{j}]"
        if not isinstance(token, dict) or not isinstance(token.get("text"), str):
            raise ValueError(f"{where}: expected an object with a 'text' string")
        text = token["text"]
        if not text.strip() or _SPECIAL_TOKEN.match(text):
            continue
        start, end = _cpp_span(token, where)
        if words and not text[0].isspace():
            words[-1][1] = max(words[-1][1], end)
            words[-1][2] += text
        else:
            words.append([start, end, text.strip()])
    return [(s, e, t) for s, e, t in words] or None


def parse_whisper_cpp_json(text: str, *, source: str = "transcript") -> Transcript:
    """Parse whisper.cpp's ``-oj``/``-ojf`` output: ``{"transcription": [{"timestamps",
    "offsets", "text", "tokens"?}], "result": {"language"}}``."""
    err = _Errors(source)
    data, body = load_json(text, err)
    if not isinstance(data, dict) or not isinstance(data.get("transcription"), list):
        raise err('expected a JSON object with a "transcription" list (whisper.cpp -oj)', 1)
    entries = data["transcription"]
    check_cue_count(len(entries), err)
    lines = entry_lines(body, ("transcription",))
    raw = []
    for i, entry in enumerate(entries):
        line = lines[i] if i < len(lines) else None
        label = f"transcription[{i}]"
        try:
            if not isinstance(entry, dict):
                raise ValueError(f"{label}: expected an object, got {type(entry).__name__}")
            start, end = _cpp_span(entry, label)
            if not isinstance(entry.get("text"), str):
                raise ValueError(f"{label}: expected a 'text' string")
            timed = _cpp_words(entry.get("tokens"), label)
        except ValueError as exc:
            raise err(f"{exc}; expected {{offsets: {{from, to}}, text}}", line) from None
        raw.append(
            {
                "start": start,
                "end": end,
                "text": clean_text(entry["text"]),
                "line": line,
                "words": None if timed is None else words_between(timed, start, end),
            }
        )
    result = data.get("result")
    language = result.get("language") if isinstance(result, dict) else None
    return make_transcript(
        "whisper-cpp-json",
        [r for r in raw if r["text"]],
        err,
        language=language if isinstance(language, str) else None,
    )


# --- AWS Transcribe -------------------------------------------------------------------------

_SENTENCE_END = (".", "?", "!", "。", "？", "！")
_AWS_MAX_PAUSE = 2.0
_AWS_MAX_WORDS = 40


def _aws_items(items: Any, lines: list[int], err: _Errors) -> list[dict[str, Any]]:
    """Items as ``{start, end, text, punctuation, id, line}``."""
    if not isinstance(items, list):
        raise err('expected "results.items" to be a list', 1)
    out = []
    for i, item in enumerate(items):
        line = lines[i] if i < len(lines) else None
        label = f"results.items[{i}]"
        try:
            if not isinstance(item, dict):
                raise ValueError(f"expected an object, got {type(item).__name__}")
            alternatives = item.get("alternatives")
            if not (
                isinstance(alternatives, list)
                and alternatives
                and isinstance(alternatives[0], dict)
                and isinstance(alternatives[0].get("content"), str)
            ):
                raise ValueError("expected 'alternatives' [{content}]")
            punctuation = item.get("type") == "punctuation"
            start = end = None
            if not punctuation:
                start = _seconds(item.get("start_time"), "start_time")
                end = _seconds(item.get("end_time"), "end_time")
        except ValueError as exc:
            raise err(
                f"{label}: {exc}; expected {{start_time, end_time, alternatives}}", line
            ) from None
        out.append(
            {
                "id": item.get("id", i),
                "start": start,
                "end": end,
                "text": alternatives[0]["content"],
                "punctuation": punctuation,
                "line": line,
            }
        )
    return out


def _aws_cue(items: list[dict[str, Any]], text: str | None = None) -> dict[str, Any] | None:
    words: list[list[Any]] = []
    for item in items:
        if item["punctuation"]:
            if words:
                words[-1][2] += item["text"]
        else:
            words.append([item["start"], item["end"], item["text"]])
    if not words:
        return None
    return {
        "start": words[0][0],
        "end": max(w[1] for w in words),
        "text": clean_text(text if text is not None else " ".join(w[2] for w in words)),
        "line": items[0]["line"],
        "words": words_between([(s, e, t) for s, e, t in words], words[0][0], words[-1][1]),
    }


def is_call_analytics(data: Any) -> bool:
    """True for Amazon Transcribe Call Analytics output: a top-level ``Transcript`` list of
    turns with ``BeginOffsetMillis``/``EndOffsetMillis`` (standard Transcribe has ``results``)."""
    if not isinstance(data, dict) or "results" in data:
        return False
    turns = data.get("Transcript")
    if not isinstance(turns, list):
        return False
    if turns and isinstance(turns[0], dict):
        return "BeginOffsetMillis" in turns[0]
    return any(k in data for k in ("JobStatus", "Participants", "ConversationCharacteristics"))


def _millis(value: Any, what: str) -> float:
    seconds = _number(value, what) / 1000
    if not seconds >= 0 or seconds == float("inf"):
        raise ValueError(f"'{what}' must be milliseconds, 0 or more, got {value!r}")
    return seconds


def parse_aws_call_analytics(data: dict[str, Any], body: str, err: _Errors) -> Transcript:
    """Amazon Transcribe Call Analytics: one cue per turn of ``Transcript`` (``Content``,
    ``BeginOffsetMillis``, ``EndOffsetMillis``), its ``Items`` as words (punctuation joined to
    the word before)."""
    turns = data["Transcript"]
    check_cue_count(len(turns), err)
    lines = entry_lines(body, ("Transcript",))
    raw: list[dict[str, Any]] = []
    for i, turn in enumerate(turns):
        line = lines[i] if i < len(lines) else None
        try:
            if not isinstance(turn, dict):
                raise ValueError(f"expected an object, got {type(turn).__name__}")
            start = _millis(turn.get("BeginOffsetMillis"), "BeginOffsetMillis")
            end = _millis(turn.get("EndOffsetMillis"), "EndOffsetMillis")
            content = turn.get("Content")
            if not isinstance(content, str):
                raise ValueError("expected a 'Content' string")
            words: list[list[Any]] = []
            items = turn.get("Items") or []
            if not isinstance(items, list):
                raise ValueError("expected 'Items' to be a list")
            for k, item in enumerate(items):
                if not isinstance(item, dict) or not isinstance(item.get("Content"), str):
                    raise ValueError(f"Items[{k}]: expected an object with a 'Content' string")
                if item.get("Type") == "punctuation":
                    if words:
                        words[-1][2] += item["Content"]
                    continue
                words.append(
                    [
                        _millis(item.get("BeginOffsetMillis"), f"Items[{k}].BeginOffsetMillis"),
                        _millis(item.get("EndOffsetMillis"), f"Items[{k}].EndOffsetMillis"),
                        item["Content"],
                    ]
                )
        except ValueError as exc:
            raise err(
                f"Transcript[{i}]: {exc}; expected {{BeginOffsetMillis, EndOffsetMillis, Content, "
                "Items}} (AWS Transcribe Call Analytics)",
                line,
            ) from None
        raw.append(
            {
                "id": turn.get("Id") if isinstance(turn.get("Id"), str) else None,
                "start": start,
                "end": end,
                "text": clean_text(content),
                "line": line,
                "words": words_between([(a, b, t) for a, b, t in words], start, end),
            }
        )
    language = data.get("LanguageCode")
    return make_transcript(
        "aws-transcribe-json", raw, err, language=language if isinstance(language, str) else None
    )


def _aws_segment_cues(
    segments: Any, items: list[dict[str, Any]], body: str, err: _Errors
) -> list[dict[str, Any]]:
    """``results.audio_segments``: one cue per segment, its words from the items it lists."""
    if not isinstance(segments, list):
        raise err('expected "results.audio_segments" to be a list', 1)
    check_cue_count(len(segments), err)
    by_id = {item["id"]: item for item in items}
    lines = entry_lines(body, ("results", "audio_segments"))
    raw: list[dict[str, Any]] = []
    for i, segment in enumerate(segments):
        line = lines[i] if i < len(lines) else None
        label = f"results.audio_segments[{i}]"
        try:
            if not isinstance(segment, dict) or not isinstance(segment.get("items"), list):
                raise ValueError("expected an object with an 'items' list")
            start = _seconds(segment.get("start_time"), "start_time")
            end = _seconds(segment.get("end_time"), "end_time")
            members = [by_id[k] for k in segment["items"] if k in by_id]
            transcript = segment.get("transcript")
            if not isinstance(transcript, str):
                raise ValueError("expected a 'transcript' string")
        except ValueError as exc:
            raise err(f"{label}: {exc}; expected {{start_time, end_time, items}}", line) from None
        cue = _aws_cue(members, transcript)
        words = cue["words"] if cue else None
        raw.append(
            {"start": start, "end": end, "text": clean_text(transcript), "line": line}
            | ({"words": words} if words else {})
        )
    return raw


def _aws_sentence_cues(items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """``results.items`` grouped into sentences: a cue ends at a sentence's end, a long pause
    or a long run of words."""
    raw: list[dict[str, Any] | None] = []
    group: list[dict[str, Any]] = []
    last_end: float | None = None
    for item in items:
        if not item["punctuation"] and group:
            pause = item["start"] - last_end if last_end is not None else 0.0
            spoken = sum(not g["punctuation"] for g in group)
            if pause > _AWS_MAX_PAUSE or spoken >= _AWS_MAX_WORDS:
                raw.append(_aws_cue(group))
                group = []
        group.append(item)
        if not item["punctuation"]:
            last_end = item["end"]
        elif item["text"].endswith(_SENTENCE_END) and any(not g["punctuation"] for g in group):
            raw.append(_aws_cue(group))
            group = []
    raw.append(_aws_cue(group))
    return [r for r in raw if r is not None]


def parse_aws_transcribe_json(text: str, *, source: str = "transcript") -> Transcript:
    """Parse Amazon Transcribe's output: ``results.audio_segments`` when present (one cue per
    segment), else ``results.items`` grouped into sentences. Call Analytics output (a
    ``Transcript`` list of turns) is read too: one cue per turn."""
    err = _Errors(source)
    data, body = load_json(text, err)
    if is_call_analytics(data):
        return parse_aws_call_analytics(data, body, err)
    results = data.get("results") if isinstance(data, dict) else None
    if not isinstance(results, dict) or "items" not in results:
        raise err(
            'expected a JSON object with "results": {"items": [...]} (AWS Transcribe) or '
            '"Transcript": [{"BeginOffsetMillis", ...}] (AWS Transcribe Call Analytics)',
            1,
        )
    check_cue_count(len(results["items"]) if isinstance(results["items"], list) else 0, err)
    items = _aws_items(results["items"], entry_lines(body, ("results", "items")), err)
    segments = results.get("audio_segments")
    raw = _aws_segment_cues(segments, items, body, err) if segments else _aws_sentence_cues(items)
    language = results.get("language_code", data.get("language_code"))
    return make_transcript(
        "aws-transcribe-json",
        [r for r in raw if r["text"]],
        err,
        language=language if isinstance(language, str) else None,
    )


# --- YouTube json3 --------------------------------------------------------------------------


def parse_youtube_json3(text: str, *, source: str = "transcript") -> Transcript:
    """Parse YouTube's ``json3`` captions: ``{"events": [{"tStartMs", "dDurationMs", "segs":
    [{"utf8", "tOffsetMs"?}]}]}``; segments with offsets (automatic captions) become words."""
    err = _Errors(source)
    data, body = load_json(text, err)
    if not isinstance(data, dict) or not isinstance(data.get("events"), list):
        raise err('expected a JSON object with an "events" list (YouTube json3)', 1)
    events = data["events"]
    check_cue_count(len(events), err)
    lines = entry_lines(body, ("events",))
    raw = []
    for i, event in enumerate(events):
        line = lines[i] if i < len(lines) else None
        label = f"events[{i}]"
        try:
            if not isinstance(event, dict):
                raise ValueError(f"expected an object, got {type(event).__name__}")
            segs = event.get("segs")
            if segs is None:
                continue  # window and style events carry no text
            if not isinstance(segs, list):
                raise ValueError("'segs' must be a list")
            start = _seconds(event.get("tStartMs"), "tStartMs") / 1000
            end = start + _seconds(event.get("dDurationMs", 0), "dDurationMs") / 1000
            pieces: list[tuple[float, str]] = []
            for j, seg in enumerate(segs):
                if not isinstance(seg, dict) or not isinstance(seg.get("utf8"), str):
                    raise ValueError(f"segs[{j}]: expected an object with a 'utf8' string")
                offset = _seconds(seg.get("tOffsetMs", 0), f"segs[{j}].tOffsetMs") / 1000
                pieces.append((start + offset, seg["utf8"]))
        except ValueError as exc:
            raise err(f"{label}: {exc}; expected {{tStartMs, dDurationMs, segs}}", line) from None
        cue_text = clean_text("".join(p[1] for p in pieces))
        if not cue_text:
            continue
        word_timed = len(pieces) > 1 and any("tOffsetMs" in s for s in segs)
        raw.append(
            {
                "start": start,
                "end": end,
                "text": cue_text,
                "line": line,
                "words": chained_words(pieces, start, end) if word_timed else None,
            }
        )
    return make_transcript("youtube-json3", raw, err)
