"""Markup caption formats: TTML/DFXP, SAMI and ASS/SSA (through pysubs2) and YouTube's srv3.

pysubs2 does the reading; this module adds what it lacks for a transcript service: line numbers
in errors, limits on nesting before any tree is built, no DTDs (entity expansion), the DFXP
namespaces and TTML's ``dur``/tick/frame times (normalised to what pysubs2 reads).
"""

from __future__ import annotations

import re
import warnings
import xml.etree.ElementTree as ET
from typing import Any
from xml.parsers import expat

import pysubs2
from pysubs2.formats.substation import EVENT_FIELDS, TIMESTAMP, TIMESTAMP_SHORT

from videojobs.models import Transcript
from videojobs.transcripts._common import (
    MAX_NESTING,
    LineIndex,
    _Errors,
    chained_words,
    check_cue_count,
    clean_text,
    make_transcript,
    split_lines,
)

TTML_NS = "http://www.w3.org/ns/ttml"
DFXP_NAMESPACES = (
    "http://www.w3.org/2006/10/ttaf1",
    "http://www.w3.org/2006/04/ttaf1",
    "http://www.w3.org/2006/02/ttaf1",
)
_TTP_NAMESPACES = (
    "http://www.w3.org/ns/ttml#parameter",
    *(ns + "#parameter" for ns in DFXP_NAMESPACES),
)
_DTD = re.compile(r"<!(DOCTYPE|ENTITY)", re.IGNORECASE)


_LIBRARY_ERRORS = (ValueError, KeyError, IndexError, NotImplementedError, pysubs2.Pysubs2Error)


class _TooDeep(Exception):
    pass


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def _xml_elements(text: str, err: _Errors, what: str) -> list[tuple[str, int, int]]:
    """Parse ``text`` once with expat: ``(local name, depth, line)`` of every element in
    document order. Refuses DTDs and nesting deeper than :data:`MAX_NESTING`; a syntax error
    names its line."""
    dtd = _DTD.search(text)
    if dtd:
        raise err(
            f"{what} must not contain a <!{dtd[1].upper()}> declaration (entity expansion is "
            "refused)",
            text.count("\n", 0, dtd.start()) + 1,
        )
    elements: list[tuple[str, int, int]] = []
    depth = 0
    parser = expat.ParserCreate(namespace_separator="}")

    def start(name: str, _attrs: dict[str, str]) -> None:
        nonlocal depth
        depth += 1
        if depth > MAX_NESTING:
            raise _TooDeep
        elements.append((_local(name), depth, parser.CurrentLineNumber))

    def end(_name: str) -> None:
        nonlocal depth
        depth -= 1

    parser.StartElementHandler = start
    parser.EndElementHandler = end
    try:
        parser.Parse(text.removeprefix("\ufeff"), True)
    except _TooDeep:
        raise err(
            f"{what} nests elements deeper than the limit of {MAX_NESTING} levels (MAX_NESTING)",
            parser.CurrentLineNumber,
        ) from None
    except expat.ExpatError as exc:
        message = f"invalid XML: {expat.ErrorString(exc.code)} (column {exc.offset + 1})"
        raise err(message, exc.lineno) from None
    return elements


# --- TTML / DFXP ----------------------------------------------------------------------------

_OFFSET_TIME = re.compile(r"^\s*(\d+(?:\.\d+)?)(h|m|s|ms|f|t)\s*$")
_CLOCK_TIME = re.compile(r"^\s*(\d+):(\d{2}):(\d{2})(?:(\.\d+)|:(\d+)(?:\.\d+)?)?\s*$")
_UNITS = {"h": 3_600_000.0, "m": 60_000.0, "s": 1000.0, "ms": 1.0}


def _ttml_ms(value: str, frame_rate: float, tick_rate: float) -> float:
    """A TTML time expression in milliseconds (offset or clock time, frames and ticks too)."""
    match = _OFFSET_TIME.match(value)
    if match:
        count, unit = float(match[1]), match[2]
        if unit == "f":
            return count * 1000 / frame_rate
        if unit == "t":
            return count * 1000 / tick_rate
        return count * _UNITS[unit]
    match = _CLOCK_TIME.match(value)
    if match:
        ms = (int(match[1]) * 3600 + int(match[2]) * 60 + int(match[3])) * 1000.0
        if match[4]:
            ms += float(match[4]) * 1000
        elif match[5]:
            ms += int(match[5]) * 1000 / frame_rate
        return ms
    raise ValueError(
        f"expected a TTML time such as '00:00:01.500', '1.5s', '1500ms' or '15000000t', "
        f"got {value[:40]!r}"
    )


