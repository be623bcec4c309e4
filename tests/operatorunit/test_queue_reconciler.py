"""The reconciler's incremental queue: filled from the whole index on the first pass, kept up to
date by each pass, so the limits hold after a restart and slots free as runs finish."""

from __future__ import annotations

import datetime as dt
from typing import Any

from tests.operatorunit.fakekube import FakeKube
from videojobs.models import VideoProcessingJobSpec
from videojobs_operator.manifest import build_job, resource_job_name
from videojobs_operator.metrics import Metrics
from videojobs_operator.reconcile import Reconciler
from videojobs_operator.settings import OperatorSettings

NOW = dt.datetime(2026, 11, 25, 14, 0, 0, tzinfo=dt.UTC)


def resource(name: str, uid: str, second: int, **status: Any) -> dict[str, Any]:
    return {
        "apiVersion": "videojobs.io/v1alpha1",
        "kind": "VideoProcessingJob",
        "metadata": {
            "name": name,
            "namespace": "media",
            "uid": uid,
            "generation": 1,
            "creationTimestamp": f"2026-11-25T13:00:{second:02d}Z",
        },
        "spec": {
            "source": {"url": "https://example.com/v.mp4"},
            "segments": [{"start": 0, "end": 5, "title": "Intro"}],
            "output": {"storage": {"pvc": {"claimName": "clips"}}},
        },
        "status": status,
    }


def running_job(body: dict[str, Any], settings: OperatorSettings) -> dict[str, Any]:
    job = build_job(body, VideoProcessingJobSpec.model_validate(body["spec"]), settings)
    job["metadata"].update({"uid": f"job-{body['metadata']['uid']}"})
    job["status"] = {"active": 1}
    return job


async def test_after_a_restart_the_running_jobs_count_before_any_of_their_passes() -> None:
    settings = OperatorSettings(manage_worker_rbac=False, max_running_jobs=1)
    busy = resource("busy", "u-1", 1)
    busy["status"] = {"phase": "Running", "jobName": resource_job_name(busy)}
    waiting = resource("waiting", "u-2", 2)
    kube = FakeKube()
    rec = Reconciler(settings, kube, Metrics(), clock=lambda: NOW)  # type: ignore[arg-type]
    rec.bind(
        {("media", "busy"): [busy], ("media", "waiting"): [waiting]},
        {("media", "busy"): [running_job(busy, settings)]},
        {},
    )
    await rec.reconcile(("media", "waiting"))  # the first pass is not the running one's
    assert not any(c[0] == "create_job" for c in kube.calls), "the limit holds"
    assert rec._running() == {"media": 1}
    assert rec.queue_depth() == 1 and rec.phase_counts() == {"Running": 1, "Queued": 1}
    await rec.close()


async def test_a_finished_run_frees_its_slot_for_the_oldest_waiting_one() -> None:
    settings = OperatorSettings(manage_worker_rbac=False, max_running_jobs=1)
    first, second, third = (resource(n, f"u-{i}", i) for i, n in enumerate(["a", "b", "c"]))
    vpjs = {("media", r["metadata"]["name"]): [r] for r in (first, second, third)}
    jobs: dict[tuple[str, str], list[dict[str, Any]]] = {}
    kube = FakeKube()
    rec = Reconciler(settings, kube, Metrics(), clock=lambda: NOW)  # type: ignore[arg-type]
    rec.bind(vpjs, jobs, {})
    for key in [("media", "c"), ("media", "b"), ("media", "a")]:
        await rec.reconcile(key)
    created = [c[1] for c in kube.calls if c[0] == "create_job"]
    assert created == [resource_job_name(first)], "first come, first served, whoever looks first"
    # a's Job shows up and succeeds: the slot goes to b, the oldest one still waiting
    job = running_job(first, settings)
    job["status"] = {"succeeded": 1, "conditions": [{"type": "Complete", "status": "True"}]}
    jobs[("media", "a")] = [job]
    first["status"] = {"phase": "Running", "jobName": resource_job_name(first)}
    assert rec._running() == {"media": 1}
    await rec.reconcile(("media", "a"))
    assert rec._running() == {}
    await rec.reconcile(("media", "c"))
    await rec.reconcile(("media", "b"))
    created = [c[1] for c in kube.calls if c[0] == "create_job"]
    assert created == [resource_job_name(first), resource_job_name(second)]
    await rec.close()


async def test_the_minutely_resync_skips_finished_resources_but_every_tenth_takes_all() -> None:
    settings = OperatorSettings(manage_worker_rbac=False)
    done = resource("done", "u-1", 1, phase="Succeeded")
    failed = resource("failed", "u-2", 2, phase="Failed")
    busy = resource("busy", "u-3", 3)
    busy["status"] = {"phase": "Running", "jobName": resource_job_name(busy)}
    waiting = resource("waiting", "u-4", 4)
    vpjs = {("media", r["metadata"]["name"]): [r] for r in (done, failed, busy, waiting)}
    rec = Reconciler(settings, FakeKube(), Metrics(), clock=lambda: NOW)  # type: ignore[arg-type]
    rec.bind(vpjs, {("media", "busy"): [running_job(busy, settings)]}, {})
    rec._seed()
    assert rec.resync_keys(everything=False) == [("media", "busy"), ("media", "waiting")]
    assert rec.resync_keys(everything=True) == list(vpjs)
    await rec.close()
