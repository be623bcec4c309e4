"""`videojobs run` cuts what segmentation.auto proposes (a generated 48 s source, offline)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from tests.mediakit import ffprobe_json, make_video
from tests.unit.test_segmentation import talk_cues
from videojobs_cli import main

pytestmark = pytest.mark.media


def test_run_cuts_the_proposal(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    make_video(tmp_path / "talk.mp4", duration=48, size=(160, 120), gop=30)
    cues, joins = talk_cues([("bread", 15.0), ("orbits", 18.0), ("chess", 15.0)])
    manifest = {
        "apiVersion": "videojobs.io/v1alpha1",
        "kind": "VideoProcessingJob",
        "metadata": {"name": "auto"},
        "spec": {
            "source": {"url": "talk.mp4"},
            "transcript": {
                "format": "json",
                "inline": json.dumps(
                    [{"start": c.start, "end": c.end, "text": c.text} for c in cues]
                ),
            },
            "segmentation": {"auto": {"minDuration": 10, "maxDuration": 30}},
            "output": {
                "formats": ["mp4"],
                "precision": "accurate",
                "thumbnails": False,
                "storage": {"pvc": {"claimName": "local", "path": "auto"}},
            },
        },
    }
    path = tmp_path / "job.yaml"
    path.write_text(yaml.safe_dump(manifest))

    assert main(["plan", str(path)]) == 0
    assert "CONFIDENCE" in capsys.readouterr().out

    out = tmp_path / "clips"
    assert main(["run", str(path), "--out", str(out), "--no-progress"]) == 0
    done = json.loads((out / "manifest.json").read_text())
    segments = done["segments"]
    assert [s["knowledgeId"] for s in segments] == ["topic-01", "topic-02", "topic-03"]
    starts = [s["start"] for s in segments]
    assert starts[0] == 0 and all(abs(a - b) <= 3 for a, b in zip(starts[1:], joins, strict=True))
    for s in segments:
        clip = out / f"{s['stem']}.mp4"
        length = float(ffprobe_json(clip)["format"]["duration"])
        assert length == pytest.approx(s["end"] - s["start"], abs=0.1)
