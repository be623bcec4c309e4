"""Leader election against an in-memory Lease API that enforces resourceVersion preconditions:
expiry is measured on the candidate's own clock (clock skew cannot steal a live Lease), and a
release never clears a Lease someone else holds by then."""

from __future__ import annotations

import copy
import datetime as dt
import http.server
import json
import threading
import time
from collections.abc import Iterator
from types import SimpleNamespace
from typing import Any

import kubernetes
import pytest
from kubernetes.client.exceptions import ApiException

from videojobs_operator.leader import LeaseElector, process_identity


class FakeLeases:
    """coordination.k8s.io/v1 leases: get, create, merge patch with a resourceVersion check."""

    def __init__(self) -> None:
        self.lease: dict[str, Any] | None = None
        self.version = 0

    def _response(self) -> SimpleNamespace:
        return SimpleNamespace(data=json.dumps(self.lease).encode())

    def read_namespaced_lease(self, name: str, ns: str, **_: Any) -> SimpleNamespace:
        if self.lease is None:
            raise ApiException(status=404)
        return self._response()

    def create_namespaced_lease(self, ns: str, body: dict[str, Any], **_: Any) -> SimpleNamespace:
        if self.lease is not None:
            raise ApiException(status=409)
        self.version += 1
        self.lease = copy.deepcopy(body)
        self.lease["metadata"]["resourceVersion"] = str(self.version)
        return self._response()

    def patch_namespaced_lease(
        self, name: str, ns: str, patch: dict[str, Any], **_: Any
    ) -> SimpleNamespace:
        if self.lease is None:
            raise ApiException(status=404)
        wanted = (patch.get("metadata") or {}).get("resourceVersion")
        if wanted is not None and wanted != self.lease["metadata"]["resourceVersion"]:
            raise ApiException(status=409, reason="Conflict")
        for key, value in (patch.get("spec") or {}).items():
            if value is None:
                self.lease["spec"].pop(key, None)
            else:
                self.lease["spec"][key] = value
        self.version += 1
        self.lease["metadata"]["resourceVersion"] = str(self.version)
        return self._response()

    def renew_as(self, holder: str, renew_time: dt.datetime) -> None:
        """Another replica renews, writing its own (skewed) wall-clock time."""
        assert self.lease is not None
        self.patch_namespaced_lease(
            "l",
            "ops",
            {
                "spec": {
                    "holderIdentity": holder,
                    "renewTime": renew_time.strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
                    "leaseDurationSeconds": 15,
                }
            },
        )


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def elector(leases: FakeLeases, identity: str, clock: Clock) -> LeaseElector:
    e = LeaseElector(SimpleNamespace(), "ops", identity, lease_seconds=15, clock=clock)  # type: ignore[arg-type]
    e.leases = leases  # type: ignore[assignment]
    return e


def test_a_live_lease_renewed_by_a_skewed_clock_is_not_stolen() -> None:
    leases, clock = FakeLeases(), Clock()
    holder = elector(leases, "holder", clock)
    assert holder.try_acquire()
    candidate = elector(leases, "candidate", clock)
    skewed = dt.datetime.now(dt.UTC) - dt.timedelta(hours=1)  # the holder's clock is 1 h behind
    for _ in range(10):
        leases.renew_as("holder", skewed)
        assert not candidate.try_acquire(), "the holder renews: its Lease is live"
        clock.now += 5
        skewed += dt.timedelta(seconds=5)
    assert leases.lease is not None and leases.lease["spec"]["holderIdentity"] == "holder"


def test_a_lease_that_stops_changing_expires_on_the_candidates_clock() -> None:
    leases, clock = FakeLeases(), Clock()
    assert elector(leases, "holder", clock).try_acquire()
    candidate = elector(leases, "candidate", clock)
    assert not candidate.try_acquire()
    clock.now += 10
    assert not candidate.try_acquire(), "not expired yet (10 s of 15)"
    clock.now += 6
    assert candidate.try_acquire(), "unchanged for 16 s on the candidate's clock"
    assert leases.lease is not None
    assert leases.lease["spec"]["holderIdentity"] == "candidate"
    assert leases.lease["spec"]["leaseTransitions"] == 1


def test_release_does_not_clear_a_lease_taken_over_meanwhile() -> None:
    leases, clock = FakeLeases(), Clock()
    old = elector(leases, "old", clock)
    assert old.try_acquire()
    # the old leader is paused past the lease duration; a standby takes over
    standby = elector(leases, "standby", clock)
    assert not standby.try_acquire()
    clock.now += 20
    assert standby.try_acquire()
    old.release()
    assert leases.lease is not None
    assert leases.lease["spec"]["holderIdentity"] == "standby"


def test_release_frees_our_own_lease_at_once() -> None:
    leases, clock = FakeLeases(), Clock()
    first = elector(leases, "first", clock)
    assert first.try_acquire() and first.try_acquire()  # created, then renewed
    first.release()
    assert leases.lease is not None and "holderIdentity" not in leases.lease["spec"]
    assert elector(leases, "second", clock).try_acquire(), "a released Lease is free at once"


class LeaseServer(http.server.ThreadingHTTPServer):
    """The Lease API over HTTP (FakeLeases behind it) that can start hanging: it still accepts
    connections but never answers them, as an API server behind a dead load balancer does."""

    daemon_threads = True

    def __init__(self, leases: FakeLeases) -> None:
        self.leases = leases
        self.hang = threading.Event()
        self.done = threading.Event()
        self.lock = threading.Lock()
        super().__init__(("127.0.0.1", 0), _LeaseHandler)


