"""The API suite: submit, follow, fetch, list, cancel, retry, delete; errors as problems."""

from __future__ import annotations

import hashlib
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from tests.gateway.conftest import API, Gateway, rest_body
from tests.httpserver import MediaServer
from videojobs_gateway.convert import manifest_yaml, rest_to_spec

pytestmark = [pytest.mark.media]


@pytest.fixture(params=["local", "cluster"])
def gw(request: pytest.FixtureRequest) -> Gateway:
    """The suite runs against both backends: local (SQLite + worker subprocesses) and cluster
    (the strict emulator, the real operator, the real worker; one stack per module)."""
    backend: Gateway = request.getfixturevalue(f"{request.param}_gw")
    return backend


def test_rest_job_runs_to_completed_with_results_and_files(
    gw: Gateway, media_server: MediaServer
) -> None:
    accepted = gw.submit(rest_body(media_server.url("talk.mp4"), name="lesson"))
    job_id = accepted["job_id"]
    assert job_id.startswith("lesson-")
    assert accepted["status"] in ("queued", "pending", "processing")
    assert accepted["links"]["status"] == f"{API}/status/{job_id}"

    status = gw.wait(job_id)
    assert status["status"] == "completed", status
    assert status["error"] is None and status["finished_at"]

    progress = gw.client.get(f"{API}/progress/{job_id}").json()
    assert progress["percent"] == 100
    assert progress["segments_done"] == progress["segments_total"] == 3

    results = gw.client.get(f"{API}/results/{job_id}").json()
    segs = results["segments"]
    assert [s["knowledge_id"] for s in segs] == ["commits", "branches", "merging"]
    assert [s["title"] for s in segs] == ["Commits", "Branches", "Merging"]
    assert segs[0]["description"] == "Snapshots of files."
    assert (segs[0]["start"], segs[0]["end"]) == (3.0, 6.0)
    assert (segs[2]["start"], segs[2]["end"]) == (9.0, 12.0)
    video = next(f for f in segs[0]["files"] if f["kind"] == "video")
    assert video["format"] == "mp4" and video["duration"] > 2.5
    data = gw.client.get(video["url"]).content
    assert len(data) == video["bytes"]
    assert hashlib.sha256(data).hexdigest() == video["sha256"]
    assert any(f["kind"] == "thumbnail" for f in segs[0]["files"])


def test_range_requests_answer_206(gw: Gateway, media_server: MediaServer) -> None:
    job_id = gw.submit(rest_body(media_server.url("talk.mp4")))["job_id"]
    assert gw.wait(job_id)["status"] == "completed"
    seg = gw.client.get(f"{API}/results/{job_id}").json()["segments"][1]
    video = next(f for f in seg["files"] if f["kind"] == "video")
    full = gw.client.get(video["url"]).content
    r = gw.client.get(video["url"], headers={"Range": "bytes=100-199"})
    assert r.status_code == 206
    assert r.headers["content-range"] == f"bytes 100-199/{len(full)}"
    assert r.content == full[100:200]
    tail = gw.client.get(video["url"], headers={"Range": "bytes=-50"})
    assert tail.status_code == 206 and tail.content == full[-50:]
    assert (
        gw.client.get(video["url"], headers={"Range": f"bytes={len(full) + 10}-"}).status_code
        == 416
    )


def test_file_names_that_climb_are_refused(gw: Gateway, media_server: MediaServer) -> None:
    job_id = gw.submit(rest_body(media_server.url("talk.mp4")))["job_id"]
    gw.wait(job_id)
    base = f"{gw.server.base_url}{API}/files/{job_id}/"
    with httpx.Client(headers=gw.client.headers) as raw:
        for name in ("..", "..%2F..%2Fvideojobs.sqlite3", "%2E%2E", "..%5Cinput.json",
                     ".hidden", "..%2Finput.json", "%00x"):  # fmt: skip
            r = raw.get(base + name)
            assert r.status_code in (400, 404, 422), (name, r.status_code)  # 422: the schema
            assert r.headers["content-type"].startswith("application/problem+json"), name
    # the job's own input, next to the clips, is not a published file
    assert gw.client.get(f"{API}/files/{job_id}/input.json").status_code == 404


