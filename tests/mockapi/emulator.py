"""A kmock Kubernetes emulator that behaves a little more like an API server.

kmock stores objects exactly as sent. The operator needs what a real API server adds: ``uid``
(owner references), ``resourceVersion``, ``generation`` (bumped on spec changes only) and
``creationTimestamp`` (FIFO queueing). The subclass also counts requests and writes so tests
and the benchmark can report API usage.
"""

from __future__ import annotations

import collections
import datetime
import itertools
import uuid
from typing import Any

import aiohttp.web
import attrs
import kmock
from kmock._internal import enums, rendering

from videojobs.models import GROUP, KIND, PLURAL, SHORT_NAMES, SINGULAR, VERSION

WRITE_ACTIONS = (enums.action.CREATE, enums.action.UPDATE, enums.action.DELETE)


def _now() -> str:
    # Fractional seconds keep creation order visible for resources created within one second
    # (a real API server writes whole seconds; the operator's FIFO breaks ties by name).
    return datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class _InFlightLog(list):  # type: ignore[type-arg]
    """kmock's request log, reduced to the requests still being served.

    kmock routes each request by checking it against filters over its whole request log, which
    makes an emulator serving thousands of requests quadratic (seconds per request in the
    benchmark). Routing only needs the request itself to be in the log; nothing here asserts on
    past requests (counters below do that), so finished requests are dropped.
    """

    def __init__(self) -> None:
        super().__init__()
        self.count = 0
        self.active: dict[int, Any] = {}

    def append(self, request: Any) -> None:
        self.count += 1
        self.active[id(request)] = request

    def finish(self, request: Any) -> None:
        self.active.pop(id(request), None)

    def __len__(self) -> int:
        return self.count

    def __iter__(self) -> Any:
        return iter(list(self.active.values()))


@attrs.define(kw_only=True)
class Emulator(kmock.KubernetesEmulator):
    """kmock's emulator plus server-assigned metadata and request counters."""

    counts: collections.Counter[str] = attrs.field(factory=collections.Counter, init=False)
    """Requests by ``"<action> <plural>[/<subresource>]"``, e.g. ``"UPDATE jobs/status"``."""
    by_client: collections.Counter[tuple[str, str]] = attrs.field(
        factory=collections.Counter, init=False
    )
    """Requests by (client, ``"<action> <what>"``); client is ``operator`` (kopf or the
    kubernetes client) or ``other`` (the Job runner, the tests)."""
    _versions: itertools.count[int] = attrs.field(factory=lambda: itertools.count(1), init=False)

    def __attrs_post_init__(self) -> None:
        super().__attrs_post_init__()
        self._requests = _InFlightLog()
        self.resources.load_bundled()
        self.resources[f"{GROUP}/{VERSION}/{PLURAL}"] = {
            "kind": KIND,
            "singular": SINGULAR,
            "shortnames": set(SHORT_NAMES),
            "namespaced": True,
            "verbs": {"get", "list", "watch", "create", "update", "patch", "delete"},
            "subresources": {"status"},
        }

    async def _handle(self, request: rendering.Request) -> aiohttp.web.StreamResponse:
        if request.resource is not None and request.action is not None:
            what = request.resource.plural or "?"
            if request.subresource:
                what += f"/{request.subresource}"
            self.counts[f"{request.action.value} {what}"] += 1
            agent = request.headers.get("User-Agent", "")
            client = "operator" if ("kopf" in agent or "OpenAPI-Generator" in agent) else "other"
            self.by_client[(client, f"{request.action.value} {what}")] += 1
            self._stamp(request)
        try:
            return await super()._handle(request)
        finally:
            self._requests.finish(request)

    def _stamp(self, request: rendering.Request) -> None:
        data = request.data
        if request.action == enums.action.CREATE and isinstance(data, dict):
            meta = data.setdefault("metadata", {})
            if not meta.get("name") and meta.get("generateName"):
                meta["name"] = meta["generateName"] + uuid.uuid4().hex[:5]
            meta["uid"] = str(uuid.uuid4())
            meta["resourceVersion"] = str(next(self._versions))
            meta["generation"] = 1
            meta["creationTimestamp"] = _now()
        elif request.action == enums.action.UPDATE and isinstance(data, dict):
            meta = data.setdefault("metadata", {})
            meta["resourceVersion"] = str(next(self._versions))
            if "spec" in data and request.subresource is None:
                current = self._find(request.resource.plural, request.namespace, request.name)
                if current is not None and not current.deleted:
                    meta["generation"] = int(current.get("metadata", {}).get("generation", 1)) + 1

    def _find(self, plural: str | None, namespace: str | None, name: str | None) -> Any:
        for (res, ns, nm), obj in list(self._objects.items()):
            if res.plural == plural and ns == namespace and nm == name:
                return obj
        return None

    # Convenience accessors for assertions ------------------------------------------------

    @property
    def writes(self) -> int:
        """Create, patch and delete requests so far."""
        return sum(
            n for k, n in self.counts.items() if k.split()[0] in {"CREATE", "UPDATE", "DELETE"}
        )

    @property
    def requests_total(self) -> int:
        """All Kubernetes API requests so far."""
        return sum(self.counts.values())

    def live(self, plural: str, namespace: str | None = None) -> list[dict[str, Any]]:
        """Raw bodies of the objects of one resource that currently exist."""
        out: list[dict[str, Any]] = []
        for (res, ns, _name), obj in list(self._objects.items()):
            if res.plural == plural and (namespace is None or ns == namespace) and not obj.deleted:
                out.append(obj.raw)
        return out

    def history(self, plural: str, namespace: str, name: str) -> list[dict[str, Any]]:
        """Every stored version of one object, oldest first (deletions left out)."""
        obj = self._find(plural, namespace, name)
        return [] if obj is None else [dict(v.raw) for v in obj.history if v is not None]
