"""Jobs as they run (issue 26, items 2, 3 and 6), on both backends: queued jobs report their
place in the queue; finished clips are listed in ``/results`` and downloadable while the job
still runs; progress counts clips and bytes and moves in steps; the planner's notes (snaps,
merges, drops) are in the submit response and in ``/results``; ``segmentation`` asks for the
times exactly as given."""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Iterator
from typing import Any

import pytest

from tests.gateway.cluster import ClusterStack
from tests.gateway.conftest import API, Gateway, rest_body, start_local
from tests.httpserver import MediaServer

pytestmark = [pytest.mark.media]


@pytest.fixture(scope="module")
def cluster_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ClusterStack]:
    """This module's stack: one job at a time (a queue builds)."""
    stack = ClusterStack(
        tmp_path_factory.mktemp("cluster-live"),
        mode="header",
        operator_env={"VIDEOJOBS_MAX_RUNNING_JOBS": "1"},  # progress: every 0.5 s
    ).start()
    try:
        yield stack
    finally:
        stack.stop()


@pytest.fixture
def one_at_a_time(tmp_path: Any) -> Iterator[Gateway]:
    gw = start_local(tmp_path / "data", concurrency=1)
    try:
        yield gw
    finally:
        gw.client.close()
        gw.server.stop()


@pytest.fixture(params=["local", "cluster"])
def gw(request: pytest.FixtureRequest) -> Gateway:
    name = "one_at_a_time" if request.param == "local" else "cluster_gw"
    backend: Gateway = request.getfixturevalue(name)
    return backend


def test_queued_jobs_report_their_place_in_the_queue(
    gw: Gateway, media_server: MediaServer
) -> None:
    # the first job downloads slowly (it holds the only slot); three more wait behind it
    slow = gw.submit(rest_body(media_server.slow_url("talk.mp4", 20_000)))["job_id"]
    gw.wait(slow, "processing")
    waiting = [gw.submit(rest_body(media_server.url("talk.mp4")))["job_id"] for _ in range(3)]
    try:
        for place, job_id in enumerate(waiting, 1):
            deadline = time.monotonic() + 30
            while gw.status(job_id)["queue_position"] is None and time.monotonic() < deadline:
                time.sleep(0.2)  # the cluster's operator queues it a moment after creation
            assert gw.status(job_id)["queue_position"] == place
            progress = gw.client.get(f"{API}/progress/{job_id}").json()
            assert progress["status"] == "queued" and progress["queue_position"] == place
        listed = gw.client.get(f"{API}/jobs", params={"status": "queued"}).json()["jobs"]
        assert [(j["job_id"], j["queue_position"]) for j in listed] == [
            (waiting[2], 3), (waiting[1], 2), (waiting[0], 1)
        ]  # fmt: skip
        assert gw.status(slow)["queue_position"] is None  # running: not in the queue
    finally:
        for job_id in [slow, *waiting]:
            gw.client.post(f"{API}/jobs/{job_id}/cancel")


def test_clips_are_listed_and_served_while_the_job_runs(
    gw: Gateway, media_server: MediaServer
) -> None:
    # ten one-second clips, re-encoded to two formats: long enough to be seen half done
    transcript = [{"start_time": i, "end_time": i + 1, "text": f"Sentence {i}."} for i in range(12)]
    points = [
        {"knowledge_id": f"k{i}", "title": f"Part {i}", "start_time": i, "end_time": i + 1}
        for i in range(1, 11)
    ]
    body = {
        "video_url": media_server.url("talk.mp4"),
        "transcript": transcript,
        "knowledge_points": points,
        "output": {"formats": ["mp4", "webm"], "precision": "accurate"},
    }
    job_id = gw.submit(body)["job_id"]
    seen: dict[str, Any] = {}
    docs: list[dict[str, Any]] = []
    with gw.client.stream("GET", f"{API}/progress/{job_id}/stream", timeout=300) as r:
        event = None
        for line in r.iter_lines():
            if line.startswith("event: "):
                event = line[7:]
            if not line.startswith("data: ") or event != "progress":
                if event == "end" and line.startswith("data: "):
                    break
                continue
            doc = json.loads(line[6:])
            docs.append(doc)
            if (
                "partial" not in seen
                and doc["status"] == "processing"
                and (0 < doc["segments_done"] < 10)
            ):
                # a clip is done, others are not: it is listed and served now
                results = gw.client.get(f"{API}/results/{job_id}").json()
                seen["partial"] = (doc, results)
                assert len(results["segments"]) >= doc["segments_done"]
                assert results["segments_total"] == 10
                video = next(f for f in results["segments"][0]["files"] if f["kind"] == "video")
                head = gw.client.head(video["url"])
                assert head.status_code == 200
                assert int(head.headers["content-length"]) == video["bytes"]
                data = gw.client.get(video["url"]).content
                assert hashlib.sha256(data).hexdigest() == video["sha256"]
                assert doc["published_bytes"] > 0
    assert "partial" in seen, [(d["status"], d["segments_done"], d["percent"]) for d in docs]
    final = gw.status(job_id)
    assert final["status"] == "completed", final
    running = [d for d in docs if d["status"] == "processing"]
    done = [d["segments_done"] for d in running]
    assert done == sorted(done) and len(set(done)) >= 3, done  # counts as clips finish
    percents = sorted({d["percent"] for d in running})
    assert len(percents) >= 4, percents  # several steps, not 0 then 100
    results = gw.client.get(f"{API}/results/{job_id}").json()
    assert len(results["segments"]) == 10 and results["manifest_url"]


def test_every_change_to_the_points_is_told_and_exact_times_can_be_asked_for(
    gw: Gateway, media_server: MediaServer
) -> None:
    transcript = [
        {"start_time": 0, "end_time": 4, "text": "One."},
        {"start_time": 4, "end_time": 9.5, "text": "Two."},
        {"start_time": 9.5, "end_time": 12, "text": "Three."},
    ]
    points = [
        {"knowledge_id": "a", "title": "A", "start_time": 1, "end_time": 3},
        {"knowledge_id": "b", "title": "B", "start_time": 2, "end_time": 3.5},
        {"knowledge_id": "c", "title": "C", "start_time": 5, "end_time": 8},
    ]
    body = {
        "video_url": media_server.url("talk.mp4"),
        "transcript": transcript,
        "knowledge_points": points,
        "output": {"formats": ["mp4"], "precision": "accurate"},
    }
    snapped = gw.submit(body)
    notes = snapped["notes"]
    assert any("knowledge_points[0]: snapped to cue edges" in n for n in notes), notes
    assert any("knowledge_points[1]: overlaps knowledge_points[0]; merged" in n for n in notes)
    results = gw.client.get(f"{API}/results/{snapped['job_id']}").json()
    assert results["notes"] == notes  # told again where the clips are

    exact = gw.submit({**body, "segmentation": {"snapToCues": False, "overlap": "allow"}})
    assert not any("snapped" in n for n in exact["notes"]), exact["notes"]
    assert any("knowledge_points[1]: overlaps knowledge_points[0] (allowed)" in n
               for n in exact["notes"])  # fmt: skip
    assert gw.wait(exact["job_id"])["status"] == "completed"
    segs = gw.client.get(f"{API}/results/{exact['job_id']}").json()["segments"]
    assert [(s["knowledge_id"], s["start"], s["end"]) for s in segs] == [
        ("a", 1.0, 3.0), ("b", 2.0, 3.5), ("c", 5.0, 8.0)
    ]  # fmt: skip
    assert gw.wait(snapped["job_id"])["status"] == "completed"
