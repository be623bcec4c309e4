"""Gateway status reads under wrk: the cluster backend (watch-fed cache) next to the local one.

Both gateways run as their own processes (``videojobs-gateway`` over the strict emulator as the
gateway ServiceAccount with the chart's RBAC, and ``videojobs serve``), with the rate limit off;
``wrk`` (Debian's) hammers ``GET /api/v1/videos/status/<id>`` on loopback, alternating the two,
``--runs`` times each; the minimum p99 and the maximum throughput are reported, with the
emulator's request count during the cluster runs (0: no API request per read).

    python benchmarks/bench_gateway.py [--runs 3] [--seconds 10] [--connections 4] [--write]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

import kmock  # noqa: E402

from benchmarks._common import write_section  # noqa: E402
from tests.gateway.cluster import GATEWAY_SA, chart_rbac, gateway_values  # noqa: E402
from tests.gateway.live import free_port  # noqa: E402
from tests.mockapi.emulator import Emulator, token  # noqa: E402

NS = "bench"
VPJS = f"/apis/videojobs.io/v1alpha1/namespaces/{NS}/videoprocessingjobs"
SPEC = {
    "source": {"url": "https://example.com/lecture.mp4"},
    "segments": [{"title": "Intro", "start": 0, "end": 2}],
    "output": {"storage": {"pvc": {"claimName": "clips", "path": "x"}}},
}


def wait_http(url: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=2) as r:
                if r.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.2)
    raise SystemExit(f"{url} did not answer")


def wrk(url: str, seconds: int, connections: int) -> dict[str, float]:
    out = subprocess.run(
        ["wrk", "-t2", f"-c{connections}", f"-d{seconds}s", "--latency", url],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    p99 = re.search(r"99%\s+([\d.]+)(us|ms|s)", out)
    assert p99 is not None, out
    scale = {"us": 0.001, "ms": 1.0, "s": 1000.0}[p99.group(2)]
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    return {
        "rps": rps,
        "p99_ms": float(p99.group(1)) * scale,
        "non2xx": float(non2xx.group(1)) if non2xx else 0.0,
    }


class EmulatorThread:
    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.emulator: Emulator | None = None
        self.url = ""

    def run(self, coro: Any) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(120)

    def start(self, jobs: int) -> None:
        self.thread.start()
        self.run(self._start(jobs))

    async def _start(self, jobs: int) -> None:
        import aiohttp

        self.emulator = Emulator()
        await self.emulator.__aenter__()
        self.server = kmock.Server(self.emulator)
        await self.server.__aenter__()
        self.emulator.rbac_source = chart_rbac(gateway_values("none"))
        self.url = str(self.server.url).rstrip("/")
        async with aiohttp.ClientSession(self.url) as s:
            for i in range(jobs):
                meta = {"name": f"job-{i:03d}", "namespace": NS}
                body = {"apiVersion": "videojobs.io/v1alpha1", "kind": "VideoProcessingJob",
                        "metadata": meta, "spec": SPEC}  # fmt: skip
                async with s.post(VPJS, json=body) as r:
                    r.raise_for_status()
                progress = {"stage": "Cutting", "percent": 40, "segmentsDone": 0,
                            "segmentsTotal": 1}  # fmt: skip
                status = {"status": {"phase": "Running", "stage": "Cutting", "progress": progress}}
                merge = {"Content-Type": "application/merge-patch+json"}
                path = f"{VPJS}/job-{i:03d}/status"
                async with s.patch(path, json=status, headers=merge) as r:
                    r.raise_for_status()


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--connections", type=int, default=4)
    parser.add_argument("--jobs", type=int, default=200)
    parser.add_argument("--write", action="store_true")
    args = parser.parse_args()

    tmp = Path(tempfile.mkdtemp(prefix="bench-gateway-"))
    emu = EmulatorThread()
    emu.start(args.jobs)
    assert emu.emulator is not None
    kubeconfig = tmp / "kubeconfig"
    kubeconfig.write_text(
        "apiVersion: v1\nkind: Config\ncurrent-context: kmock\n"
        f"clusters:\n- name: kmock\n  cluster:\n    server: {emu.url}\n"
        f"users:\n- name: gw\n  user:\n    token: {token(GATEWAY_SA)}\n"
        "contexts:\n- name: kmock\n  context:\n    cluster: kmock\n    user: gw\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("VIDEOJOBS_")}
    env.update(VIDEOJOBS_GATEWAY_RATE_PER_SECOND="0", VIDEOJOBS_GATEWAY_NAMESPACE=NS)
    cport, lport = free_port(), free_port()
    cluster = subprocess.Popen(
        [sys.executable, "-m", "videojobs_gateway", "--log-level", "info"],
        stderr=subprocess.DEVNULL,
        env={**env, "KUBECONFIG": str(kubeconfig), "VIDEOJOBS_GATEWAY_PORT": str(cport),
             "VIDEOJOBS_GATEWAY_HOST": "127.0.0.1", "VIDEOJOBS_GATEWAY_NAMESPACES": f'["{NS}"]'},
    )  # fmt: skip
    local = subprocess.Popen(
        [sys.executable, "-m", "videojobs.cli", "serve", "--data", str(tmp / "data"),
         "--port", str(lport)],
        env=env, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        wait_http(f"http://127.0.0.1:{cport}/readyz")
        wait_http(f"http://127.0.0.1:{lport}/healthz")
        spec = {"spec": {**SPEC, "source": {"url": "http://127.0.0.1:9/never.mp4"}}}
        req = urllib.request.Request(
            f"http://127.0.0.1:{lport}/api/v1/videos/process",
            data=json.dumps(spec).encode(), headers={"Content-Type": "application/json"},
        )  # fmt: skip
        with urllib.request.urlopen(req) as r:
            local_id = json.load(r)["job_id"]
        urls = {
            "cluster": f"http://127.0.0.1:{cport}/api/v1/videos/status/job-100",
            "local": f"http://127.0.0.1:{lport}/api/v1/videos/status/{local_id}",
        }
        results: dict[str, list[dict[str, float]]] = {"cluster": [], "local": []}
        api_requests: list[int] = []
        for _ in range(args.runs):
            for name in ("local", "cluster"):
                before = emu.emulator.requests_total
                res = wrk(urls[name], args.seconds, args.connections)
                if name == "cluster":
                    api_requests.append(emu.emulator.requests_total - before)
                results[name].append(res)
                print(name, res, file=sys.stderr)
        load = os.getloadavg()
    finally:
        for proc in (cluster, local):
            proc.terminate()
            proc.wait(30)

    def best(name: str) -> tuple[float, float]:
        runs = results[name]
        return max(r["rps"] for r in runs), min(r["p99_ms"] for r in runs)

    c_rps, c_p99 = best("cluster")
    l_rps, l_p99 = best("local")
    non2xx = sum(r["non2xx"] for rs in results.values() for r in rs)
    body = f"""## Gateway: status reads (`benchmarks/bench_gateway.py`)

