"""A standby operator's probes: alive, and ready only while it reaches the API server (issue 25:
with one replica and no API server, the Deployment looked Ready with no operator working)."""

from __future__ import annotations

import contextlib
import socket
import threading
import urllib.error
import urllib.request

import kubernetes

from tests.operatorunit.test_leader_election import FakeLeases, LeaseServer
from videojobs_operator.__main__ import standby_probes
from videojobs_operator.leader import LeaseElector


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _get(url: str) -> int:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return int(response.status)
    except urllib.error.HTTPError as exc:
        return exc.code


def _elector(port: int) -> LeaseElector:
    config = kubernetes.client.Configuration()
    config.host = f"http://127.0.0.1:{port}"
    return LeaseElector(
        kubernetes.client.ApiClient(config), "ops", "standby", request_timeout=2, renew_seconds=0.1
    )


def test_standby_readyz_follows_the_api_servers_reachability() -> None:
    down = _free_port()  # nothing listens here
    elector = _elector(down)
    live, ready = _free_port(), _free_port()
    urls = [f"http://127.0.0.1:{live}/healthz", f"http://127.0.0.1:{ready}/readyz"]
    with standby_probes(urls, lambda: elector.api_reachable):
        with contextlib.suppress(Exception):
            elector.try_acquire()  # connection refused
        assert not elector.api_reachable
        assert _get(f"http://127.0.0.1:{live}/healthz") == 200, "alive: no restart loop"
        assert _get(f"http://127.0.0.1:{ready}/readyz") == 503
        assert _get(f"http://127.0.0.1:{ready}/metrics") == 200

        server = LeaseServer(FakeLeases())
        threading.Thread(target=server.serve_forever, daemon=True).start()
        try:
            elector.leases = _elector(server.server_address[1]).leases
            server.leases.create_namespaced_lease(
                "ops",
                {
                    "metadata": {"name": "videojobs-operator"},
                    "spec": {"holderIdentity": "leader", "leaseDurationSeconds": 15},
                },
            )
            assert not elector.try_acquire(), "someone else leads: stand by"
            assert elector.api_reachable
            assert _get(f"http://127.0.0.1:{ready}/readyz") == 200
        finally:
            server.done.set()
            server.shutdown()
            server.server_close()
