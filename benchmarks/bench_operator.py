"""Operator at scale: 200 VideoProcessingJobs through the operator against the kmock emulator.

The operator runs as its own process (``python -m videojobs_operator -A``, default settings except
no leader election and no metrics port), so its peak memory is its own (``VmHWM``). The emulator
and the fake Job runner (``tests/mockapi/jobrunner.py``: each pod "runs" 50 ms, writes one
progress patch like a worker, exits 0) share this process. Requests are counted in the emulator
and attributed by User-Agent (kopf or the kubernetes client = operator).

Writes the table between ``<!-- operator:start -->`` and ``<!-- operator:end -->`` in
``docs/benchmarks.md``.

    python benchmarks/bench_operator.py [--jobs 200] [--namespaces 4] [--no-write]

``BENCH_LOG_LEVEL=INFO`` makes the operator log more (its log file is printed to stderr).
"""

from __future__ import annotations

import argparse
import asyncio
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
                    if time.monotonic() - started > 600:
                        raise SystemExit(f"not done after 600 s: {dict(phases)}")
                    await asyncio.sleep(0.05)
                elapsed = time.monotonic() - started
            await asyncio.sleep(1.0)  # late writes (events) still count
            peak_mib = vm_hwm_mib(operator.pid)
            op_cpu = cpu_seconds(operator.pid)
            own_cpu = time.process_time()
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


def render(r: dict[str, object]) -> str:
    jobs = int(r["jobs"])  # type: ignore[call-overload]
    kinds: dict[str, int] = r["op_write_kinds"]  # type: ignore[assignment]
    status = kinds.get("UPDATE videoprocessingjobs/status", 0)
    rows = "\n".join(f"| {what} | {n} | {n / jobs:.2f} |" for what, n in sorted(kinds.items()))
    per_job = int(r["op_writes"]) / jobs  # type: ignore[call-overload]
    elapsed = float(r["elapsed_s"])  # type: ignore[arg-type]
    peak = float(r["peak_mib"])  # type: ignore[arg-type]
    create_s = float(r["create_s"])  # type: ignore[arg-type]
    verdict = lambda ok: "**met**" if ok else "**missed**"  # noqa: E731
    spaces = r["namespaces"]
    return f"""Setup: {jobs} VideoProcessingJobs in {spaces} namespaces created back to back \
against kmock's emulator (`tests/mockapi/emulator.py`); the operator is `python -m \
videojobs_operator -A` in its own process with default settings (at most 20 Jobs running, no \
leader election); the fake Job runner (`tests/mockapi/jobrunner.py`) plays kubelet and Job \
controller, each pod "runs" 50 ms and writes one progress patch as a worker would. Python \
{platform.python_version()}, kopf 1.45.2, kmock 0.8, {os.cpu_count()} cores; emulator and runner \
share one process, the operator has its own.

| measure | value |
|---|---|
| time until all {jobs} are `Succeeded` (from the first create) | {elapsed:.1f} s |
| creating the {jobs} resources | {create_s:.1f} s |
| most Jobs running at once (limit 20) | {r["max_running"]} |
| operator API requests (incl. list/watch/discovery) per job | \
{int(r["op_requests"]) / jobs:.2f} |
| operator API writes per job (create/patch/delete, events included) | {per_job:.2f} |
| of which status patches per job | {status / jobs:.2f} |
| all API requests (operator, runner, fake worker, this script) | {r["all_requests"]} |
| CPU: operator process / emulator + runner process | {float(r["op_cpu_s"]):.1f} s / \
{float(r["harness_cpu_s"]):.1f} s |
| operator peak RSS (VmHWM) idle / after {jobs} jobs | {float(r["idle_mib"]):.0f} MiB / \
{peak:.0f} MiB |

Operator writes by kind:

| request | total | per job |
|---|---|---|
{rows}

The operator never writes progress (the worker does); its per-job writes are the Job, its
status transitions (Pending, Running, Succeeded) and one Event per transition; the worker
ServiceAccount/Role/RoleBinding are created once per namespace.

Targets: ≤ 15 operator writes per job: {verdict(per_job <= 15)} ({per_job:.1f}); all {jobs} \
done within 60 s: {verdict(elapsed <= 60)} ({elapsed:.1f} s); peak memory < 150 MiB: \
{verdict(peak < 150)} ({peak:.0f} MiB).
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=200)
    parser.add_argument("--namespaces", type=int, default=4)
    parser.add_argument("--no-write", action="store_true", help="print, do not update the doc")
    parser.add_argument("--profile", type=Path, help="write cProfile stats of both processes here")
    args = parser.parse_args()
    if args.profile:
        import cProfile

        args.profile.mkdir(parents=True, exist_ok=True)
        harness = cProfile.Profile()
        harness.enable()
    result = asyncio.run(run(args.jobs, args.namespaces, args.profile))
    if args.profile:
        harness.disable()
        harness.dump_stats(args.profile / f"harness-{args.jobs}.prof")
    text = render(result)
    print(text)
    if not args.no_write:
        write_section("operator", text)


if __name__ == "__main__":
    main()
