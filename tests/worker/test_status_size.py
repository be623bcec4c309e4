"""status.segments stays within what etcd stores (a resource must stay under 1.5 MiB) and the
reporter does not rewrite the whole clip list with every progress update."""

from __future__ import annotations

import json
import threading
from typing import Any

from videojobs.models import OutputFile, ResourceRef, SegmentResult
from videojobs_worker.progress import SEGMENTS_STATUS_BUDGET, ClusterReporter, Reporter

PREFIX = "s3://" + "b" * 63 + "/" + "p" * 1024  # the longest bucket and prefix the CRD allows


def big_segment(i: int) -> SegmentResult:
    stem = f"{i:03d}-k{i}-" + "題" * 60
    files = [
        OutputFile(kind=kind, format=fmt, uri=f"{PREFIX}/{stem}.{fmt}", bytes=10**9,
                   sha256="f" * 64, duration_seconds=600.0 if kind == "video" else None)
        for kind, fmt in (("video", "mp4"), ("video", "webm"), ("thumbnail", "jpg"),
                          ("subtitles", "vtt"))
    ]  # fmt: skip
    return SegmentResult(index=i, knowledge_id=f"k{i}", title="題" * 200, start=i, end=i + 1,
                         stem=stem, precision="smart", files=files)  # fmt: skip


def test_500_long_clips_fit_the_status_budget_and_the_manifest_has_them_all() -> None:
    reporter = Reporter()
    for i in range(1, 501):
        reporter.segments[i] = big_segment(i)
    full = len(json.dumps([s.to_dict() for s in reporter.segments.values()]).encode())
    assert full > 3 * 1024 * 1024, "unbounded, this list alone would break etcd's 1.5 MiB"
    status = reporter.status_patch()["status"]
    size = len(json.dumps(status["segments"], ensure_ascii=False).encode())
    assert size <= SEGMENTS_STATUS_BUDGET
    assert 0 < len(status["segments"]) < 500
    assert [s["index"] for s in status["segments"]] == list(range(1, len(status["segments"]) + 1))


class FakeStatusApi:
    def __init__(self) -> None:
        self.patches: list[Any] = []
        self.sent = threading.Event()

    def patch_namespaced_custom_object_status(self, *args: Any, **_: Any) -> None:
        self.patches.append(args[-1])
        self.sent.set()


def _keys(ops: list[dict[str, Any]]) -> set[str]:
    return {op["path"].split("/")[2] for op in ops if op["op"] == "add"}


def _wait_for(api: FakeStatusApi, check: Any) -> None:
    """Wait for the reporter thread's patches until ``check(patches)`` holds."""
    while not check(api.patches):
        api.sent.clear()
        if check(api.patches):
            return
        assert api.sent.wait(10), "no further status patch"


def test_progress_updates_do_not_resend_an_unchanged_clip_list() -> None:
    api = FakeStatusApi()
    ref = ResourceRef(namespace="media", name="lecture", uid="u", job_name="lecture-1")
    reporter = ClusterReporter(ref, interval=0.0, api=api)
    try:
        reporter.segment(big_segment(1), 3)
        reporter.stage("Cutting")
        _wait_for(api, lambda ps: any("segments" in _keys(p) for p in ps))
        _wait_for(api, lambda ps: any(_stage(p) == "Cutting" for p in ps))
        count = len(api.patches)
        reporter.stage("Uploading")  # progress only
        _wait_for(api, lambda ps: any(_stage(p) == "Uploading" for p in ps[count:]))
        assert all("segments" not in _keys(p) for p in api.patches[count:])
        assert all(p[1] == {"op": "test", "path": "/status/jobName", "value": "lecture-1"}
                   for p in api.patches)  # fmt: skip
        count = len(api.patches)
        reporter.segment(big_segment(2), 3)
        reporter.stage("Cutting")
        _wait_for(api, lambda ps: any("segments" in _keys(p) for p in ps[count:]))
    finally:
        reporter.close()


def _stage(ops: list[dict[str, Any]]) -> str | None:
    for op in ops:
        if op["path"] == "/status/progress":
            return str(op["value"]["stage"])
    return None
