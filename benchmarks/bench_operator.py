"""Operator at scale: 200, 1,000 and 5,000 VideoProcessingJobs against the kmock emulator.

The operator runs as its own process (``python -m videojobs_operator -A``, default settings except
no leader election and no metrics port), so its peak memory is its own (``VmHWM``). The emulator
and the fake Job runner (``tests/mockapi/jobrunner.py``: each pod "runs" 50 ms, writes one
progress patch like a worker, exits 0) share this process. Requests are counted in the emulator
and attributed by User-Agent (kopf or the kubernetes client = operator).

Each size runs with a fresh emulator and operator. Prints, and writes between
``<!-- operator:start -->`` and ``<!-- operator:end -->`` in ``docs/benchmarks.md``, one row per
size and the growth exponent ``log(t2/t1) / log(n2/n1)`` of each step and overall (1 is linear).

    python benchmarks/bench_operator.py [--sizes 200,1000,5000] [--namespaces 4] [--no-write]
        [--profile DIR]

``BENCH_LOG_LEVEL=INFO`` makes the operator log more (its log file is printed to stderr).
"""

from __future__ import annotations

import argparse
import asyncio
import math
import os
import platform
import signal
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import aiohttp
import kmock

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "benchmarks"))

from _common import vm_hwm_bytes, write_section  # noqa: E402

from tests.mockapi.emulator import Emulator  # noqa: E402
from tests.mockapi.jobrunner import JobRunner  # noqa: E402

SPEC = {
    "source": {"url": "https://videos.example.com/lecture.mp4"},
    "segments": [
        {"start": 0, "end": 60, "title": "Intro"},
        {"start": 60, "end": 120, "title": "Main"},
    ],
    "output": {"storage": {"pvc": {"claimName": "clips"}}},
}
WRITES = ("CREATE", "UPDATE", "DELETE")


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a live process."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def vm_hwm_mib(pid: int) -> float:
    """Peak resident set size of a live process, MiB."""
    return vm_hwm_bytes(pid) / 2**20


async def run(jobs: int, namespaces: int, profile: Path | None = None) -> dict[str, object]:
    async with Emulator() as emulator, kmock.Server(emulator) as server:
        tmp = Path(tempfile.mkdtemp(prefix="bench-operator-"))
        print(f"operator log: {tmp}/operator.log", file=sys.stderr)
        kubeconfig = tmp / "kubeconfig"
        kubeconfig.write_text(
            "apiVersion: v1\nkind: Config\ncurrent-context: kmock\n"
            f"clusters:\n- name: kmock\n  cluster:\n    server: {server.url}\n"
            "users:\n- name: kmock\n  user:\n    token: bench\n"
            "contexts:\n- name: kmock\n  context:\n    cluster: kmock\n    user: kmock\n"
        )
        env = {k: v for k, v in os.environ.items() if not k.startswith("VIDEOJOBS_")}
        env.update(
            KUBECONFIG=str(kubeconfig),
            VIDEOJOBS_LEADER_ELECTION="false",
            VIDEOJOBS_METRICS_PORT="0",
            VIDEOJOBS_LOG_LEVEL=os.environ.get("BENCH_LOG_LEVEL", "WARNING"),
            VIDEOJOBS_LOG_FORMAT="text",
        )
        log = (tmp / "operator.log").open("wb")
        prof = ["-m", "cProfile", "-o", str(profile / f"operator-{jobs}.prof")] if profile else []
        operator = await asyncio.create_subprocess_exec(
            sys.executable,
            *prof,
            "-m",
            "videojobs_operator",
            "-A",
            "--liveness",
            "",
            env=env,
            stdout=log,
            stderr=asyncio.subprocess.STDOUT,
        )
        runner = JobRunner(str(server.url))
        await runner.__aenter__()
        idle_mib = 0.0
        try:
            await asyncio.sleep(2.0)  # let the operator start and list (empty) resources
            idle_mib = vm_hwm_mib(operator.pid)
            names = [(f"team-{i % namespaces}", f"lecture-{i:03d}") for i in range(jobs)]
            cpu_before = time.process_time()
            async with aiohttp.ClientSession(str(server.url)) as session:
                started = time.monotonic()
                for ns, name in names:
                    body = {
                        "apiVersion": "videojobs.io/v1alpha1",
                        "kind": "VideoProcessingJob",
                        "metadata": {"name": name, "namespace": ns},
                        "spec": SPEC,
                    }
                    path = f"/apis/videojobs.io/v1alpha1/namespaces/{ns}/videoprocessingjobs"
                    async with session.post(path, json=body) as resp:
                        resp.raise_for_status()
                created = time.monotonic() - started
                while True:
                    phases = Counter(
                        (o.get("status") or {}).get("phase")
                        for o in emulator.live("videoprocessingjobs")
                    )
                    if phases.get("Succeeded", 0) == jobs:
                        break
                    if time.monotonic() - started > max(600, jobs * 0.5):
                        raise SystemExit(f"{jobs}: not done in time: {dict(phases)}")
                    await asyncio.sleep(0.2)
                elapsed = time.monotonic() - started
            await asyncio.sleep(1.0)  # late writes (events) still count
            peak_mib = vm_hwm_mib(operator.pid)
            op_cpu = cpu_seconds(operator.pid)
            own_cpu = time.process_time() - cpu_before
        finally:
            await runner.__aexit__(None, None, None)
            operator.send_signal(signal.SIGTERM)
            await asyncio.wait_for(operator.wait(), 60)
            log.close()

        ops = {what: n for (client, what), n in emulator.by_client.items() if client == "operator"}
        op_writes = {k: v for k, v in ops.items() if k.split()[0] in WRITES}
        return {
            "jobs": jobs,
            "namespaces": namespaces,
            "create_s": created,
            "elapsed_s": elapsed,
            "op_requests": sum(ops.values()),
            "op_writes": sum(op_writes.values()),
            "op_write_kinds": op_writes,
            "all_requests": emulator.requests_total,
            "max_running": runner.stats.max_running,
            "idle_mib": idle_mib,
            "peak_mib": peak_mib,
            "op_cpu_s": op_cpu,
            "harness_cpu_s": own_cpu,
        }