def test_invalid_rest_body_is_422_naming_the_field_with_the_cli_messages(
    gw: Gateway, tmp_path: Path
) -> None:
    body = rest_body("https://example.com/v.mp4")
    body["knowledge_points"] = [
        {"knowledge_id": "a", "title": "A", "start_time": 5, "end_time": 2},
    ]
    body["output"] = {"formats": ["avi"]}
    r = gw.client.post(f"{API}/process", json=body)
    assert r.status_code == 422
    assert r.headers["content-type"] == "application/problem+json"
    problem = r.json()
    assert problem["status"] == 422 and problem["title"]
    fields = {e["field"] for e in problem["errors"]}
    assert "output.formats[0]" in fields, problem
    # the same manifest given to `videojobs validate` reports the same messages
    spec = rest_to_spec(body, {"pvc": {"claimName": "local", "path": ""}})
    manifest = tmp_path / "job.yaml"
    manifest.write_text(manifest_yaml(spec))
    cli = subprocess.run(
        [sys.executable, "-m", "videojobs_cli", "validate", str(manifest)],
        capture_output=True, text=True,
    )  # fmt: skip
    assert cli.returncode == 1
    for err in problem["errors"]:
        assert err["message"] in cli.stderr, (err, cli.stderr)


def test_transcript_problem_names_the_entry(gw: Gateway, tmp_path: Path) -> None:
    body = rest_body("https://example.com/v.mp4")
    body["transcript"] = [
        *body["transcript"][:2],
        {"start_time": "soon", "end_time": 9, "text": "x"},
    ]
    problem = gw.client.post(f"{API}/process", json=body).json()
    assert problem["status"] == 422
    assert problem["errors"][0]["field"].startswith("transcript"), problem
    spec = rest_to_spec(body, {"pvc": {"claimName": "local", "path": ""}})
    manifest = tmp_path / "job.yaml"
    manifest.write_text(manifest_yaml(spec))
    cli = subprocess.run(
        [sys.executable, "-m", "videojobs_cli", "validate", str(manifest)],
        capture_output=True, text=True,
    )  # fmt: skip
    assert problem["errors"][0]["message"] in cli.stderr


def test_every_problem_of_a_json_list_transcript_in_one_422(gw: Gateway) -> None:
    """Not the first problem only: each bad entry and each bad point, by its REST field."""
    body = rest_body("https://example.com/v.mp4")
    body["transcript"] = [
        {"start_time": "soon", "end_time": 3, "text": "a"},
        body["transcript"][1],
        {"start_time": 6, "end_time": -9, "text": "c"},
    ]
    body["knowledge_points"] = [
        {"knowledge_id": "a", "title": "A", "start_time": 5, "end_time": 2},
        {"knowledge_id": "b b", "title": "B", "start_time": "zz"},
        {"knowledge_id": "c", "title": "C", "quote": "a commit", "colour": "red"},
    ]
    r = gw.client.post(f"{API}/process", json=body)
    assert r.status_code == 422 and r.headers["content-type"] == "application/problem+json"
    fields = [e["field"] for e in r.json()["errors"]]
    assert fields == [
        "transcript[0]",
        "transcript[2]",
        "knowledge_points[0].end_time",
        "knowledge_points[1].knowledge_id",
        "knowledge_points[1].start_time",
        "knowledge_points[2]",
    ], r.text
    messages = [e["message"] for e in r.json()["errors"]]
    assert "'soon'" in messages[0] and "'colour'" in messages[5], messages


def test_timed_points_need_no_transcript(gw: Gateway, media_server: MediaServer) -> None:
    """Knowledge points with start and end times and no transcript: cut as given."""
    points = [
        {"knowledge_id": "commits", "title": "Commits", "start_time": 3, "end_time": 6},
        {"knowledge_id": "merging", "title": "Merging", "start_time": "00:00:08",
         "end_time": 11},
    ]  # fmt: skip
    body = {"video_url": media_server.url("talk.mp4"), "knowledge_points": points,
            "output": {"precision": "accurate"}}  # fmt: skip
    job_id = gw.submit(body)["job_id"]
    assert gw.wait(job_id)["status"] == "completed"
    segs = gw.client.get(f"{API}/results/{job_id}").json()["segments"]
    assert [(s["knowledge_id"], s["start"], s["end"]) for s in segs] == [
        ("commits", 3.0, 6.0), ("merging", 8.0, 11.0)
    ]  # fmt: skip
    # a point without its end still needs a transcript; the 422 names the point's field
    untimed = {**body, "knowledge_points": [points[0], {**points[1], "end_time": None}]}
    r = gw.client.post(f"{API}/process", json=untimed)
    assert r.status_code == 422, r.text
    assert [e["field"] for e in r.json()["errors"]] == ["knowledge_points[1].end_time"], r.text
    r = gw.client.post(f"{API}/process", json={**body, "knowledge_points": []})
    assert [e["field"] for e in r.json()["errors"]] == ["transcript"], r.text


