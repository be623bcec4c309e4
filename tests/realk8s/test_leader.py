"""Leader election on the real control plane (moved from ``tests/mockapi/test_entrypoint.py``):
operator processes with ``VIDEOJOBS_LEADER_ELECTION=true``, each with its ServiceAccount's token,
one ``coordination.k8s.io/v1`` Lease in the test's namespace, the real server's
``resourceVersion`` preconditions and RBAC. The old leader's API connection is made to hang by
the fault proxy (``faultproxy.py``, on ``SIGUSR1``: requests accepted, never answered)."""

from __future__ import annotations

import json
import socket
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client

from tests.realk8s.conftest import OPERATOR_NS, OPERATOR_SA, OperatorProcess, RealCluster
from tests.realk8s.scripted import SCRIPTED_IMAGE, Attempt, Cues
from tests.realk8s.test_failures import FINAL, create, wait_phase
from tests.realk8s.test_soak import FaultProxy


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=5) as resp:
            return int(resp.status), resp.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()
    except OSError:
        return 0, ""


def leases(real: RealCluster, ns: str) -> list[Any]:
    return list(client.CoordinationV1Api(real.k8s.api).list_namespaced_lease(ns).items)


def holders(real: RealCluster, ns: str) -> list[str | None]:
    """The pod names in the holder identities (``<pod>_<12 hex>``) of the Leases in ``ns``."""
    found: list[str | None] = []
    for lease in leases(real, ns):
        identity = lease.spec.holder_identity
        if identity is None:
            found.append(None)
            continue
        pod, _, suffix = identity.rpartition("_")
        assert len(suffix) == 12 and int(suffix, 16) >= 0, identity
        found.append(pod)
    return found


class Elected(OperatorProcess):
    """An operator process with leader election, its Lease in the test's namespace."""

    def __init__(self, real: RealCluster, ns: str, folder: Path, pod: str) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        super().__init__(real, ns, folder)
        self.pod = pod
        self.metrics_port, self.live_port = free_port(), free_port()

    def elect(self, **env: str) -> None:
        self.start(
            POD_NAME=self.pod,
            VIDEOJOBS_LEADER_ELECTION="true",
            VIDEOJOBS_LEADER_ELECTION_NAMESPACE=self.ns,
            VIDEOJOBS_METRICS_PORT=str(self.metrics_port),
            VIDEOJOBS_WORKER_IMAGE=SCRIPTED_IMAGE,
            **env,
        )


@pytest.fixture
def elected(real_cluster: RealCluster, ns: str, tmp_path: Path) -> Iterator[dict[str, Elected]]:
    """Two operator processes (not started) whose Lease lives in the test's namespace, with the
    chart's Role of ``rbac.LEADER_ELECTION_RULES`` there (the chart's is in its own namespace)."""
    from videojobs_operator import rbac

    k8s = real_cluster.k8s
    k8s.rbac.create_namespaced_role(
        ns, {"metadata": {"name": "leader"}, "rules": rbac.LEADER_ELECTION_RULES}
    )
    k8s.rbac.create_namespaced_role_binding(
        ns,
        {
            "metadata": {"name": "leader"},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "leader"},
            "subjects": [{"kind": "ServiceAccount", "name": OPERATOR_SA, "namespace": OPERATOR_NS}],
        },
    )
    procs = {name: Elected(real_cluster, ns, tmp_path / name, f"operator-{name}") for name in "ab"}
    yield procs
    for proc in procs.values():
        proc.stop()


def test_a_hanging_api_connection_stops_the_old_leader_before_a_new_one_starts(
    real_cluster: RealCluster, ns: str, elected: dict[str, Elected], tmp_path: Path
) -> None:
    """Issue 28: operator a talks to the API server through the fault proxy, b directly. a
    leads; then every request of a's (and its open watches) hangs: a gives the lead up and its
    process ends (exit 1) before b's ``acquireTime``; b then runs a job to ``Succeeded``."""
    k8s = real_cluster.k8s
    real_cluster.claim(ns, "clips")
    a, b = elected["a"], elected["b"]
    proxy = FaultProxy(real_cluster, tmp_path, 0.0, "--no-guarantee")
    try:
        via_proxy = tmp_path / "kubeconfig-proxy"
        via_proxy.write_text(a.kubeconfig.read_text().replace(real_cluster.server, proxy.url))
        a.elect(KUBECONFIG=str(via_proxy))
        k8s.wait("a holds the Lease", lambda: holders(real_cluster, ns) == ["operator-a"], 60)
        b.elect()
        # b stands by: ready once its first look at the Lease got an answer
        readyz_b = f"http://127.0.0.1:{b.metrics_port}/readyz"
        k8s.wait("b ready as a standby", lambda: get(readyz_b) == (200, "standby\n"), 60)
        time.sleep(2)
        assert holders(real_cluster, ns) == ["operator-a"]
        proxy.hang()
        hung = time.time()
        a_ended: float | None = None
        b_leads = False
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not (a_ended and b_leads):
            assert a.proc is not None
            if a_ended is None and a.proc.poll() is not None:
                a_ended = time.time()
            b_leads = b_leads or holders(real_cluster, ns) == ["operator-b"]
            time.sleep(0.05)
        assert a_ended is not None, "the old leader is still running"
        assert b_leads, "b never took the Lease over"
        (lease,) = leases(real_cluster, ns)
        acquired = lease.spec.acquire_time
        # a's end as observed here (at most 50 ms after it happened) came before b took over
        assert a_ended < acquired.timestamp(), (a_ended - hung, acquired.timestamp() - hung)
        assert a.proc is not None and a.proc.returncode == 1
        assert "lost it; stopping" in a.log.read_text()
        assert lease.spec.lease_transitions >= 1
        assert proxy.stats()["requests"].get("hung", 0) >= 1
        with Cues(lambda _n, _i, _a: Attempt()).serving() as cues:
            create(
                real_cluster,
                ns,
                "handover",
                {
                    "source": {"url": cues.url("handover")},
                    "segments": [{"title": "First", "start": "0", "end": "4"}],
                    "output": {"formats": ["mp4"], "storage": {"pvc": {"claimName": "clips"}}},
                },
            )
            status = wait_phase(real_cluster, ns, "handover", FINAL)
        assert status["phase"] == "Succeeded", json.dumps(status)[:2000]
    finally:
        proxy.stop()
    print(f"LEADER a ended {a_ended - hung:.2f}s, b acquired {acquired.timestamp() - hung:.2f}s")


