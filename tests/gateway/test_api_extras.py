"""The original specification's small things: /health, HEAD on files, a request timeout, a
body without output, a WebVTT string as the transcript."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import httpx

from tests.gateway.conftest import API, Gateway, rest_body
from tests.gateway.live import LiveServer
from tests.httpserver import MediaServer
from videojobs_gateway.settings import GatewaySettings

VTT = """WEBVTT

00:00:00.000 --> 00:00:03.000
Welcome to the lesson.

00:00:03.000 --> 00:00:06.000
A commit records a snapshot.

00:00:06.000 --> 00:00:09.000
Branches are cheap pointers.

00:00:09.000 --> 00:00:12.000
Merging joins two branches.
"""


def test_health_is_the_liveness_answer(local_gw: Gateway) -> None:
    r = local_gw.client.get("/health")
    assert r.status_code == 200 and r.text == local_gw.client.get("/healthz").text == "ok\n"


def test_head_on_a_clip_file_answers_headers_only(
    local_gw: Gateway, media_server: MediaServer
) -> None:
    job = local_gw.submit(rest_body(media_server.url("talk.mp4")))
    assert local_gw.wait(job["job_id"])["status"] == "completed"
    res = local_gw.client.get(f"{API}/results/{job['job_id']}").json()
    url = res["segments"][0]["files"][0]["url"]
    got = local_gw.client.get(url)
    head = local_gw.client.head(url)
    assert head.status_code == 200, head.text
    assert head.content == b""
    assert int(head.headers["content-length"]) == len(got.content) > 1000
    assert head.headers["content-type"] == got.headers["content-type"]
    assert head.headers["accept-ranges"] == "bytes"


def test_a_body_without_output_or_with_null_output_takes_the_defaults(
    local_gw: Gateway, media_server: MediaServer
) -> None:
    body = rest_body(media_server.url("talk.mp4"))
    del body["output"]
    first = local_gw.submit(body)
    assert local_gw.submit({**body, "output": None})["job_id"] != first["job_id"]
    assert local_gw.wait(first["job_id"])["status"] == "completed"
    res = local_gw.client.get(f"{API}/results/{first['job_id']}").json()
    assert [f["format"] for f in res["segments"][0]["files"] if f["kind"] == "video"] == ["mp4"]


def test_a_webvtt_string_is_a_transcript(local_gw: Gateway, media_server: MediaServer) -> None:
    body: dict[str, Any] = {
        "video_url": media_server.url("talk.mp4"),
        "transcript": VTT,
        "knowledge_points": [
            {"knowledge_id": "commits", "title": "Commits", "description": "Snapshots.",
             "start_time": 3, "end_time": "00:00:06"},
            {"knowledge_id": "merging", "title": "Merging", "quote": "Merging joins two branches"},
        ],
        "output": {"precision": "copy"},
    }  # fmt: skip
    job = local_gw.submit(body)
    assert local_gw.wait(job["job_id"])["status"] == "completed"
    res = local_gw.client.get(f"{API}/results/{job['job_id']}").json()
    segs = [(s["knowledge_id"], s["title"], s["description"]) for s in res["segments"]]
    assert segs == [("commits", "Commits", "Snapshots."), ("merging", "Merging", "")]
    # a problem in a point of a text transcript still names the REST field
    bad = {**body, "knowledge_points": [{"knowledge_id": "x", "title": "X", "start_time": -4}]}
    r = local_gw.client.post(f"{API}/process", json=bad)
    assert r.status_code == 422, r.text
    assert [e["field"] for e in r.json()["errors"]][0].startswith("knowledge_points"), r.text


def test_a_response_not_started_in_time_is_504(tmp_path: Path) -> None:
    from videojobs_gateway.app import create_app
    from videojobs_gateway.local import LocalBackend

    class SlowChecks(LocalBackend):
        async def checks(self) -> Any:
            await asyncio.sleep(30)
            return await super().checks()

    backend = SlowChecks(tmp_path / "data")
    settings = GatewaySettings(request_timeout_seconds=0.5)
    server = LiveServer(create_app(backend, settings)).start()
    try:
        with httpx.Client(base_url=server.base_url, timeout=10) as client:
            r = client.get("/readyz")
            assert r.status_code == 504, r.text
            assert r.headers["content-type"] == "application/problem+json"
            assert "0.5 s" in r.json()["detail"] and r.headers["x-request-id"]
            # quick answers are not touched
            assert client.get("/healthz").status_code == 200
            assert client.get(f"{API}/jobs").status_code == 200
    finally:
        server.stop()


OVERLAPPING = {
    "transcript": [
        {"start_time": 0, "end_time": 2.5, "text": "Welcome to the lesson."},
        {"start_time": 2.5, "end_time": 4, "text": "A commit records a snapshot."},
        {"start_time": 4, "end_time": 9.5, "text": "Branches are cheap pointers."},
        {"start_time": 9.5, "end_time": 12, "text": "Merging joins two branches."},
    ],
    "knowledge_points": [
        {"knowledge_id": "p1", "title": "One", "start_time": 1, "end_time": 3},
        {"knowledge_id": "p2", "title": "Two", "start_time": 2, "end_time": 3.5},
        {"knowledge_id": "p3", "title": "Three", "start_time": 5, "end_time": 8},
    ],
    "output": {"precision": "accurate"},
}


def test_submit_notes_say_what_the_planner_changed_and_snapping_can_be_turned_off(
    local_gw: Gateway, media_server: MediaServer
) -> None:
    body = {"video_url": media_server.url("talk.mp4"), **OVERLAPPING}
    notes = local_gw.submit(body)["notes"]
    snapped = [n for n in notes if "snapped to cue edges" in n]
    assert [n.split(":")[0] for n in snapped] == [
        "knowledge_points[0]", "knowledge_points[1]", "knowledge_points[2]"
    ], notes  # fmt: skip
    assert "start 00:00:05.000→00:00:04.000" in snapped[2]
    merged = [n for n in notes if "merged into it" in n]
    assert merged == [
        "knowledge_points[1]: overlaps knowledge_points[0]; merged into it (overlap: merge)"
    ], notes
    # exact times, overlapping clips kept: every point gets its clip at the times given
    exact = {**body, "segmentation": {"snapToCues": False, "overlap": "allow"}}
    job = local_gw.submit(exact)
    assert not any("snapped" in n or "merged" in n for n in job["notes"]), job["notes"]
    assert local_gw.wait(job["job_id"])["status"] == "completed"
    res = local_gw.client.get(f"{API}/results/{job['job_id']}").json()
    got = [(s["knowledge_id"], round(s["start"], 2), round(s["end"], 2)) for s in res["segments"]]
    assert got == [("p1", 1.0, 3.0), ("p2", 2.0, 3.5), ("p3", 5.0, 8.0)]
    # a bad value names the REST field
    r = local_gw.client.post(
        f"{API}/process", json={**body, "segmentation": {"snapToCues": "sometimes"}}
    )
    assert r.status_code == 422 and r.json()["errors"][0]["field"].startswith("segmentation")


def test_openapi_declares_the_auth_modes_schemes(tmp_path: Path) -> None:
    from videojobs_gateway.app import create_app
    from videojobs_gateway.auth import hash_key
    from videojobs_gateway.local import LocalBackend

    keys = tmp_path / "keys.json"
    keys.write_text(f'[{{"name": "a", "sha256": "{hash_key("k")}", "namespace": "a"}}]')
    app = create_app(
        LocalBackend(tmp_path / "d"), GatewaySettings(auth_mode="apikey", api_keys_file=keys)
    )
    doc = app.openapi()
    schemes = doc["components"]["securitySchemes"]
    assert schemes["apiKeyBearer"] == {
        "type": "http", "scheme": "bearer",
        "description": "An API key as Authorization: Bearer <key>.",
    }  # fmt: skip
    assert schemes["apiKeyHeader"]["in"] == "header"
    assert schemes["apiKeyHeader"]["name"] == "X-Api-Key"
    either = [{"apiKeyBearer": []}, {"apiKeyHeader": []}]
    assert doc["paths"]["/api/v1/videos/process"]["post"]["security"] == either
    assert doc["paths"]["/api/v1/videos/jobs"]["get"]["security"] == either
    assert doc["paths"]["/metrics"]["get"]["security"] == either
    assert "security" not in doc["paths"]["/healthz"]["get"]
    # auth mode none declares nothing
    open_doc = create_app(LocalBackend(tmp_path / "e"), GatewaySettings()).openapi()
    assert "securitySchemes" not in open_doc["components"]


def test_two_keys_of_one_namespace_share_a_history_that_names_each_submitter(
    tmp_path: Path, media_server: MediaServer
) -> None:
    """History is per namespace; each job records which API key submitted it, shown in the
    list and filterable; the console's rows say it too (jobs.js ``.by``)."""
    from tests.gateway.conftest import start_local
    from videojobs_gateway.auth import hash_key

    keys = tmp_path / "keys.json"
    entries = [
        {"name": n, "sha256": hash_key(f"key-{n}"), "namespace": "team"} for n in ("ann", "bob")
    ]
    keys.write_text(json.dumps(entries))
    settings = GatewaySettings(auth_mode="apikey", api_keys_file=keys)
    gw = start_local(tmp_path / "data", concurrency=1, settings=settings)
    ann = httpx.Client(base_url=gw.server.base_url, headers={"Authorization": "Bearer key-ann"})
    bob = httpx.Client(base_url=gw.server.base_url, headers={"Authorization": "Bearer key-bob"})
    slow = rest_body(media_server.slow_url("talk.mp4", 4_000))
    try:
        a = ann.post(f"{API}/process", json=slow).json()["job_id"]
        b = bob.post(f"{API}/process", json=slow).json()["job_id"]
        listed = ann.get(f"{API}/jobs").json()["jobs"]
        shown = [(j["job_id"], j["submitted_by"]) for j in listed]
        assert shown == [(b, "key:bob"), (a, "key:ann")]
        only_bob = ann.get(f"{API}/jobs", params={"submitted_by": "key:bob"}).json()["jobs"]
        assert [j["job_id"] for j in only_bob] == [b]
        assert bob.get(f"{API}/status/{a}").json()["submitted_by"] == "key:ann"
        for client, job in ((ann, a), (bob, b)):
            client.post(f"{API}/jobs/{job}/cancel")
    finally:
        for client in (ann, bob):
            client.close()
        gw.client.close()
        gw.server.stop()
    # the record outlives a restart
    again = start_local(tmp_path / "data", concurrency=1, settings=settings)
    try:
        jobs = again.client.get(f"{API}/jobs", headers={"Authorization": "Bearer key-bob"}).json()
        assert {j["job_id"]: j["submitted_by"] for j in jobs["jobs"]} == {
            a: "key:ann", b: "key:bob"
        }  # fmt: skip
    finally:
        again.client.close()
        again.server.stop()
