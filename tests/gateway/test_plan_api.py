"""``POST /api/v1/videos/plan`` and ``GET /plan/{job_id}``: the plan before (and of) a job,
with every knowledge point's fate, bounded and guarded as a submission is."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.gateway.conftest import API, TRANSCRIPT, Gateway, rest_body, start_local
from videojobs_gateway import planview
from videojobs_gateway.auth import hash_key
from videojobs_gateway.planview import PlanDoc
from videojobs_gateway.settings import GatewaySettings

URL = "https://media.example.org/lesson.mp4"
POINTS = [
    {"knowledge_id": "a", "title": "A", "start_time": 1, "end_time": 3},
    {"knowledge_id": "b", "title": "B", "start_time": 2, "end_time": 3.5},
    {"knowledge_id": "c", "title": "C", "start_time": 9.2, "end_time": 9.8},
    {"knowledge_id": "d", "title": "D", "quote": "Merging joins two branches"},
]
"""Over TRANSCRIPT (cues 0-3, 3-6, 6-9, 9-12): a snaps to 0-3; b snaps to 0-6 and is
merged into a; c snaps to 9-12 and d (9-12) is merged into c, or lies inside it."""


def plan(gw: Gateway, body: Any, **headers: str) -> dict[str, Any]:
    r = gw.client.post(f"{API}/plan", json=body, headers=headers)
    assert r.status_code == 200, r.text
    doc: dict[str, Any] = r.json()
    PlanDoc.model_validate(doc)  # the declared response model
    return doc


def test_points_fates_clips_and_cues(gw: Gateway) -> None:
    doc = plan(gw, {"video_url": URL, "transcript": TRANSCRIPT, "knowledge_points": POINTS})
    assert [(c["title"], c["start"], c["end"]) for c in doc["clips"]] == [
        ("A", 0.0, 6.0),
        ("C", 9.0, 12.0),
    ]
    fates = {p["knowledge_id"]: (p["fate"], p["clip"]) for p in doc["points"]}
    assert fates == {"a": ("snapped", 1), "b": ("merged", 1), "c": ("snapped", 2),
                     "d": ("merged", 2)}  # fmt: skip
    b = next(p for p in doc["points"] if p["knowledge_id"] == "b")
    assert b["field"] == "knowledge_points[1]"  # the REST body's names
    assert any("merged into" in n and "knowledge_points[0]" in n for n in b["notes"])
    assert b["start"] == 2.0 and b["end"] == 3.5  # as written
    d = next(p for p in doc["points"] if p["knowledge_id"] == "d")
    assert d["anchor"] == "quote: Merging joins two branches" and d["start"] is None
    assert [c["text"] for c in doc["cues"]] == [e["text"] for e in TRANSCRIPT]
    assert doc["cues_total"] == 4 and doc["transcript_end"] == 12.0
    assert doc["segmentation"] == {"snap_to_cues": True, "overlap": "merge",
                                   "min_duration": 1.0, "auto": False}  # fmt: skip
    # every point-level note is in the document's notes too
    assert all(n in doc["notes"] for p in doc["points"] for n in p["notes"])
    # nothing was stored: a plan is not a job
    assert gw.client.get(f"{API}/jobs").json()["jobs"] == []


def test_trim_drops_a_point_inside_another(gw: Gateway) -> None:
    points = [
        {"knowledge_id": "a", "title": "A", "start_time": 1, "end_time": 3},
        {"knowledge_id": "b", "title": "B", "start_time": 1.5, "end_time": 2.5},
        {"knowledge_id": "c", "title": "C", "start_time": 2, "end_time": 4},
        {"knowledge_id": "d", "title": "D", "quote": "Merging joins two branches"},
    ]
    body = {"video_url": URL, "transcript": TRANSCRIPT, "knowledge_points": points,
            "segmentation": {"overlap": "trim", "snapToCues": False}}  # fmt: skip
    doc = plan(gw, body)
    fates = {p["knowledge_id"]: (p["fate"], p["clip"]) for p in doc["points"]}
    assert fates == {"a": ("kept", 1), "b": ("dropped", None), "c": ("trimmed", 2),
                     "d": ("kept", 3)}  # fmt: skip
    assert [(c["start"], c["end"]) for c in doc["clips"]] == [(1.0, 3.0), (3.0, 4.0), (9.0, 12.0)]
    b = next(p for p in doc["points"] if p["knowledge_id"] == "b")
    assert b["notes"] == [
        "knowledge_points[1]: lies inside knowledge_points[0]; dropped (overlap: trim)"
    ]


def test_auto_segmentation_gives_confidence(gw: Gateway) -> None:
    text = json.loads(
        Path(__file__).resolve().parents[2].joinpath("examples", "auto-topics.yaml")
        .read_text().split("inline: |", 1)[1].split("  segmentation:", 1)[0]
    )  # fmt: skip
    entries = [{"start_time": e["start"], "end_time": e["end"], "text": e["text"]} for e in text]
    body = {"video_url": URL, "transcript": entries,
            "segmentation": {"auto": {"minDuration": 20, "maxDuration": 60}}}  # fmt: skip
    doc = plan(gw, body)
    assert doc["segmentation"]["auto"] is True
    assert len(doc["clips"]) >= 2
    for clip in doc["clips"]:
        assert clip["confidence"] is not None and 0 <= clip["confidence"] <= 1
        assert clip["title"]
    assert [p["knowledge_id"] for p in doc["points"]] == [c["knowledge_id"] for c in doc["clips"]]
    assert any("segmentation.auto" in n for n in doc["notes"])


def test_a_spec_body_and_its_names(gw: Gateway) -> None:
    vtt = "WEBVTT\n\n00:00.000 --> 00:03.000\nHello there.\n\n00:03.000 --> 00:08.000\nNext.\n"
    body = {"spec": {"source": {"url": URL}, "transcript": {"inline": vtt, "format": "auto"},
                     "knowledgePoints": [{"id": "x", "title": "X", "start": "1", "end": "4"}],
                     "output": {"formats": ["mp4"]}}}  # fmt: skip
    doc = plan(gw, body)
    assert doc["points"][0]["field"] == "spec.knowledgePoints[0]"
    assert doc["points"][0]["fate"] == "snapped"
    assert (doc["clips"][0]["start"], doc["clips"][0]["end"]) == (0.0, 8.0)


def test_cues_are_bounded(gw: Gateway, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(planview, "MAX_CUES_SHOWN", 2)
    doc = plan(gw, rest_body(URL))
    assert [c["index"] for c in doc["cues"]] == [1, 2]
    assert doc["cues_total"] == 4


def test_problems_as_a_submission(gw: Gateway) -> None:
    bad = {"video_url": URL, "transcript": TRANSCRIPT,
           "knowledge_points": [{"knowledge_id": "x", "title": "X", "start_time": 5,
                                 "end_time": 2}]}  # fmt: skip
    r = gw.client.post(f"{API}/plan", json=bad)
    assert r.status_code == 422
    assert r.headers["content-type"].startswith("application/problem+json")
    assert r.json()["errors"][0]["field"].startswith("knowledge_points")
    r = gw.client.post(
        f"{API}/plan", content=b"[" * 5000, headers={"Content-Type": "application/json"}
    )
    assert r.status_code == 400
    many = {"video_url": URL, "transcript": TRANSCRIPT, "output": {"x": [0] * 200_000}}
    r = gw.client.post(f"{API}/plan", json=many)
    assert r.status_code in (413, 422), r.text
    url_transcript = {"spec": {"source": {"url": URL},
                               "transcript": {"url": "https://media.example.org/t.vtt"},
                               "output": {"formats": ["mp4"]}}}  # fmt: skip
    r = gw.client.post(f"{API}/plan", json=url_transcript)
    assert r.status_code == 422
    assert "inline" in r.json()["errors"][0]["message"]


def test_body_size_limit(tmp_path: Path) -> None:
    gw = start_local(tmp_path / "data", settings=GatewaySettings(max_body_bytes=2000))
    try:
        r = gw.client.post(f"{API}/plan", json={**rest_body(URL), "name": "x" * 3000})
        assert r.status_code == 413
    finally:
        gw.client.close()
        gw.server.stop()


def test_time_limit(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import time

    from videojobs_gateway.routes import plans

    gw = start_local(tmp_path / "data", settings=GatewaySettings(max_validation_seconds=0.5))
    real = plans._plan

    def slow(*args: Any) -> Any:
        time.sleep(1.5)
        return real(*args)

    monkeypatch.setattr(plans, "_plan", slow)
    try:
        r = gw.client.post(f"{API}/plan", json=rest_body(URL))
        assert r.status_code == 422
        assert "took over 0.5 s" in r.json()["errors"][0]["message"]
    finally:
        gw.client.close()
        gw.server.stop()


def test_authentication(tmp_path: Path) -> None:
    keys = tmp_path / "keys.json"
    keys.write_text(json.dumps([{"name": "k", "sha256": hash_key("key-k"), "namespace": "k"}]))
    gw = start_local(
        tmp_path / "data", settings=GatewaySettings(auth_mode="apikey", api_keys_file=keys)
    )
    try:
        assert gw.client.post(f"{API}/plan", json=rest_body(URL)).status_code == 401
        ok = gw.client.post(
            f"{API}/plan", json=rest_body(URL), headers={"Authorization": "Bearer key-k"}
        )
        assert ok.status_code == 200
        schema = gw.client.get("/openapi.json").json()
        op = schema["paths"][f"{API}/plan"]["post"]
        assert op["security"]
        assert op["responses"]["200"]["content"]["application/json"]["schema"] == {
            "$ref": "#/components/schemas/PlanDoc"
        }
    finally:
        gw.client.close()
        gw.server.stop()


def test_rate_limited(tmp_path: Path) -> None:
    gw = start_local(
        tmp_path / "data", settings=GatewaySettings(rate_per_second=0.01, rate_burst=2)
    )
    try:
        codes = [gw.client.post(f"{API}/plan", json=rest_body(URL)).status_code for _ in range(4)]
        assert codes[:2] == [200, 200] and 429 in codes[2:]
    finally:
        gw.client.close()
        gw.server.stop()


def test_the_plan_of_a_job(gw: Gateway) -> None:
    body = {**rest_body(URL), "knowledge_points": POINTS}
    job_id = gw.submit(body)["job_id"]
    doc = gw.client.get(f"{API}/plan/{job_id}").json()
    PlanDoc.model_validate(doc)
    assert [(c["start"], c["end"]) for c in doc["clips"]] == [(0.0, 6.0), (9.0, 12.0)]
    assert {p["knowledge_id"]: p["fate"] for p in doc["points"]}["b"] == "merged"
    assert gw.client.get(f"{API}/plan/nope-1").status_code == 404


# -- planview alone: the fates from the planner's notes --------------------------------------


def _plan_of(manifest: str) -> Any:
    import tempfile

    from videojobs.validation import check_file

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "job.yaml"
        path.write_text(manifest)
        return check_file(path)[0]


MANIFEST = """\
apiVersion: videojobs.io/v1alpha1
kind: VideoProcessingJob
metadata: {name: t}
spec:
  source: {url: "https://media.example.org/v.mp4"}
  transcript:
    format: webvtt
    inline: |
      WEBVTT

      00:00.000 --> 00:10.000
      one

      00:10.000 --> 00:20.000
      two

      00:20.000 --> 00:30.000
      three
  knowledgePoints:
%s
  segmentation: {minDuration: 5, shortSegments: merge}
  output: {formats: [mp4], storage: {pvc: {claimName: c}}}
"""


def test_a_short_clip_merged_away_follows_its_target() -> None:
    """x (0-10) and y (10-12, snapped to 10-20) are fine; z (20-22) snaps to 20-30 and w
    (29-30) is 1 s: merged into z, so it ends up in z's clip."""
    points = "\n".join(
        f"    - {{id: {i}, title: {i.upper()}, start: '{s}', end: '{e}'}}"
        for i, s, e in [("x", 0, 10), ("y", 10, 12), ("z", 20, 29), ("w", 29, 30)]
    )
    loaded = _plan_of(MANIFEST % points)
    doc = planview.plan_document(loaded, [])
    fates = {p.knowledge_id: (p.fate, p.clip) for p in doc.points}
    assert fates == {"x": ("kept", 1), "y": ("snapped", 2), "z": ("snapped", 3),
                     "w": ("merged", 3)}  # fmt: skip
    assert [c.title for c in doc.clips] == ["X", "Y", "Z"]


def test_fates_rank_the_strongest_change() -> None:
    assert planview._fate([]) == ("kept", None)
    notes = [
        "p[1]: snapped to cue edges: start 00:00:01.000→00:00:00.000",
        "p[1]: overlaps p[0]; merged into it (overlap: merge)",
    ]
    assert planview._fate(notes) == ("merged", "p[0]")
    assert planview._fate(list(reversed(notes))) == ("merged", "p[0]")
    assert planview._fate(["p[2]: 1s is shorter than minDuration 5s; merged into p[3] "
                           "(shortSegments: merge)"]) == ("merged", "p[3]")  # fmt: skip
    assert planview._fate(["p[2]: lies inside p[1]; dropped (overlap: trim)"])[0] == "dropped"
    assert (
        planview._fate(["p[2]: end 00:01:00.000 clamped to the source end 00:00:50.000"])[0]
        == "clamped"
    )
