"""Parser limits: nesting depth, bytes, cues and words end in a TranscriptError naming the limit
(never RecursionError, never unbounded work)."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from videojobs.errors import InvalidSpec, TranscriptError
from videojobs.transcripts import (
    MAX_CUES,
    MAX_NESTING,
    MAX_TRANSCRIPT_BYTES,
    _common,
    parse_transcript,
)
from videojobs.validation import read_documents

HOSTILE = Path(__file__).resolve().parents[1] / "data" / "hostile"


def error(text: str, fmt: str = "auto") -> str:
    with pytest.raises(TranscriptError) as info:
        parse_transcript(text, fmt, source="t")
    return str(info.value)


def nested_json(depth: int) -> str:
    """A whisper-json document whose one segment's text sits ``depth`` levels deep."""
    inner = '{"start": 0, "end": 1, "text": "x", "extra": ' + "[" * (depth - 3) + "]" * (depth - 3)
    return '{"segments": [' + inner + "}]}"


def test_json_nesting_at_the_limit_parses_and_one_more_is_refused() -> None:
    assert parse_transcript(nested_json(MAX_NESTING)).cues[0].text == "x"
    message = error(nested_json(MAX_NESTING + 1))
    assert message == (
        f"t, line 1: JSON nests deeper than the limit of {MAX_NESTING} levels (MAX_NESTING); "
        "a transcript needs a few"
    )


@pytest.mark.parametrize("fmt", ["auto", "json", "whisper-json", "seed-json", "youtube-json3"])
def test_a_deep_json_bomb_is_refused_by_every_json_parser(fmt: str) -> None:
    bomb = "[" * 100_000 + "]" * 100_000
    assert "(MAX_NESTING)" in error(bomb, fmt)
    assert "(MAX_NESTING)" in error('{"events": ' + '{"a": ' * 50_000 + "1" + "}" * 50_001, fmt)


def test_brackets_inside_strings_do_not_count() -> None:
    text = json.dumps([{"start": 0, "end": 1, "text": "[{" * 500 + '\\"' + "]" * 3}])
    assert parse_transcript(text).cues[0].text.startswith("[{[{")


def test_nesting_error_names_the_line_where_the_limit_is_passed() -> None:
    text = '{"segments":\n' + "[\n" * 200 + "]\n" * 200 + "}"
    assert error(text).startswith(f"t, line {MAX_NESTING + 1}: JSON nests deeper")


def _ttml(depth: int) -> str:
    # tt, body, div, p are 4 levels; the spans make up the rest
    spans = depth - 4
    return (
        '<tt xmlns="http://www.w3.org/ns/ttml"><body><div><p begin="0s" end="1s">'
        + "<span>" * spans
        + "deep"
        + "</span>" * spans
        + "</p></div></body></tt>"
    )


def test_xml_nesting_at_the_limit_parses_and_one_more_is_refused() -> None:
    assert parse_transcript(_ttml(MAX_NESTING)).cues[0].text == "deep"
    assert error(_ttml(MAX_NESTING + 1)) == (
        f"t, line 1: TTML nests elements deeper than the limit of {MAX_NESTING} levels "
        "(MAX_NESTING)"
    )
    assert "(MAX_NESTING)" in error(_ttml(100_000))


def test_xml_entity_declarations_are_refused() -> None:
    text = (HOSTILE / "entity-bomb-ttml.yaml").read_text()
    body = "\n".join(
        line[6:] for line in text.split("inline: |\n")[1].split("\n  knowledge")[0].splitlines()
    )
    assert "line 2: TTML must not contain a <!DOCTYPE> declaration" in error(body, "ttml")
    assert "srv3 must not contain a <!ENTITY>" in error(
        '<timedtext><!ENTITY a "b"></timedtext>', "youtube-srv3"
    )


