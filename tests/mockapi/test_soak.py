"""Soak: many resources through the real operator under injected faults and operator kills.

The operator runs as a subprocess (``python -m videojobs_operator -A``) against the strict
emulator, which answers a seeded 5 % of the operator's requests with 429 (Retry-After), 500,
409, cut watch streams or 410 Gone on resumed watches (watches have rates of their own, and
every kind is injected at least once: ``tests/realk8s/faults.py``). The operator is SIGKILLed
at seeded random moments and restarted. The fake Job runner plays kubelet and Job controller;
its fake worker publishes as the worker does (clips and ``manifest.json`` into a directory, the clip
list into ``status.segments`` with the worker's own reporter, ``manifestUri`` last). Figures are
recorded in docs/testing.md.
"""

from __future__ import annotations

import asyncio
import collections
import json
import os
import random
import signal
import sys
import time
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

import pytest

from tests.mockapi.conftest import Api, manifest
from tests.mockapi.emulator import Emulator
from tests.mockapi.jobrunner import VPJS, Attempt, JobRunner, worker_token
from tests.realk8s.faults import FaultPlan
from videojobs.models import OutputFile, SegmentResult, WorkerInput
from videojobs_worker.progress import ClusterReporter
from videojobs_worker.publish import DirectoryPublisher, Record, sha256_file

pytestmark = pytest.mark.soak

RESOURCES = 100
KILLS = 5
SEED = 20261201
FINAL = {"Succeeded", "Failed"}


class PublishingRunner(JobRunner):
    """The fake Job runner whose fake worker publishes like the real one.

    It reads the run's input from the mounted ConfigMap, publishes one small clip per segment
    and then ``manifest.json`` with :class:`DirectoryPublisher` under ``out/<ns>/<name>``, and
    reports with the worker's :class:`ClusterReporter` (fenced JSON patches by uid and run,
    as the pod's ServiceAccount): each clip as it is published, ``manifestUri`` last."""

    def __init__(self, base_url: str, *, out: Path, workdir: Path) -> None:
        super().__init__(base_url, workdir=workdir)
        self.out = out

    def _worker_api(self, job: dict[str, Any]) -> Any:
        from kubernetes import client

        config = client.Configuration()
        config.host = self.base
        config.api_key = {"authorization": worker_token(job)}
        config.api_key_prefix = {"authorization": "Bearer"}
        return client.CustomObjectsApi(client.ApiClient(config))

    async def _job_name_written(self, job: dict[str, Any], resource: str) -> None:
        """Until the operator has written this run into status.jobName. The real reporter holds
        its writes until then (its fence refuses them); waiting here keeps such refusals out of
        the emulator's count, which the soak wants to stay 0 for everything else."""
        ns, name = job["metadata"]["namespace"], job["metadata"]["name"]
        path = f"{VPJS}/namespaces/{ns}/videoprocessingjobs/{resource}"
        while True:
            body = await self._request("GET", path)
            if body is None or (body.get("status") or {}).get("jobName") == name:
                return
            await asyncio.sleep(0.05)

    async def _fake(
        self,
        job: dict[str, Any],
        resource: str,
        attempt: Attempt,
        pod: dict[str, Any] | None = None,
    ) -> tuple[int, str]:
        scratch = (self.workdir or Path.cwd()) / job["metadata"]["name"]
        scratch.mkdir(parents=True, exist_ok=True)
        worker_input = WorkerInput.model_validate_json(
            Path(await self._mount_input(job, scratch)).read_text()
        )
        ref = worker_input.resource
        assert ref is not None
        await self._job_name_written(job, resource)
        ns = job["metadata"]["namespace"]
        publisher = DirectoryPublisher(self.out / ns / resource)
        api = self._worker_api(job)

        def work() -> None:
            reporter = ClusterReporter(ref, interval=0.2, api=api)
            reporter.stage("Cutting", "cutting")
            segments = worker_input.spec.segments or []
            results = []
            for index, seg in enumerate(segments, 1):
                clip = scratch / f"{index:02d}-clip.mp4"
                clip.write_bytes(f"{resource} {job['metadata']['name']} {index}".encode())
                record = Record(sha256_file(clip), clip.stat().st_size)
                published = publisher.publish(clip, clip.name, record)
                result = SegmentResult(
                    index=index,
                    title=seg.title,
                    start=float(seg.start),
                    end=float(seg.end),
                    stem=clip.stem,
                    precision="copy",
                    files=[
                        OutputFile(
                            kind="video",
                            format="mp4",
                            uri=published.uri,
                            bytes=record.bytes,
                            sha256=record.sha256,
                        )
                    ],
                )
                results.append(result)
                reporter.segment(result, len(segments))
            manifest_file = scratch / "manifest.json"
            manifest_file.write_text(json.dumps({"segments": [r.to_dict() for r in results]}))
            record = Record(sha256_file(manifest_file), manifest_file.stat().st_size)
            reporter.finish(publisher.publish(manifest_file, "manifest.json", record).uri)
            reporter.close()

        await asyncio.to_thread(work)
        return 0, json.dumps({"exitCode": 0, "message": "done"})


