"""The formats people already have: every example in tests/data/transcripts parses to the same
script, by its explicit format and by auto; word times where the format has them; errors name
the line; detection failures say what the document looks like."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path
from types import ModuleType

import pytest

from videojobs.errors import TranscriptError
from videojobs.transcripts import FORMATS, detect_format, parse_transcript

DATA = Path(__file__).resolve().parents[1] / "data" / "transcripts"


def _generator() -> ModuleType:
    spec = importlib.util.spec_from_file_location("transcripts_generate", DATA / "generate.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


GEN = _generator()
SCRIPT = [(a / 1000, b / 1000, t) for a, b, t in GEN.CUES]

# file, format, has word times
EXAMPLES = [
    ("sample.vtt", "webvtt", False),
    ("sample.srt", "srt", False),
    ("sample.sbv", "sbv", False),
    ("sample.whisper.json", "whisper-json", False),
    ("sample.whisperx.json", "whisper-json", True),
    ("sample.faster-whisper.json", "json", True),
    ("sample.whisper-cpp.json", "whisper-cpp-json", False),
    ("sample.whisper-cpp-full.json", "whisper-cpp-json", True),
    ("sample.aws-transcribe.json", "aws-transcribe-json", True),
    ("sample.aws-transcribe-items.json", "aws-transcribe-json", True),
    ("sample.json3", "youtube-json3", True),
    ("sample.srv3", "youtube-srv3", True),
    ("sample.ttml", "ttml", False),
    ("sample.dfxp", "ttml", False),
    ("sample.smi", "sami", False),
    ("sample.ass", "ass", False),
    ("sample.ssa", "ssa", False),
]


def test_every_example_file_is_listed() -> None:
    assert sorted(p.name for p in DATA.glob("sample.*")) == sorted(e[0] for e in EXAMPLES)
    assert {e[1] for e in EXAMPLES} == set(FORMATS) - {"seed-json"}


@pytest.mark.parametrize(("name", "fmt", "has_words"), EXAMPLES, ids=[e[0] for e in EXAMPLES])
def test_example_round_trip(name: str, fmt: str, has_words: bool) -> None:
    text = (DATA / name).read_text(encoding="utf-8")
    transcript = parse_transcript(text, fmt, source=name)
    assert [(c.start, c.end, c.text) for c in transcript.cues] == SCRIPT
    assert [c.index for c in transcript.cues] == [1, 2, 3, 4]
    lines = text.split("\n")
    for cue in transcript.cues:
        assert cue.line is not None
        # the line the cue points at is in its entry (at its start, or its first word)
        window = "\n".join(lines[cue.line - 1 : cue.line + 12])
        assert cue.text.split()[0].rstrip(".:,") in window, (cue.line, window)
    if has_words:
        expected = [
            [(wa / 1000, wb / 1000, w) for wa, wb, w in GEN.words(a, b, t)] for a, b, t in GEN.CUES
        ]
        assert [[(w.start, w.end, w.text) for w in c.words or []] for c in transcript.cues] == (
            expected
        )
    else:
        assert all(c.words is None for c in transcript.cues)


@pytest.mark.parametrize(("name", "fmt", "has_words"), EXAMPLES, ids=[e[0] for e in EXAMPLES])
def test_example_auto_detection(name: str, fmt: str, has_words: bool) -> None:
    text = (DATA / name).read_text(encoding="utf-8")
    assert detect_format(text) == fmt
    auto = parse_transcript(text, source=name)
    assert auto.format == fmt
    assert auto == parse_transcript(text, fmt, source=name)
    # a byte-order mark and CRLF line ends change nothing
    assert parse_transcript("\ufeff" + text.replace("\n", "\r\n")).cues == auto.cues


def test_languages_are_kept() -> None:
    def language(name: str) -> str | None:
        return parse_transcript((DATA / name).read_text()).language

    assert language("sample.whisper-cpp.json") == "en"
    assert language("sample.aws-transcribe.json") == "en-US"
    assert language("sample.whisper.json") == "en"


# --- the report: whisper.cpp JSON given with format: auto ---------------------------


def test_whisper_cpp_json_is_not_mistaken_for_the_seed_document() -> None:
    text = json.dumps(
        {
            "transcription": [
                {
                    "timestamps": {"from": "00:00:01,000", "to": "00:00:04,000"},
                    "offsets": {"from": 1000, "to": 4000},
                    "text": " Hello.",
                }
            ]
        }
    )
    t = parse_transcript(text)
    assert (t.format, [(c.start, c.end, c.text) for c in t.cues]) == (
        "whisper-cpp-json",
        [(1.0, 4.0, "Hello.")],
    )


def test_whisper_cpp_timestamps_without_offsets() -> None:
    entry = {"timestamps": {"from": "00:01:02,500", "to": "00:01:03,000"}, "text": "Hi"}
    t = parse_transcript(json.dumps({"transcription": [entry]}), "whisper-cpp-json")
    assert [(c.start, c.end) for c in t.cues] == [(62.5, 63.0)]


def test_whisperx_words_without_times_take_their_neighbours_edges() -> None:
    segment = {
        "start": 1.0,
        "end": 3.0,
        "text": "It costs 20 dollars",
        "words": [
            {"word": "It", "start": 1.0, "end": 1.2},
            {"word": "costs", "start": 1.3, "end": 1.8},
            {"word": "20"},  # WhisperX does not align digits
            {"word": "dollars", "start": 2.4, "end": 3.0},
        ],
    }
    cue = parse_transcript(json.dumps({"segments": [segment]})).cues[0]
    assert [(w.start, w.end, w.text) for w in cue.words or []] == [
        (1.0, 1.2, "It"),
        (1.3, 1.8, "costs"),
        (1.8, 2.4, "20"),
        (2.4, 3.0, "dollars"),
    ]


def test_aws_items_are_grouped_into_sentences_and_by_pauses() -> None:
    def word(text: str, start: float, end: float) -> dict[str, object]:
        return {
            "type": "pronunciation",
            "start_time": str(start),
            "end_time": str(end),
            "alternatives": [{"content": text}],
        }

    stop = {"type": "punctuation", "alternatives": [{"content": "."}]}
    items = [word("Hi", 0, 0.5), stop, word("Long", 1, 1.5), word("pause", 5, 5.5)]
    t = parse_transcript(json.dumps({"results": {"items": items}}))
    assert [(c.start, c.end, c.text) for c in t.cues] == [
        (0.0, 0.5, "Hi."),
        (1.0, 1.5, "Long"),
        (5.0, 5.5, "pause"),
    ]


def test_json3_window_events_and_appended_newlines_are_skipped() -> None:
    doc = {
        "events": [
            {"tStartMs": 0, "dDurationMs": 9000, "id": 1, "wpWinPosId": 1},
            {"tStartMs": 100, "dDurationMs": 1900, "segs": [{"utf8": "Manual caption"}]},
            {"tStartMs": 2000, "dDurationMs": 10, "aAppend": 1, "segs": [{"utf8": "\n"}]},
        ]
    }
    t = parse_transcript(json.dumps(doc))
    assert [(c.start, c.end, c.text, c.words) for c in t.cues] == [
        (0.1, 2.0, "Manual caption", None)
    ]


def test_json3_line_break_inside_a_cue_does_not_cut_the_word_before_it() -> None:
    # A "\n" seg has no tOffsetMs (offset 0): it must not end "Hello" at the cue's start.
    doc = {
        "events": [
            {
                "tStartMs": 1000,
                "dDurationMs": 2000,
                "segs": [
                    {"utf8": "Hello"},
                    {"utf8": "\n"},
                    {"utf8": " world", "tOffsetMs": 500},
                ],
            }
        ]
    }
    (cue,) = parse_transcript(json.dumps(doc)).cues
    assert [(w.start, w.end, w.text) for w in cue.words or []] == [
        (1.0, 1.5, "Hello"),
        (1.5, 3.0, "world"),
    ]


def test_ttml_time_expressions_and_nested_div_begin() -> None:
    text = (
        '<tt xmlns="http://www.w3.org/ns/ttml" xmlns:ttp="http://www.w3.org/ns/ttml#parameter" '
        'ttp:frameRate="25"><body><div begin="10s">'
        '<p begin="1.5s" dur="500ms">a</p>'
        '<p begin="00:00:03:05" end="4000ms">b<br/>c</p>'
        '<p begin="100f" end="0.05h">d</p>'
        "</div></body></tt>"
    )
    t = parse_transcript(text)
    assert [(c.start, c.end, c.text) for c in t.cues] == [
        (11.5, 12.0, "a"),
        (13.2, 14.0, "b\nc"),
        (14.0, 190.0, "d"),
    ]


def test_ass_override_tags_comments_and_line_breaks() -> None:
    text = (
        (DATA / "sample.ass")
        .read_text()
        .replace(
            "Dialogue: 0,0:00:06.00,0:00:09.25,Default,,0,0,0,,A pod runs one or more containers.",
            "Comment: 0,0:00:05.00,0:00:06.00,Default,,0,0,0,,a note\n"
            "Dialogue: 0,0:00:06.00,0:00:09.25,Default,,0,0,0,,"
            "{\\i1}A pod{\\i0} runs\\None or more containers.",
        )
    )
    cue = parse_transcript(text).cues[2]
    assert (cue.start, cue.text, cue.line) == (6.0, "A pod runs\none or more containers.", 17)


# --- errors name the line -----------------------------------------------------------------


def error(text: str, fmt: str = "auto") -> str:
    with pytest.raises(TranscriptError) as info:
        parse_transcript(text, fmt, source="t")
    assert "Traceback" not in str(info.value)
    return str(info.value)


def _replace(name: str, old: str, new: str) -> str:
    text = (DATA / name).read_text()
    assert old in text
    return text.replace(old, new, 1)


@pytest.mark.parametrize(
    ("name", "old", "new", "expected"),
    [
        ("sample.sbv", "0:00:06.000,0:00:09.250", "0:00:06.000-0:00:09.250", "t, line 7: expected"),
        (
            "sample.whisper-cpp.json",
            '"from": 6000',
            '"from": "six"',
            "t, line 41: 'transcription[2].offsets.from' must be seconds",
        ),
        (
            "sample.aws-transcribe.json",
            '"start_time": "0.620"',
            '"start_time": "x"',
            "t, line 25: results.items[1]: 'start_time' must be seconds",
        ),
        ("sample.json3", '"tStartMs": 2500', '"tStartMs": -1', "t, line 43: events[2]: 'tStartMs'"),
        ("sample.srv3", '<p t="6000"', '<p t="6s"', "t, line 5: <p>: 't' must be whole"),
        ("sample.ttml", 'begin="00:00:06.000"', 'begin="6 seconds"', "t, line 29: <p>: expected"),
        # expat finds the unclosed <p> at the </div>
        ("sample.ttml", "<div>", "<div><p>", "t, line 35: invalid XML: mismatched tag"),
        ("sample.dfxp", 'end="12s"', "", "t, line 9: <p>: a <p> needs an 'end' or 'dur'"),
        (
            "sample.smi",
            "<SYNC Start=6000>",
            "<SYNC Start=6s>",
            "t, line 14: <SYNC>: expected Start",
        ),
        ("sample.ass", "0:00:06.00,0:00:09.25", "0:00:06.00,9.25s", "t, line 16: expected the end"),
        ("sample.ssa", "Dialogue: Marked=0,0:00:06.00", "Dialogue: 0:00:06.00", "t, line 17:"),
    ],
)
def test_errors_name_the_line(name: str, old: str, new: str, expected: str) -> None:
    assert expected in error(_replace(name, old, new))


def test_ttml_refuses_a_dtd() -> None:
    text = '<?xml version="1.0"?>\n<!DOCTYPE tt [<!ENTITY a "aaaa">]>\n<tt/>'
    assert "t, line 2: TTML must not contain a <!DOCTYPE>" in error(text, "ttml")


# --- detection failures say what the document looks like -----------------------------------


def test_unknown_json_object_lists_its_keys_and_the_json_formats() -> None:
    message = error(json.dumps({"captions": [], "meta": {}}))
    assert 'a JSON object with top-level keys "captions", "meta"' in message
    for fmt in ("whisper-json", "whisper-cpp-json", "aws-transcribe-json", "youtube-json3"):
        assert fmt in message
    assert "set transcript.format" in message


def test_seed_document_is_detected_only_by_its_own_keys() -> None:
    assert 'top-level keys "transcript"' in error(json.dumps({"transcript": "all of it"}))
    seed = {"transcript": [{"start_time": 0, "end_time": 1, "text": "x"}]}
    assert detect_format(json.dumps(seed)) == "seed-json"
    assert detect_format(json.dumps({"knowledge_points": []})) == "seed-json"


def test_unknown_markup_names_its_root_element() -> None:
    message = error('<?xml version="1.0"?>\n<subtitles><p/></subtitles>')
    assert "root element <subtitles>" in message and "<timedtext>" in message


def test_unknown_text_shows_its_first_line_and_every_format() -> None:
    message = error("Hello there\nsecond line\n")
    assert "the first line is 'Hello there'" in message
    for sign in ("WEBVTT", "[Script Info]", "H:MM:SS.mmm,H:MM:SS.mmm", '"transcription"', "<tt>"):
        assert sign in message


def test_invalid_json_names_the_line_under_auto() -> None:
    assert "t, line 2: invalid JSON" in error('{"segments":\n  [}')


def test_docs_table_lists_every_format_and_example() -> None:
    docs = (Path(__file__).resolve().parents[2] / "docs" / "resource.md").read_text()
    section = docs.split("## Transcript formats", 1)[1].split("\n## ", 1)[0]
    rows = [line for line in section.splitlines() if line.startswith("| `")]
    documented = {name for row in rows for name in row.split("|")[1].strip(" `").split("`, `")}
    assert documented == set(FORMATS)
    for name, _fmt, _words in EXAMPLES:
        assert f"`{name}`" in section
