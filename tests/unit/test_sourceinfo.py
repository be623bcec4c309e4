"""Chapters and captions of the source, turned into segments and a transcript (pure)."""

from __future__ import annotations

import pytest

from videojobs.errors import InvalidSpec
from videojobs.models.transcript import Cue
from videojobs.sourceinfo import (
    CaptionsNotFound,
    Chapter,
    chapter_segments,
    chapters_from_info,
    choose_captions,
    merge_rolling,
)

INFO = {
    "chapters": [
        {"start_time": 0.0, "end_time": 65.0, "title": "Intro"},
        {"start_time": 65.0, "end_time": 300.5, "title": "Part 1: Pods"},
        {"start_time": 300.5, "end_time": 610.0, "title": "Part 2: Services"},
        {"start_time": 610.0, "end_time": 640.0, "title": "Outro  & thanks"},
    ],
    "subtitles": {"de": [{"ext": "vtt", "url": "https://x/de.vtt"}]},
    "automatic_captions": {
        "en": [
            {"ext": "json3", "url": "https://x/en.json3"},
            {"ext": "vtt", "url": "https://x/en.vtt"},
        ],
        "en-GB": [{"ext": "vtt", "url": "https://x/en-GB.vtt"}],
        "fr": [{"ext": "srv3", "url": "https://x/fr.srv3"}],
    },
}


def test_chapters_become_titled_segments() -> None:
    segments = chapter_segments(chapters_from_info(INFO))
    assert [(s.start, s.end, s.title, s.knowledge_id) for s in segments] == [
        (0.0, 65.0, "Intro", "ch01-intro"),
        (65.0, 300.5, "Part 1: Pods", "ch02-part-1-pods"),
        (300.5, 610.0, "Part 2: Services", "ch03-part-2-services"),
        (610.0, 640.0, "Outro & thanks", "ch04-outro-thanks"),
    ]


def test_chapter_title_filter_is_a_case_insensitive_glob() -> None:
    segments = chapter_segments(chapters_from_info(INFO), ["part *"])
    assert [s.knowledge_id for s in segments] == ["ch02-part-1-pods", "ch03-part-2-services"]
    with pytest.raises(InvalidSpec, match="matches none of the 4 chapters"):
        chapter_segments(chapters_from_info(INFO), ["Q&A"])


def test_ffprobe_chapters_and_open_ends() -> None:
    probed = {
        "chapters": [
            {"start_time": "10.000000", "end_time": "", "tags": {"title": "Second"}},
            {"start_time": "0.000000", "end_time": "10.000000", "tags": {"title": "First"}},
            {"start_time": "20.0", "end_time": "20.0", "tags": {}},
        ]
    }
    assert chapters_from_info(probed, duration=30.0) == [
        Chapter(0.0, 10.0, "First"),
        Chapter(10.0, 20.0, "Second"),
    ]


def test_no_chapters_is_a_clear_error() -> None:
    with pytest.raises(InvalidSpec, match="has no chapters"):
        chapter_segments(chapters_from_info({}))
    with pytest.raises(InvalidSpec, match="more than 500"):
        chapters_from_info({"chapters": [{"start_time": i, "end_time": i + 1} for i in range(501)]})


def test_uploaded_captions_before_automatic_and_vtt_preferred() -> None:
    track = choose_captions(INFO, ["de", "en"])
    assert (track.language, track.automatic, track.ext) == ("de", False, "vtt")
    track = choose_captions(INFO, ["en", "en-*"])
    assert (track.language, track.automatic, track.ext, track.url) == (
        "en",
        True,
        "vtt",
        "https://x/en.vtt",
    )
    assert choose_captions(INFO, ["en-*"]).language == "en-GB"
    both = {"subtitles": {"en": [{"ext": "vtt", "url": "u"}]},
            "automatic_captions": {"en": [{"ext": "vtt", "url": "a"}]}}  # fmt: skip
    assert not choose_captions(both, ["en"]).automatic
    assert choose_captions(both, ["en"], prefer_automatic=True).automatic


def test_missing_language_lists_what_exists() -> None:
    with pytest.raises(CaptionsNotFound) as caught:
        choose_captions(INFO, ["es", "pt-*"])
    message = str(caught.value)
    assert "no captions in es, pt-*" in message
    assert "uploaded: de" in message and "automatic: en, en-GB, fr" in message
    with pytest.raises(CaptionsNotFound, match="not allowed: automatic is false"):
        choose_captions(INFO, ["en"], automatic=False)
    with pytest.raises(CaptionsNotFound, match="no captions at all"):
        choose_captions({}, ["en"])


def _cue(n: int, start: float, end: float, text: str) -> Cue:
    return Cue(index=n, start=start, end=end, text=text)


def test_rolling_automatic_captions_are_merged() -> None:
    rolling = [
        _cue(1, 0.0, 2.0, "welcome to the course"),
        _cue(2, 2.0, 2.01, "welcome to the course"),
        _cue(3, 2.01, 4.0, "welcome to the course\ntoday we talk about pods"),
        _cue(4, 4.0, 4.01, "today we talk about pods"),
        _cue(5, 4.01, 6.5, "today we talk about pods\nand then services"),
        _cue(6, 6.5, 8.0, "and then services"),
    ]
    merged = merge_rolling(rolling)
    assert [(c.index, c.start, c.end, c.text) for c in merged] == [
        (1, 0.0, 2.01, "welcome to the course"),
        (2, 2.01, 4.01, "today we talk about pods"),
        (3, 4.01, 8.0, "and then services"),
    ]


def test_captions_that_do_not_roll_are_unchanged() -> None:
    plain = [_cue(1, 0, 2, "one"), _cue(2, 2, 4, "two\nlines"), _cue(3, 4, 6, "three")]
    assert [(c.start, c.end, c.text) for c in merge_rolling(plain)] == [
        (0, 2, "one"), (2, 4, "two"), (2, 4, "lines"), (4, 6, "three")
    ]  # fmt: skip
