"""A test-only kubelet + Job controller + garbage collector for the kmock emulator.

The emulator stores objects; nothing runs them. :class:`JobRunner` watches ``batch/v1`` Jobs and,
for each new one, does what Kubernetes would: creates a pod from the template, runs it, marks it
terminated with an exit code and a termination message, retries within ``backoffLimit``, applies
the ``podFailurePolicy`` (FailJob on listed exit codes), enforces ``activeDeadlineSeconds``, and
writes the Job's status (``active``/``succeeded``/``failed``, conditions ``Complete``/``Failed``
with the reasons the real controller uses). Deleting a Job kills its pod and deletes it; deleting a
VideoProcessingJob deletes the Jobs it owns (the garbage collector's part).

Two ways to run a pod:

- **fake**: a scripted list of :class:`Attempt` per resource (exit code, duration, or stuck in
  ``ImagePullBackOff``); the fake writes ``progress`` and ``error`` to the resource's status as
  the worker contract says, so the operator sees what it would see from a real worker;
- **real**: ``python -m videojobs_worker run`` as a subprocess with the container's environment
  (``VIDEOJOBS_INPUT`` and friends) and ``KUBECONFIG`` pointing at the emulator, so the worker's
  own status patches land there.

No pytest in here: the benchmark uses it too.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import datetime as dt
import json
import os
import sys
import time
import uuid
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp

CONTROLLER_TOKEN = "system:controller"
"""The token the strict emulator treats as a system component (see ``emulator.py``)."""
JOBS = "/apis/batch/v1"
PODS = "/api/v1"
VPJS = "/apis/videojobs.io/v1alpha1"


def _now() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def worker_token(job: dict[str, Any]) -> str:
    """The bearer token of the ServiceAccount the Job's pods run as."""
    account = job["spec"]["template"]["spec"].get("serviceAccountName") or "default"
    return f"sa:{job['metadata']['namespace']}:{account}"


@dataclass(frozen=True)
class Attempt:
    """What one pod does."""

    exit_code: int = 0
    seconds: float = 0.05
    waiting: str | None = None
    """Never start: stay waiting with this reason (``ImagePullBackOff``, ``Unschedulable``)."""
    message: str = ""
    hang: bool = False
    """Run until killed (cancel, deadline, deletion)."""
    gate: asyncio.Event | None = None
    """Run until this event is set (then exit with ``exit_code``)."""
    waiting_since: float = 0.0
    """With ``waiting``: pretend the pod was created this many seconds ago (time travel for
    timeouts that are minutes long)."""


Script = Callable[[str, dict[str, Any]], Sequence[Attempt]]
"""(resource name, Job) -> the attempts its pods make, in order (the last one repeats)."""


def default_script(_name: str, _job: dict[str, Any]) -> Sequence[Attempt]:
    return [Attempt()]


@dataclass
class RunnerStats:
    """What the runner saw, for assertions."""

    running: Counter[str] = field(default_factory=Counter)
    max_running: int = 0
    max_running_by_ns: Counter[str] = field(default_factory=Counter)
    started: list[str] = field(default_factory=list)
    """Resource names in the order their first pod started."""
    jobs_seen: list[str] = field(default_factory=list)
    pods_created: Counter[str] = field(default_factory=Counter)
    """Pods per Job name."""


