"""The worker reads its input from the mounted file (plain or gzipped), as the operator hands it
over; VIDEOJOBS_INPUT serves local runs."""

from __future__ import annotations

import gzip
from pathlib import Path

import pytest

from videojobs.models import ExitCode, VideoProcessingJobSpec, WorkerInput
from videojobs_worker.__main__ import load_input
from videojobs_worker.errors import WorkerError

SPEC = {
    "source": {"url": "https://example.com/v.mp4"},
    "transcript": {"inline": "WEBVTT\n\n" + "字" * 65528, "format": "webvtt"},
    "knowledgePoints": [{"id": "a", "title": "甲", "start": 0}],
    "output": {"storage": {"pvc": {"claimName": "clips"}}},
}


def _input() -> str:
    return WorkerInput(spec=VideoProcessingJobSpec.model_validate(SPEC)).model_dump_json(
        by_alias=True
    )


def test_reads_the_mounted_input_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "input.json"
    path.write_text(_input(), encoding="utf-8")
    monkeypatch.setenv("VIDEOJOBS_INPUT_FILE", str(path))
    monkeypatch.delenv("VIDEOJOBS_INPUT", raising=False)
    loaded = load_input(None)
    assert loaded.spec.transcript is not None
    assert loaded.spec.transcript.inline == SPEC["transcript"]["inline"]


def test_reads_the_gzipped_sibling(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "input.json.gz").write_bytes(gzip.compress(_input().encode()))
    monkeypatch.setenv("VIDEOJOBS_INPUT_FILE", str(tmp_path / "input.json"))
    assert load_input(None).spec.knowledge_points[0].title == "甲"


def test_a_missing_input_file_is_a_usage_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("VIDEOJOBS_INPUT_FILE", str(tmp_path / "input.json"))
    with pytest.raises(WorkerError) as info:
        load_input(None)
    assert info.value.exit_code == ExitCode.USAGE
    assert "input.json" in str(info.value)
