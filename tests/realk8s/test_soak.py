"""Soak on the real control plane: many resources, injected faults and operator kills.

The operator runs as its own process with its ServiceAccount's token, talking to the real API
server through the fault proxy (``faultproxy.py``: a fake for fault injection only, every
request it lets through is the real server's): a seeded 5 % of its requests answered 429
(``Retry-After``), 500 or 409, dropped before or after the server saw them, or delayed; a fifth
of its watches cut after 0.2–3 s and a tenth of the resumed ones answered 410 (every kind at
least once). It is SIGKILLed at seeded random moments and restarted. The workers are the real
worker run by the node agent, talking to the API server directly with their pods' tokens.

Then: one Job created per resource, ever (the API server's audit log: ``create jobs`` answered
201), none lost, none stuck, every resource ``Succeeded`` with ``status.segments`` equal to the
``manifest.json`` its worker published on the claim (and every clip there with its checksum), and
a resource created after everything still runs (no queue slot leaked). Figures in
docs/testing.md; ``SOAK_RESOURCES`` changes the count (default 100).
"""

from __future__ import annotations

import collections
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

import pytest

from tests.httpserver import MediaServer
from tests.realk8s import cluster as cp
from tests.realk8s.conftest import OperatorProcess, RealCluster
from tests.realk8s.test_server_rules import GROUP, PLURAL, VERSION, vpj
from videojobs_worker.publish import sha256_file

pytestmark = [pytest.mark.soak, pytest.mark.timeout(2400)]

REPO = Path(__file__).resolve().parents[2]
RESOURCES = int(os.environ.get("SOAK_RESOURCES", "100"))
KILLS = 5
SEED = 20261206
RATE = 0.06
"""Of the requests that are not watches (watches have their own rates); 5 % of all is asserted."""
FINAL = {"Succeeded", "Failed", "Cancelled"}


@pytest.fixture
def served(tmp_path: Path) -> Iterator[MediaServer]:
    root = tmp_path / "media"
    root.mkdir()
    shutil.copy(REPO / "examples" / "media" / "sample.mp4", root / "sample.mp4")
    with MediaServer(root) as server:
        yield server


class FaultProxy:
    """``python -m tests.realk8s.faultproxy`` in front of the cluster's API server."""

    def __init__(self, real: RealCluster, folder: Path, rate: float = RATE, *more: str) -> None:
        plane = real.plane
        assert plane.pki is not None
        cert, key = plane.pki.issue("faultproxy", "faultproxy", server=True)
        self.port = cp.free_port()
        self.stats_file = folder / "faultproxy.json"
        self.log = folder / "faultproxy.log"
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "tests.realk8s.faultproxy",
                    f"--upstream={plane.server}",
                    f"--ca={plane.pki.ca_file}",
                    f"--cert={cert}",
                    f"--key={key}",
                    f"--port={self.port}",
                    f"--rate={rate}",
                    f"--seed={SEED}",
                    f"--stats={self.stats_file}",
                    *more,
                ],
                cwd=REPO,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        deadline = time.monotonic() + 30
        while not self.stats_file.exists():
            assert self.proc.poll() is None, self.log.read_text()[-2000:]
            assert time.monotonic() < deadline, "the fault proxy did not start"
            time.sleep(0.1)

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.port}"

    def hang(self) -> None:
        """From now on accept every request and never answer it (``faultproxy.py``)."""
        self.proc.send_signal(signal.SIGUSR1)

    def stats(self) -> dict[str, dict[str, int]]:
        return dict(json.loads(self.stats_file.read_text()))

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(timeout=10)


def spec(url: str, name: str) -> dict[str, Any]:
    return {
        "source": {"url": url},
        "segments": [
            {"knowledgeId": "a", "title": "First", "start": "0", "end": "4"},
            {"knowledgeId": "b", "title": "Second", "start": "4", "end": "9"},
        ],
        "output": {
            "formats": ["mp4"],
            "precision": "copy",
            "storage": {"pvc": {"claimName": "clips", "path": name}},
        },
    }


def differs_from_manifest(status: dict[str, Any], folder: Path) -> str | None:
    """Why a finished resource's status is not what its worker published (None when it is)."""
    uri = status.get("manifestUri")
    if not uri:
        return "no manifestUri"
    path = folder / Path(unquote(urlsplit(uri).path)).name
    if not path.is_file():
        return f"{path} missing"
    manifest = json.loads(path.read_text())
    segments = status.get("segments") or []
    if len(segments) != len(manifest["segments"]) or not segments:
        return f"{len(segments)} segments in status, {len(manifest['segments'])} in the manifest"
    if status.get("segmentsSummary") != f"{len(segments)}/{len(segments)}":
        return f"segmentsSummary {status.get('segmentsSummary')}"
    for got, published in zip(segments, manifest["segments"], strict=True):
        shared = set(got) & set(published)
        if {k: got[k] for k in shared} != {k: published[k] for k in shared}:
            return f"segment {got.get('index')} differs: {got} vs {published}"
        for f in published["files"]:
            clip = folder / Path(unquote(urlsplit(f["uri"]).path)).name
            if not clip.is_file() or sha256_file(clip) != f["sha256"]:
                return f"{f['uri']} missing or not as recorded"
    return None