def _rate(root: ET.Element, name: str, default: float, err: _Errors) -> float:
    for ns in _TTP_NAMESPACES:
        value = root.get(f"{{{ns}}}{name}")
        if value is not None:
            try:
                rate = float(value)
            except ValueError:
                rate = 0.0
            if not rate > 0 or rate == float("inf"):
                raise err(f"ttp:{name} must be a positive number, got {value[:20]!r}", 1)
            return rate
    return default


def parse_ttml(text: str, *, source: str = "transcript") -> Transcript:
    """Parse TTML (and DFXP, its earlier name and namespaces) through pysubs2."""
    err = _Errors(source)
    elements = _xml_elements(text, err, "TTML")
    for ns in DFXP_NAMESPACES:
        text = text.replace(ns, TTML_NS)
    root = ET.fromstring(text.removeprefix("\ufeff"))
    if _local(root.tag) != "tt" or not root.tag.startswith(f"{{{TTML_NS}}}"):
        raise err(f"expected a <tt> root element in the {TTML_NS} namespace (TTML)", 1)
    frame_rate = _rate(root, "frameRate", 30.0, err)
    # TTML: without ttp:tickRate, ticks are frames when ttp:frameRate is given, else seconds
    tick_default = frame_rate if _param_given(root, "frameRate") else 1.0
    tick_rate = _rate(root, "tickRate", tick_default, err)
    lines = [line for _name, _depth, line in elements]
    paragraph_lines = []
    for element, line in zip(root.iter(), lines, strict=True):
        name = _local(element.tag)
        try:
            for attr in ("begin", "end", "dur"):
                if attr in element.attrib:
                    ms = _ttml_ms(element.attrib[attr], frame_rate, tick_rate)
                    element.set(attr, f"{round(ms)}ms")
            if "dur" in element.attrib:
                dur = element.attrib.pop("dur")
                if name == "p" and "end" not in element.attrib:
                    element.set("duration", dur)  # pysubs2's name for it
            if name == "p" and "end" not in element.attrib and "duration" not in element.attrib:
                raise ValueError("a <p> needs an 'end' or 'dur' attribute")
            if element.get("timeContainer", "par") != "par":
                raise ValueError("only timeContainer='par' is supported")
        except ValueError as exc:
            raise err(f"<{name}>: {exc}", line) from None
        if name == "p":
            paragraph_lines.append((element, line))
    # pysubs2 reads the <p> children of the <div> children of <body>, in document order
    readable = {
        id(p)
        for body in root
        if _local(body.tag) == "body"
        for div in body
        if _local(div.tag) == "div"
        for p in div
        if _local(p.tag) == "p"
    }
    for element, line in paragraph_lines:
        if id(element) not in readable:
            raise err(
                "<p>: expected it directly inside a <div> of <body> (nested <div>s and "
                "<p>s elsewhere are not read)",
                line,
            )
    read = [line for _element, line in paragraph_lines]
    check_cue_count(len(read), err)
    try:
        subs = pysubs2.SSAFile.from_string(ET.tostring(root, encoding="unicode"), format_="ttml")
    except _LIBRARY_ERRORS as exc:  # what the checks above did not foresee
        raise err(f"cannot read this TTML: {exc}") from None
    raw = [
        {"start": e.start / 1000, "end": e.end / 1000, "text": clean_text(e.plaintext), "line": ln}
        for e, ln in zip(subs.events, read, strict=False)
    ]
    return make_transcript("ttml", [r for r in raw if r["text"]], err)


def _param_given(root: ET.Element, name: str) -> bool:
    return any(f"{{{ns}}}{name}" in root.attrib for ns in _TTP_NAMESPACES)


# --- YouTube srv3 ---------------------------------------------------------------------------


def _ms_attr(element: ET.Element, name: str, default: str | None = None) -> float:
    value = element.get(name, default)
    if value is None or not value.strip().isdigit():
        raise ValueError(f"'{name}' must be whole milliseconds, got {value!r}")
    return int(value) / 1000


def parse_youtube_srv3(text: str, *, source: str = "transcript") -> Transcript:
    """Parse YouTube's srv3 (``<timedtext format="3"><body><p t d><s t>...``); ``<s>`` pieces
    with a ``t`` offset (automatic captions) become words."""
    err = _Errors(source)
    elements = _xml_elements(text, err, "srv3")
    root = ET.fromstring(text.removeprefix("\ufeff"))
    if root.tag != "timedtext":
        raise err("expected a <timedtext> root element (YouTube srv3)", 1)
    lines = {id(e): line for e, (_n, _d, line) in zip(root.iter(), elements, strict=True)}
    paragraphs = [p for body in root.iter("body") for p in body.iter("p")]
    check_cue_count(len(paragraphs), err)
    raw = []
    for p in paragraphs:
        line = lines[id(p)]
        try:
            start = _ms_attr(p, "t")
            end = start + _ms_attr(p, "d", "0")
            pieces = [(start, p.text or "")]
            spans = list(p.iter("s"))
            for s in spans:
                pieces.append((start + _ms_attr(s, "t", "0"), "".join(s.itertext())))
                if s.tail:
                    pieces.append((pieces[-1][0], s.tail))
        except ValueError as exc:
            raise err(f"<p>: {exc}", line) from None
        if not spans:
            pieces = [(start, "".join(p.itertext()))]
        cue_text = clean_text("".join(t for _, t in pieces))
        if not cue_text:
            continue
        word_timed = any("t" in s.attrib for s in spans)
        raw.append(
            {
                "start": start,
                "end": end,
                "text": cue_text,
                "line": line,
                "words": chained_words(pieces, start, end) if word_timed else None,
            }
        )
    return make_transcript("youtube-srv3", raw, err)


