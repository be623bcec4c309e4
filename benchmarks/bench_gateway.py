"""Gateway status reads under wrk: the cluster backend (watch-fed cache) next to the local one.

Both gateways run as their own processes (``videojobs-gateway`` over the strict emulator as the
gateway ServiceAccount with the chart's RBAC, and ``videojobs serve``), with the rate limit off;
``wrk`` (Debian's) hammers ``GET /api/v1/videos/status/<id>`` on loopback, alternating the two,
``--runs`` times each; the minimum p99 and the maximum throughput are reported, with the
emulator's request count during the cluster runs (0: no API request per read).

    python benchmarks/bench_gateway.py [--runs 3] [--seconds 10] [--connections 4] [--write]

``--streams N`` measures instead: N concurrent progress streams
(``GET /api/v1/videos/progress/<id>/stream``) against each gateway, for running jobs (the
cluster's are Running in the emulator; the local ones are real worker subprocesses stuck
downloading from a loopback server that never answers), held ``--hold`` seconds; it reports
each gateway process's peak RSS (``VmHWM`` of ``/proc/<pid>/status``) and whether every stream
got its first ``progress`` event. The report keeps the wrk part of the docs section.

    python benchmarks/bench_gateway.py --streams 500 [--hold 10] [--write]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import shutil
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

from benchmarks._common import DOC, write_section  # noqa: E402
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
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is not installed: apt-get install wrk (Debian, Ubuntu)")
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


STREAMS_HEADING = "### Progress streams"


def proc_status(pid: int) -> dict[str, int]:
    """VmRSS and VmHWM (peak RSS) of a process, in KiB."""
    out = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            out[key] = int(value.split()[0])
    return out


class SilentSource:
    """A loopback HTTP 'source' that accepts connections and never answers (jobs stay running)."""

    def __init__(self) -> None:
        import socket

        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.port = self.sock.getsockname()[1]
        self.conns: list[Any] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.conns.append(conn)


async def hold_streams(base: str, job_ids: list[str], n: int, hold: float) -> dict[str, Any]:
    """Open ``n`` progress streams over ``job_ids`` at once; hold them; count first events."""
    import aiohttp

    first: list[float] = []
    alive_at_end = 0
    errors: list[str] = []
    start = time.monotonic()
    stop_at = start + hold

    async def one(session: aiohttp.ClientSession, job_id: str) -> None:
        nonlocal alive_at_end
        url = f"{base}/api/v1/videos/progress/{job_id}/stream"
        try:
            async with session.get(url) as r:
                if r.status != 200:
                    errors.append(f"HTTP {r.status}")
                    return
                got = False
                while True:
                    timeout = stop_at - time.monotonic()
                    if timeout <= 0:
                        break
                    try:
                        line = await asyncio.wait_for(r.content.readline(), timeout)
                    except TimeoutError:
                        break
                    if not line:
                        errors.append("stream ended early")
                        return
                    if not got and line.startswith(b"event: progress"):
                        got = True
                        first.append(time.monotonic() - start)
                if got:
                    alive_at_end += 1
        except Exception as exc:  # counted, not fatal: the report says how many failed
            errors.append(f"{type(exc).__name__}: {exc}")

    connector = aiohttp.TCPConnector(limit=0)
    timeout = aiohttp.ClientTimeout(total=None, sock_connect=30)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
        await asyncio.gather(*(one(session, job_ids[i % len(job_ids)]) for i in range(n)))
    first.sort()
    return {
        "first_events": len(first),
        "alive_at_end": alive_at_end,
        "errors": errors,
        "first_p50": first[len(first) // 2] if first else float("nan"),
        "first_max": first[-1] if first else float("nan"),
    }


def streams_main(args: argparse.Namespace) -> int:
    tmp = Path(tempfile.mkdtemp(prefix="bench-gateway-streams-"))
    emu = EmulatorThread()
    emu.start(args.jobs)
    kubeconfig = tmp / "kubeconfig"
    kubeconfig.write_text(
        "apiVersion: v1\nkind: Config\ncurrent-context: kmock\n"
        f"clusters:\n- name: kmock\n  cluster:\n    server: {emu.url}\n"
        f"users:\n- name: gw\n  user:\n    token: {token(GATEWAY_SA)}\n"
        "contexts:\n- name: kmock\n  context:\n    cluster: kmock\n    user: gw\n"
    )
    source = SilentSource()
    env = {k: v for k, v in os.environ.items() if not k.startswith("VIDEOJOBS_")}
    env.update(VIDEOJOBS_GATEWAY_RATE_PER_SECOND="0", VIDEOJOBS_GATEWAY_NAMESPACE=NS)
    cport, lport = free_port(), free_port()
    cluster = subprocess.Popen(
        [sys.executable, "-m", "videojobs_gateway", "--log-level", "warning"],
        stderr=subprocess.DEVNULL,
        env={**env, "KUBECONFIG": str(kubeconfig), "VIDEOJOBS_GATEWAY_PORT": str(cport),
             "VIDEOJOBS_GATEWAY_HOST": "127.0.0.1", "VIDEOJOBS_GATEWAY_NAMESPACES": f'["{NS}"]'},
    )  # fmt: skip
    local = subprocess.Popen(
        [sys.executable, "-m", "videojobs_cli", "serve", "--data", str(tmp / "data"),
         "--port", str(lport), "--concurrency", str(args.local_jobs)],
        env=env, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    results: dict[str, dict[str, Any]] = {}
    try:
        wait_http(f"http://127.0.0.1:{cport}/readyz")
        wait_http(f"http://127.0.0.1:{lport}/healthz")
        local_ids = []
        for i in range(args.local_jobs):
            spec = {"spec": {**SPEC, "source": {"url": f"http://127.0.0.1:{source.port}/{i}.mp4"}}}
            req = urllib.request.Request(
                f"http://127.0.0.1:{lport}/api/v1/videos/process",
                data=json.dumps(spec).encode(), headers={"Content-Type": "application/json"},
            )  # fmt: skip
            with urllib.request.urlopen(req) as r:
                local_ids.append(json.load(r)["job_id"])
        deadline = time.monotonic() + 60
        while len(source.conns) < args.local_jobs:  # every worker is downloading (running)
            if time.monotonic() > deadline:
                raise SystemExit("the local jobs did not start downloading")
            time.sleep(0.2)
        for name, port, pid, ids in (
            ("local", lport, local.pid, local_ids),
            ("cluster", cport, cluster.pid, [f"job-{i:03d}" for i in range(args.jobs)]),
        ):
            before = proc_status(pid)
            res = asyncio.run(
                hold_streams(f"http://127.0.0.1:{port}", ids, args.streams, args.hold)
            )
            res.update(rss_before=before["VmRSS"], hwm=proc_status(pid)["VmHWM"], jobs=len(ids))
            status = json.load(urllib.request.urlopen(
                f"http://127.0.0.1:{port}/api/v1/videos/status/{ids[0]}"))  # fmt: skip
            res["status"] = status["status"]
            results[name] = res
            print(name, {k: v for k, v in res.items() if k != "errors"}, res["errors"][:3],
                  file=sys.stderr)  # fmt: skip
        load = os.getloadavg()
    finally:
        for proc in (cluster, local):
            proc.terminate()
            proc.wait(30)

    rows = "\n".join(
        f"| {name} | {r['jobs']} ({r['status']}) | {r['first_events']} / {args.streams} | "
        f"{r['alive_at_end']} | {r['first_p50']:.2f} s / {r['first_max']:.2f} s | "
        f"{r['rss_before'] / 1024:.0f} MiB | {r['hwm'] / 1024:.0f} MiB |"
        for name, r in results.items()
    )
    body = f"""{STREAMS_HEADING} (`--streams`)