def test_run_time_notes_reach_status_and_results(gw: Gateway, media_server: MediaServer) -> None:
    """A point past the source's real end (12 s) is clamped once the run knows that length:
    the submit response could not say so; /status and /results do, in the body's names."""
    body = rest_body(media_server.url("talk.mp4"))
    body["knowledge_points"] = [
        {"knowledge_id": "commits", "title": "Commits", "start_time": 3, "end_time": 6},
        {"knowledge_id": "late", "title": "Late", "start_time": 9, "end_time": 30},
    ]
    body["segmentation"] = {"snapToCues": False}
    accepted = gw.submit(body)
    assert not any("clamped" in n for n in accepted["notes"]), accepted["notes"]
    job_id = accepted["job_id"]
    assert gw.wait(job_id)["status"] == "completed"
    results = gw.client.get(f"{API}/results/{job_id}").json()
    clamped = [n for n in results["notes"] if "clamped to the source end" in n]
    assert len(clamped) == 1 and clamped[0].startswith("knowledge_points[1]: end 00:00:30"), (
        results["notes"]
    )
    assert results["segments"][1]["end"] < 12.5
    assert gw.status(job_id)["notes"] == results["notes"]
    assert results["notes"][: len(accepted["notes"])] == accepted["notes"]  # then the run's


def test_history_names_the_submitter_and_filters_by_it(
    gw: Gateway, media_server: MediaServer
) -> None:
    from videojobs_gateway.local import LocalBackend

    me = "local" if isinstance(gw.backend, LocalBackend) else "user:tester"
    job_id = gw.submit(rest_body(media_server.slow_url("talk.mp4", 4_000)))["job_id"]
    try:
        assert gw.status(job_id)["submitted_by"] == me
        assert gw.client.get(f"{API}/jobs/{job_id}").json()["submitted_by"] == me
        listed = gw.client.get(f"{API}/jobs", params={"submitted_by": me}).json()["jobs"]
        assert [(j["job_id"], j["submitted_by"]) for j in listed] == [(job_id, me)]
        none = gw.client.get(f"{API}/jobs", params={"submitted_by": "user:nobody"}).json()
        assert none["jobs"] == []
        # the submitter is the caller, never something the body says
        spec_body = {"spec": {"source": {"url": "https://example.com/v.mp4"}}, "submitted_by": "x"}
        r = gw.client.post(f"{API}/process", json=spec_body)
        assert r.status_code == 422 and r.json()["errors"][0]["field"] == "submitted_by", r.text
    finally:
        gw.client.post(f"{API}/jobs/{job_id}/cancel")
    assert gw.wait(job_id)["status"] == "cancelled"


def test_missing_and_unknown_fields_and_bad_json(gw: Gateway) -> None:
    problem = gw.client.post(f"{API}/process", json={"transcript": [], "colour": 1}).json()
    assert {e["field"] for e in problem["errors"]} >= {"video_url", "colour"}
    r = gw.client.post(
        f"{API}/process", content=b"{not json", headers={"content-type": "application/json"}
    )
    assert r.status_code == 400 and "not valid JSON" in r.json()["detail"]
    assert gw.client.post(f"{API}/process", json=[1, 2]).status_code == 422


def test_spec_shape_is_accepted(gw: Gateway, media_server: MediaServer) -> None:
    spec = {
        "source": {"url": media_server.url("talk.mp4")},
        "segments": [{"knowledgeId": "intro", "title": "Intro", "start": "0", "end": "2.5"}],
        "output": {"formats": ["mp4"], "precision": "accurate"},
    }
    job_id = gw.submit({"spec": spec})["job_id"]
    assert gw.wait(job_id)["status"] == "completed"
    segs = gw.client.get(f"{API}/results/{job_id}").json()["segments"]
    assert [s["knowledge_id"] for s in segs] == ["intro"]
    bad = gw.client.post(f"{API}/process", json={"spec": {**spec, "segmentz": []}}).json()
    assert bad["errors"][0]["field"] == "spec.segmentz"


def test_idempotency_key_returns_the_same_job(gw: Gateway, media_server: MediaServer) -> None:
    body = rest_body(media_server.url("talk.mp4"))
    first = gw.submit(body, **{"Idempotency-Key": "k-1"})
    again = gw.client.post(f"{API}/process", json=body, headers={"Idempotency-Key": "k-1"})
    assert again.status_code == 202
    assert again.json()["job_id"] == first["job_id"] and again.json()["created"] is False
    assert again.headers["idempotent-replayed"] == "true"
    other = gw.client.post(
        f"{API}/process", json={**body, "name": "other"}, headers={"Idempotency-Key": "k-1"}
    )
    assert other.status_code == 422 and "Idempotency-Key" in other.json()["title"]
    listed = gw.client.get(f"{API}/jobs").json()["jobs"]
    assert [j["job_id"] for j in listed] == [first["job_id"]]
    gw.wait(first["job_id"])