`wrk -t2 -c{args.connections} -d{args.seconds}s --latency` on `GET /api/v1/videos/status/<id>`
over loopback, {args.runs} runs of each gateway alternating, best run reported (max req/s, min
p99). Cluster: `videojobs-gateway` over the strict emulator ({args.jobs} VideoProcessingJobs,
watch-fed cache); local: `videojobs serve` (SQLite, in-memory mirror). Rate limit off; both
log every request at level info (to /dev/null). The
machine was shared and loaded: load average {load[0]:.2f} / {load[1]:.2f} / {load[2]:.2f} (1/5/15
min) when the runs ended.

| backend | req/s | p99 | API-server requests during the runs |
|---|---:|---:|---:|
| cluster | {c_rps:,.0f} | {c_p99:.1f} ms | {sum(api_requests)} |
| local | {l_rps:,.0f} | {l_p99:.1f} ms | – |
| cluster / local | {c_rps / l_rps:.2f} | {c_p99 / l_p99:.2f} | |

Non-2xx answers: {non2xx:.0f}. Every run: {
        "; ".join(
            f"{n} {r['rps']:,.0f} req/s p99 {r['p99_ms']:.1f} ms"
            for n in ("cluster", "local")
            for r in results[n]
        )
    }.
"""
    print(body)
    if args.write:
        write_section("gateway", body)
    return 0


if __name__ == "__main__":
    sys.exit(main())
