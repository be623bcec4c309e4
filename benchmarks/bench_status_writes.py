"""Status writes of sharded runs into the real API server and etcd: 20 runs x 16 shards (issue 28).

One real control plane (``tests/realk8s/cluster.py``: etcd, kube-apiserver, controller manager,
scheduler; no node, so the Jobs' pods stay Pending and no worker runs). For each mode, a fresh
namespace and the operator as its own process (``python -m videojobs_operator``, its
ServiceAccount's token and the ClusterRole of ``rbac.py``) with ``maxRunningPods`` 0 (all 320
shards at once) and the mode's settings:

- ``old``: ``progressShardsPerInterval=0`` (every shard reports every ``progressIntervalSeconds``)
  and ``summedProgressIntervalSeconds=0`` (the operator rewrites the summed progress on every
  change): the behaviour before issue 28;
- ``new``: the defaults (4 shards' reports per interval per run, the sum at most every 10 s).

20 VideoProcessingJobs of ``parallelism: 16`` with a ~100 KB spec each are created; once every
run's Indexed Job exists, 320 simulated shards report as the worker does: each reads the interval
the operator gave its run (``progressIntervalSeconds`` of the run's input ConfigMap) and patches
its own ``status.shardProgress.<index>`` once per interval (first report at a random offset within
it), with rising percent and clip counts, for ``--seconds`` (a worker patches at most once per
interval, and a shard that is cutting has new progress every interval). The counts are deltas of
the servers' own metrics over that window: ``apiserver_request_total`` (writes to
``videoprocessingjobs`` and its ``status``), ``apiserver_watch_events_sizes`` (bytes of watch
events sent for ``videoprocessingjobs``), etcd's ``etcd_mvcc_put_total`` and
``etcd_network_client_grpc_received_bytes_total`` (bytes the API server sent etcd: every write
stores the whole object).

    python benchmarks/bench_status_writes.py [--seconds 120] [--runs 20] [--shards 16]
        [--modes old,new] [--no-write]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import random
import re
import shutil
import ssl
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

import aiohttp
import yaml

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "benchmarks"))

from _common import write_section  # noqa: E402

from tests.realk8s import cluster as cp  # noqa: E402
from tests.realk8s.conftest import K8s, OperatorProcess, RealCluster  # noqa: E402

MODES = {
    "old": {
        "VIDEOJOBS_PROGRESS_SHARDS_PER_INTERVAL": "0",
        "VIDEOJOBS_SUMMED_PROGRESS_INTERVAL_SECONDS": "0",
    },
    "new": {},
}
GROUP, VERSION, PLURAL = "videojobs.io", "v1alpha1", "videoprocessingjobs"


def big_spec(shards: int, description: int = 1400) -> dict[str, Any]:
    """A CRD-valid spec of about 100 KB: 64 clips with 1.4 KB descriptions (by default)."""
    return {
        "source": {"url": "http://127.0.0.1:9/lecture.mp4"},
        "parallelism": shards,
        "segments": [
            {
                "title": f"Clip {i}",
                "description": "d" * description,
                "start": str(i * 10),
                "end": str(i * 10 + 9),
            }
            for i in range(64)
        ],
        "output": {"storage": {"pvc": {"claimName": "clips"}}},
    }


def metrics(url: str, ctx: ssl.SSLContext | None) -> dict[str, float]:
    """A Prometheus text exposition as {series: value} (counters and histogram sums)."""
    with urllib.request.urlopen(url, timeout=30, context=ctx) as resp:
        text = resp.read().decode()
    out: dict[str, float] = {}
    for line in text.splitlines():
        if line.startswith("#") or not line.strip():
            continue
        series, _, value = line.rpartition(" ")
        try:
            out[series] = float(value)
        except ValueError:
            continue
    return out


def total(m: dict[str, float], name: str, **labels: str) -> float:
    """The sum of ``name``'s series whose labels include ``labels`` (regular expressions)."""
    found = 0.0
    for series, value in m.items():
        if not (series == name or series.startswith(name + "{")):
            continue
        have = dict(re.findall(r'(\w+)="([^"]*)"', series))
        if all(re.fullmatch(v, have.get(k, "")) for k, v in labels.items()):
            found += value
    return found


