"""segmentation.auto through the spec, the planner and `videojobs plan` (and the CRD's rules)."""

from __future__ import annotations

import copy
import json
import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic import ValidationError

from tests.unit.test_examples_schema import cel_violations, schema_errors
from tests.unit.test_segmentation import THREE, talk_cues
from videojobs.models import VideoProcessingJobSpec
from videojobs.planning import plan_segments
from videojobs.transcripts import parse_transcript
from videojobs_cli import main

REPO = Path(__file__).resolve().parent.parent.parent
EXAMPLE = REPO / "examples" / "auto-topics.yaml"


def _inline() -> tuple[str, list[float]]:
    cues, joins = talk_cues(THREE)
    return json.dumps([{"start": c.start, "end": c.end, "text": c.text} for c in cues]), joins


def spec(**extra: Any) -> dict[str, Any]:
    text, _ = _inline()
    data: dict[str, Any] = {
        "source": {"url": "https://example.org/v.mp4"},
        "transcript": {"format": "json", "inline": text},
        "segmentation": {"auto": {"minDuration": "1m", "maxDuration": 1200}},
        "output": {"storage": {"pvc": {"claimName": "c"}}},
    }
    data.update(extra)
    return data


def test_the_planner_proposes_when_no_points_are_given() -> None:
    s = VideoProcessingJobSpec.model_validate(spec())
    text, joins = _inline()
    plan = plan_segments(s, parse_transcript(text, "json"))
    assert [seg.knowledge_id for seg in plan.segments] == ["topic-01", "topic-02", "topic-03"]
    for seg, join in zip(plan.segments[1:], joins, strict=True):
        assert abs(seg.start - join) <= 6.0
    assert all(seg.confidence is not None and 0 <= seg.confidence <= 1 for seg in plan.segments)
    assert len({seg.title.lower() for seg in plan.segments}) == 3
    assert any("3 knowledge points proposed" in n for n in plan.notes)
    assert plan.segments[-1].end == pytest.approx(max(c.end for c in talk_cues(THREE)[0]))


def test_given_knowledge_points_win() -> None:
    s = VideoProcessingJobSpec.model_validate(
        spec(knowledgePoints=[{"id": "all", "title": "Everything", "start": 0}])
    )
    text, _ = _inline()
    plan = plan_segments(s, parse_transcript(text, "json"))
    assert [seg.knowledge_id for seg in plan.segments] == ["all"]
    assert plan.segments[0].confidence is None
    assert "segmentation.auto not used: the knowledge points are given" in plan.notes


def test_chapters_are_passed_as_hints() -> None:
    s = VideoProcessingJobSpec.model_validate(spec())
    text, joins = _inline()
    plan = plan_segments(s, parse_transcript(text, "json"), None, [joins[0] + 12.0])
    assert plan.segments[1].start == pytest.approx(joins[0] + 12.0, abs=3.0)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"minDuration": 5}, "at least 10s"),
        ({"minDuration": 120, "maxDuration": 200}, "at least twice minDuration"),
        ({"targetCount": 0}, "greater than or equal to 1"),
        ({"targetCount": 101}, "less than or equal to 100"),
    ],
)
def test_bounds_are_checked(change: dict[str, Any], message: str) -> None:
    data = spec()
    data["segmentation"]["auto"].update(change)
    with pytest.raises(ValidationError, match=message):
        VideoProcessingJobSpec.model_validate(data)


def _job(spec_data: dict[str, Any]) -> dict[str, Any]:
    return {
        "apiVersion": "videojobs.io/v1alpha1",
        "kind": "VideoProcessingJob",
        "metadata": {"name": "j"},
        "spec": spec_data,
    }


def test_not_with_segments_nor_chapters_models_and_cel_agree() -> None:
    with_segments = spec(segments=[{"start": 0, "end": 5, "title": "x"}])
    del with_segments["transcript"]
    with pytest.raises(ValidationError, match="not with explicit segments"):
        VideoProcessingJobSpec.model_validate(with_segments)
    assert any("not with explicit segments" in v for v in cel_violations(_job(with_segments)))

    with_chapters = spec()
    with_chapters["segmentation"]["fromChapters"] = True
    with pytest.raises(ValidationError, match="cannot be combined"):
        VideoProcessingJobSpec.model_validate(with_chapters)
    assert any("cannot be combined" in v for v in cel_violations(_job(with_chapters)))

    fine = _job(spec())
    assert schema_errors(fine) == []
    assert cel_violations(fine) == [] == cel_violations(fine, old=copy.deepcopy(fine))


def test_plan_prints_the_proposal_with_confidence(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["plan", str(EXAMPLE)]) == 0
    out = capsys.readouterr().out
    lines = out.splitlines()
    assert lines[0].split()[-1] == "CONFIDENCE"
    rows = lines[1:4]
    assert [r.split()[1] for r in rows] == ["topic-01", "topic-02", "topic-03"]
    starts = [re.findall(r"\d\d:\d\d:\d\d\.\d{3}", r)[0] for r in rows]
    assert starts == ["00:00:00.000", "00:00:36.000", "00:01:12.000"]
    for r in rows:
        assert re.fullmatch(r"[01]\.\d\d", r.split()[-1])
    assert "3 clips, 1m48s in total" in out


def test_plan_json_carries_confidence_and_descriptions(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["plan", str(EXAMPLE), "-o", "json"]) == 0
    plan = json.loads(capsys.readouterr().out)
    doc = yaml.safe_load(EXAMPLE.read_text())
    cues = json.loads(doc["spec"]["transcript"]["inline"])
    for seg in plan["segments"]:
        assert 0 <= seg["confidence"] <= 1
        text = " ".join(c["text"] for c in cues if seg["start"] <= c["start"] < seg["end"]).lower()
        words = re.findall(r"[^\W\d_]+", (seg["title"] + " " + seg["description"]).lower())
        assert all(w in text or w in ("key", "phrases") for w in words), seg


def test_plan_uses_the_source_chapters_as_hints(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    info = tmp_path / "info.json"
    info.write_text(json.dumps({"duration": 108, "chapters": [
        {"start_time": 0, "end_time": 30, "title": "Variables"},
        {"start_time": 30, "end_time": 72, "title": "Loops"},
        {"start_time": 72, "end_time": 108, "title": "Functions"},
    ]}))  # fmt: skip
    assert main(["plan", str(EXAMPLE), "--source-info", str(info), "-o", "json"]) == 0
    plan = json.loads(capsys.readouterr().out)
    assert [s["start"] for s in plan["segments"]] == [0.0, 30.0, 72.0]
    assert plan["segments"][0]["confidence"] == 1.0
    assert any("chapters used as hints" in n for n in plan["notes"])