class _LeaseHandler(http.server.BaseHTTPRequestHandler):
    server: LeaseServer

    def _answer(self, call: Any) -> None:
        if self.server.hang.is_set():
            self.server.done.wait(60)  # accepted, never answered
            return
        try:
            with self.server.lock:
                status, body = 200, call().data
        except ApiException as exc:
            status, body = exc.status, b"{}"
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _body(self) -> dict[str, Any]:
        return json.loads(self.rfile.read(int(self.headers["Content-Length"])))

    def do_GET(self) -> None:
        self._answer(lambda: self.server.leases.read_namespaced_lease("l", "ops"))

    def do_POST(self) -> None:
        body = self._body()
        self._answer(lambda: self.server.leases.create_namespaced_lease("ops", body))

    def do_PATCH(self) -> None:
        body = self._body()
        self._answer(lambda: self.server.leases.patch_namespaced_lease("l", "ops", body))

    def log_message(self, *_: object) -> None:
        pass


@pytest.fixture
def lease_server() -> Iterator[LeaseServer]:
    server = LeaseServer(FakeLeases())
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server
    server.done.set()
    server.shutdown()
    server.server_close()


def test_a_hanging_api_server_makes_the_holder_stop_before_a_standby_can_take_over(
    lease_server: LeaseServer,
) -> None:
    """The holder talks to the API server over HTTP; once every request hangs, it must give the
    lead up (on_lost) before the Lease expires on a standby's clock (issue 25)."""
    config = kubernetes.client.Configuration()
    config.host = f"http://127.0.0.1:{lease_server.server_address[1]}"
    lease_seconds = 3
    holder = LeaseElector(
        kubernetes.client.ApiClient(config),
        "ops",
        "holder",
        lease_seconds=lease_seconds,
        renew_seconds=0.3,
    )
    halt = threading.Event()
    assert holder.acquire(halt)
    lost_at: list[float] = []
    renewing = threading.Thread(
        target=holder.renew_until, args=(halt, lambda: lost_at.append(time.monotonic()))
    )
    renewing.start()
    # a standby sees the Lease directly (its own, answering, path to the same store)
    standby = LeaseElector(SimpleNamespace(), "ops", "standby", lease_seconds=lease_seconds)
    standby.leases = lease_server.leases
    try:
        for _ in range(5):
            with lease_server.lock:
                assert not standby.try_acquire()
            time.sleep(0.2)
        lease_server.hang.set()
        taken_at = None
        give_up = time.monotonic() + 4 * lease_seconds
        while time.monotonic() < give_up:
            with lease_server.lock:
                if standby.try_acquire():
                    taken_at = time.monotonic()
                    break
            time.sleep(0.05)
        assert taken_at is not None, "the standby never saw the Lease expire"
        renewing.join(timeout=2 * lease_seconds)
        assert not renewing.is_alive(), "the holder's renewal is still blocked on the API server"
        assert lost_at, "the holder never gave the lead up"
        assert lost_at[0] < taken_at, (
            f"the holder stopped leading {lost_at[0] - taken_at:.1f} s after the standby took over"
        )
        assert holder.lost.is_set()
    finally:
        halt.set()
        lease_server.done.set()


def test_each_process_has_its_own_identity_even_in_the_same_pod() -> None:
    """A restarted container keeps its pod name; with the name alone as its identity it would
    renew the previous process's live Lease as its own (issue 28)."""
    env = {"POD_NAME": "videojobs-operator-7c9f-abcde"}
    first, restarted = process_identity(env, "host"), process_identity(env, "host")
    assert first != restarted
    assert first.startswith("videojobs-operator-7c9f-abcde_")
    assert process_identity({}, "host").startswith("host_")
    leases, clock = FakeLeases(), Clock()
    assert elector(leases, first, clock).try_acquire()
    clock.now += 5
    assert not elector(leases, restarted, clock).try_acquire(), "took a live Lease over"


class RecordingLeases(FakeLeases):
    """FakeLeases that records each call's ``_request_timeout``."""

    def __init__(self) -> None:
        super().__init__()
        self.timeouts: list[tuple[str, Any]] = []

    def read_namespaced_lease(self, name: str, ns: str, **kw: Any) -> SimpleNamespace:
        self.timeouts.append(("read", kw.get("_request_timeout")))
        return super().read_namespaced_lease(name, ns)

    def create_namespaced_lease(self, ns: str, body: dict[str, Any], **kw: Any) -> SimpleNamespace:
        self.timeouts.append(("create", kw.get("_request_timeout")))
        return super().create_namespaced_lease(ns, body)

    def patch_namespaced_lease(
        self, name: str, ns: str, patch: dict[str, Any], **kw: Any
    ) -> SimpleNamespace:
        self.timeouts.append(("patch", kw.get("_request_timeout")))
        return super().patch_namespaced_lease(name, ns, patch)


def test_every_lease_call_has_a_timeout_within_the_renew_deadline() -> None:
    leases, clock = RecordingLeases(), Clock()
    holder = elector(leases, "holder", clock)
    assert holder.renew_deadline < holder.lease_seconds
    assert holder.try_acquire()  # create
    assert holder.try_acquire(deadline=clock.now + 4)  # read + patch, cut to the deadline
    holder.release()  # patch
    calls = [call for call, _ in leases.timeouts]
    assert calls == ["read", "create", "read", "patch", "patch"]
    assert all(t is not None and 0 < t <= holder.request_timeout for _, t in leases.timeouts)
    assert [t for _, t in leases.timeouts[2:4]] == [4, 4]
