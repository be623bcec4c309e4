"""Transcript parsers: the formats' corners, and errors that name the line."""

from __future__ import annotations

import json

import pytest

from videojobs.errors import TranscriptError
from videojobs.transcripts import detect_format, parse_transcript

VTT = """WEBVTT - A title for the file
Kind: captions
Language: en

NOTE
This is a comment
spanning two lines.

STYLE
::cue { color: yellow }

REGION
id:left width:40%

intro
00:00:00.000 --> 00:00:02.500 align:start line:0 region:left
<v Alice>Hello <b>there</b> &amp; welcome.</v>

NOTE a comment between cues

00:02.500 --> 00:05.000
<c.yellow>Second</c> cue
on <i>two</i> lines <00:03.000>timed.

3
00:00:05.000 --> 00:00:07.000
Third.
"""


def cues(text: str, fmt: str = "auto") -> list[tuple[int, str | None, float, float, str, int]]:
    t = parse_transcript(text, fmt)
    return [(c.index, c.id, c.start, c.end, c.text, c.line) for c in t.cues]


def error(text: str, fmt: str = "auto") -> TranscriptError:
    with pytest.raises(TranscriptError) as info:
        parse_transcript(text, fmt, source="captions.vtt")
    assert info.value.problems[0].path == "captions.vtt"
    return info.value


def test_webvtt_blocks_ids_settings_tags() -> None:
    assert cues(VTT) == [
        (1, "intro", 0.0, 2.5, "Hello there & welcome.", 15),
        (2, None, 2.5, 5.0, "Second cue\non two lines timed.", 21),
        (3, "3", 5.0, 7.0, "Third.", 25),
    ]
    assert parse_transcript(VTT).format == "webvtt"


@pytest.mark.parametrize(
    "variant",
    [
        "\ufeff" + VTT,
        VTT.replace("\n", "\r\n"),
        VTT.replace("\n", "\r"),
        VTT.rstrip("\n"),
        "\ufeff" + VTT.replace("\n", "\r\n").rstrip("\r\n"),
    ],
    ids=["bom", "crlf", "cr", "no-final-newline", "bom-crlf-no-final-newline"],
)
def test_webvtt_encodings_and_line_ends(variant: str) -> None:
    assert cues(variant) == cues(VTT)


def test_webvtt_missing_blank_line_between_cues() -> None:
    text = "WEBVTT\n\n00:00:00.000 --> 00:00:01.000\nOne\n00:00:01.000 --> 00:00:02.000\nTwo\n"
    assert [c[4] for c in cues(text)] == ["One", "Two"]


def test_webvtt_unsorted_cues_are_sorted_and_reindexed() -> None:
    text = (
        "WEBVTT\n\nb\n00:00:05.000 --> 00:00:06.000\nLater\n\n"
        "a\n00:00:01.000 --> 00:00:02.000\nEarly\n"
    )
    assert cues(text) == [(1, "a", 1.0, 2.0, "Early", 7), (2, "b", 5.0, 6.0, "Later", 3)]


@pytest.mark.parametrize(
    ("text", "line", "expected"),
    [
        ("WEBVTTX\n\n00:00:00.000 --> 00:00:01.000\nHi\n", 1, "'WEBVTT' header"),
        (
            "WEBVTT\n\n00:00:00.000 --> 00:00:01.000\nOk\n\n00:00:01.000 --> 00:0x:02.000\nHi\n",
            6,
            "expected cue timings",
        ),
        (
            "WEBVTT\n\n00:00:00.000 --> 00:00:01.000\nOk\n\nstray text\nmore\n",
            6,
            "NOTE, STYLE or REGION",
        ),
        (
            "WEBVTT\n\n00:00:00.000 --> 00:00:01.000\nOk\n\n00:00:03.000 --> 00:00:02.000\nBack\n",
            6,
            "before it starts",
        ),
        ("WEBVTT\n\nid\n00:00:00,000 --> 00:00:01,000\nComma\n", 4, "expected cue timings"),
    ],
    ids=["header", "bad-timestamp", "stray-block", "end-before-start", "srt-commas-in-vtt"],
)
def test_webvtt_errors_name_the_line(text: str, line: int, expected: str) -> None:
    problem = error(text, "webvtt").problems[0]
    assert problem.line == line
    assert expected in problem.message


def test_webvtt_crlf_error_lines_match_the_file() -> None:
    text = "\ufeffWEBVTT\r\n\r\n00:00:00.000 --> 00:00:01.000\r\nOk\r\n\r\nbroken\r\n"
    assert error(text).problems[0].line == 6


SRT = """1
00:00:00,000 --> 00:00:02,500
<i>Hello</i> there

2
00:00:02.500 --> 00:00:05,000
{\\an8}Second
line

3
00:00:05,000 --> 00:00:07,000 X1:10 X2:20 Y1:30 Y2:40
Third
"""