`python benchmarks/bench_gateway.py --streams {args.streams} --hold {args.hold:g}`: {args.streams}
concurrent `GET /api/v1/videos/progress/<id>/stream` (one aiohttp client process, all opened at
once) against each gateway process, held {args.hold:g} s. Local: `videojobs serve --concurrency
{args.local_jobs}` with {args.local_jobs} running jobs (real worker subprocesses, stuck downloading
from a loopback server that never answers); cluster: `videojobs-gateway` over the strict emulator
with {args.jobs} Running VideoProcessingJobs. Peak RSS is the gateway process's `VmHWM` (its whole
life: start, cache, streams); target: 500 streams under 200 MiB. Load average
{load[0]:.2f} / {load[1]:.2f} / {load[2]:.2f} (1/5/15 min) when the runs ended; the machine was
shared.

| backend | jobs (status) | first event | open at end | first p50 / max | RSS before | peak RSS |
|---|---:|---:|---:|---:|---:|---:|
{rows}

Errors: {sum(len(r["errors"]) for r in results.values())}.
"""
    print(body)
    if args.write:
        write_section("gateway", merge_section(body, streams=True))
    return 0


def merge_section(body: str, *, streams: bool) -> str:
    """The gateway section with ``body`` as its wrk part or its streams part (the other kept)."""
    text = DOC.read_text(encoding="utf-8")
    _, _, rest = text.partition("<!-- gateway:start -->")
    current, _, _ = rest.partition("<!-- gateway:end -->")
    wrk_part, heading, streams_part = current.strip("\n").partition(STREAMS_HEADING)
    streams_part = (heading + streams_part).strip("\n")
    wrk_part = wrk_part.strip("\n")
    if streams:
        return f"{wrk_part}\n\n{body.strip()}\n"
    return f"{body.strip()}\n\n{streams_part}\n" if streams_part else body


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--streams", type=int, default=0, help="measure N progress streams")
    parser.add_argument("--hold", type=float, default=10.0, help="seconds to hold the streams")
    parser.add_argument("--local-jobs", type=int, default=4, help="running local jobs")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--connections", type=int, default=4)
    parser.add_argument("--jobs", type=int, default=200)
    parser.add_argument("--write", action="store_true")
    args = parser.parse_args()
    if args.streams:
        return streams_main(args)

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
        [sys.executable, "-m", "videojobs_cli", "serve", "--data", str(tmp / "data"),
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
    stamp = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    body = f"""## Gateway: status reads (`benchmarks/bench_gateway.py`)

`wrk -t2 -c{args.connections} -d{args.seconds}s --latency` on `GET /api/v1/videos/status/<id>`
over loopback, {args.runs} runs of each gateway alternating, best run reported (max req/s, min
p99). Cluster: `videojobs-gateway` over the strict emulator ({args.jobs} VideoProcessingJobs,
watch-fed cache); local: `videojobs serve` (SQLite, in-memory mirror). Rate limit off; both
log every request at level info (to /dev/null). Measured {stamp}
on {os.cpu_count()} CPUs; load average {load[0]:.2f} / {load[1]:.2f} / {load[2]:.2f} (1/5/15
min) when the runs ended, the benchmark's own gateways and wrk included (the machine is shared).

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
        write_section("gateway", merge_section(body, streams=False))
    return 0


if __name__ == "__main__":
    sys.exit(main())
