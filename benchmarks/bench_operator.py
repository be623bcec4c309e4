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
import json
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


# The real control plane ----------------------------------------------------------------------

OPERATOR_USER = "system:serviceaccount:videojobs-system:vj-videojobs"
AUDIT_VERBS = {"create": "CREATE", "update": "UPDATE", "patch": "PATCH", "delete": "DELETE"}


def operator_writes_from_audit(audit_log: Path) -> tuple[Counter[str], int]:
    """The operator's writes by ``VERB resource[/subresource]`` and all its requests, from the
    API server's audit log (one ``ResponseComplete`` event per finished request)."""
    writes: Counter[str] = Counter()
    requests = 0
    with audit_log.open() as fh:
        for line in fh:
            if OPERATOR_USER not in line or '"ResponseComplete"' not in line:
                continue
            event = json.loads(line)
            if event["user"]["username"] != OPERATOR_USER or event["stage"] != "ResponseComplete":
                continue
            requests += 1
            verb = AUDIT_VERBS.get(event["verb"])
            if verb is None:
                continue
            ref = event.get("objectRef") or {}
            what = ref.get("resource", "?") + (
                f"/{ref['subresource']}" if ref.get("subresource") else ""
            )
            writes[f"{verb} {what}"] += 1
    return writes, requests


def _ts(text: str | None) -> float | None:
    import datetime as dt

    if not text:
        return None
    return dt.datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def breakdown(k8s: object, spaces: list[str]) -> dict[str, float]:
    """Median seconds of each stage of a run, from the objects' own timestamps (1 s resolution):
    resource created → its Job created (the queue), Job → pod created (Job controller), pod →
    container finished (scheduler and the fake node), container finished → Job complete (Job
    controller), Job complete → resource Succeeded (the operator)."""
    import statistics

    gaps: dict[str, list[float]] = {
        "queue": [],
        "job→pod": [],
        "pod→finished": [],
        "finished→complete": [],
        "complete→Succeeded": [],
    }
    for ns in spaces:
        jobs = {j.metadata.name: j for j in k8s.batch.list_namespaced_job(ns).items}  # type: ignore[attr-defined]
        pods = {}
        for pod in k8s.core.list_namespaced_pod(ns).items:  # type: ignore[attr-defined]
            owner = (pod.metadata.labels or {}).get("job-name")
            pods[owner] = pod
        listed = k8s.custom.list_namespaced_custom_object(  # type: ignore[attr-defined]
            "videojobs.io", "v1alpha1", ns, "videoprocessingjobs"
        )
        for o in listed["items"]:
            st = o.get("status") or {}
            job = jobs.get(st.get("jobName") or "")
            if job is None:
                continue
            pod = pods.get(job.metadata.name)
            created = _ts(o["metadata"]["creationTimestamp"])
            job_at = job.metadata.creation_timestamp.timestamp()
            done = job.status.completion_time.timestamp() if job.status.completion_time else None
            succeeded = _ts(st.get("completionTime"))
            if created is not None:
                gaps["queue"].append(job_at - created)
            if pod is not None:
                gaps["job→pod"].append(pod.metadata.creation_timestamp.timestamp() - job_at)
                term = (pod.status.container_statuses or [None])[0]
                fin = (
                    term.state.terminated.finished_at.timestamp()
                    if term and term.state.terminated
                    else None
                )
                if fin is not None:
                    gaps["pod→finished"].append(fin - pod.metadata.creation_timestamp.timestamp())
                    if done is not None:
                        gaps["finished→complete"].append(done - fin)
            if done is not None and succeeded is not None:
                gaps["complete→Succeeded"].append(succeeded - done)
    return {k: round(statistics.median(v), 1) for k, v in gaps.items() if v}