def test_srt_basic() -> None:
    assert cues(SRT) == [
        (1, "1", 0.0, 2.5, "Hello there", 1),
        (2, "2", 2.5, 5.0, "Second\nline", 5),
        (3, "3", 5.0, 7.0, "Third", 10),
    ]


@pytest.mark.parametrize(
    "variant",
    [
        "\ufeff" + SRT,
        SRT.replace("\n", "\r\n"),
        SRT.rstrip("\n"),
        "\n\n" + SRT.replace("\n\n", "\n\n\n"),
    ],
    ids=["bom", "crlf", "no-final-blank-line", "extra-blank-lines"],
)
def test_srt_variants(variant: str) -> None:
    assert [c[:5] for c in cues(variant, "srt")] == [c[:5] for c in cues(SRT)]


@pytest.mark.parametrize(
    ("text", "line", "expected"),
    [
        (
            "1\n00:00:00,000 --> 00:00:01,000\nOk\n\n2\n00:00:0x,000 --> 00:00:02,000\nBad\n",
            6,
            "expected timings",
        ),
        (
            "1\n00:00:00,000 --> 00:00:01,000\nOk\n\n2\n00:00:01,000 --> 00:00:0x,000\nBad\n",
            6,
            "expected timings",
        ),
        (
            "1\n00:00:00,000 --> 00:00:01,000\nOk\n\nxx\n00:00:01,000 --> 00:00:02,000\nBad\n",
            5,
            "subtitle number",
        ),
        ("1\n00:00:00,000 -> 00:00:01,000\nBad arrow\n", 2, "expected timings"),
        ("1\n00:00:03,000 --> 00:00:01,000\nBackwards\n", 1, "before it starts"),
    ],
    ids=["bad-start", "bad-end", "bad-number", "bad-arrow", "end-before-start"],
)
def test_srt_errors_name_the_line(text: str, line: int, expected: str) -> None:
    problem = error(text, "srt").problems[0]
    assert problem.line == line, problem
    assert expected in problem.message


JSON_LIST = """[
  {"start": 0, "end": 2.5, "text": "One"},
  {"start": "00:00:02.500", "end": "5s", "text": "<b>Two</b>", "id": "x"}
]"""


def test_json_list_seconds_and_timestamps() -> None:
    assert cues(JSON_LIST) == [(1, None, 0.0, 2.5, "One", 2), (2, "x", 2.5, 5.0, "Two", 3)]


@pytest.mark.parametrize(
    ("text", "line", "expected"),
    [
        (
            '[\n  {"start": 0, "end": 1, "text": "a"},\n  {"start": 1 "end": 2}\n]',
            3,
            "invalid JSON",
        ),
        (
            '[\n  {"start": 0, "end": 1, "text": "a"},\n\n'
            '  {"start": "soon", "end": 2, "text": "b"}\n]',
            4,
            "entries[1]: 'start': invalid time 'soon'",
        ),
        ('[\n  {"start": 0, "end": 1, "text": "a"},\n  {"start": 1, "end": 2}\n]', 3, "'text'"),
        ('[\n  {"start": 0, "end": 1, "text": "a"},\n  [1, 2, "b"]\n]', 3, "expected an object"),
        ('[\n  {"start": 0, "text": "a"}\n]', 2, "missing the end time"),
        ('{"cues": []}', 1, "JSON list"),
    ],
    ids=["syntax", "bad-time", "no-text", "not-object", "no-end", "not-a-list"],
)
def test_json_errors_name_the_line(text: str, line: int, expected: str) -> None:
    problem = error(text, "json").problems[0]
    assert problem.line == line, problem
    assert expected in problem.message


WHISPER = {
    "text": " Hello there. Second part.",
    "language": "de",
    "segments": [
        {"id": 0, "seek": 0, "start": 0.0, "end": 2.24, "text": " Hello there.", "tokens": [1]},
        {"id": 1, "seek": 0, "start": 2.24, "end": 4.5, "text": " Second part.", "tokens": [2]},
    ],
}


def test_whisper_json() -> None:
    text = json.dumps(WHISPER, indent=2)
    t = parse_transcript(text)
    assert t.format == "whisper-json"
    assert t.language == "de"
    assert [(c.index, c.id, c.start, c.end, c.text) for c in t.cues] == [
        (1, None, 0.0, 2.24, "Hello there."),
        (2, None, 2.24, 4.5, "Second part."),
    ]
    lines = text.split("\n")
    second = lines.index("    {", lines.index("    {") + 1)
    assert t.cues[1].line == second + 1


