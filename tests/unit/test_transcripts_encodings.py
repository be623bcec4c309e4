"""Transcripts in the encodings subtitles come in (issue 27): detected, or named by a BOM or
``transcript.encoding``; refused with the encodings tried when nothing reads them; never a
traceback from the CLI."""

from __future__ import annotations

import base64
import codecs
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from pydantic import ValidationError

from videojobs.bounded import plan_problems
from videojobs.errors import TranscriptError
from videojobs.models import ExitCode, VideoProcessingJobSpec
from videojobs.transcripts import decode_transcript, parse_transcript
from videojobs_cli import main

REPO = Path(__file__).resolve().parents[2]

# (encoding, cue texts): real sentences, several cues, as subtitle files have
LANGUAGES: dict[str, list[str]] = {
    "windows-1252": [
        "Ça va très bien, merci — où est l’hôtel ?",
        "Le café était délicieux, n’est-ce pas ?",
        "Über die Brücke gehen wir heute Abend.",
        "Die Straße ist ziemlich groß und schön.",
    ],
    "latin-1": [
        "El niño comió paella en España.",
        "¿Dónde está la estación de tren?",
        "Señor, ¡qué día más bonito hace hoy!",
        "La canción de la mañana es muy alegre.",
    ],
    "windows-1250": [
        "Příliš žluťoučký kůň úpěl ďábelské ódy.",
        "Zażółć gęślą jaźń, łódź i śnieg.",
        "Árvíztűrő tükörfúrógép és ő.",
        "Děkuji za pozornost, uvidíme se zítra.",
    ],
    "big5": [
        "今天天氣很好，我們去公園散步吧。",
        "這是一個關於歷史的故事。",
        "老師說明天要考試，大家要認真準備。",
        "謝謝大家的收看，我們下次再見。",
    ],
    "gb2312": [
        "今天天气很好，我们去公园散步吧。",
        "这是一个关于历史的故事。",
        "老师说明天要考试，大家要认真准备。",
        "谢谢大家的收看，我们下次再见。",
    ],
    "utf-16": [  # Python's utf-16 writes a BOM
        "Grüße aus Köln — naïve café",
        "Ελληνικά και русский текст",
        "日本語のテキストです。",
        "Emoji are fine too: 🎬",
    ],
}
QUOTED = 2  # the cue (0-based) a knowledge point quotes


def srt(lines: list[str]) -> str:
    return "\n".join(
        f"{n}\r\n00:00:{2 * n:02d},000 --> 00:00:{2 * n + 1:02d},500\r\n{text}\r\n"
        for n, text in enumerate(lines, start=1)
    )


def manifest(tmp: Path, key: str, encoding: str | None = None, language: str = "") -> Path:
    """A job whose transcript is ``key`` (next to it or in a ConfigMap) and whose one knowledge
    point quotes cue 3 of ``LANGUAGES[language]`` (by default the key's stem)."""
    lines = LANGUAGES.get(language or key.split(".")[0], LANGUAGES["windows-1252"])
    enc = f"\n    encoding: {encoding}" if encoding else ""
    path = tmp / "job.yaml"
    path.write_text(
        f"""apiVersion: videojobs.io/v1alpha1
kind: VideoProcessingJob
metadata:
  name: enc
spec:
  source:
    url: "{REPO / "examples" / "media" / "sample.mp4"}"
  transcript:
    configMapKeyRef: {{name: t, key: {key}}}{enc}
  knowledgePoints:
    - id: quoted
      title: Quoted
      quote: {json.dumps(lines[QUOTED])}
  segmentation: {{minDuration: "0"}}
  output:
    formats: [mp4]
    precision: copy
    storage:
      pvc: {{claimName: local, path: enc}}
""",
        encoding="utf-8",
    )
    return path


@pytest.mark.parametrize("encoding", sorted(LANGUAGES))
def test_each_encoding_is_read_with_its_own_text(encoding: str) -> None:
    text = srt(LANGUAGES[encoding])
    data = text.encode(encoding)
    assert decode_transcript(data) == text.removeprefix("\ufeff")
    transcript = parse_transcript(decode_transcript(data), "auto")
    assert [c.text for c in transcript.cues] == LANGUAGES[encoding]