class Plane:
    """The control plane's metrics endpoints (admin client certificate for the API server)."""

    def __init__(self, plane: cp.Cluster) -> None:
        assert plane.pki is not None
        self.api_url = f"{plane.server}/metrics"
        self.etcd_url = f"http://127.0.0.1:{plane.ports['etcd']}/metrics"
        self.ctx = ssl.create_default_context(cafile=str(plane.pki.ca_file))
        folder = plane.folder / "pki"
        self.ctx.load_cert_chain(str(folder / "admin.crt"), str(folder / "admin.key"))

    def sample(self) -> dict[str, float]:
        api = metrics(self.api_url, self.ctx)
        etcd = metrics(self.etcd_url, None)
        return {
            "status_writes": total(
                api, "apiserver_request_total", resource=PLURAL, subresource="status",
                verb="PATCH|UPDATE|APPLY",
            ),
            "main_writes": total(
                api, "apiserver_request_total", resource=PLURAL, subresource="",
                verb="PATCH|UPDATE|APPLY",
            ),
            "write_errors": total(
                api, "apiserver_request_total", resource=PLURAL, verb="PATCH|UPDATE|APPLY",
                code="5..",
            ),
            "watch_bytes": total(
                api, "apiserver_watch_events_sizes_sum", resource=f"{PLURAL}.*"
            ),
            "watch_events": total(
                api, "apiserver_watch_events_sizes_count", resource=f"{PLURAL}.*"
            ),
            "etcd_puts": total(etcd, "etcd_mvcc_put_total"),
            "etcd_bytes_in": total(etcd, "etcd_network_client_grpc_received_bytes_total"),
        }  # fmt: skip


async def shard(
    session: aiohttp.ClientSession,
    url: str,
    token: str,
    index: int,
    interval: float,
    until: float,
    sent: list[float],
    tried: list[float],
) -> None:
    """One shard's progress reports: its own entry, once per ``interval`` until ``until``."""
    loop = asyncio.get_running_loop()
    await asyncio.sleep(random.uniform(0, interval))
    done = 0
    while loop.time() < until:
        done = min(done + 1, 4)
        body = {
            "status": {
                "shardProgress": {
                    str(index): {
                        "stage": "Cutting",
                        "percent": min(99, int(100 * (1 - (until - loop.time()) / 600))),
                        "segmentsDone": done,
                        "segmentsTotal": 4,
                        "bytesDone": random.randrange(10**6, 10**9),
                        "updatedAt": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                    }
                }
            }
        }
        headers = {
            "Authorization": f"Bearer {token}",
            "Content-Type": "application/merge-patch+json",
        }
        tried.append(loop.time())
        try:
            async with session.patch(url, data=json.dumps(body), headers=headers) as resp:
                await resp.read()
                if resp.status < 300:
                    sent.append(loop.time())
        except (aiohttp.ClientError, TimeoutError):
            pass  # counted as tried, not sent
        await asyncio.sleep(interval)


def interval_of(k8s: K8s, ns: str, job: str) -> float:
    cm = k8s.core.read_namespaced_config_map(f"{job}-input", ns)
    data = json.loads((cm.data or {})["input.json"])
    return float(data["progressIntervalSeconds"])


def setup_namespace(real: RealCluster, ns: str) -> str:
    """The namespace, a ServiceAccount for the shards (patch status only); its token."""
    k8s = real.k8s
    k8s.core.create_namespace({"metadata": {"name": ns}})
    k8s.core.create_namespaced_service_account(ns, {"metadata": {"name": "shards"}})
    k8s.rbac.create_namespaced_role(
        ns,
        {
            "metadata": {"name": "shards"},
            "rules": [
                {
                    "apiGroups": [GROUP],
                    "resources": [f"{PLURAL}/status"],
                    "verbs": ["patch"],
                }
            ],
        },
    )
    k8s.rbac.create_namespaced_role_binding(
        ns,
        {
            "metadata": {"name": "shards"},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "shards"},
            "subjects": [{"kind": "ServiceAccount", "name": "shards", "namespace": ns}],
        },
    )
    token = k8s.core.create_namespaced_service_account_token(
        "shards", ns, {"spec": {"expirationSeconds": 3600}}
    )
    return str(token.status.token)


