"""Real-world quirks (issue 27): SRT blocks without timings, formats that are not read,
AWS Transcribe Call Analytics, and one rule for empty cues in every format."""

from __future__ import annotations

import json

import pytest

from videojobs.errors import TranscriptError
from videojobs.transcripts import detect_format, parse_transcript


def _error(text: str, fmt: str = "auto") -> str:
    with pytest.raises(TranscriptError) as caught:
        parse_transcript(text, fmt, source="t")
    return str(caught.value)


SRT_MISSING_TIMINGS = (
    "1\n00:00:01,000 --> 00:00:02,000\nCaption text #1\n\n"
    "2\nCaption text #2\n\n"
    "3\n00:00:05,000 --> 00:00:06,000\nCaption text #3\n"
)


@pytest.mark.parametrize("newline", ["\n", "\r\n"])
def test_srt_block_without_timings_is_refused_with_its_line(newline: str) -> None:
    message = _error(SRT_MISSING_TIMINGS.replace("\n", newline))
    assert message.startswith("t, line 6: subtitle 2 has no timings line"), message
    assert "'Caption text #2'" in message


def test_srt_text_after_a_blank_line_is_not_glued() -> None:
    text = SRT_MISSING_TIMINGS.replace("2\nCaption text #2", "Caption text #2")
    assert _error(text).startswith("t, line 5: expected a subtitle number and timings")


def test_srt_trailing_blank_lines_are_fine() -> None:
    text = "1\n00:00:01,000 --> 00:00:02,000\nhi\n\n\n\n2\n00:00:03,000 --> 00:00:04,000\nyo\n\n\n"
    assert [c.text for c in parse_transcript(text).cues] == ["hi", "yo"]


@pytest.mark.parametrize(
    ("text", "looks_like"),
    [
        ("{1}{1}23.976\n{24}{72}Hello there\n{80}{120}General Kenobi\n", "MicroDVD"),
        ("{0}{25}Hello|second line\n", "MicroDVD"),
        ("[ar:Someone]\n[00:12.00]Line one\n[00:17.20]Line two\n", "LRC lyrics"),
        ("[00:12.00]Line one\n", "LRC lyrics"),
        ("[INFORMATION]\n[TITLE]x\n", "SubViewer"),
    ],
)
def test_unsupported_formats_say_what_they_look_like(text: str, looks_like: str) -> None:
    message = _error(text)
    assert f"the document looks like {looks_like}" in message, message
    assert "invalid JSON" not in message and "srt" in message
    assert detect_format(text) is None


def test_plain_text_says_it_has_no_timings() -> None:
    assert "plain text without timings" in _error("Hello and welcome.\nToday we talk.\n")


CALL_ANALYTICS = {
    "JobStatus": "COMPLETED",
    "LanguageCode": "en-US",
    "AccountId": "123456789012",
    "Channel": "VOICE",
    "Participants": [{"ParticipantRole": "AGENT"}, {"ParticipantRole": "CUSTOMER"}],
    "Transcript": [
        {
            "Id": "a1",
            "ParticipantRole": "AGENT",
            "BeginOffsetMillis": 1200,
            "EndOffsetMillis": 3400,
            "Content": "Hello, how can I help?",
            "Sentiment": "NEUTRAL",
            "LoudnessScores": [70.1, 72.3],
            "Items": [
                {"Type": "pronunciation", "Content": "Hello", "Confidence": 0.99,
                 "BeginOffsetMillis": 1200, "EndOffsetMillis": 1600},
                {"Type": "punctuation", "Content": ",", "Confidence": 0.0},
                {"Type": "pronunciation", "Content": "how", "BeginOffsetMillis": 1700,
                 "EndOffsetMillis": 1900},
                {"Type": "pronunciation", "Content": "can", "BeginOffsetMillis": 1900,
                 "EndOffsetMillis": 2100},
                {"Type": "pronunciation", "Content": "I", "BeginOffsetMillis": 2100,
                 "EndOffsetMillis": 2200},
                {"Type": "pronunciation", "Content": "help", "BeginOffsetMillis": 2200,
                 "EndOffsetMillis": 3400},
                {"Type": "punctuation", "Content": "?"},
            ],
        },
        {
            "Id": "b2",
            "ParticipantRole": "CUSTOMER",
            "BeginOffsetMillis": 3900,
            "EndOffsetMillis": 5000,
            "Content": "My order is late.",
            "Items": [],
        },
    ],
    "Categories": {"MatchedCategories": []},
    "ConversationCharacteristics": {"TotalConversationDurationMillis": 5000},
}  # fmt: skip


def test_aws_call_analytics_is_detected_and_read() -> None:
    text = json.dumps(CALL_ANALYTICS, indent=2)
    assert detect_format(text) == "aws-transcribe-json"
    transcript = parse_transcript(text)
    assert transcript.language == "en-US"
    assert [(c.id, c.start, c.end, c.text) for c in transcript.cues] == [
        ("a1", 1.2, 3.4, "Hello, how can I help?"),
        ("b2", 3.9, 5.0, "My order is late."),
    ]
    words = transcript.cues[0].words
    assert words is not None
    assert [(w.start, w.text) for w in words] == [
        (1.2, "Hello,"), (1.7, "how"), (1.9, "can"), (2.1, "I"), (2.2, "help?")
    ]  # fmt: skip
    assert transcript.cues[1].words is None


