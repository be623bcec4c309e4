"""schemathesis against the OpenAPI spec, on both backends: no 5xx, no response that breaks
the schema (status codes, content types and bodies as documented).

The spec is the one the app serves (``/openapi.json``); the calls go to a live gateway: the
local backend, and the cluster backend over the strict emulator, the operator and the worker
(its cluster stack is the module's, shared with nothing else). Generated submissions that
happen to be valid become real jobs; they fail fast (nothing is listening at their URLs).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from tests.gateway.conftest import start_local
from tests.gateway.live import LiveServer

pytestmark = [pytest.mark.mockapi]

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]
HEADERS = {"X-Remote-User": "fuzzer", "X-Remote-Namespace": "fuzz"}


@pytest.fixture(scope="module")
def local_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    gw = start_local(Path(tmp_path_factory.mktemp("fuzz")) / "data", concurrency=1)
    try:
        yield gw.server
    finally:
        gw.client.close()
        gw.server.stop()


def fuzz(base_url: str, headers: dict[str, str] | None = None) -> int:
    """Every operation of the served spec, ``max_examples`` cases each; the number of cases."""
    schema = schemathesis.openapi.from_url(f"{base_url}/openapi.json")
    calls = 0
    for result in schema.get_all_operations():
        operation = result.ok()

        @given(case=operation.as_strategy())
        @FUZZ
        def check(case: schemathesis.Case) -> None:
            nonlocal calls
            calls += 1
            case.call_and_validate(base_url=base_url, headers=headers, checks=CHECKS)

        try:
            check()
        except Exception as exc:
            raise AssertionError(f"{operation.label}: {exc}") from exc
    return calls


FUZZ = settings(
    max_examples=15,
    deadline=None,
    suppress_health_check=list(HealthCheck),
    database=None,
)


def test_local_backend_keeps_to_its_spec(local_server: LiveServer) -> None:
    assert fuzz(local_server.base_url) > 100


def test_cluster_backend_keeps_to_its_spec(cluster_server: tuple[LiveServer, Any]) -> None:
    server, _ = cluster_server
    assert fuzz(server.base_url, HEADERS) > 100