def test_list_is_newest_first_paginated_and_filtered(
    gw: Gateway, media_server: MediaServer
) -> None:
    slow = media_server.slow_url("talk.mp4", 4_000)
    ids = [gw.submit(rest_body(slow, name=f"j{i}"))["job_id"] for i in range(5)]
    page1 = gw.client.get(f"{API}/jobs", params={"limit": 2}).json()
    assert [j["job_id"] for j in page1["jobs"]] == ids[::-1][:2]
    page2 = gw.client.get(f"{API}/jobs", params={"limit": 2, "cursor": page1["next_cursor"]})
    page3 = gw.client.get(f"{API}/jobs", params={"limit": 2, "cursor": page2.json()["next_cursor"]})
    assert [j["job_id"] for j in page2.json()["jobs"]] == ids[::-1][2:4]
    assert [j["job_id"] for j in page3.json()["jobs"]] == ids[:1]
    assert page3.json()["next_cursor"] is None
    # two run at a time (FIFO): the two oldest start, the three newest wait
    gw.wait(ids[0], "processing")
    gw.wait(ids[1], "processing")
    queued = gw.client.get(f"{API}/jobs", params={"status": "queued"}).json()["jobs"]
    assert [j["job_id"] for j in queued] == ids[::-1][:3]
    # a cursor of other characters than a cursor's breaks the documented pattern (422); one of
    # the right characters that names no position is a 400 (both documented)
    assert gw.client.get(f"{API}/jobs", params={"cursor": "garbage!"}).status_code == 422
    assert gw.client.get(f"{API}/jobs", params={"cursor": "garbage"}).status_code == 400
    for job_id in ids:
        gw.client.post(f"{API}/jobs/{job_id}/cancel")
    for job_id in ids:
        assert gw.wait(job_id)["status"] == "cancelled"


def test_cancel_retry_delete(gw: Gateway, media_server: MediaServer) -> None:
    slow = media_server.slow_url("talk.mp4", 4_000)
    job_id = gw.submit(rest_body(slow))["job_id"]
    gw.wait(job_id, "processing")
    assert gw.client.delete(f"{API}/jobs/{job_id}").status_code == 409  # still running
    r = gw.client.post(f"{API}/jobs/{job_id}/cancel")
    assert r.status_code == 200
    st = gw.wait(job_id)
    assert st["status"] == "cancelled"
    assert gw.client.post(f"{API}/jobs/{job_id}/cancel").status_code == 409
    assert gw.client.post(f"{API}/jobs/{job_id}/retry").json()["status"] == "queued"
    gw.client.post(f"{API}/jobs/{job_id}/cancel")
    assert gw.wait(job_id)["status"] == "cancelled"
    if gw.backend.kind == "cluster":
        # the clips volume is mounted read-only: files stay, the resource goes
        r = gw.client.delete(f"{API}/jobs/{job_id}", params={"files": "true"})
        assert r.status_code == 400 and "read-only" in r.json()["detail"]
        assert gw.client.delete(f"{API}/jobs/{job_id}").status_code == 204
    else:
        r = gw.client.delete(f"{API}/jobs/{job_id}", params={"files": "true"})
        assert r.status_code == 204
        assert gw.data is not None and not (gw.data / "jobs" / job_id).exists()
    assert gw.client.get(f"{API}/status/{job_id}").status_code == 404


def test_a_failed_job_reports_category_and_message(gw: Gateway, media_server: MediaServer) -> None:
    job_id = gw.submit(rest_body(media_server.url("missing.mp4")))["job_id"]
    st = gw.wait(job_id)
    assert st["status"] == "failed"
    assert st["error"]["category"] and st["error"]["message"]


def test_unknown_job_is_a_404_problem(gw: Gateway) -> None:
    for path in ("status", "progress", "results", "jobs"):
        r = gw.client.get(f"{API}/{path}/nope-123")
        assert r.status_code == 404, path
        assert r.headers["content-type"] == "application/problem+json"
        assert r.json()["request_id"] == r.headers["x-request-id"]
    assert gw.client.get(f"{API}/status/Bad_Id").status_code == 422


def test_health_ready_metrics(gw: Gateway) -> None:
    assert gw.client.get("/healthz").text == "ok\n"
    ready = gw.client.get("/readyz").json()
    assert ready["ready"] is True and ready["backend"] == gw.backend.kind
    # ffmpeg only where jobs run (the local backend); the cluster's worker pods have their own
    tools = {"ffmpeg"} if gw.backend.kind == "local" else set()
    assert {c["name"] for c in ready["checks"]} >= {"store", "storage"} | tools
    gw.client.get(f"{API}/status/nope-1")
    text = gw.client.get("/metrics").text
    assert 'videojobs_gateway_jobs{status="completed"}' in text
    assert 'route="/api/v1/videos/status/{job_id}"' in text
    assert "videojobs_gateway_request_seconds_bucket" in text


def test_body_size_limit(gw: Gateway) -> None:
    r = gw.client.post(f"{API}/process", content=b"x" * (5 * 2**20))
    assert r.status_code == 413