@pytest.mark.parametrize("encoding", sorted(LANGUAGES))
def test_cli_validate_and_plan_place_the_quote(
    encoding: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    key = f"{encoding}.srt"
    (tmp_path / key).write_bytes(srt(LANGUAGES[encoding]).encode(encoding))
    path = manifest(tmp_path, key)
    assert main(["validate", str(path)]) == 0, capsys.readouterr().err
    capsys.readouterr()
    assert main(["plan", str(path), "--output", "json"]) == 0, capsys.readouterr().err
    plan = json.loads(capsys.readouterr().out)
    # the third cue starts at 6 s: the quote was found in the decoded text
    assert [s["start"] for s in plan["segments"]] == [6.0]


def test_bom_names_the_encoding() -> None:
    text = "WEBVTT\n\n00:00:01.000 --> 00:00:02.000\nHéllo wörld\n"
    for bom, codec in (
        (codecs.BOM_UTF8, "utf-8"),
        (codecs.BOM_UTF16_LE, "utf-16-le"),
        (codecs.BOM_UTF16_BE, "utf-16-be"),
        (codecs.BOM_UTF32_LE, "utf-32-le"),
        (codecs.BOM_UTF32_BE, "utf-32-be"),
    ):
        assert decode_transcript(bom + text.encode(codec)) == text, codec


def test_explicit_encoding_wins_over_detection() -> None:
    # bytes that are valid UTF-8 but meant as Windows-1252 ("Ã©" in cp1252 is UTF-8 "é")
    data = "Ã©tÃ©\n".encode("cp1252")
    assert decode_transcript(data) == "été\n"
    assert decode_transcript(data, "windows-1252") == "Ã©tÃ©\n"
    assert decode_transcript(codecs.BOM_UTF16_LE + "ok".encode("utf-16-le"), "utf-16-le") == "ok"


def test_undecodable_is_refused_naming_the_encoding_tried() -> None:
    with pytest.raises(TranscriptError) as err:
        decode_transcript(b"1\n00:00:01,000 --> 00:00:02,000\nhi \x81\x8d\n", "windows-1252")
    message = str(err.value)
    assert "as windows-1252 (" in message and "line 3" in message and "81" in message
    rng = __import__("random").Random(27)
    noise = bytes(rng.randrange(256) for _ in range(4000))
    with pytest.raises(TranscriptError) as err:
        decode_transcript(noise)
    message = str(err.value)
    assert "not UTF-8" in message and "charset-normalizer" in message
    assert "transcript.encoding" in message
    with pytest.raises(TranscriptError, match="UTF-16-LE byte order mark"):
        decode_transcript(codecs.BOM_UTF16_LE + b"\x00\xd8a\x00")  # a lone surrogate


def test_encoding_field_is_checked() -> None:
    base = {
        "source": {"url": "https://example.org/v.mp4"},
        "knowledgePoints": [{"id": "a", "title": "A", "start": "0"}],
        "output": {"storage": {"pvc": {"claimName": "c"}}},
    }
    ok = {**base, "transcript": {"url": "https://example.org/t.srt", "encoding": "cp1250"}}
    assert VideoProcessingJobSpec.model_validate(ok).transcript.encoding == "cp1250"  # type: ignore[union-attr]
    for transcript, message in (
        ({"url": "https://e.org/t.srt", "encoding": "klingon"}, "unknown text encoding"),
        ({"url": "https://e.org/t.srt", "encoding": "base64"}, "unknown text encoding"),
        ({"inline": "WEBVTT", "encoding": "latin-1"}, "encoding applies to"),
    ):
        with pytest.raises(ValidationError, match=message):
            VideoProcessingJobSpec.model_validate({**base, "transcript": transcript})


def test_configmap_binary_data_in_the_manifest(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = srt(LANGUAGES["windows-1250"]).encode("windows-1250")
    path = manifest(tmp_path, "cz.srt", "windows-1250", "windows-1250")
    path.write_text(
        path.read_text()
        + "---\napiVersion: v1\nkind: ConfigMap\nmetadata: {name: t}\nbinaryData:\n"
        + f"  cz.srt: {base64.b64encode(data).decode()}\n"
    )
    assert main(["plan", str(path), "--output", "json"]) == 0, capsys.readouterr().err
    assert json.loads(capsys.readouterr().out)["segments"][0]["start"] == 6.0


def test_operator_plans_binary_data_the_same_way() -> None:
    """The operator's check of a ConfigMap transcript (plan_problems, in its bounded child)
    decodes ``binaryData`` bytes with transcript.encoding, as the worker decodes the file."""
    lines = LANGUAGES["windows-1250"]
    spec = VideoProcessingJobSpec.model_validate(
        {
            "source": {"url": "https://example.org/v.mp4"},
            "transcript": {"configMapKeyRef": {"name": "t", "key": "k"}},
            "knowledgePoints": [{"id": "q", "title": "Q", "quote": lines[QUOTED]}],
            "output": {"storage": {"pvc": {"claimName": "c"}}},
        }
    )
    data = srt(lines).encode("windows-1250")
    assert plan_problems(spec, data, "ConfigMap/t[k]") == []
    wrong = spec.model_copy(
        update={"transcript": spec.transcript.model_copy(update={"encoding": "utf-8"})}  # type: ignore[union-attr]
    )
    problems = plan_problems(wrong, data, "ConfigMap/t[k]")
    assert len(problems) == 1 and "as utf-8 (" in problems[0].message


def test_undecodable_file_is_one_line_per_problem_not_a_traceback(
    tmp_path: Path,
) -> None:
    (tmp_path / "bad.srt").write_bytes(b"1\n00:00:01,000 --> 00:00:02,000\n\xff\xfe\x00\x81\x00")
    path = manifest(tmp_path, "bad.srt", "utf-8")
    for command in ("validate", "plan", "run"):
        args = [sys.executable, "-m", "videojobs_cli", command, str(path)]
        if command == "run":
            args += ["--out", str(tmp_path / "out")]
        done = subprocess.run(
            args, capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(REPO)}
        )
        expected = ExitCode.INVALID_SPEC if command == "run" else 1  # run: the worker's codes
        assert done.returncode == expected, (command, done.stderr)
        assert "Traceback" not in done.stderr, done.stderr
        assert "cannot decode the transcript as utf-8 (" in done.stderr
        assert "bad.srt" in done.stderr


@pytest.mark.media
@pytest.mark.parametrize("encoding", sorted(LANGUAGES))
def test_run_cuts_the_quoted_clip(encoding: str, tmp_path: Path) -> None:
    key = f"{encoding}.srt"
    (tmp_path / key).write_bytes(srt(LANGUAGES[encoding]).encode(encoding))
    out = tmp_path / "clips"
    assert main(["run", str(manifest(tmp_path, key)), "--out", str(out)]) == 0
    segments = json.loads((out / "manifest.json").read_text())["segments"]
    assert [s["start"] for s in segments] == [6.0]


_FRAGMENTS = [
    b"WEBVTT\n\n", b"1\n", b"00:00:01,000 --> 00:00:02,000\n", b"00:01.000 --> 00:02.000\n",
    b"\n", b"\r\n", b"text \xe9\xe8 ", b"\xff\xfe", b"\xef\xbb\xbf", b"\x00", b"{1}{2}", b"[",
    b'{"segments": [', b"<tt>", b"\xa4\xb5\xa4\xd1", b"\x81\x8d", b"<00:00:01.500><c> w</c>",
]  # fmt: skip


@pytest.mark.parametrize("command", ["validate", "plan"])
def test_no_transcript_bytes_make_the_cli_fail_with_a_traceback(
    command: str, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """Random documents built from transcript fragments and stray bytes: exit 0 or 1 with
    one line per problem, never an exception out of the CLI."""
    from hypothesis import HealthCheck, given, settings
    from hypothesis import strategies as st

    folder = tmp_path_factory.mktemp("fuzz")
    path = manifest(folder, "t.srt")

    @settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))
    @given(
        parts=st.lists(st.sampled_from(_FRAGMENTS) | st.binary(max_size=8), max_size=20),
        encoding=st.sampled_from([None, "utf-8", "windows-1252", "big5", "utf-16"]),
    )
    def check(parts: list[bytes], encoding: str | None) -> None:
        (folder / "t.srt").write_bytes(b"".join(parts))
        job = manifest(folder, "t.srt", encoding)
        assert job == path
        assert main([command, str(job)]) in (0, 1)

    check()
