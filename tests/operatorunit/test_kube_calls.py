"""What the operator's API calls send, with the client's API objects replaced by recorders."""

from __future__ import annotations

import re
from types import SimpleNamespace
from typing import Any

import kubernetes

from videojobs_operator.kube import Kube
from videojobs_operator.metrics import Metrics

DNS_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$")


class Recorder:
    def __init__(self) -> None:
        self.calls: list[tuple[str, tuple[Any, ...]]] = []

    def __getattr__(self, name: str) -> Any:
        def call(*args: Any, **_: Any) -> Any:
            self.calls.append((name, args))
            return SimpleNamespace(data=b"{}")

        return call


async def test_event_names_stay_within_253_characters() -> None:
    kube = Kube(kubernetes.client.ApiClient(), Metrics())
    kube.core = Recorder()  # type: ignore[assignment]
    name = "a" * 60 + "." + "b" * 192
    resource = {"metadata": {"name": name, "namespace": "media", "uid": "u"}}
    await kube.post_event(resource, "Normal", "JobCreated", "created")
    ((method, (namespace, body)),) = kube.core.calls  # type: ignore[attr-defined]
    assert method == "create_namespaced_event" and namespace == "media"
    event_name = body["metadata"]["name"]
    assert len(event_name) <= 253 and DNS_SUBDOMAIN.match(event_name), event_name
    assert body["involvedObject"]["name"] == name