def wait_jobs(k8s: K8s, ns: str, runs: int, timeout: float = 300) -> dict[str, str]:
    """{resource: Job name} once every run has its Job and input ConfigMap."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = {}
        for vpj in k8s.custom.list_namespaced_custom_object(GROUP, VERSION, ns, PLURAL)["items"]:
            job = (vpj.get("status") or {}).get("jobName")
            if job:
                found[vpj["metadata"]["name"]] = job
        if len(found) == runs:
            jobs = {j.metadata.name for j in k8s.batch.list_namespaced_job(ns).items}
            cms = {c.metadata.name for c in k8s.core.list_namespaced_config_map(ns).items}
            if all(j in jobs and f"{j}-input" in cms for j in found.values()):
                return found
        time.sleep(1)
    raise SystemExit(f"{ns}: not every run got its Job in {timeout:.0f} s")


def run_mode(
    real: RealCluster,
    plane: Plane,
    mode: str,
    runs: int,
    shards: int,
    seconds: float,
    description: int = 1400,
) -> dict[str, Any]:
    ns = f"bench-{mode}-{random.randrange(16**4):04x}"
    token = setup_namespace(real, ns)
    folder = real.plane.folder / mode
    folder.mkdir(exist_ok=True)
    op = OperatorProcess(real, ns, folder)
    op.start(
        VIDEOJOBS_PROGRESS_INTERVAL_SECONDS="5",
        VIDEOJOBS_MAX_RUNNING_PODS="0",
        VIDEOJOBS_MAX_RUNNING_JOBS=str(runs),
        VIDEOJOBS_LOG_LEVEL="WARNING",
        **MODES[mode],
    )
    try:
        spec = big_spec(shards, description)
        for i in range(runs):
            real.k8s.custom.create_namespaced_custom_object(
                GROUP, VERSION, ns, PLURAL,
                {"apiVersion": f"{GROUP}/{VERSION}", "kind": "VideoProcessingJob",
                 "metadata": {"name": f"lecture-{i:02d}"}, "spec": spec},
            )  # fmt: skip
        jobs = wait_jobs(real.k8s, ns, runs)
        intervals = {name: interval_of(real.k8s, ns, job) for name, job in jobs.items()}
        time.sleep(5)  # the operator's start-up writes settle
        size = len(json.dumps(real.k8s.vpj(ns, "lecture-00")))
        before = plane.sample()
        started = time.monotonic()
        sent, tried = asyncio.run(report(real, ns, token, intervals, shards, seconds))
        elapsed = time.monotonic() - started
        after = plane.sample()
    finally:
        op.stop()
    delta = {k: after[k] - before[k] for k in after}
    return {
        "mode": mode,
        "runs": runs,
        "shards": shards,
        "interval": sorted(set(intervals.values())),
        "object_bytes": size,
        "seconds": elapsed,
        "shard_patches": sent,
        "shard_tries": tried,
        **delta,
    }


async def report(
    real: RealCluster,
    ns: str,
    token: str,
    intervals: dict[str, float],
    shards: int,
    seconds: float,
) -> tuple[int, int]:
    assert real.plane.pki is not None
    ctx = ssl.create_default_context(cafile=str(real.plane.pki.ca_file))
    sent: list[float] = []
    tried: list[float] = []
    base = f"{real.server}/apis/{GROUP}/{VERSION}/namespaces/{ns}/{PLURAL}"
    connector = aiohttp.TCPConnector(ssl=ctx, limit=64)
    async with aiohttp.ClientSession(connector=connector) as session:
        until = asyncio.get_running_loop().time() + seconds
        await asyncio.gather(
            *(
                shard(session, f"{base}/{name}/status", token, i, interval, until, sent, tried)
                for name, interval in intervals.items()
                for i in range(shards)
            )
        )
    return len(sent), len(tried)


def render(results: list[dict[str, Any]], seconds: float, load: str) -> str:
    rows = []
    for r in results:
        s = r["seconds"]
        writes = r["status_writes"] + r["main_writes"]
        operator = max(0.0, writes - r["shard_tries"])
        rows.append(
            f"| `{r['mode']}` | {', '.join(f'{i:g}' for i in r['interval'])} s "
            f"| {r['shard_tries'] / s:.1f} | {r['shard_patches'] / s:.1f} | {operator / s:.1f} "
            f"| **{writes / s:.1f}** | {writes / s / r['runs']:.2f} "
            f"| {r['write_errors'] / s:.2f} | {r['etcd_puts'] / s:.1f} "
            f"| **{r['etcd_bytes_in'] / s / 1e6:.2f} MB/s** "
            f"| {r['watch_bytes'] / s / 1e6:.2f} MB/s ({r['watch_events'] / s:.0f} events/s) |"
        )
    first = results[0]
    pods = first["runs"] * first["shards"]
    head = [
        f"Measured {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())} by",
        f"`python benchmarks/bench_status_writes.py` on {os.cpu_count()} CPUs",
        f"({platform.machine()}), Kubernetes {cp.version()} (etcd 3.6),",
        f"Python {platform.python_version()}; 1-minute load average {load} before the run",
        "(the machine is shared).",
    ]
    setup = [
        f"Setup: {first['runs']} VideoProcessingJobs of `parallelism: {first['shards']}`,",
        f"each object {first['object_bytes'] / 1000:.0f} KB (64 clips with descriptions),",
        "in one namespace; the operator as a process (its ServiceAccount, the ClusterRole of",
        f"`rbac.py`, `maxRunningPods: 0` so all {pods} shards run at once,",
        "`progressIntervalSeconds: 5`); the shards simulated (no node: the pods stay Pending)",
        f"by {pods} reporters that each patch their own `status.shardProgress.<index>` once",
        "per the interval the operator gave their run (read from the run's input ConfigMap),",
        f"for {seconds:.0f} s. Counts are deltas of the API server's and etcd's own metrics",
        "over that window: `apiserver_request_total` (writes to `videoprocessingjobs` and",
        "`/status`), `etcd_mvcc_put_total`, `etcd_network_client_grpc_received_bytes_total`",
        "(all bytes into etcd; every write stores the whole object) and",
        "`apiserver_watch_events_sizes` (bytes of `videoprocessingjobs` watch events sent,",
        "here to one watcher, the operator; each gateway replica adds as much).",
    ]
    table = [
        "| mode | each shard reports every | shard writes/s sent | shard writes/s answered 2xx "
        "| operator writes/s | all writes/s at the API server | per run | answered 5xx/s "
        "| etcd puts/s | bytes/s into etcd | watch events sent |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
        *rows,
    ]
    tail = (
        "`old`: `progressShardsPerInterval: 0`, `summedProgressIntervalSeconds: 0` (the "
        "behaviour before issue 28); `new`: the defaults (4 and 10 s)."
    )
    return "\n\n".join([" ".join(head), " ".join(setup), "\n".join(table), tail])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=120)
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--shards", type=int, default=16)
    parser.add_argument("--modes", default="old,new")
    parser.add_argument(
        "--description", type=int, default=1400, help="bytes of each clip's description"
    )
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args()
    binaries = cp.find_binaries()
    if binaries is None:
        raise SystemExit("no Kubernetes binaries: run .ci/k8s/build.sh")
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    folder = Path(tempfile.mkdtemp(prefix="videojobs-bench-status-"))
    plane = cp.Cluster(bin=binaries, folder=folder)
    print(f"control plane logs: {folder}/logs", file=sys.stderr)
    try:
        plane.start()
        k8s = K8s(plane.admin_kubeconfig)
        crd = yaml.safe_load((REPO / "crds" / "videoprocessingjobs.yaml").read_text())
        k8s.ext.create_custom_resource_definition(crd)
        time.sleep(3)
        real = RealCluster(plane, k8s, folder / "node", folder / "volumes")
        endpoints = Plane(plane)
        results = []
        for mode in args.modes.split(","):
            result = run_mode(
                real, endpoints, mode, args.runs, args.shards, args.seconds, args.description
            )
            print(json.dumps(result), file=sys.stderr)
            results.append(result)
    finally:
        plane.stop()
    text = render(results, args.seconds, load)
    print(text)
    if not args.no_write:
        write_section("status-writes", text)
    shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