# --- SAMI -----------------------------------------------------------------------------------

_SYNC = re.compile(r"<sync\b([^>]*)>", re.IGNORECASE)
_START = re.compile(r"""\bstart\s*=\s*["']?([^\s"'>]*)""", re.IGNORECASE)


def parse_sami(text: str, *, source: str = "transcript") -> Transcript:
    """Parse SAMI through pysubs2. A ``<SYNC>`` lasts until the next one (pysubs2 guesses the
    length of the last from its text)."""
    err = _Errors(source)
    body = text.removeprefix("\ufeff")
    lines = []
    line_at = LineIndex(body)
    for match in _SYNC.finditer(body):
        line = line_at(match.start())
        start = _START.search(match[1])
        if not start or not start[1].isdigit():
            got = start[1] if start else None
            raise err(f"<SYNC>: expected Start=<milliseconds>, got {got!r}", line)
        lines.append(line)
    check_cue_count(len(lines), err)
    if not lines:
        raise err("expected <SYNC Start=...> elements (SAMI)", 1)
    try:
        events = pysubs2.SSAFile.from_string("\n".join(split_lines(body)), format_="sami").events
    except _LIBRARY_ERRORS as exc:  # what the checks above did not foresee
        raise err(f"cannot read this SAMI: {exc}") from None
    raw = []
    for i, (event, line) in enumerate(zip(events, lines, strict=False)):
        end = events[i + 1].start if i + 1 < len(events) else event.end
        raw.append(
            {
                "start": event.start / 1000,
                "end": max(end, event.start) / 1000,
                "text": clean_text(event.plaintext.replace("\xa0", " ")),
                "line": line,
            }
        )
    return make_transcript("sami", [r for r in raw if r["text"]], err)


# --- ASS / SSA ------------------------------------------------------------------------------


def _substation_flavour(text: str) -> str:
    if re.search(r"^\s*\[V4\+ Styles\]|^\s*ScriptType:\s*v4\.00\+", text, re.I | re.M):
        return "ass"
    return "ssa"


def parse_substation(text: str, *, source: str = "transcript", fmt: str = "ass") -> Transcript:
    """Parse ASS/SSA through pysubs2: ``Dialogue:`` lines, override tags removed, ``Comment:``
    lines skipped."""
    err = _Errors(source)
    flavour = _substation_flavour(text)
    fields = EVENT_FIELDS[flavour]
    event_lines: list[int] = []
    for number, line in enumerate(split_lines(text), start=1):
        stripped = line.strip()
        if not stripped.startswith(("Dialogue:", "Comment:")):
            continue
        values = stripped.split(":", 1)[1].strip().split(",", len(fields) - 1)
        if len(values) < len(fields):
            raise err(
                f"expected {len(fields)} comma-separated fields ({', '.join(fields)}), "
                f"got {len(values)}",
                number,
            )
        for name in ("start", "end"):
            value = values[fields.index(name)].strip().removeprefix("-")
            if not (TIMESTAMP.match(value) or TIMESTAMP_SHORT.match(value)):
                raise err(f"expected the {name} time as H:MM:SS.cc, got {value[:30]!r}", number)
        event_lines.append(number)
    check_cue_count(len(event_lines), err)
    if not event_lines:
        raise err("expected an [Events] section with Dialogue: lines (ASS/SSA)", 1)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # style fields we do not use
            events = pysubs2.SSAFile.from_string(
                "\n".join(split_lines(text)), format_=flavour
            ).events
    except _LIBRARY_ERRORS as exc:
        raise err(f"invalid {flavour.upper()} style or header line: {exc}") from None
    raw: list[dict[str, Any]] = [
        {
            "start": max(event.start, 0) / 1000,
            "end": max(event.end, 0) / 1000,
            "text": clean_text(event.plaintext),
            "line": line,
        }
        for event, line in zip(events, event_lines, strict=False)
        if not event.is_comment
    ]
    return make_transcript(fmt, [r for r in raw if r["text"]], err)
