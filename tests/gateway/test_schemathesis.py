"""schemathesis against the OpenAPI spec, on both backends, with all its checks (no 5xx,
status codes, content types, headers and bodies as documented, negative data rejected, positive
data accepted, ``Allow`` on 405, use after free, resource availability, ignored auth), per
operation and stateful (sequences that follow the spec's links from a submitted job).

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
from schemathesis.config import SchemathesisConfig

from tests.gateway.conftest import start_local
from tests.gateway.live import LiveServer

pytestmark = [pytest.mark.mockapi]

HEADERS = {"X-Remote-User": "fuzzer", "X-Remote-Namespace": "fuzz"}
CONFIG = SchemathesisConfig.from_str("""
# a schema-valid submission may still be an invalid job (times past the end, a quote not in the
# transcript, a URL scheme not supported): 422, documented, as `videojobs validate` says
[[operations]]
include-path = "/api/v1/videos/process"
checks.positive_data_acceptance.expected-statuses = ["2xx", "401", "403", "413", "422", "429"]

# the plan of a submission: the same body, the same 422 for a schema-valid invalid job
[[operations]]
include-path = "/api/v1/videos/plan"
checks.positive_data_acceptance.expected-statuses = ["2xx", "401", "403", "413", "422", "429"]

# a cursor of the right characters that names no page: 400, documented
[[operations]]
include-path = "/api/v1/videos/jobs"
checks.positive_data_acceptance.expected-statuses = ["2xx", "400", "401", "403", "429"]
""")
TIMEOUT = 60.0
"""Seconds a call may take (a stream of a job that waits in the queue ends with it)."""


@pytest.fixture(scope="module")
def local_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    gw = start_local(Path(tmp_path_factory.mktemp("fuzz")) / "data", concurrency=1)
    try:
        yield gw.server
    finally:
        gw.client.close()
        gw.server.stop()


def fuzz(base_url: str, headers: dict[str, str] | None = None) -> int:
    """Every operation of the served spec, ``max_examples`` cases each, all checks; the number
    of cases."""
    schema = schemathesis.openapi.from_url(f"{base_url}/openapi.json", config=CONFIG)
    calls = 0
    for result in schema.get_all_operations():
        operation = result.ok()

        @given(case=operation.as_strategy())
        @FUZZ
        def check(case: schemathesis.Case) -> None:
            nonlocal calls
            calls += 1
            case.call_and_validate(base_url=base_url, headers=headers, timeout=TIMEOUT)

        try:
            check()
        except Exception as exc:
            raise AssertionError(f"{operation.label}: {exc}") from exc
    return calls


def stateful(base_url: str, headers: dict[str, str] | None = None) -> int:
    """schemathesis' state machine over the spec's links; the number of calls made."""
    schema = schemathesis.openapi.from_url(f"{base_url}/openapi.json", config=CONFIG)
    machine = schema.as_state_machine()
    calls = 0

    class Workflow(machine):  # type: ignore[misc, valid-type]
        def get_call_kwargs(self, case: schemathesis.Case) -> dict[str, Any]:
            return {"base_url": base_url, "headers": headers or {}, "timeout": TIMEOUT}

        def after_call(self, response: Any, case: schemathesis.Case) -> None:
            nonlocal calls
            calls += 1

    Workflow.run(
        settings=settings(
            max_examples=25,
            stateful_step_count=6,
            deadline=None,
            suppress_health_check=list(HealthCheck),
            database=None,
        )
    )
    return calls


FUZZ = settings(
    max_examples=15,
    deadline=None,
    suppress_health_check=list(HealthCheck),
    database=None,
)


def test_local_backend_keeps_to_its_spec(local_server: LiveServer) -> None:
    assert fuzz(local_server.base_url) > 100


def test_local_backend_keeps_to_its_spec_in_sequences(local_server: LiveServer) -> None:
    assert stateful(local_server.base_url) > 25


def test_cluster_backend_keeps_to_its_spec(cluster_server: tuple[LiveServer, Any]) -> None:
    server, _ = cluster_server
    assert fuzz(server.base_url, HEADERS) > 100


def test_cluster_backend_keeps_to_its_spec_in_sequences(
    cluster_server: tuple[LiveServer, Any],
) -> None:
    server, _ = cluster_server
    assert stateful(server.base_url, HEADERS) > 25