def run_real(jobs: int, namespaces: int) -> dict[str, object]:
    """One size on a fresh real control plane (``tests/realk8s/cluster.py``) with a fake node
    (``tests/realk8s/fastnode.py``) that completes each pod after 50 ms."""
    import shutil
    import subprocess
    import threading

    from kubernetes import watch

    from tests.realk8s import cluster as cp
    from tests.realk8s.conftest import OPERATOR_NS, OPERATOR_SA, WORKER_IMAGE, K8s, operator_rbac

    binaries = cp.find_binaries()
    if binaries is None:
        raise SystemExit("no Kubernetes binaries: run .ci/k8s/build.sh")
    folder = Path(tempfile.mkdtemp(prefix="bench-operator-real-"))
    print(f"cluster and operator logs: {folder}", file=sys.stderr)
    rate = ["--kube-api-qps=500", "--kube-api-burst=1000"]
    plane = cp.Cluster(
        bin=binaries,
        folder=folder,
        extra_args={"kube-controller-manager": [*rate, "--concurrent-job-syncs=20"]},
    )
    procs: list[subprocess.Popen[bytes]] = []
    try:
        plane.start()
        k8s = K8s(plane.admin_kubeconfig)
        import yaml

        crd = yaml.safe_load((REPO / "crds" / "videoprocessingjobs.yaml").read_text())
        k8s.ext.create_custom_resource_definition(crd)
        k8s.wait(
            "the CRD established",
            lambda: any(
                c.type == "Established" and c.status == "True"
                for c in k8s.ext.read_custom_resource_definition(
                    crd["metadata"]["name"]
                ).status.conditions
                or []
            ),
            60,
        )
        spaces = [f"team-{i}" for i in range(namespaces)]
        for ns in spaces:
            k8s.core.create_namespace({"metadata": {"name": ns}})
            k8s.core.create_persistent_volume(
                {
                    "metadata": {"name": f"clips-{ns}"},
                    "spec": {
                        "capacity": {"storage": "1Gi"},
                        "accessModes": ["ReadWriteMany"],
                        "storageClassName": "",
                        "hostPath": {"path": str(folder / "clips" / ns)},
                        "claimRef": {"namespace": ns, "name": "clips"},
                    },
                }
            )
            k8s.core.create_namespaced_persistent_volume_claim(
                ns,
                {
                    "metadata": {"name": "clips"},
                    "spec": {
                        "accessModes": ["ReadWriteMany"],
                        "storageClassName": "",
                        "volumeName": f"clips-{ns}",
                        "resources": {"requests": {"storage": "1Gi"}},
                    },
                },
            )
        node = "vj-fast-0"
        node_kc = plane.client_kubeconfig("fastnode", f"system:node:{node}", ("system:nodes",))
        with (folder / "fastnode.log").open("ab") as out:
            procs.append(
                subprocess.Popen(
                    [
                        sys.executable,
                        "-m",
                        "tests.realk8s.fastnode",
                        f"--kubeconfig={node_kc}",
                        f"--node={node}",
                        "--run-ms=50",
                    ],
                    cwd=REPO,
                    stdout=out,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                )
            )
        k8s.wait(
            "the fake node",
            lambda: any(
                c.type == "Ready" and c.status == "True"
                for c in k8s.core.read_node(node).status.conditions or []
            ),
            60,
        )
        k8s.core.patch_node(node, {"spec": {"taints": None}})
        operator_rbac(k8s)
        token = k8s.core.create_namespaced_service_account_token(
            OPERATOR_SA, OPERATOR_NS, {"spec": {"expirationSeconds": 6 * 3600}}
        ).status.token
        kubeconfig = plane.token_kubeconfig("operator", token)
        env = {k: v for k, v in os.environ.items() if not k.startswith(("VIDEOJOBS_", "KUBE"))}
        env.update(
            KUBECONFIG=str(kubeconfig),
            POD_NAME="operator-0",
            POD_NAMESPACE=OPERATOR_NS,
            VIDEOJOBS_LEADER_ELECTION="false",
            VIDEOJOBS_METRICS_PORT="0",
            VIDEOJOBS_LOG_LEVEL=os.environ.get("BENCH_LOG_LEVEL", "WARNING"),
            VIDEOJOBS_LOG_FORMAT="text",
            VIDEOJOBS_WORKER_IMAGE=WORKER_IMAGE,
            VIDEOJOBS_WORKER_CPU="10m",
            VIDEOJOBS_WORKER_MEMORY="32Mi",
        )
        with (folder / "operator.log").open("ab") as out:
            operator = subprocess.Popen(
                [sys.executable, "-m", "videojobs_operator", "-A", "--liveness", ""],
                env=env,
                cwd=REPO,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        procs.append(operator)
        time.sleep(3.0)  # let the operator start and list (empty) resources
        idle_mib = vm_hwm_mib(operator.pid)
        plane_cpu_before = sum(cpu_seconds(p.pid) for p in plane.procs.values())

        phases: dict[tuple[str, str], str | None] = {}
        lock = threading.Lock()
        stop = threading.Event()

        def follow() -> None:
            rv = None
            while not stop.is_set():
                try:
                    if rv is None:
                        listed = k8s.custom.list_cluster_custom_object(
                            "videojobs.io", "v1alpha1", "videoprocessingjobs"
                        )
                        rv = listed["metadata"]["resourceVersion"]
                        with lock:
                            for o in listed["items"]:
                                key = (o["metadata"]["namespace"], o["metadata"]["name"])
                                phases[key] = (o.get("status") or {}).get("phase")
                    for ev in watch.Watch().stream(
                        k8s.custom.list_cluster_custom_object,
                        "videojobs.io",
                        "v1alpha1",
                        "videoprocessingjobs",
                        resource_version=rv,
                        timeout_seconds=60,
                    ):
                        o = ev["object"]
                        if ev["type"] == "ERROR":
                            rv = None
                            break
                        rv = o["metadata"]["resourceVersion"]
                        with lock:
                            key = (o["metadata"]["namespace"], o["metadata"]["name"])
                            phases[key] = (o.get("status") or {}).get("phase")
                except Exception as exc:  # 410 or a cut: list again
                    print(f"follow: {exc}", file=sys.stderr)
                    rv = None
                    time.sleep(1)

        follower = threading.Thread(target=follow, daemon=True)
        follower.start()
        names = [(f"team-{i % namespaces}", f"lecture-{i:04d}") for i in range(jobs)]
        cpu_before = time.process_time()
        started = time.monotonic()
        for ns, name in names:
            body = {
                "apiVersion": "videojobs.io/v1alpha1",
                "kind": "VideoProcessingJob",
                "metadata": {"name": name, "namespace": ns},
                "spec": SPEC,
            }
            k8s.custom.create_namespaced_custom_object(
                "videojobs.io", "v1alpha1", ns, "videoprocessingjobs", body
            )
        created = time.monotonic() - started
        max_running = 0
        while True:
            with lock:
                counts = Counter(phases.values())
            max_running = max(max_running, counts.get("Running", 0) + counts.get("Pending", 0))
            if counts.get("Succeeded", 0) == jobs:
                break
            if time.monotonic() - started > float(
                os.environ.get("BENCH_TIMEOUT", max(900, jobs * 3))
            ):
                raise SystemExit(f"{jobs}: not done in time: {dict(counts)}")
            time.sleep(0.5)
        elapsed = time.monotonic() - started
        time.sleep(2.0)  # late writes (events) still count
        stop.set()
        peak_mib = vm_hwm_mib(operator.pid)
        op_cpu = cpu_seconds(operator.pid)
        plane_cpu = sum(cpu_seconds(p.pid) for p in plane.procs.values()) - plane_cpu_before
        own_cpu = time.process_time() - cpu_before
        jobs_made = sum(len(k8s.batch.list_namespaced_job(ns).items) for ns in spaces)
        stages = breakdown(k8s, spaces)
    finally:
        for proc in reversed(procs):
            if proc.poll() is None:
                proc.terminate()
                try:
                    proc.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    proc.kill()
        plane.stop()
    writes, requests = operator_writes_from_audit(plane.audit_log)
    shutil.rmtree(folder, ignore_errors=True)
    return {
        "jobs": jobs,
        "namespaces": namespaces,
        "create_s": created,
        "elapsed_s": elapsed,
        "op_requests": requests,
        "op_writes": sum(writes.values()),
        "op_write_kinds": dict(writes),
        "max_running": max_running,
        "jobs_created": jobs_made,
        "idle_mib": idle_mib,
        "peak_mib": peak_mib,
        "op_cpu_s": op_cpu,
        "plane_cpu_s": plane_cpu,
        "harness_cpu_s": own_cpu,
        "version": cp.version(),
        "stages": stages,
    }


def exponent(n1: float, t1: float, n2: float, t2: float) -> float:
    """Growth exponent between two sizes: 1 is linear, 2 quadratic."""
    return math.log(t2 / t1) / math.log(n2 / n1)


def render(results: list[dict[str, object]], load: str) -> str:
    f = lambda r, k: float(r[k])  # noqa: E731
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
    by_kind = "\n".join(f"| {what} | {n} | {n / n_last:.2f} |" for what, n in sorted(kinds.items()))
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


def render_real(results: list[dict[str, object]], load: str) -> str:
    """The section for the real control plane: same measures, plus the control plane's CPU."""
    f = lambda r, k: float(r[k])  # noqa: E731
    sizes = [int(f(r, "jobs")) for r in results]
    times = [f(r, "elapsed_s") for r in results]
    rows = []
    steps = []
    for i, r in enumerate(results):
        n = sizes[i]
        kinds: dict[str, int] = r["op_write_kinds"]  # type: ignore[assignment]
        status = sum(v for k, v in kinds.items() if k.endswith("videoprocessingjobs/status"))
        step = "–"
        if i:
            e = exponent(sizes[i - 1], times[i - 1], n, times[i])
            steps.append(e)
            step = f"{e:.2f}"
        rows.append(
            f"| {n:,} | {times[i]:.1f} s | {f(r, 'create_s'):.1f} s | {times[i] / n * 1000:.0f} ms "
            f"| {step} | {f(r, 'op_writes') / n:.2f} | {status / n:.2f} "
            f"| {f(r, 'op_requests') / n:.2f} | {r['jobs_created']} | {r['max_running']} "
            f"| {f(r, 'op_cpu_s'):.1f} s | {f(r, 'plane_cpu_s'):.1f} s "
            f"| {f(r, 'idle_mib'):.0f} / {f(r, 'peak_mib'):.0f} MiB |"
        )
    overall = exponent(sizes[0], times[0], sizes[-1], times[-1]) if len(sizes) > 1 else None
    kinds = results[-1]["op_write_kinds"]  # type: ignore[assignment]
    n_last = sizes[-1]
    by_kind = "\n".join(f"| {what} | {n} | {n / n_last:.2f} |" for what, n in sorted(kinds.items()))
    stage_rows = "\n".join(
        f"| {int(f(r, 'jobs')):,} | "
        + " | ".join(
            f"{st.get(k, '–')}"
            for k in ("queue", "job→pod", "pod→finished", "finished→complete", "complete→Succeeded")
        )
        + " |"
        for r in results
        if isinstance(st := r.get("stages"), dict)
    )
    growth = (
        f"Growth exponent {sizes[0]:,} → {sizes[-1]:,}: **{overall:.2f}** (1 is linear)."
        if overall is not None
        else ""
    )
    return f"""Setup: the real control plane of the real-cluster tier (`tests/realk8s/cluster.py`: \
etcd, kube-apiserver with RBAC and the audit log, kube-controller-manager with the real Job \
controller (its client rate limit raised to 500/s and 20 concurrent Job syncs, so that the \
controllers do not throttle the run), kube-scheduler), Kubernetes {results[0]["version"]}, a fresh \
one per size. The operator is `python -m videojobs_operator -A` in its own process, with its \
ServiceAccount's token and the ClusterRole made from `rbac.py` (as in the tier), default \
settings (at most 20 Jobs running, no leader election). Pods are bound by the real scheduler to \
one fake node (`tests/realk8s/fastnode.py`, KWOK's way: the status of a container that ran \
50 ms and exited 0, no process; the worker itself does not run, so no worker progress patches, \
unlike the emulator's run). VideoProcessingJobs in {results[0]["namespaces"]} namespaces created \
back to back by one client. Writes and requests are counted from the API server's audit log \
(the operator's ServiceAccount, `ResponseComplete` events). {os.cpu_count()} cores shared with \
other work (load average before the run: {load}); etcd, the API server, the controllers, the \
fake node, the harness and the operator all on them.

Reproduce: `python benchmarks/bench_operator.py --server real --sizes {",".join(map(str, sizes))}` \
(needs the binaries of `.ci/k8s/build.sh`; `VIDEOJOBS_K8S_VERSION` picks the version).

| resources | all `Succeeded` | creating them | per resource | growth exponent from the \
previous size | operator writes / job | status writes / job | operator requests / job | Jobs \
created | most runs Pending + Running (limit 20) | operator CPU | control plane CPU | operator \
RSS idle / peak (VmHWM) |
|---|---|---|---|---|---|---|---|---|---|---|---|---|
{chr(10).join(rows)}

{growth}

Where a run's time goes, median seconds per stage (from the objects' own timestamps, 1 s \
resolution): the queue (resource created → its Job created), the Job controller (Job → pod), \
scheduler and fake node (pod → container finished), the Job controller again (container \
finished → Job `Complete`), the operator (Job `Complete` → resource `Succeeded`):

| resources | queue | Job → pod | pod → finished | finished → Complete | Complete → Succeeded |
|---|---|---|---|---|---|
{stage_rows}

Operator writes by kind at {n_last:,} (from the audit log):

| request | total | per job |
|---|---|---|
{by_kind}
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="200,1000,5000", help="comma-separated job counts")
    parser.add_argument("--namespaces", type=int, default=4)
    parser.add_argument(
        "--server",
        choices=("emulator", "real"),
        default="emulator",
        help="kmock's emulator, or the real control plane of tests/realk8s",
    )
    parser.add_argument("--no-write", action="store_true", help="print, do not update the doc")
    parser.add_argument("--profile", type=Path, help="write cProfile stats of both processes here")
    parser.add_argument(
        "--from-results",
        type=Path,
        action="append",
        default=[],
        help="render the RESULT lines of earlier runs (their stderr) instead of running",
    )
    parser.add_argument("--load", default="", help="with --from-results: the load to report")
    args = parser.parse_args()
    if args.from_results:
        done = [
            json.loads(line.split(" ", 1)[1])
            for f in args.from_results
            for line in f.read_text().splitlines()
            if line.startswith("RESULT ")
        ]
        done.sort(key=lambda r: int(r["jobs"]))
        text = (render_real if "plane_cpu_s" in done[0] else render)(done, args.load)
        print(text)
        if not args.no_write:
            write_section("operator-real" if "plane_cpu_s" in done[0] else "operator", text)
        return
    if args.profile:
        import cProfile

        args.profile.mkdir(parents=True, exist_ok=True)
        harness = cProfile.Profile()
        harness.enable()
    load = " / ".join(f"{x:.2f}" for x in os.getloadavg())
    results = []
    for n in [int(x) for x in args.sizes.split(",")]:
        if args.server == "real":
            results.append(run_real(n, args.namespaces))
        else:
            results.append(asyncio.run(run(n, args.namespaces, args.profile)))
        r = results[-1]
        print("RESULT", json.dumps(r), file=sys.stderr, flush=True)
        print(
            f"{n}: {r['elapsed_s']:.1f} s, {int(r['op_writes']) / n:.2f} writes/job, "  # type: ignore[call-overload]
            f"peak {r['peak_mib']:.0f} MiB {r.get('stages', '')}",
            file=sys.stderr,
            flush=True,
        )
    if args.profile:
        harness.disable()
        harness.dump_stats(args.profile / f"harness-{args.sizes}.prof")
    text = (render_real if args.server == "real" else render)(results, load)
    print(text)
    if not args.no_write:
        write_section("operator-real" if args.server == "real" else "operator", text)


if __name__ == "__main__":
    main()