class JobRunner:
    """Plays kubelet, Job controller and garbage collector against the emulator."""

    def __init__(
        self,
        base_url: str,
        *,
        script: Script = default_script,
        real_worker: bool = False,
        worker_env: dict[str, str] | None = None,
        workdir: Path | None = None,
        retry_delay: float = 0.05,
    ) -> None:
        self.base = base_url.rstrip("/")
        self.script = script
        self.real_worker = real_worker
        self.worker_env = worker_env or {}
        self.workdir = workdir
        self.retry_delay = retry_delay
        self.stats = RunnerStats()
        self.outputs: dict[str, str] = {}
        """Worker stdout+stderr per pod (real mode), for debugging failures."""
        self._session: aiohttp.ClientSession | None = None
        self._watchers: list[asyncio.Task[None]] = []
        self._runs: dict[str, asyncio.Task[None]] = {}
        self._jobs: dict[str, dict[str, Any]] = {}
        self._pods: dict[str, list[dict[str, Any]]] = {}

    async def __aenter__(self) -> JobRunner:
        # The runner is a system component (kubelet, controllers): cluster admin. What it does on
        # behalf of a worker pod (the fake worker's status patches) uses the pod's ServiceAccount.
        self._session = aiohttp.ClientSession(
            self.base, headers={"Authorization": f"Bearer {CONTROLLER_TOKEN}"}
        )
        self._watchers = [
            asyncio.create_task(self._watch(f"{JOBS}/jobs", self._on_job)),
            asyncio.create_task(self._watch(f"{VPJS}/videoprocessingjobs", self._on_vpj)),
        ]
        return self

    async def __aexit__(self, *_: object) -> None:
        for task in [*self._watchers, *self._runs.values()]:
            task.cancel()
        await asyncio.gather(*self._watchers, *self._runs.values(), return_exceptions=True)
        assert self._session is not None
        await self._session.close()

    # API plumbing ------------------------------------------------------------------------------

    @property
    def session(self) -> aiohttp.ClientSession:
        assert self._session is not None
        return self._session

    async def _request(
        self, method: str, path: str, body: Any = None, *, as_token: str | None = None
    ) -> Any:
        headers = {"Content-Type": "application/merge-patch+json"} if method == "PATCH" else {}
        if as_token is not None:
            headers["Authorization"] = f"Bearer {as_token}"
        async with self.session.request(method, path, json=body, headers=headers) as resp:
            if resp.status == 404:
                return None
            resp.raise_for_status()
            return await resp.json()

    async def _watch(self, path: str, callback: Callable[[str, dict[str, Any]], Any]) -> None:
        while True:
            try:
                async with self.session.get(path, params={"watch": "true"}, timeout=None) as resp:
                    async for line in resp.content:
                        if line.strip():
                            event = json.loads(line)
                            await callback(event["type"], event["object"])
            except (TimeoutError, aiohttp.ClientError):
                await asyncio.sleep(0.1)

    # Garbage collector -------------------------------------------------------------------------

    async def _on_vpj(self, kind: str, obj: dict[str, Any]) -> None:
        if kind != "DELETED":
            return
        uid = obj["metadata"].get("uid")
        for job in list(self._jobs.values()):
            refs = job["metadata"].get("ownerReferences") or []
            if any(r.get("uid") == uid for r in refs):
                ns, name = job["metadata"]["namespace"], job["metadata"]["name"]
                await self._request("DELETE", f"{JOBS}/namespaces/{ns}/jobs/{name}")

    # Job controller ----------------------------------------------------------------------------

    async def _on_job(self, kind: str, job: dict[str, Any]) -> None:
        uid = job["metadata"].get("uid") or job["metadata"]["name"]
        if kind == "DELETED":
            self._jobs.pop(uid, None)
            task = self._runs.pop(uid, None)
            if task is not None:
                task.cancel()
                await asyncio.gather(task, return_exceptions=True)
            for pod in self._pods.pop(uid, []):  # the garbage collector's part
                await self._delete_pod(pod)
            return
        if uid in self._runs or (job.get("status") or {}).get("conditions"):
            return
        self._jobs[uid] = job
        self.stats.jobs_seen.append(job["metadata"]["name"])
        self._runs[uid] = asyncio.create_task(self._run_job(job))

    async def _patch_job(self, job: dict[str, Any], status: dict[str, Any]) -> None:
        meta = job["metadata"]
        path = f"{JOBS}/namespaces/{meta['namespace']}/jobs/{meta['name']}/status"
        await self._request("PATCH", path, {"status": status})

    async def _finish_job(
        self, job: dict[str, Any], ok: bool, reason: str, message: str, counts: dict[str, int]
    ) -> None:
        now = _now()
        interim = "SuccessCriteriaMet" if ok else "FailureTarget"
        final = "Complete" if ok else "Failed"
        conditions = [
            {
                "type": t,
                "status": "True",
                "reason": reason,
                "message": message,
                "lastProbeTime": now,
                "lastTransitionTime": now,
            }
            for t in (interim, final)
        ]
        status: dict[str, Any] = {"active": 0, "ready": 0, **counts, "conditions": conditions}
        if ok:
            status["completionTime"] = now
        await self._patch_job(job, status)

    async def _run_job(self, job: dict[str, Any]) -> None:
        meta, spec = job["metadata"], job["spec"]
        ns, name = meta["namespace"], meta["name"]
        resource = (meta.get("annotations") or {}).get("videojobs.io/resource-name") or (
            meta.get("labels") or {}
        ).get("videojobs.io/job", name)
        backoff = int(spec.get("backoffLimit", 6))
        deadline = spec.get("activeDeadlineSeconds")
        fail_codes: set[int] = set()
        for rule in (spec.get("podFailurePolicy") or {}).get("rules") or []:
            if rule.get("action") == "FailJob" and rule.get("onExitCodes"):
                fail_codes |= set(rule["onExitCodes"]["values"])
        if spec.get("completionMode") == "Indexed":
            # Indexed Jobs (sharded runs) are left to the real Job controller:
            # tests/realk8s/test_sharding.py. Here they never start.
            return
        attempts = list(self.script(resource, job)) or [Attempt()]
        started = asyncio.get_running_loop().time()
        await self._patch_job(job, {"startTime": _now(), "active": 0})
        failed = 0
        for index in range(10_000):
            attempt = attempts[min(index, len(attempts) - 1)]
            pod = await self._create_pod(job)
            await self._patch_job(job, {"active": 1, "failed": failed})
            if attempt.waiting:
                if attempt.waiting_since:
                    then = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=attempt.waiting_since)
                    meta = pod["metadata"]
                    path = f"{PODS}/namespaces/{meta['namespace']}/pods/{meta['name']}"
                    stamp = then.strftime("%Y-%m-%dT%H:%M:%SZ")
                    await self._request("PATCH", path, {"metadata": {"creationTimestamp": stamp}})
                await self._set_waiting(pod, attempt.waiting)
                await asyncio.Event().wait()  # until the Job is deleted
            left = (
                None
                if deadline is None
                else deadline - (asyncio.get_running_loop().time() - started)
            )
            code, message = await self._run_pod(job, pod, resource, attempt, left)
            if code is None:  # deadline
                await self._finish_job(
                    job,
                    False,
                    "DeadlineExceeded",
                    "Job was active longer than specified deadline",
                    {"failed": failed + 1},
                )
                return
            if code == 0:
                await self._finish_job(
                    job,
                    True,
                    "CompletionsReached",
                    "Reached expected number of succeeded pods",
                    {"succeeded": 1, "failed": failed},
                )
                return
            failed += 1
            if code in fail_codes:
                await self._finish_job(
                    job,
                    False,
                    "PodFailurePolicy",
                    f"Container worker for pod {ns}/{pod['metadata']['name']} failed with exit "
                    f"code {code} matching FailJob rule at index 0",
                    {"failed": failed},
                )
                return
            if failed > backoff:
                await self._finish_job(
                    job,
                    False,
                    "BackoffLimitExceeded",
                    "Job has reached the specified backoff limit",
                    {"failed": failed},
                )
                return
            await self._patch_job(job, {"active": 0, "failed": failed})
            await asyncio.sleep(self.retry_delay)

    # Kubelet -----------------------------------------------------------------------------------

    async def _create_pod(self, job: dict[str, Any]) -> dict[str, Any]:
        meta = job["metadata"]
        template = job["spec"]["template"]
        labels = dict(template["metadata"].get("labels") or {})
        labels.update({"job-name": meta["name"], "batch.kubernetes.io/job-name": meta["name"]})
        annotations = dict(template["metadata"].get("annotations") or {})
        name = f"{meta['name']}-{uuid.uuid4().hex[:5]}"
        pod = {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {
                "name": name,
                "namespace": meta["namespace"],
                "labels": labels,
                "annotations": annotations,
                "ownerReferences": [
                    {
                        "apiVersion": "batch/v1",
                        "kind": "Job",
                        "name": meta["name"],
                        "uid": meta.get("uid"),
                        "controller": True,
                        "blockOwnerDeletion": True,
                    }
                ],
            },
            "spec": template["spec"],
            "status": {"phase": "Pending"},
        }
        self.stats.pods_created[meta["name"]] += 1
        created = await self._request("POST", f"{PODS}/namespaces/{meta['namespace']}/pods", pod)
        self._pods.setdefault(meta.get("uid") or meta["name"], []).append(created or pod)
        return created or pod

    async def _patch_pod(self, pod: dict[str, Any], status: dict[str, Any]) -> None:
        meta = pod["metadata"]
        path = f"{PODS}/namespaces/{meta['namespace']}/pods/{meta['name']}/status"
        await self._request("PATCH", path, {"status": status})

    async def _set_waiting(self, pod: dict[str, Any], reason: str) -> None:
        if reason == "Unschedulable":
            status = {
                "phase": "Pending",
                "conditions": [
                    {
                        "type": "PodScheduled",
                        "status": "False",
                        "reason": "Unschedulable",
                        "message": "0/3 nodes are available: 3 Insufficient cpu.",
                    }
                ],
            }
        else:
            status = {
                "phase": "Pending",
                "containerStatuses": [
                    {
                        "name": "worker",
                        "ready": False,
                        "restartCount": 0,
                        "state": {
                            "waiting": {"reason": reason, "message": "Back-off pulling image"}
                        },
                    }
                ],
            }
        await self._patch_pod(pod, status)

    async def _run_pod(
        self,
        job: dict[str, Any],
        pod: dict[str, Any],
        resource: str,
        attempt: Attempt,
        deadline_left: float | None,
    ) -> tuple[int | None, str]:
        ns = job["metadata"]["namespace"]
        await self._patch_pod(
            pod,
            {
                "phase": "Running",
                "containerStatuses": [
                    {
                        "name": "worker",
                        "ready": True,
                        "restartCount": 0,
                        "state": {"running": {"startedAt": _now()}},
                    }
                ],
            },
        )
        self.stats.running[ns] += 1
        total = sum(self.stats.running.values())
        self.stats.max_running = max(self.stats.max_running, total)
        self.stats.max_running_by_ns[ns] = max(
            self.stats.max_running_by_ns[ns], self.stats.running[ns]
        )
        if resource not in self.stats.started:
            self.stats.started.append(resource)
        try:
            work = (
                self._real(job, pod)
                if self.real_worker
                else self._fake(job, resource, attempt, pod)
            )
            try:
                code, message = await asyncio.wait_for(work, deadline_left)
            except TimeoutError:
                code, message = None, "DeadlineExceeded"
        finally:
            self.stats.running[ns] -= 1
        term = {
            "exitCode": 137 if code is None else code,
            "reason": "Completed" if code == 0 else "Error",
            "message": message,
            "finishedAt": _now(),
        }
        await self._patch_pod(
            pod,
            {
                "phase": "Succeeded" if code == 0 else "Failed",
                "containerStatuses": [
                    {
                        "name": "worker",
                        "ready": False,
                        "restartCount": 0,
                        "state": {"terminated": term},
                    }
                ],
            },
        )
        return code, message

    async def _delete_pod(self, pod: dict[str, Any]) -> None:
        meta = pod["metadata"]
        path = f"{PODS}/namespaces/{meta['namespace']}/pods/{meta['name']}"
        async with self.session.delete(path) as resp:
            if resp.status not in (200, 202, 404):
                resp.raise_for_status()

    async def _fake(
        self,
        job: dict[str, Any],
        resource: str,
        attempt: Attempt,
        pod: dict[str, Any] | None = None,
    ) -> tuple[int, str]:
        """Do what the worker contract says a worker does, without doing the work."""
        ns = job["metadata"]["namespace"]
        path = f"{VPJS}/namespaces/{ns}/videoprocessingjobs/{resource}/status"
        worker = worker_token(job)
        progress = {"stage": "Downloading", "percent": 0, "updatedAt": _now()}
        report: dict[str, Any] = {"progress": progress}
        await self._request("PATCH", path, {"status": report}, as_token=worker)
        if attempt.hang:
            await asyncio.Event().wait()
        if attempt.gate is not None:
            await attempt.gate.wait()
        await asyncio.sleep(attempt.seconds)
        if attempt.exit_code != 0:
            from videojobs_operator.observe import error_from_exit

            error = error_from_exit(attempt.exit_code, attempt.message)
            await self._request("PATCH", path, {"status": {"error": error}}, as_token=worker)
        summary = {"exitCode": attempt.exit_code, "message": attempt.message or "done"}
        return attempt.exit_code, json.dumps(summary)

    async def _mount_input(self, job: dict[str, Any], scratch: Path) -> str:
        """Write the run's input ConfigMap into ``scratch`` (waiting for it, as the kubelet
        waits for a pod's ConfigMap volume) and return the input file's path there."""
        ns = job["metadata"]["namespace"]
        volume = next(v for v in job["spec"]["template"]["spec"]["volumes"] if v["name"] == "input")
        path = f"{PODS}/namespaces/{ns}/configmaps/{volume['configMap']['name']}"
        deadline = time.monotonic() + 30
        while True:
            try:
                cm = await self._request("GET", path)
            except aiohttp.ClientResponseError:
                cm = None
            if cm:
                break
            if time.monotonic() > deadline:
                raise RuntimeError(f"input ConfigMap of {job['metadata']['name']} never appeared")
            await asyncio.sleep(0.05)
        mount = scratch / "input"
        mount.mkdir(exist_ok=True)
        for key, value in (cm.get("data") or {}).items():
            (mount / key).write_text(value, encoding="utf-8")
        for key, value in (cm.get("binaryData") or {}).items():
            (mount / key).write_bytes(base64.b64decode(value))
        return str(mount / "input.json")

    async def _real(self, job: dict[str, Any], pod: dict[str, Any]) -> tuple[int, str]:
        """Run the real worker as a subprocess with the container's environment."""
        container = job["spec"]["template"]["spec"]["containers"][0]
        env = {k: v for k, v in os.environ.items() if not k.startswith("VIDEOJOBS_")}
        for item in container.get("env") or []:
            if "value" in item:
                env[item["name"]] = item["value"]
        env.update(self.worker_env)
        workdir = self.workdir or Path.cwd()
        scratch = workdir / pod["metadata"]["name"]
        scratch.mkdir(parents=True, exist_ok=True)
        if "VIDEOJOBS_INPUT_FILE" in env:  # the kubelet's part: mount the input ConfigMap
            env["VIDEOJOBS_INPUT_FILE"] = await self._mount_input(job, scratch)
        env.update({"TMPDIR": str(scratch), "HOME": str(scratch)})
        # The pod's /scratch and /output mounts: directories of the test, never the real paths.
        env.setdefault("VIDEOJOBS_SCRATCH", str(scratch))
        env.setdefault("VIDEOJOBS_OUTPUT_ROOT", str(workdir / "output"))
        # The worker authenticates as its pod's ServiceAccount, like a projected token would.
        kubeconfig = scratch / "kubeconfig"
        kubeconfig.write_text(
            "apiVersion: v1\nkind: Config\ncurrent-context: kmock\n"
            f"clusters:\n- name: kmock\n  cluster:\n    server: {self.base}\n"
            f"users:\n- name: worker\n  user:\n    token: {worker_token(job)}\n"
            "contexts:\n- name: kmock\n  context:\n    cluster: kmock\n    user: worker\n"
        )
        env["KUBECONFIG"] = str(kubeconfig)
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "videojobs_worker",
            *container.get("args", []),
            env=env,
            cwd=scratch,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
        )
        try:
            out, _ = await proc.communicate()
        except asyncio.CancelledError:
            proc.terminate()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(proc.wait(), 10)
            raise
        text = out.decode(errors="replace")
        self.outputs[pod["metadata"]["name"]] = text
        lines = [ln for ln in text.splitlines() if ln.strip()]
        return int(proc.returncode or 0), (lines[-1] if lines else "")
