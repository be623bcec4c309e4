"""Property-based round trips: cues written in each format parse back to the same cues."""

from __future__ import annotations

import json
import os

from hypothesis import given, settings
from hypothesis import strategies as st

from videojobs.times import format_timestamp
from videojobs.transcripts import parse_transcript

SETTINGS = settings(
    max_examples=int(os.environ.get("VIDEOJOBS_HYPOTHESIS_EXAMPLES", "200")), deadline=None
)

# Cue text: words of letters (any script), digits and common punctuation, one or two lines.
word = st.text(
    alphabet=st.characters(categories=["L", "Nd"], exclude_characters="\u2028\u2029"),
    min_size=1,
    max_size=8,
)
line = st.lists(word, min_size=1, max_size=6).map(" ".join).map(lambda s: s + ".")
text = st.lists(line, min_size=1, max_size=2).map("\n".join)


@st.composite
def cue_lists(draw: st.DrawFn) -> list[tuple[int, int, str]]:
    t = 0
    cues = []
    for _ in range(draw(st.integers(1, 15))):
        t += draw(st.integers(0, 5000))
        length = draw(st.integers(0, 20_000))
        cues.append((t, t + length, draw(text)))
        t += length
    return cues


def _expected(cues: list[tuple[int, int, str]]) -> list[tuple[float, float, str]]:
    return [(a / 1000, b / 1000, t) for a, b, t in cues]


# rolling=False: a random cue list may roll (one cue ending with the line the next starts
# with); merging those is tested in test_transcripts_rolling.py


def _parsed(source: str, fmt: str) -> list[tuple[float, float, str]]:
    return [(c.start, c.end, c.text) for c in parse_transcript(source, fmt, rolling=False).cues]


def _newlines(source: str, crlf: bool, bom: bool) -> str:
    return ("\ufeff" if bom else "") + (source.replace("\n", "\r\n") if crlf else source)


@SETTINGS
@given(cues=cue_lists(), crlf=st.booleans(), bom=st.booleans(), ids=st.booleans())
def test_webvtt_round_trip(
    cues: list[tuple[int, int, str]], crlf: bool, bom: bool, ids: bool
) -> None:
    blocks = ["WEBVTT"]
    for i, (a, b, t) in enumerate(cues):
        head = f"cue-{i}\n" if ids else ""
        blocks.append(f"{head}{format_timestamp(a / 1000)} --> {format_timestamp(b / 1000)}\n{t}")
    source = _newlines("\n\n".join(blocks) + "\n", crlf, bom)
    assert _parsed(source, "auto") == _expected(cues)


@SETTINGS
@given(cues=cue_lists(), crlf=st.booleans(), bom=st.booleans(), sep=st.sampled_from([",", "."]))
def test_srt_round_trip(cues: list[tuple[int, int, str]], crlf: bool, bom: bool, sep: str) -> None:
    blocks = [
        f"{i}\n{format_timestamp(a / 1000, separator=sep)} --> "
        f"{format_timestamp(b / 1000, separator=sep)}\n{t}"
        for i, (a, b, t) in enumerate(cues, start=1)
    ]
    source = _newlines("\n\n".join(blocks), crlf, bom)  # no final blank line
    assert _parsed(source, "auto") == _expected(cues)


@SETTINGS
@given(cues=cue_lists(), whisper=st.booleans(), indent=st.sampled_from([None, 2]))
def test_json_round_trip(
    cues: list[tuple[int, int, str]], whisper: bool, indent: int | None
) -> None:
    entries = [{"start": a / 1000, "end": b / 1000, "text": t} for a, b, t in cues]
    doc = {"segments": entries, "language": "en"} if whisper else entries
    source = json.dumps(doc, indent=indent, ensure_ascii=False)
    assert _parsed(source, "auto") == _expected(cues)
