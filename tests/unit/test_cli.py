"""The `videojobs` command line, called in-process and once as a real process."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from videojobs.crd import render_crd
from videojobs_cli import main

REPO = Path(__file__).resolve().parent.parent.parent
EXAMPLES = sorted(str(p) for p in (REPO / "examples").glob("*.yaml"))
INVALID = REPO / "tests" / "data" / "invalid"


def test_validate_examples_exit_0(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["validate", *EXAMPLES]) == 0
    out = capsys.readouterr()
    assert out.err == ""
    assert sum(": valid (" in line for line in out.out.splitlines()) == len(EXAMPLES)


def test_validate_reports_every_file_and_exits_1(capsys: pytest.CaptureFixture[str]) -> None:
    files = [EXAMPLES[0], str(INVALID / "bad-time.yaml"), str(INVALID / "no-formats.yaml")]
    assert main(["validate", *files]) == 1
    out = capsys.readouterr()
    assert f"{EXAMPLES[0]}: " in out.out
    assert len(out.err.strip().splitlines()) == 2


def test_plan_table(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["plan", str(REPO / "examples" / "webvtt-start-times.yaml")]) == 0
    out = capsys.readouterr().out
    lines = out.splitlines()
    assert lines[0].split() == ["#", "ID", "TITLE", "START", "END", "LENGTH", "FILE", "STEM"]
    assert lines[1].split()[:2] == ["1", "kp-intro"]
    assert "02-kp-pods-what-is-a-pod" in lines[2]
    assert "4 clips, 1m0s in total" in out
    assert "note: spec.knowledgePoints[1]: snapped to cue edges" in out


def test_plan_json_with_duration(capsys: pytest.CaptureFixture[str]) -> None:
    path = str(REPO / "examples" / "explicit-segments.yaml")
    assert main(["plan", path, "--duration", "00:06:00", "--output", "json"]) == 0
    plan = json.loads(capsys.readouterr().out)
    assert plan["sourceDuration"] == 360.0
    assert [s["stem"] for s in plan["segments"]] == [
        "01-opening",
        "02-meet-the-bunny",
        "03-the-bullies",
        "04-revenge",
    ]
    assert plan["segments"][3]["end"] == 360.0
    assert any("clamped" in n for n in plan["notes"])


def test_plan_of_a_url_transcript_explains_why_not(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["plan", str(REPO / "examples" / "s3-output.yaml")]) == 1
    err = capsys.readouterr().err
    assert "spec.knowledgePoints[2].quote" in err and "spec.transcript.url" in err


def test_bad_duration_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main(["plan", EXAMPLES[0], "--duration", "soon"])
    assert info.value.code == 2
    assert "invalid time 'soon'" in capsys.readouterr().err


def test_crd(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["crd"]) == 0
    assert capsys.readouterr().out == render_crd()


@pytest.mark.parametrize("argv", [["run", EXAMPLES[0]], ["demo", "--out", "x"]])
def test_run_and_demo_without_the_worker_exit_2(
    argv: list[str], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setitem(sys.modules, "videojobs_worker.local", None)  # import now fails
    assert main(argv) == 2
    assert "videojobs_worker.local" in capsys.readouterr().err


def test_console_script_in_a_subprocess(tmp_path: Path) -> None:
    ok = subprocess.run(
        [sys.executable, "-m", "videojobs_cli", "validate", *EXAMPLES],
        capture_output=True,
        text=True,
        check=False,
    )
    assert ok.returncode == 0, ok.stderr
    bad = subprocess.run(
        [sys.executable, "-m", "videojobs_cli", "validate", str(INVALID / "malformed-vtt.yaml")],
        capture_output=True,
        text=True,
        check=False,
    )
    assert bad.returncode == 1
    assert bad.stderr.startswith(
        f"{INVALID / 'malformed-vtt.yaml'}: spec.transcript.inline, line 15:"
    )
