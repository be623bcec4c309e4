"""The shipped offline example runs end to end with `videojobs run` (README's local path)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.mediakit import ffprobe_json
from videojobs_cli import main

pytestmark = pytest.mark.media


def _frames(path: Path) -> int:
    streams = ffprobe_json(path, "-count_frames", "-select_streams", "v")["streams"]
    return int(streams[0]["nb_read_frames"])


def test_local_sample_example_runs_offline(repo: Path, tmp_path: Path) -> None:
    out = tmp_path / "clips"
    code = main(["run", str(repo / "examples" / "local-sample.yaml"), "--out", str(out)])
    assert code == 0
    manifest = json.loads((out / "manifest.json").read_text())
    stems = [s["stem"] for s in manifest["segments"]]
    assert stems == ["01-part-1-part-one", "02-part-2-part-two", "03-part-3-part-three"]
    # 25 fps sample: 0-4 s, 4-9.5 s, 9.5-14 s are 100, 138 (137.5 rounded) and 112 frames.
    for stem, frames in zip(stems, (100, 138, 112), strict=True):
        for suffix in ("mp4", "webm"):
            assert _frames(out / f"{stem}.{suffix}") == frames


def test_timed_points_without_transcript_run_and_a_clamp_is_noted(
    repo: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A manifest whose knowledge points all carry start and end needs no transcript; a point
    past the source's real end is clamped at run time, and the result table says so."""
    sample = repo / "examples" / "media" / "sample.mp4"
    manifest = tmp_path / "job.yaml"
    manifest.write_text(
        f"""apiVersion: videojobs.io/v1alpha1
kind: VideoProcessingJob
metadata: {{name: timed}}
spec:
  source: {{url: "{sample}"}}
  knowledgePoints:
    - {{id: first, title: First, start: 1, end: 3}}
    - {{id: late, title: Late, start: 10, end: 20}}
  output:
    formats: [mp4]
    precision: accurate
    storage: {{pvc: {{claimName: c, path: timed}}}}
"""
    )
    out = tmp_path / "clips"
    assert main(["run", str(manifest), "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    clamp = "spec.knowledgePoints[1]: end 00:00:20.000 clamped to the source end 00:00:14.000"
    assert f"plan: {clamp}" in printed, printed
    manifest_doc = json.loads((out / "manifest.json").read_text())
    assert [(s["start"], s["end"]) for s in manifest_doc["segments"]] == [(1.0, 3.0), (10.0, 14.0)]
    assert clamp in manifest_doc["plan"]["notes"]
