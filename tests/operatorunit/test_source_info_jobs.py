"""Jobs cut by the source's chapters or captions: the operator never plans them (it never
downloads); it validates the spec and starts the Job, and the worker plans with yt-dlp."""

from __future__ import annotations

from typing import Any

from tests.operatorunit.fakekube import FakeKube
from tests.operatorunit.test_reconcile_create import KEY, last_status, reconciler, resource
from videojobs_operator.manifest import resource_job_name


def _with_spec(**spec: Any) -> dict[str, Any]:
    body = resource()
    body["spec"] = {
        "source": {"url": "https://www.youtube.com/watch?v=PziYflu8cB8"},
        "output": {"storage": {"pvc": {"claimName": "clips"}}},
        **spec,
    }
    return body


async def test_a_chapters_job_starts_without_a_plan() -> None:
    kube = FakeKube()
    body = _with_spec(segmentation={"fromChapters": True, "chapterTitles": ["Part *"]})
    rec = reconciler(kube, body)
    await rec.reconcile(KEY)
    assert ("media", resource_job_name(body)) in kube.jobs
    assert last_status(kube)["phase"] == "Pending"
    await rec.close()


async def test_a_captions_job_with_quotes_starts_without_a_plan() -> None:
    kube = FakeKube()
    body = _with_spec(
        transcript={"fromSource": {"languages": ["en"]}},
        knowledgePoints=[{"id": "pods", "title": "Pods", "quote": "a pod is the smallest"}],
    )
    rec = reconciler(kube, body)
    await rec.reconcile(KEY)
    assert ("media", resource_job_name(body)) in kube.jobs
    await rec.close()


async def test_chapters_with_segments_is_still_invalid() -> None:
    kube = FakeKube()
    body = _with_spec(
        segmentation={"fromChapters": True},
        segments=[{"start": 0, "end": 5, "title": "Intro"}],
    )
    rec = reconciler(kube, body)
    await rec.reconcile(KEY)
    assert not kube.jobs
    status = last_status(kube)
    assert status["phase"] == "Failed" and "fromChapters" in status["error"]["message"]
    await rec.close()
