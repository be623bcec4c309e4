"""The cluster backend lists once and then keeps watching from the last resourceVersion it saw:
a watch that fails or ends resumes from there; only 410 Gone makes it list again (issue 28: a
relist after every watch error is one LIST of every resource)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

from videojobs_gateway.backend import Identity
from videojobs_gateway.cluster import ClusterBackend
from videojobs_gateway.kube import KubeError


def vpj(name: str, rv: int) -> dict[str, Any]:
    return {
        "metadata": {"name": name, "namespace": "media", "resourceVersion": str(rv), "uid": name},
        "spec": {"source": {"url": "https://example.com/v.mp4"}},
    }


class ScriptedKube:
    """Each watch request plays the next script: events, then an exception or the end."""

    def __init__(self, scripts: list[tuple[list[dict[str, Any]], Exception | None]]) -> None:
        self.scripts = scripts
        self.lists = 0
        self.watched_from: list[str | None] = []
        self.done = asyncio.Event()

    async def list_vpjs(self, namespace: str | None) -> dict[str, Any]:
        self.lists += 1
        items = [vpj("a", 1)] + ([vpj("b", 16)] if self.lists > 1 else [])
        return {"metadata": {"resourceVersion": str(10 * self.lists)}, "items": items}

    async def watch_vpjs(self, namespace: str | None, rv: str | None) -> AsyncIterator[Any]:
        self.watched_from.append(rv)
        if not self.scripts:
            self.done.set()
            await asyncio.Event().wait()
        events, error = self.scripts.pop(0)
        for event in events:
            yield event
        if error is not None:
            raise error

    async def close(self) -> None:
        pass


async def test_a_failed_watch_resumes_from_its_last_version_and_only_410_relists() -> None:
    kube = ScriptedKube(
        [
            ([{"type": "ADDED", "object": vpj("b", 11)}], ConnectionResetError("reset")),
            ([{"type": "BOOKMARK", "object": {"metadata": {"resourceVersion": "15"}}}], None),
            ([], KubeError(500, "etcd leader changed")),
            ([{"type": "MODIFIED", "object": vpj("b", 16)}], None),
            ([{"type": "ERROR", "object": {"code": 410, "message": "too old"}}], None),
            ([{"type": "DELETED", "object": vpj("a", 21)}], None),
        ]
    )
    backend = ClusterBackend(kube, namespaces=["media"], relist_backoff=0.01)
    await backend.start()
    try:
        await asyncio.wait_for(kube.done.wait(), 5)
        # listed at 10; the watch resumed from 11 (reset), 15 (bookmark, stream ended), 15
        # again (500), 16; 410 made it list again (at 20) and watch from there
        assert kube.watched_from == ["10", "11", "15", "15", "16", "20", "21"]
        assert kube.lists == 2
        who = Identity(name="alice", namespace="media")
        names = [j.id for j in backend.list_jobs(who, phase=None, limit=10, cursor=None)[0]]
        assert names == ["b"]
        assert (await backend.checks())[0].ok
    finally:
        await backend.stop()