def test_aws_call_analytics_problems_name_the_turn_and_line() -> None:
    doc = json.loads(json.dumps(CALL_ANALYTICS))
    doc["Transcript"][1]["BeginOffsetMillis"] = "soon"
    text = json.dumps(doc, indent=2)
    turn_line = text[: text.index('"Id": "b2"')].count("\n")  # the line of its "{"
    message = _error(text)
    assert message.startswith(f"t, line {turn_line}: Transcript[1]: 'BeginOffsetMillis' must be")


# The same captions, with one empty cue (a screen clear) second of four, in each format.
EMPTY_SECOND = {
    "srt": "1\n00:00:01,000 --> 00:00:02,000\none\n\n2\n00:00:02,000 --> 00:00:03,000\n\n\n"
    "3\n00:00:03,000 --> 00:00:04,000\nthree\n\n4\n00:00:04,000 --> 00:00:05,000\nfour\n",
    "webvtt": "WEBVTT\n\n00:00:01.000 --> 00:00:02.000\none\n\n00:00:02.000 --> 00:00:03.000\n"
    "<i></i>\n\n00:00:03.000 --> 00:00:04.000\nthree\n\n00:00:04.000 --> 00:00:05.000\nfour\n",
    "sbv": "0:00:01.000,0:00:02.000\none\n\n0:00:02.000,0:00:03.000\n \n\n"
    "0:00:03.000,0:00:04.000\nthree\n\n0:00:04.000,0:00:05.000\nfour\n",
    "json": json.dumps(
        [
            {"start": 1, "end": 2, "text": "one"},
            {"start": 2, "end": 3, "text": " "},
            {"start": 3, "end": 4, "text": "three"},
            {"start": 4, "end": 5, "text": "four"},
        ]
    ),
    "sami": "<SAMI><BODY>\n<SYNC Start=1000><P>one\n<SYNC Start=2000><P>&nbsp;\n"
    "<SYNC Start=3000><P>three\n<SYNC Start=4000><P>four\n<SYNC Start=5000><P>&nbsp;\n"
    "</BODY></SAMI>\n",
    "ttml": '<tt xmlns="http://www.w3.org/ns/ttml"><body><div>\n'
    '<p begin="1s" end="2s">one</p>\n<p begin="2s" end="3s"></p>\n'
    '<p begin="3s" end="4s">three</p>\n<p begin="4s" end="5s">four</p>\n'
    "</div></body></tt>\n",
}


@pytest.mark.parametrize("fmt", sorted(EMPTY_SECOND))
def test_empty_cues_are_dropped_in_every_format(fmt: str) -> None:
    transcript = parse_transcript(EMPTY_SECOND[fmt], fmt)
    assert [(c.index, c.start, c.text) for c in transcript.cues] == [
        (1, 1.0, "one"),
        (2, 3.0, "three"),
        (3, 4.0, "four"),
    ]


def test_only_empty_cues_is_an_error() -> None:
    text = "WEBVTT\n\n00:00:01.000 --> 00:00:02.000\n<b></b>\n"
    assert "no cues with text" in _error(text)


@pytest.mark.parametrize(
    "text",
    [
        "00:00:01.000 --> 00:00:02.500 align:start\nhello\n\n"
        "00:00:03.000 --> 00:00:04.000\nthere\n",
        "00:01.000 --> 00:02.500\nhello\n\n00:03.000 --> 00:04.000\nthere\n",
        "a\n00:01.000 --> 00:02.500\nhello\n\nb\n00:03.000 --> 00:04.000\nthere\n",
    ],
)
def test_headerless_webvtt_is_read_as_webvtt(text: str) -> None:
    """Without the WEBVTT line, SRT's reader would take 00:02.500 for 2 min 500 s."""
    transcript = parse_transcript(text)
    assert transcript.format == "webvtt" and detect_format(text) == "webvtt"
    assert [(c.start, c.end, c.text) for c in transcript.cues] == [
        (1.0, 2.5, "hello"),
        (3.0, 4.0, "there"),
    ]
    assert "'WEBVTT' header" in _error(text, "webvtt")  # named explicitly, the header is needed


def test_headerless_webvtt_errors_name_the_file_line() -> None:
    text = "00:01.000 --> 00:02.500\nhello\n\nnot a cue\n"
    assert _error(text).startswith("t, line 4: expected cue timings")


def test_webvtt_lines_of_spaces() -> None:
    """YouTube's " " lines inside a cue are cue text (W3C, webvtt-py); a line of spaces before
    the next cue still separates the cues, so its id is not glued onto the cue before."""
    text = (
        "WEBVTT\n\n00:00:01.000 --> 00:00:02.000\n \nfirst\n  \n"
        "two\n00:00:03.000 --> 00:00:04.000\nsecond\n\t\n"
        "NOTE a comment\n\n00:00:05.000 --> 00:00:06.000\nthird\n \n"
    )
    cues = parse_transcript(text).cues
    assert [(c.id, c.text) for c in cues] == [(None, "first"), ("two", "second"), (None, "third")]