def test_soak_real_server_faults_and_kills(
    real_cluster: RealCluster,
    ns: str,
    operator: OperatorProcess,
    served: MediaServer,
    tmp_path: Path,
) -> None:
    k8s = real_cluster.k8s
    rng = random.Random(SEED)
    folder = real_cluster.claim(ns, "clips", "10Gi")
    proxy = FaultProxy(real_cluster, tmp_path)
    # the operator's own kubeconfig (its ServiceAccount's token), its server the proxy's
    direct = operator.kubeconfig
    via_proxy = tmp_path / "kubeconfig-proxy"
    via_proxy.write_text(direct.read_text().replace(real_cluster.server, proxy.url))
    env = {"KUBECONFIG": str(via_proxy), "VIDEOJOBS_MAX_RUNNING_JOBS": "8"}
    url = served.url("sample.mp4")
    names = [f"soak-{i:03d}" for i in range(RESOURCES)]
    kills = 0
    started = time.monotonic()

    def restart() -> None:
        nonlocal kills
        assert operator.proc is not None
        operator.proc.kill()
        operator.proc.wait()
        kills += 1
        operator.start(**env)

    crashes: list[int | None] = []

    def supervise() -> None:
        """An operator that exited on its own is started again (as its Deployment's pod would
        be), and counted: the soak wants none."""
        assert operator.proc is not None
        if operator.proc.poll() is not None:
            crashes.append(operator.proc.returncode)
            operator.start(**env)

    def phases() -> dict[str, str | None]:
        listed = k8s.custom.list_namespaced_custom_object(GROUP, VERSION, ns, PLURAL)
        return {
            o["metadata"]["name"]: (o.get("status") or {}).get("phase") for o in listed["items"]
        }

    try:
        operator.start(**env)
        step = max(1, RESOURCES // 10)
        for batch in range(0, RESOURCES, step):
            for name in names[batch : batch + step]:
                k8s.custom.create_namespaced_custom_object(
                    GROUP, VERSION, ns, PLURAL, vpj(ns, name, spec(url, name))
                )
            if kills < KILLS and batch % (2 * step) == 0:
                time.sleep(rng.uniform(1.0, 6.0))
                supervise()
                restart()
        while kills < KILLS:  # the rest while the runs are going
            time.sleep(rng.uniform(2.0, 8.0))
            supervise()
            restart()
        # more kills while work remains, at seeded moments
        deadline = time.monotonic() + 1800
        while time.monotonic() < deadline:
            pending = [n for n, p in phases().items() if p not in FINAL]
            if not pending:
                break
            if rng.random() < 0.1 and kills < 2 * KILLS:
                restart()
            supervise()
            time.sleep(2)
        stuck = sorted(n for n, p in phases().items() if p not in FINAL)
        # a queue slot leaked would hold a new resource back: one more must run to the end
        k8s.custom.create_namespaced_custom_object(
            GROUP, VERSION, ns, PLURAL, vpj(ns, "soak-last", spec(url, "soak-last"))
        )
        k8s.wait(
            "soak-last finished",
            lambda: (k8s.vpj(ns, "soak-last").get("status") or {}).get("phase") in FINAL,
            300,
            interval=1,
        )
    finally:
        operator.stop()
        proxy.stop()
    elapsed = time.monotonic() - started

    everything = [*names, "soak-last"]
    statuses = {n: k8s.vpj(ns, n).get("status") or {} for n in everything}
    created = [
        e["objectRef"]["name"]
        for e in real_cluster.plane.audit("system:serviceaccount:videojobs-system:")
        if e["verb"] == "create"
        and e["objectRef"]["resource"] == "jobs"
        and e["objectRef"].get("namespace") == ns
        and (e.get("responseStatus") or {}).get("code") == 201
    ]
    per_job = collections.Counter(created)
    job_names = {n: s.get("jobName") for n, s in statuses.items()}
    duplicates = len(created) - len(set(created)) + len(set(created) - set(job_names.values()))
    lost = sorted(n for n, j in job_names.items() if not j or per_job[j] == 0)
    phase_count = collections.Counter(s.get("phase") for s in statuses.values())
    not_as_published = {
        n: why
        for n in everything
        if (why := differs_from_manifest(statuses[n], folder / n)) is not None
    }
    stats = proxy.stats()
    requests = sum(stats["requests"].values())
    injected = sum(stats["injected"].values())
    figures = {
        "resources": len(everything),
        "seconds": round(elapsed, 1),
        "proxied requests": requests,
        "by kind": stats["requests"],
        "faults": stats["injected"],
        "fault share": round(injected / max(1, requests), 3),
        "kills": kills,
        "operator exits (not killed)": len(crashes),
        "jobs created": len(created),
        "duplicates": duplicates,
        "stuck": len(stuck),
        "lost": len(lost),
        "phases": dict(phase_count),
        "status not as the manifest": len(not_as_published),
    }
    print("SOAK", json.dumps(figures))
    assert kills >= KILLS, figures
    assert crashes == [], (figures, operator.log.read_text()[-3000:])
    missing = [
        k
        for k in ("429", "500", "409", "cut", "410", "drop", "delay")
        if k not in stats["injected"]
    ]
    assert not missing, (figures, missing)
    assert injected / requests >= 0.05, figures
    assert stuck == [], (figures, stuck)
    assert duplicates == 0, (figures, per_job.most_common(3))
    assert lost == [], (figures, lost[:5])
    assert phase_count == {"Succeeded": len(everything)}, (
        figures,
        {n: s.get("message") for n, s in statuses.items() if s.get("phase") != "Succeeded"},
    )
    assert not_as_published == {}, (figures, list(not_as_published.items())[:3])