def exponent(n1: float, t1: float, n2: float, t2: float) -> float:
    """Growth exponent between two sizes: 1 is linear, 2 quadratic."""
    return math.log(t2 / t1) / math.log(n2 / n1)


def render(results: list[dict[str, object]], load: str) -> str:
    f = lambda r, k: float(r[k])  # type: ignore[arg-type]  # noqa: E731
    verdict = lambda ok: "**met**" if ok else "**missed**"  # noqa: E731
    sizes = [int(f(r, "jobs")) for r in results]
    times = [f(r, "elapsed_s") for r in results]
    summary = "\n".join(
        f"| time until all {n} are `Succeeded` (from the first create) | {t:.1f} s |"
        for n, t in zip(sizes, times, strict=True)
    )
    rows = []
    steps = []
    for i, r in enumerate(results):
        n = sizes[i]
        kinds: dict[str, int] = r["op_write_kinds"]  # type: ignore[assignment]
        status = kinds.get("UPDATE videoprocessingjobs/status", 0)
        step = ""
        if i:
            e = exponent(sizes[i - 1], times[i - 1], n, times[i])
            steps.append(e)
            step = f"{e:.2f}"
        rows.append(
            f"| {n:,} | {times[i]:.1f} s | {f(r, 'create_s'):.1f} s | {times[i] / n * 1000:.0f} ms "
            f"| {step or '–'} | {f(r, 'op_writes') / n:.2f} | {status / n:.2f} "
            f"| {f(r, 'op_requests') / n:.2f} | {r['max_running']} | {f(r, 'op_cpu_s'):.1f} s "
            f"| {f(r, 'harness_cpu_s'):.1f} s "
            f"| {f(r, 'idle_mib'):.0f} / {f(r, 'peak_mib'):.0f} MiB |"
        )
    overall = exponent(sizes[0], times[0], sizes[-1], times[-1]) if len(sizes) > 1 else None
    last = results[-1]
    kinds = last["op_write_kinds"]  # type: ignore[assignment]
    n_last = sizes[-1]
    by_kind = "\n".join(
        f"| {what} | {n} | {n / n_last:.2f} |"
        for what, n in sorted(kinds.items())  # type: ignore[attr-defined]
    )
    checks = []
    for n, r in zip(sizes, results, strict=True):
        t, peak, writes = f(r, "elapsed_s"), f(r, "peak_mib"), f(r, "op_writes") / n
        parts = [f"≤ 8 writes per job {verdict(writes <= 8)} ({writes:.1f})"]
        if n == 1000:
            parts.append(f"≤ 60 s {verdict(t <= 60)} ({t:.1f} s)")
            parts.append(f"≤ 150 MiB {verdict(peak <= 150)} ({peak:.0f} MiB)")
        if n == 5000:
            parts.append(f"≤ 5 min {verdict(t <= 300)} ({t:.1f} s)")
            parts.append(f"≤ 300 MiB {verdict(peak <= 300)} ({peak:.0f} MiB)")
        checks.append(f"- {n:,}: " + "; ".join(parts))
    if overall is not None:
        checks.append(
            f"- growth exponent {sizes[0]:,} → {sizes[-1]:,} ≤ 1.2: {verdict(overall <= 1.2)} "
            f"({overall:.2f}; per step {', '.join(f'{e:.2f}' for e in steps)})"
        )
    sizes_arg = ",".join(map(str, sizes))
    return f"""Setup: VideoProcessingJobs in {results[0]["namespaces"]} namespaces created back to \
back against kmock's emulator (`tests/mockapi/emulator.py`, with every strict check); the \
operator is `python -m videojobs_operator -A` in its own process with default settings (at most \
20 Jobs running, no leader election); the fake Job runner (`tests/mockapi/jobrunner.py`) plays \
kubelet and Job controller, each pod "runs" 50 ms and writes one progress patch as a worker \
would. Each size runs with a fresh emulator and operator. Python {platform.python_version()}, \
kopf 1.45.2, kmock 0.8, {os.cpu_count()} cores shared with other work (load average before the \
run: {load}); emulator and runner share one process, the operator has its own.

Reproduce: `python benchmarks/bench_operator.py --sizes {sizes_arg}` (one run; `--profile DIR`
writes cProfile stats of both processes).

| measure | value |
|---|---|
{summary}

| resources | all `Succeeded` | creating them | per resource | growth exponent from the \
previous size | operator writes / job | status patches / job | operator requests / job | most \
Jobs running (limit 20) | operator CPU | emulator + runner CPU | operator RSS idle / peak (VmHWM) |
|---|---|---|---|---|---|---|---|---|---|---|---|
{chr(10).join(rows)}

Operator writes by kind at {n_last:,}:

| request | total | per job |
|---|---|---|
{by_kind}

The operator never writes progress (the worker does); its per-job writes are the Job, its input
ConfigMap, its status transitions (Queued, Pending, Running, Succeeded) and one Event per
transition; the worker ServiceAccount/Role/RoleBinding are created once per namespace.

Targets:

{chr(10).join(checks)}
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="200,1000,5000", help="comma-separated job counts")
    parser.add_argument("--namespaces", type=int, default=4)
    parser.add_argument("--no-write", action="store_true", help="print, do not update the doc")
    parser.add_argument("--profile", type=Path, help="write cProfile stats of both processes here")
    args = parser.parse_args()
    if args.profile:
        import cProfile

        args.profile.mkdir(parents=True, exist_ok=True)
        harness = cProfile.Profile()
        harness.enable()
    load = " / ".join(f"{x:.2f}" for x in os.getloadavg())
    results = []
    for n in [int(x) for x in args.sizes.split(",")]:
        results.append(asyncio.run(run(n, args.namespaces, args.profile)))
        r = results[-1]
        print(
            f"{n}: {r['elapsed_s']:.1f} s, {int(r['op_writes']) / n:.2f} writes/job, "  # type: ignore[call-overload]
            f"peak {r['peak_mib']:.0f} MiB",
            file=sys.stderr,
            flush=True,
        )
    if args.profile:
        harness.disable()
        harness.dump_stats(args.profile / f"harness-{args.sizes}.prof")
    text = render(results, load)
    print(text)
    if not args.no_write:
        write_section("operator", text)


if __name__ == "__main__":
    main()
