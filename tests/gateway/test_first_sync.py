"""Before its first listing of a namespace the cluster backend knows nothing about it: it
answers 503, not an empty list or 404 (issue 25: ``200 {"jobs": []}`` before the first sync)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest

from videojobs_gateway.backend import BackendError, Identity
from videojobs_gateway.cluster import ClusterBackend

JOB = {
    "apiVersion": "videojobs.io/v1alpha1",
    "kind": "VideoProcessingJob",
    "metadata": {"name": "lecture", "namespace": "media", "resourceVersion": "5", "uid": "u"},
    "spec": {"source": {"url": "https://example.com/v.mp4"}},
}


class SlowKube:
    """list_vpjs fails until ``answer`` is set (an API server not reachable yet)."""

    def __init__(self) -> None:
        self.answer = asyncio.Event()

    async def list_vpjs(self, namespace: str | None) -> dict[str, Any]:
        if not self.answer.is_set():
            raise ConnectionRefusedError("connection refused")
        return {"metadata": {"resourceVersion": "5"}, "items": [dict(JOB)]}

    async def watch_vpjs(
        self, namespace: str | None, resource_version: str | None
    ) -> AsyncIterator[dict[str, Any]]:
        await asyncio.Event().wait()
        yield {}

    async def close(self) -> None:
        pass


async def test_503_until_the_first_listing_then_the_jobs() -> None:
    kube = SlowKube()
    backend = ClusterBackend(kube, namespaces=["media"], relist_backoff=0.01)
    task = asyncio.create_task(backend.start())
    await asyncio.sleep(0.05)
    who = Identity(name="alice", namespace="media")
    try:
        for call in (
            lambda: backend.list_jobs(who, phase=None, limit=10, cursor=None),
            lambda: backend.get(who, "lecture"),
        ):
            with pytest.raises(BackendError) as refused:
                call()
            assert refused.value.status == 503
            assert "not listed yet" in refused.value.detail
            assert "connection refused" in refused.value.detail
        kube.answer.set()
        await asyncio.wait_for(task, 5)
        jobs, _ = backend.list_jobs(who, phase=None, limit=10, cursor=None)
        assert [j.id for j in jobs] == ["lecture"]
        with pytest.raises(BackendError) as missing:
            backend.get(who, "other")
        assert missing.value.status == 404
    finally:
        await backend.stop()