def test_bytes_limit_is_checked_before_parsing() -> None:
    text = "[" + " " * MAX_TRANSCRIPT_BYTES + "]"
    started = time.perf_counter()
    message = error(text)
    assert f"larger than the limit of {MAX_TRANSCRIPT_BYTES} bytes (MAX_TRANSCRIPT_BYTES" in message
    assert time.perf_counter() - started < 5
    # multi-byte characters count as their UTF-8 bytes
    assert "(MAX_TRANSCRIPT_BYTES" in error("é" * (MAX_TRANSCRIPT_BYTES // 2 + 1))


def _json_cues(n: int) -> str:
    return json.dumps([{"start": i, "end": i + 1, "text": "w"} for i in range(n)])


def test_cue_limit() -> None:
    assert len(parse_transcript(_json_cues(MAX_CUES)).cues) == MAX_CUES
    assert error(_json_cues(MAX_CUES + 1)) == (
        f"t: the transcript has more than the limit of {MAX_CUES} cues (MAX_CUES)"
    )


@pytest.mark.parametrize(
    ("fmt", "build"),
    [
        ("srt", lambda n: "\n".join(f"{i}\n00:00:01,000 --> 00:00:02,000\nw\n" for i in range(n))),
        ("sbv", lambda n: "\n".join("0:00:01.000,0:00:02.000\nw\n" for _ in range(n))),
        (
            "youtube-json3",
            lambda n: json.dumps({"events": [{"tStartMs": 0, "segs": [{"utf8": "w"}]}] * n}),
        ),
        (
            "whisper-cpp-json",
            lambda n: json.dumps(
                {"transcription": [{"offsets": {"from": 0, "to": 1}, "text": "w"}] * n}
            ),
        ),
        (
            "ttml",
            lambda n: (
                '<tt xmlns="http://www.w3.org/ns/ttml"><body><div>'
                + '<p begin="0s" end="1s">w</p>' * n
                + "</div></body></tt>"
            ),
        ),
        ("sami", lambda n: "<SAMI><BODY>" + "<SYNC Start=0><P>w" * n + "</BODY></SAMI>"),
    ],
)
def test_cue_limit_in_each_family(fmt: str, build: object, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_common, "MAX_CUES", 50)
    assert callable(build)
    assert len(parse_transcript(build(50), fmt).cues) == 50
    assert "more than the limit of 50 cues (MAX_CUES)" in error(build(51), fmt)


def test_word_limit(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_common, "MAX_WORDS", 5)
    words = [{"word": f"w{i}", "start": i / 10, "end": i / 10 + 0.1} for i in range(6)]
    segment = {"start": 0, "end": 1, "text": "six words", "words": words}
    assert "more than the limit of 5 timed words (MAX_WORDS)" in error(
        json.dumps({"segments": [segment]})
    )
    segment["words"] = words[:5]
    assert len(parse_transcript(json.dumps({"segments": [segment]})).cues[0].words or []) == 5


def test_yaml_manifest_nesting_bomb_is_an_invalid_spec_with_its_line(tmp_path: Path) -> None:
    path = tmp_path / "bomb.yaml"
    path.write_text("apiVersion: v1\nspec:\n  a: " + "[" * 50_000 + "]" * 50_000 + "\n")
    with pytest.raises(InvalidSpec) as info:
        read_documents(path)
    assert str(info.value) == (
        "yaml, line 3: not valid YAML: collections nest deeper than the limit of "
        f"{MAX_NESTING} levels (MAX_NESTING)"
    )
    # nesting a manifest actually uses is fine
    path.write_text("a:\n" + "".join("  " * i + f"k{i}:\n" for i in range(1, 20)) + "  " * 20 + "v")
    assert read_documents(path)


def test_cli_refuses_a_transcript_over_the_cue_limit_quickly(tmp_path: Path) -> None:
    """A ConfigMap-sized transcript file with one cue too many: exit 1 naming the limit, in a
    bounded subprocess (no traceback)."""
    import subprocess
    import sys

    cues = "".join(
        f"{i + 1}\n{i // 3600:02d}:{i // 60 % 60:02d}:{i % 60:02d},000 --> "
        f"{i // 3600:02d}:{i // 60 % 60:02d}:{i % 60:02d},500\nw\n\n"
        for i in range(MAX_CUES + 1)
    )
    (tmp_path / "talk.srt").write_text(cues)
    (tmp_path / "job.yaml").write_text(
        "apiVersion: videojobs.io/v1alpha1\nkind: VideoProcessingJob\nmetadata: {name: big}\n"
        "spec:\n  source: {url: 'https://media.example.org/v.mp4'}\n"
        "  transcript: {configMapKeyRef: {name: t, key: talk.srt}}\n"
        "  knowledgePoints: [{id: a, title: A, start: '0'}]\n"
        "  output: {storage: {pvc: {claimName: clips}}}\n"
    )
    started = time.perf_counter()
    run = subprocess.run(
        [sys.executable, "-m", "videojobs_cli", "validate", str(tmp_path / "job.yaml")],
        capture_output=True,
        text=True,
        timeout=60,
    )
    elapsed = time.perf_counter() - started
    assert run.returncode == 1, run.stderr
    output = run.stdout + run.stderr
    assert f"more than the limit of {MAX_CUES} cues (MAX_CUES)" in output
    assert "Traceback" not in output
    assert elapsed < 30
