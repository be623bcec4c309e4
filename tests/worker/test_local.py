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