def segments_differ_from_manifest(status: dict[str, Any]) -> str | None:
    """Why the final status's segments are not the manifest's (None when they are)."""
    uri = status.get("manifestUri")
    if not uri:
        return "no manifestUri"
    data = json.loads(Path(unquote(urlsplit(uri).path)).read_text())
    if not status.get("segments"):
        return "no status.segments"
    if status["segments"] != data["segments"]:
        return "status.segments differ from the manifest"
    for seg in data["segments"]:
        for f in seg["files"]:
            path = Path(unquote(urlsplit(f["uri"]).path))
            if not path.is_file() or sha256_file(path) != f["sha256"]:
                return f"{f['uri']} missing or not as recorded"
    return None


async def start_operator(kubeconfig: Path, log: Path) -> asyncio.subprocess.Process:
    env = {k: v for k, v in os.environ.items() if not k.startswith("VIDEOJOBS_")}
    env.update(
        {
            "KUBECONFIG": str(kubeconfig),
            "POD_NAME": "operator-0",
            "POD_NAMESPACE": "videojobs-system",
            "VIDEOJOBS_LEADER_ELECTION": "false",
            "VIDEOJOBS_METRICS_PORT": "0",
            "VIDEOJOBS_LOG_FORMAT": "text",
            "VIDEOJOBS_MAX_RUNNING_JOBS": "8",
        }
    )
    return await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "videojobs_operator",
        "-A",
        env=env,
        stdout=log.open("ab"),
        stderr=asyncio.subprocess.STDOUT,
    )


async def test_soak_faults_and_kills(
    api: Api,
    emulator: Emulator,
    kubeconfig: Path,
    tmp_path: Path,
) -> None:
    rng = random.Random(SEED)
    emulator.faults = FaultPlan(
        rate=0.05, seed=SEED, watch_cut_rate=0.2, gone_rate=0.1, guarantee=True
    )
    runner = PublishingRunner(str(emulator.url), out=tmp_path / "out", workdir=tmp_path / "pods")
    await runner.__aenter__()
    log = tmp_path / "operator.log"
    proc = await start_operator(kubeconfig, log)
    names = [f"soak-{i:03d}" for i in range(RESOURCES)]
    kills = 0
    started = time.monotonic()
    try:
        for batch in range(0, RESOURCES, 10):
            for name in names[batch : batch + 10]:
                await api.create(manifest(name))
            if kills < KILLS and batch % 20 == 0:
                await asyncio.sleep(rng.uniform(0.5, 4.0))
                proc.send_signal(signal.SIGKILL)
                await proc.wait()
                kills += 1
                proc = await start_operator(kubeconfig, log)
        while kills < KILLS:
            await asyncio.sleep(rng.uniform(0.5, 3.0))
            proc.send_signal(signal.SIGKILL)
            await proc.wait()
            kills += 1
            proc = await start_operator(kubeconfig, log)

        def pending() -> list[str]:
            return [n for n in names if api.status(n).get("phase") not in FINAL]

        deadline = time.monotonic() + 240
        while pending() and time.monotonic() < deadline:
            await asyncio.sleep(0.2)
        stuck = pending()
        # A queue slot leaked would hold a new resource back: one more must run to the end.
        await api.create(manifest("soak-last"))
        deadline = time.monotonic() + 60
        while api.status("soak-last").get("phase") not in FINAL and time.monotonic() < deadline:
            await asyncio.sleep(0.2)
    finally:
        if proc.returncode is None:
            proc.send_signal(signal.SIGKILL)
            await proc.wait()
        await runner.__aexit__(None, None, None)
    elapsed = time.monotonic() - started

    jobs_by_resource: collections.Counter[str] = collections.Counter()
    runs: dict[str, set[str]] = collections.defaultdict(set)
    for job in emulator.ever("jobs"):
        owner = (job["metadata"].get("ownerReferences") or [{}])[0].get("name", "?")
        jobs_by_resource[owner] += 1
        runs[owner].add(job["metadata"]["name"])
    duplicates = sum(n - 1 for n in jobs_by_resource.values() if n > 1)
    lost = [n for n in names if jobs_by_resource[n] == 0]
    phases = collections.Counter(api.status(n).get("phase") for n in names)
    status_refusals = [r for r in emulator.refused if r.what.endswith("/status")]
    not_as_published = {
        n: why
        for n in [*names, "soak-last"]
        if (why := segments_differ_from_manifest(api.status(n))) is not None
    }
    figures = {
        "resources": RESOURCES,
        "seconds": round(elapsed, 1),
        "faults": dict(emulator.faults.injected),
        "kills": kills,
        "duplicates": duplicates,
        "stuck": len(stuck),
        "lost": len(lost),
        "phases": dict(phases),
        "refused": len(emulator.refused),
        "segments not as in the manifest": len(not_as_published),
    }
    print("SOAK", figures)
    assert kills >= KILLS
    assert emulator.faults.missing() == [], figures  # every kind of fault fired
    assert stuck == [], (figures, stuck, log.read_text()[-3000:])
    assert duplicates == 0, (figures, [n for n, c in jobs_by_resource.items() if c > 1])
    assert lost == [], figures
    assert phases == {"Succeeded": RESOURCES}, figures
    assert api.status("soak-last").get("phase") == "Succeeded", figures
    assert not_as_published == {}, (figures, list(not_as_published.items())[:5])
    assert status_refusals == [], status_refusals[:3]
    assert emulator.refused == [], emulator.refused[:3]
