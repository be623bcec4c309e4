"""Line-based caption formats: WebVTT, SRT and YouTube's SBV."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import srt

from videojobs.errors import TranscriptError
from videojobs.models import Transcript
from videojobs.transcripts._common import (
    LineIndex,
    _Errors,
    check_cue_count,
    clean_text,
    line_of,
    make_transcript,
    split_lines,
    words_between,
)

_VTT_TIMESTAMP = r"(?:\d+:)?\d{1,2}:\d{1,2}\.\d{1,3}"
_VTT_TIMINGS = re.compile(
    rf"^\s*({_VTT_TIMESTAMP})[ \t]+-->[ \t]+({_VTT_TIMESTAMP})(?:[ \t]+(.*))?$"
)
_VTT_EXPECTED = "cue timings 'HH:MM:SS.mmm --> HH:MM:SS.mmm' (optionally followed by settings)"
_SRT_EXPECTED_TIMINGS = "timings 'HH:MM:SS,mmm --> HH:MM:SS,mmm'"
_HUGE = re.compile(r"\d{6,}")


# --- WebVTT -------------------------------------------------------------------------------


def _vtt_blocks(lines: list[str], header: int = 1) -> Iterator[tuple[int, list[str]]]:
    """Blocks of non-empty lines with the 1-based number of their first line.

    As in webvtt-py, a ``-->`` line that cannot be the timings line of the current block (a
    missing blank line) starts a new block.
    """
    block: list[str] = []
    first = 0
    for number, line in enumerate(lines, start=1):
        # An empty line ends a block (W3C, webvtt-py); a line of spaces only when a new cue (or
        # a NOTE, STYLE or REGION block) follows it: YouTube's " " lines inside cues are text,
        # but the id of the next cue after a "blank" line with spaces is not glued onto this one
        if not line or (line.isspace() and _block_follows(lines, number)):
            if block:
                yield first, block
                block = []
            continue
        if block and "-->" in line and (first == header or len(block) > 1 or "-->" in block[0]):
            yield first, block
            block = []
        if not block:
            first = number
        block.append(line)
    if block:
        yield first, block


def _block_follows(lines: list[str], after: int) -> bool:
    """True when the lines after 0-based index ``after - 1`` start a cue (timings, or an id and
    timings) or a NOTE, STYLE or REGION block."""
    following = lines[after : after + 2]
    if not following or not following[0].strip():
        return False
    head = following[0]
    if "-->" in head or (len(following) > 1 and "-->" in following[1]):
        return True
    return any(_is_keyword_block(head, k) for k in ("NOTE", "STYLE", "REGION"))


def _is_keyword_block(line: str, keyword: str) -> bool:
    return line == keyword or line.startswith((keyword + " ", keyword + "\t"))


_VTT_INLINE_TIME = re.compile(r"<((?:\d+:)?\d{1,2}:\d{1,2}\.\d{1,3})>")
_VTT_CLOCK = re.compile(r"(?:(\d{1,10}):)?(\d{1,2}):(\d{1,2})\.(\d{1,3})")


def _vtt_ms(value: str) -> int:
    """A WebVTT timestamp in milliseconds, read as webvtt-py reads it (hours of up to 10 digits,
    minutes and seconds up to 59, a fraction padded on the right); ValueError otherwise."""
    match = _VTT_CLOCK.fullmatch(value)
    if not match:
        raise ValueError(f"Invalid timestamp {value!r}")
    hours, minutes, seconds, fraction = match.groups()
    if int(minutes) > 59 or int(seconds) > 59:
        raise ValueError(f"Invalid timestamp {value!r}")
    return (int(hours or 0) * 3600 + int(minutes) * 60 + int(seconds)) * 1000 + int(
        fraction.ljust(3, "0")
    )


def _vtt_pair(match: re.Match[str]) -> tuple[float, float]:
    """Start and end (seconds) of a timings line matched by :data:`_VTT_TIMINGS`: the common
    ``HH:MM:SS.mmm`` read by slicing, anything else by :func:`_vtt_ms`."""
    out = []
    for value in (match[1], match[2]):
        if len(value) == 12 and value[2] == ":" and value[5] == ":" and value[8] == ".":
            minutes, seconds = int(value[3:5]), int(value[6:8])
            if minutes <= 59 and seconds <= 59:
                ms = (int(value[:2]) * 3600 + minutes * 60 + seconds) * 1000 + int(value[9:])
                out.append(ms / 1000)
                continue
        out.append(_vtt_ms(value) / 1000)
    return out[0], out[1]


def _vtt_words(lines: list[str], start: float, end: float) -> list[dict[str, Any]] | None:
    """Word times from inline timestamps (``so<00:00:00.480><c> today</c>``, YouTube's automatic
    captions): a piece of text lasts from its timestamp (the cue's start for the first) to the
    next one in its line (the cue's end for the last). Lines without timestamps (the line
    YouTube repeats from the previous cue) get no time of their own."""
    timed: list[tuple[float | None, float | None, str]] = []
    for text_line in lines:
        parts = _VTT_INLINE_TIME.split(text_line)
        if len(parts) == 1:
            timed.append((None, None, clean_text(text_line)))
            continue
        pieces: list[tuple[float, str]] = [(start, parts[0])]
        for i in range(1, len(parts), 2):
            try:
                at = _vtt_ms(parts[i]) / 1000
            except ValueError:  # not a valid timestamp (60 minutes): a tag, as for a reader
                at = pieces[-1][0]
            pieces.append((at, parts[i + 1]))
        spoken = [(at, clean_text(piece)) for at, piece in pieces]
        spoken = [(at, piece) for at, piece in spoken if piece]
        timed.extend(
            (at, spoken[j + 1][0] if j + 1 < len(spoken) else end, piece)
            for j, (at, piece) in enumerate(spoken)
        )
    return words_between(timed, start, end)


def is_headerless_webvtt(first_lines: list[str]) -> bool:
    """True when a document without the ``WEBVTT`` line starts with WebVTT cue timings (a dot
    before the milliseconds, hours optional), on its first line or after a cue id: read as
    WebVTT, since SRT's reader takes ``00:01.500`` for 0 h 1 min 500 s."""
    timing = next((line for line in first_lines[:2] if "-->" in line), None)
    return timing is not None and _VTT_TIMINGS.match(timing) is not None


def parse_webvtt(text: str, *, source: str = "transcript", headerless: bool = False) -> Transcript:
    """Parse WebVTT (see the module docstring). Inline timestamps become word times. With
    ``headerless`` (auto-detection found cue timings but no ``WEBVTT`` line), the document has
    no header block."""
    err = _Errors(source)
    lines = split_lines(text)
    header = 0 if headerless else 1
    if header and not _is_keyword_block(lines[0], "WEBVTT"):
        raise err(f"expected the 'WEBVTT' header, got {lines[0][:40]!r}", 1)
    raw: list[dict[str, Any]] = []
    timings = _VTT_TIMINGS.match
    for first, block in _vtt_blocks(lines, header):
        if first == header:
            continue  # the header: WEBVTT, header text and metadata lines
        head = block[0]
        if _is_keyword_block(head, "NOTE"):
            continue
        if "-->" in head:
            cue_id, timing_at = None, 0
        elif _is_keyword_block(head, "STYLE") or _is_keyword_block(head, "REGION"):
            continue
        elif len(block) > 1 and "-->" in block[1]:
            cue_id, timing_at = head.strip(), 1
        else:
            raise err(
                f"expected {_VTT_EXPECTED}, a cue id followed by them, or a NOTE, STYLE or "
                f"REGION block; got {head[:60]!r}",
                first,
            )
        timing_line = first + timing_at
        match = timings(block[timing_at])
        if not match:
            raise err(f"expected {_VTT_EXPECTED}, got {block[timing_at][:60]!r}", timing_line)
        try:
            start, end = _vtt_pair(match)
        except ValueError as exc:
            raise err(f"expected {_VTT_EXPECTED}: {exc}", timing_line) from None
        payload = block[timing_at + 1 :]
        raw.append(
            {
                "id": cue_id,
                "start": start,
                "end": end,
                "text": clean_text("\n".join(payload)),
                "line": first,
                "words": _vtt_words(payload, start, end)
                if any("<" in p and _VTT_INLINE_TIME.search(p) for p in payload)
                else None,
            }
        )
    return make_transcript("webvtt", raw, err)


# --- SRT ----------------------------------------------------------------------------------


def _srt_problem(text: str, offset: int, err: _Errors) -> TranscriptError:
    """Explain why the block at ``offset`` is not a subtitle."""
    line = line_of(text, offset)
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


def _srt_block_inside(content: str, first_line: int, err: _Errors) -> None:
    """Refuse a cue whose text holds a blank line followed by more text: srt reads a block
    without timings (``2`` / ``Caption text #2``) as more text of the cue before, which would
    move quotes and cue numbers; the block's line is named instead."""
    parts = content.split("\n")
    for j in range(1, len(parts) - 1):
        if parts[j].strip() or not any(p.strip() for p in parts[j + 1 :]):
            continue
        k = next(k for k in range(j + 1, len(parts)) if parts[k].strip())
        head = parts[k].strip()
        if head.isdigit():
            got = parts[k + 1].strip() if k + 1 < len(parts) else ""
            raise err(
                f"subtitle {head} has no timings line: expected {_SRT_EXPECTED_TIMINGS} after "
                f"its number, got {got[:60]!r} (a block is a number, timings, then text)",
                first_line + k + 1,
            )
        raise err(
            f"expected a subtitle number and {_SRT_EXPECTED_TIMINGS} after the blank line, got "
            f"{head[:60]!r} (text after a blank line would be glued onto the subtitle before)",
            first_line + k,
        )


def parse_srt(text: str, *, source: str = "transcript") -> Transcript:
    """Parse SRT (see the module docstring)."""
    err = _Errors(source)
    body = text[1:] if text.startswith("\ufeff") else text
    lines = body.split("\n")
    matches = list(srt.SRT_REGEX.finditer(body))
    check_cue_count(len(matches), err)
    line_at = LineIndex(body)
    try:
        subtitles = list(srt.parse(body))
    except srt.SRTParseError as exc:
        raise _srt_problem(body, exc.expected_start, err) from None
    except (OverflowError, ValueError):  # a time too large for a timedelta
        line = next(
            (n for n, t in enumerate(lines, start=1) if "-->" in t and _HUGE.search(t)), None
        )
        raise err(f"a time is out of range; expected {_SRT_EXPECTED_TIMINGS}", line) from None
    raw = []
    for subtitle, match in zip(subtitles, matches, strict=True):
        line = line_at(match.start())
        while not lines[line - 1].strip():
            line += 1
        # srt reads a malformed block (e.g. a bad number line) as text of the previous cue
        content_line = line_at(match.start(5))
        _srt_block_inside(subtitle.content, content_line, err)
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
            timing_line = line_of(body, match.start(2))
            raise err(
                f"expected {_SRT_EXPECTED_TIMINGS}, got {lines[timing_line - 1].strip()[:60]!r}",
                timing_line,
            )
        raw.append(
            {
                "id": str(subtitle.index) if subtitle.index is not None else None,
                "start": subtitle.start.total_seconds(),
                "end": subtitle.end.total_seconds(),
                "text": clean_text(subtitle.content),
                "line": line,
            }
        )
    return make_transcript("srt", raw, err)


# --- SBV (YouTube's SubViewer-like captions) ----------------------------------------------

_SBV_TIME = r"(\d+):(\d{1,2}):(\d{1,2})(?:\.(\d{1,3}))?"
SBV_TIMINGS = re.compile(rf"^\s*{_SBV_TIME}\s*,\s*{_SBV_TIME}\s*$")
_SBV_EXPECTED = "timings 'H:MM:SS.mmm,H:MM:SS.mmm'"


def _sbv_seconds(parts: tuple[str | None, ...]) -> float:
    h, m, s, ms = parts
    return (
        int(h or 0) * 3600 + int(m or 0) * 60 + int(s or 0) + int((ms or "0").ljust(3, "0")) / 1000
    )


def parse_sbv(text: str, *, source: str = "transcript") -> Transcript:
    """Parse SBV: blocks of a ``H:MM:SS.mmm,H:MM:SS.mmm`` line and text lines."""
    err = _Errors(source)
    raw: list[dict[str, Any]] = []
    block: list[str] = []
    first = 0
    lines = split_lines(text)
    for number, line in enumerate([*lines, ""], start=1):
        if line.strip():
            if not block:
                first = number
            block.append(line)
            continue
        if not block:
            continue
        match = SBV_TIMINGS.match(block[0])
        if not match:
            raise err(f"expected {_SBV_EXPECTED}, got {block[0].strip()[:60]!r}", first)
        for j, extra in enumerate(block[1:], start=1):
            if SBV_TIMINGS.match(extra):
                raise err("expected a blank line before the next timings", first + j)
        raw.append(
            {
                "start": _sbv_seconds(match.groups()[:4]),
                "end": _sbv_seconds(match.groups()[4:]),
                "text": clean_text("\n".join(block[1:]).replace("[br]", "\n")),
                "line": first,
            }
        )
        block = []
    return make_transcript("sbv", raw, err)
