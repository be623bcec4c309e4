"""An in-memory stand-in for :class:`videojobs_operator.kube.Kube`, for reconciler tests.

It records every call and answers from dicts; a test makes a call fail by queueing an
exception for it (``fail["create_job"].append(ApiException(...))``).
"""

from __future__ import annotations

import collections
import json
from typing import Any

from kubernetes.client.exceptions import ApiException

from videojobs_operator.kube import ForeignObjectError


def api_error(status: int, message: str, retry_after: str | None = None) -> ApiException:
    """An ApiException as the kubernetes client raises it for an HTTP error."""
    exc = ApiException(
        status=status, reason={403: "Forbidden", 422: "Unprocessable Entity"}.get(status, "Error")
    )
    exc.body = json.dumps({"kind": "Status", "status": "Failure", "message": message})
    exc.headers = {"Retry-After": retry_after} if retry_after else {}
    return exc


class FakeKube:
    """Records calls; ``jobs`` holds created Jobs by (namespace, name)."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, Any]] = []
        self.jobs: dict[tuple[str, str], dict[str, Any]] = {}
        self.configmaps: dict[tuple[str, str], dict[str, Any]] = {}
        self.claims: dict[tuple[str, str], dict[str, Any]] = {}
        self.status_patches: list[tuple[str, dict[str, Any]]] = []
        self.events: list[tuple[str, str, str]] = []
        self.warnings: dict[tuple[str, str], str] = {}
        """The newest Warning Event per (kind, name)."""
        self.fail: collections.defaultdict[str, list[BaseException]] = collections.defaultdict(list)

    def _maybe_fail(self, method: str) -> None:
        if self.fail[method]:
            raise self.fail[method].pop(0)

    async def get_job(self, namespace: str, name: str) -> dict[str, Any] | None:
        self.calls.append(("get_job", name))
        return self.jobs.get((namespace, name))

    async def create_job(self, manifest: dict[str, Any], owner_uid: str) -> dict[str, Any]:
        self.calls.append(("create_job", manifest["metadata"]["name"]))
        self._maybe_fail("create_job")
        key = (manifest["metadata"]["namespace"], manifest["metadata"]["name"])
        if key in self.jobs:
            raise ForeignObjectError("exists")
        created = {**manifest, "metadata": {**manifest["metadata"], "uid": f"job-uid-{key[1]}"}}
        self.jobs[key] = created
        return created

    async def create_configmap(self, manifest: dict[str, Any]) -> None:
        self.calls.append(("create_configmap", manifest["metadata"]["name"]))
        self._maybe_fail("create_configmap")
        key = (manifest["metadata"]["namespace"], manifest["metadata"]["name"])
        self.configmaps.setdefault(key, manifest)

    async def delete_job(self, namespace: str, name: str) -> None:
        self.calls.append(("delete_job", name))
        self.jobs.pop((namespace, name), None)

    async def read_configmap(self, namespace: str, name: str) -> dict[str, Any] | None:
        return self.configmaps.get((namespace, name))

    async def read_claim(self, namespace: str, name: str) -> dict[str, Any] | None:
        self.calls.append(("read_claim", name))
        return self.claims.get((namespace, name))

    async def patch_status(self, namespace: str, name: str, patch: dict[str, Any]) -> None:
        self.calls.append(("patch_status", name))
        self.status_patches.append((name, patch))

    async def delete_resource(self, namespace: str, name: str, uid: str) -> None:
        self.calls.append(("delete_resource", name))

    async def post_event(
        self, resource: dict[str, Any], type_: str, reason: str, message: str
    ) -> None:
        self.events.append((type_, reason, message))

    async def latest_warning(self, namespace: str, kind: str, name: str) -> str | None:
        self.calls.append(("latest_warning", f"{kind}/{name}"))
        return self.warnings.get((kind, name))

    async def ensure_worker_rbac(self, namespace: str, account: str, **_: Any) -> None:
        self.calls.append(("ensure_worker_rbac", namespace))
