"""Property-based time handling of the added parsers: cues (and words) written with arbitrary
millisecond times in each format's own time notation parse back to exactly those times."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from videojobs.errors import TranscriptError
from videojobs.transcripts import detect_format, parse_transcript

SETTINGS = settings(
    max_examples=int(os.environ.get("VIDEOJOBS_HYPOTHESIS_EXAMPLES", "100")), deadline=None
)

word = st.text(alphabet=st.characters(categories=["L"]), min_size=1, max_size=8)
Cue = tuple[int, int, list[str]]


@st.composite
def cue_lists(draw: st.DrawFn, step: int = 1, hours: bool = True) -> list[Cue]:
    """Cues in time order with whole-``step`` millisecond times, each with 1-6 words."""
    t = draw(st.integers(0, 36_000_000 if hours else 3_000_000)) // step * step
    cues = []
    for _ in range(draw(st.integers(1, 12))):
        t += draw(st.integers(0, 5000)) // step * step
        length = draw(st.integers(0, 20_000)) // step * step
        cues.append((t, t + length, draw(st.lists(word, min_size=1, max_size=6))))
        t += length
    return cues


def _parsed(text: str, fmt: str) -> list[tuple[float, float, str]]:
    transcript = parse_transcript(text, fmt)
    assert parse_transcript(text).format == fmt  # auto finds it too
    return [(c.start, c.end, c.text) for c in transcript.cues]


def _expected(cues: list[Cue]) -> list[tuple[float, float, str]]:
    return [(a / 1000, b / 1000, " ".join(ws)) for a, b, ws in cues]


def _word_times(start: int, end: int, n: int) -> list[int]:
    """Start of each of ``n`` words, evenly inside [start, end)."""
    return [start + (end - start) * i // n for i in range(n)]


def _clock(ms: int, sep: str = ".") -> str:
    h, rest = divmod(ms, 3_600_000)
    m, rest = divmod(rest, 60_000)
    s, ms = divmod(rest, 1000)
    return f"{h:02d}:{m:02d}:{s:02d}{sep}{ms:03d}"


@SETTINGS
@given(cues=cue_lists(), stamps_only=st.booleans())
def test_whisper_cpp_offsets_and_timestamps(cues: list[Cue], stamps_only: bool) -> None:
    entries: list[dict[str, Any]] = []
    for a, b, ws in cues:
        entry: dict[str, Any] = {
            "timestamps": {"from": _clock(a, ","), "to": _clock(b, ",")},
            "text": " " + " ".join(ws),
        }
        if not stamps_only:
            entry["offsets"] = {"from": a, "to": b}
        entries.append(entry)
    assert _parsed(json.dumps({"transcription": entries}), "whisper-cpp-json") == _expected(cues)


@SETTINGS
@given(cues=cue_lists())
def test_whisper_cpp_tokens_become_words(cues: list[Cue]) -> None:
    entries = []
    for a, b, ws in cues:
        starts = _word_times(a, b, len(ws))
        tokens = [{"text": "[_BEG_]", "offsets": {"from": a, "to": a}}]
        for i, w in enumerate(ws):
            end = starts[i + 1] if i + 1 < len(ws) else b
            # split each word into two tokens: the second has no leading space
            half = max(1, len(w) // 2)
            middle = (starts[i] + end) // 2
            tokens.append({"text": " " + w[:half], "offsets": {"from": starts[i], "to": middle}})
            if w[half:]:
                tokens.append({"text": w[half:], "offsets": {"from": middle, "to": end}})
        entries.append({"offsets": {"from": a, "to": b}, "text": " ".join(ws), "tokens": tokens})
    transcript = parse_transcript(json.dumps({"transcription": entries}))
    for cue, (a, b, ws) in zip(transcript.cues, cues, strict=True):
        starts = _word_times(a, b, len(ws))
        ends = [*starts[1:], b]
        # a word whose second half is missing ends at its first token's end
        expected = [
            (s / 1000, (e if w[max(1, len(w) // 2) :] else (s + e) // 2) / 1000, w)
            for s, e, w in zip(starts, ends, ws, strict=True)
        ]
        assert [(w.start, w.end, w.text) for w in cue.words or []] == expected


@SETTINGS
@given(cues=cue_lists())
def test_aws_transcribe_string_seconds(cues: list[Cue]) -> None:
    items: list[dict[str, Any]] = []
    segments = []
    for a, b, ws in cues:
        starts = _word_times(a, b, len(ws))
        first = len(items)
        for i, w in enumerate(ws):
            end = starts[i + 1] if i + 1 < len(ws) else b
            items.append(
                {
                    "id": len(items),
                    "type": "pronunciation",
                    "start_time": f"{starts[i] / 1000:.3f}",
                    "end_time": f"{end / 1000:.3f}",
                    "alternatives": [{"content": w}],
                }
            )
        segments.append(
            {
                "transcript": " ".join(ws),
                "start_time": str(a / 1000),
                "end_time": str(b / 1000),
                "items": list(range(first, len(items))),
            }
        )
    doc = {"results": {"items": items, "audio_segments": segments}}
    assert _parsed(json.dumps(doc), "aws-transcribe-json") == _expected(cues)


@SETTINGS
@given(cues=cue_lists())
def test_youtube_json3_and_srv3_offsets(cues: list[Cue]) -> None:
    events = []
    paragraphs = []
    for a, b, ws in cues:
        starts = _word_times(a, b, len(ws))
        segs = [{"utf8": ws[0]}] + [
            {"utf8": " " + w, "tOffsetMs": s - a} for s, w in zip(starts[1:], ws[1:], strict=True)
        ]
        events.append({"tStartMs": a, "dDurationMs": b - a, "segs": segs})
        spans = f"<s>{ws[0]}</s>" + "".join(
            f'<s t="{s - a}"> {w}</s>' for s, w in zip(starts[1:], ws[1:], strict=True)
        )
        paragraphs.append(f'<p t="{a}" d="{b - a}">{spans}</p>')
    json3 = json.dumps({"events": events})
    srv3 = '<timedtext format="3"><body>' + "\n".join(paragraphs) + "</body></timedtext>"
    for text, fmt in ((json3, "youtube-json3"), (srv3, "youtube-srv3")):
        assert _parsed(text, fmt) == _expected(cues)
        for cue, (a, b, ws) in zip(parse_transcript(text).cues, cues, strict=True):
            if len(ws) == 1:
                continue  # one piece: no word times to read
            starts = _word_times(a, b, len(ws))
            expected = list(zip(starts, [*starts[1:], b], ws, strict=True))
            assert [(w.start, w.end, w.text) for w in cue.words or []] == [
                (s / 1000, e / 1000, w) for s, e, w in expected
            ]


@SETTINGS
@given(cues=cue_lists())
def test_sbv_times(cues: list[Cue]) -> None:
    def sbv(ms: int) -> str:
        h, rest = divmod(ms, 3_600_000)
        return f"{h}:{_clock(rest)[3:]}"

    text = "\n".join(f"{sbv(a)},{sbv(b)}\n{' '.join(ws)}\n" for a, b, ws in cues)
    assert _parsed(text, "sbv") == _expected(cues)


TTML_FORMS = st.sampled_from(["clock", "ms", "s", "ticks"])


def _ttml_time(ms: int, form: str) -> str:
    if form == "clock":
        return _clock(ms)
    if form == "ms":
        return f"{ms}ms"
    if form == "s":
        return f"{ms / 1000}s"
    return f"{ms * 10_000}t"


@SETTINGS
@given(cues=cue_lists(), data=st.data(), dfxp=st.booleans(), use_dur=st.booleans())
def test_ttml_time_expressions(
    cues: list[Cue], data: st.DataObject, dfxp: bool, use_dur: bool
) -> None:
    ns = "http://www.w3.org/2006/10/ttaf1" if dfxp else "http://www.w3.org/ns/ttml"
    ps = []
    for a, b, ws in cues:
        begin = _ttml_time(a, data.draw(TTML_FORMS))
        if use_dur:
            end = f'dur="{_ttml_time(b - a, data.draw(TTML_FORMS))}"'
        else:
            end = f'end="{_ttml_time(b, data.draw(TTML_FORMS))}"'
        ps.append(f'<p begin="{begin}" {end}>{" ".join(ws)}</p>')
    text = (
        f'<?xml version="1.0" encoding="utf-8"?>\n<tt xmlns="{ns}" '
        f'xmlns:ttp="{ns}#parameter" ttp:tickRate="10000000">\n<body><div>\n'
        + "\n".join(ps)
        + "\n</div></body></tt>\n"
    )
    assert _parsed(text, "ttml") == _expected(cues)


@SETTINGS
@given(cues=cue_lists(step=10, hours=False))
def test_ass_centiseconds(cues: list[Cue]) -> None:
    def ass(ms: int) -> str:
        h, rest = divmod(ms, 3_600_000)
        m, rest = divmod(rest, 60_000)
        return f"{h}:{m:02d}:{rest // 1000:02d}.{rest % 1000 // 10:02d}"

    events = "\n".join(
        f"Dialogue: 0,{ass(a)},{ass(b)},Default,,0,0,0,,{' '.join(ws)}" for a, b, ws in cues
    )
    text = (
        "[Script Info]\nScriptType: v4.00+\n\n[Events]\n"
        "Format: Layer, Start, End, Style, Name, MarginL, MarginR, MarginV, Effect, Text\n"
        + events
        + "\n"
    )
    assert _parsed(text, "ass") == _expected(cues)


@SETTINGS
@given(cues=cue_lists())
def test_sami_sync_lasts_until_the_next(cues: list[Cue]) -> None:
    syncs = "\n".join(f"<SYNC Start={a}><P>{' '.join(ws)}</P>" for a, _b, ws in cues)
    last = cues[-1][1]
    text = f"<SAMI><BODY>\n{syncs}\n<SYNC Start={last}><P>&nbsp;</P>\n</BODY></SAMI>"
    starts = [a for a, _b, _ws in cues]
    ends = [*starts[1:], last]
    expected = [
        (a / 1000, e / 1000, " ".join(ws)) for (a, _b, ws), e in zip(cues, ends, strict=True)
    ]
    # cues that start together: sorting keeps them in order, each ends at the next start
    assert _parsed(text, "sami") == expected


# --- damaged files: a TranscriptError or a transcript, never another exception ---------------

_DATA = Path(__file__).resolve().parents[1] / "data" / "transcripts"
_SAMPLES = sorted(p.name for p in _DATA.glob("sample.*"))
FORMAT_OF = {name: detect_format((_DATA / name).read_text()) or "auto" for name in _SAMPLES}
_JUNK = st.sampled_from(
    [
        "",
        "<",
        ">",
        "{",
        "}",
        "[",
        "]",
        '"',
        ",",
        ":",
        "-->",
        "\n",
        "\n\n",
        "&",
        "-1",
        "x",
        "é",
        "<br/>",
        "</p>",
        '="',
        "99999999999999999999",
        "1e999",
        "NaN",
        "\\N",
        "{\\i1}",
        "Dialogue:",
    ]
)


@settings(
    max_examples=int(os.environ.get("VIDEOJOBS_HYPOTHESIS_EXAMPLES", "100")) * 3, deadline=None
)
@given(name=st.sampled_from(_SAMPLES), data=st.data())
def test_damaged_examples_fail_only_with_transcript_errors(name: str, data: st.DataObject) -> None:
    text = (_DATA / name).read_text(encoding="utf-8")
    for _ in range(data.draw(st.integers(1, 4))):
        at = data.draw(st.integers(0, len(text)))
        cut = data.draw(st.integers(0, 8))
        text = text[:at] + data.draw(_JUNK) + text[at + cut :]
    fmt = data.draw(st.sampled_from(["auto", FORMAT_OF[name]]))
    try:
        parse_transcript(text, fmt)
    except TranscriptError as exc:
        assert exc.problems and exc.problems[0].message