def test_whisper_bad_segment_names_its_line() -> None:
    bad = json.loads(json.dumps(WHISPER))
    bad["segments"][1]["end"] = "later"
    text = json.dumps(bad, indent=2)
    problem = error(text).problems[0]
    assert "segments[1]" in problem.message
    assert text.split("\n")[problem.line - 1].strip() == "{"
    assert '"id": 1' in text.split("\n")[problem.line]


SEED = """{
  "video_url": "https://example.org/v",
  "transcript": [
    {"start_time": 0.0, "end_time": 4.0, "text": "Intro."},
    {"start_time": "00:00:04", "end_time": 9, "text": "Body."}
  ],
  "knowledge_points": [
    {"knowledge_id": "kp-1", "title": "Intro", "description": "d",
     "start_time": 0.5, "end_time": "00:00:04"},
    {"knowledge_id": "kp-2", "title": "Body", "start_time": 4}
  ]
}"""


def test_seed_json_carries_knowledge_points() -> None:
    t = parse_transcript(SEED)
    assert t.format == "seed-json"
    assert [(c.start, c.end, c.text, c.line) for c in t.cues] == [
        (0.0, 4.0, "Intro.", 4),
        (4.0, 9.0, "Body.", 5),
    ]
    assert [(k.id, k.title, k.description, k.start, k.end) for k in t.knowledge_points] == [
        ("kp-1", "Intro", "d", 0.5, 4.0),
        ("kp-2", "Body", "", 4.0, None),
    ]


@pytest.mark.parametrize(
    ("change", "line", "expected"),
    [
        (('"start_time": 4}', '"start_time": "later"}'), 10, "knowledge_points[1].start_time: "),
        (
            ('"knowledge_id": "kp-2"', '"knowledge_id": "kp 2"'),
            10,
            "knowledge_points[1].knowledge_id: ",
        ),
        (('"title": "Body",', '"headline": "x", "title": "Body",'), 10, "unknown field 'headline'"),
        (('"end_time": 9', '"end_time": -9'), 5, "transcript[1]"),
    ],
)
def test_seed_json_errors(change: tuple[str, str], line: int, expected: str) -> None:
    problem = error(SEED.replace(*change)).problems[0]
    assert problem.line == line, problem
    assert expected in problem.message


def test_seed_json_reports_every_problem_at_once_with_its_field_and_line() -> None:
    """Every bad entry and every bad knowledge point in one error (not the first only), each
    naming the field as the document spells it, at the entry's line."""
    text = (
        SEED.replace('"end_time": 9', '"end_time": -9')
        .replace('"start_time": 0.0', '"start_time": "soon"')
        .replace('"end_time": "00:00:04"}', '"end_time": "00:00:00.2"}')
        .replace('"knowledge_id": "kp-2", "title": "Body", "start_time": 4',
                 '"knowledge_id": "kp 2", "title": "Body", "start_time": "later"')
    )  # fmt: skip
    problems = error(text).problems
    assert [(p.line, p.message.split(":")[0]) for p in problems] == [
        (4, "transcript[0]"),
        (5, "transcript[1]"),
        (8, "knowledge_points[0].end_time"),
        (10, "knowledge_points[1].knowledge_id"),
        (10, "knowledge_points[1].start_time"),
    ], problems
    assert "'soon'" in problems[0].message and "-9" in problems[1].message
    assert "must be after start" in problems[2].message
    assert "'later'" in problems[4].message


@pytest.mark.parametrize(
    ("text", "fmt"),
    [
        (VTT, "webvtt"),
        ("\ufeff\n" + VTT, "webvtt"),
        (SRT, "srt"),
        ("00:00:00,000 --> 00:00:01,000\nNo number\n", "srt"),
        (JSON_LIST, "json"),
        (json.dumps(WHISPER), "whisper-json"),
        (SEED, "seed-json"),
        ('{"knowledge_points": [], "transcript": []}', "seed-json"),
        ("Just some words", None),
    ],
)
def test_detect_format(text: str, fmt: str | None) -> None:
    assert detect_format(text) == fmt


@pytest.mark.parametrize(
    ("text", "fmt", "expected"),
    [
        ("", "auto", "empty"),
        ("  \n\ufeff\n", "auto", "empty"),
        ("", "srt", "empty"),
        ("WEBVTT\n\nNOTE nothing\n", "auto", "no cues"),
        ("[]", "auto", "no cues"),
        ('{"segments": []}', "auto", "no cues"),
        ("Hello world", "auto", "cannot detect"),
        ("WEBVTT\n", "subrip", "unknown transcript format 'subrip'"),
    ],
)
def test_empty_and_undetectable(text: str, fmt: str, expected: str) -> None:
    assert expected in error(text, fmt).problems[0].message


def test_format_mismatch_is_reported() -> None:
    assert "'WEBVTT' header" in error(SRT, "webvtt").problems[0].message
    assert "Whisper" in error(JSON_LIST, "whisper-json").problems[0].message