def test_the_leader_serves_metrics_and_releases_the_lease_on_sigterm(
    real_cluster: RealCluster, ns: str, elected: dict[str, Elected]
) -> None:
    """The entry point with leader election: one holder, a run to ``Succeeded``, its metrics;
    SIGTERM ends it with 0 and releases the Lease, and the standby takes over at once."""
    real_cluster.claim(ns, "clips")
    a, b = elected["a"], elected["b"]
    a.elect(VIDEOJOBS_LOG_FORMAT="json")
    real_cluster.k8s.wait(
        "a holds the Lease", lambda: holders(real_cluster, ns) == ["operator-a"], 60
    )
    b.elect()
    with Cues(lambda _n, _i, _a: Attempt()).serving() as cues:
        spec = {
            "source": {"url": cues.url("viaentry")},
            "segments": [{"title": "First", "start": "0", "end": "4"}],
            "output": {"formats": ["mp4"], "storage": {"pvc": {"claimName": "clips"}}},
        }
        create(real_cluster, ns, "viaentry", spec)
        assert wait_phase(real_cluster, ns, "viaentry", FINAL)["phase"] == "Succeeded"
        metrics = f"http://127.0.0.1:{a.metrics_port}/metrics"
        text = real_cluster.k8s.wait(
            "the completion counted",
            lambda: "videojobs_completions_total 1.0" in (t := get(metrics)[1]) and t,
            10,
        )
        assert 'videojobs_jobs{phase="Succeeded"} 1.0' in text
        assert 'videojobs_api_writes_total{resource="jobs",verb="create"} 1.0' in text
        assert get(f"http://127.0.0.1:{a.metrics_port}/readyz")[0] == 200
        # b stands by: ready once its first look at the Lease got an answer
        standby = (200, "standby\n")
        readyz_b = f"http://127.0.0.1:{b.metrics_port}/readyz"
        real_cluster.k8s.wait("b ready as a standby", lambda: get(readyz_b) == standby, 60)
        assert a.proc is not None
        released = time.monotonic()
        a.stop()
        assert a.proc.returncode == 0, a.log.read_text()[-3000:]
        # released: b takes over at once, not a lease duration (15 s) later
        real_cluster.k8s.wait(
            "b holds the Lease", lambda: holders(real_cluster, ns) == ["operator-b"], 10
        )
        assert time.monotonic() - released < 10
        create(real_cluster, ns, "handover", {**spec, "source": {"url": cues.url("handover")}})
        assert wait_phase(real_cluster, ns, "handover", FINAL)["phase"] == "Succeeded"
    assert '"k8s": {"namespace": "' + ns + '", "name": "viaentry"' in a.log.read_text()


def test_the_lease_has_one_holder_until_released(real_cluster: RealCluster, ns: str) -> None:
    """Two electors on the real Lease API: the second cannot take a live Lease, the first
    renews it, a release frees it at once for the second (and then not for the first)."""
    from videojobs_operator.leader import LeaseElector

    api = real_cluster.k8s.api
    first = LeaseElector(api, ns, "first", lease_seconds=60)
    second = LeaseElector(api, ns, "second", lease_seconds=60)
    steps = [first.try_acquire(), second.try_acquire(), first.try_acquire()]
    first.release()
    steps += [second.try_acquire(), first.try_acquire()]
    assert steps == [True, False, True, True, False]
    (lease,) = leases(real_cluster, ns)
    assert lease.spec.holder_identity == "second"
    assert lease.spec.lease_transitions == 1
