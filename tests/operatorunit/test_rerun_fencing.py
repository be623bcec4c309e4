"""A re-run starts clean: the previous run's manifestUri cannot declare the new run done, and
the new run's worker fences its status writes by the run's Job name."""

from __future__ import annotations

import json

from tests.operatorunit.test_decide_pure import ctx, resource
from videojobs.models import VideoProcessingJobSpec, WorkerInput
from videojobs_operator.decide import decide
from videojobs_operator.manifest import build_input_configmap, build_job, resource_job_name
from videojobs_operator.settings import OperatorSettings


def finished_then_rerun() -> dict:
    first = resource()
    done = {
        "phase": "Succeeded",
        "jobName": resource_job_name(first),
        "manifestUri": "pvc://clips/out/manifest.json",
        "observedGeneration": 1,
        "completionTime": "2026-11-25T13:30:00Z",
        "notes": ["knowledge_points[0]: end clamped to the source end"],
    }
    rerun = resource(status=done, rerunToken="again-1")
    rerun["metadata"]["generation"] = 2
    return rerun


def test_a_rerun_clears_the_previous_manifest_uri() -> None:
    rerun = finished_then_rerun()
    started = decide(rerun, None, [], ctx(admitted=True))
    assert started.create_job
    assert "manifestUri" in started.status and started.status["manifestUri"] is None
    queued = decide(rerun, None, [], ctx(admitted=False))
    assert "manifestUri" in queued.status and queued.status["manifestUri"] is None


def test_a_rerun_clears_the_previous_runs_notes() -> None:
    """status.notes are the run's own (the worker writes them once it planned): a new run,
    started or queued, does not show the previous run's."""
    rerun = finished_then_rerun()
    started = decide(rerun, None, [], ctx(admitted=True))
    assert "notes" in started.status and started.status["notes"] is None
    queued = decide(rerun, None, [], ctx(admitted=False))
    assert "notes" in queued.status and queued.status["notes"] is None


def test_the_new_runs_job_disappearing_is_not_success_from_the_old_manifest() -> None:
    rerun = finished_then_rerun()
    started = decide(rerun, None, [], ctx(admitted=True))
    status = {**rerun["status"], **started.status}
    status = {k: v for k, v in status.items() if v is not None}
    gone = decide({**rerun, "status": status}, None, [], ctx(job_missing=True))
    assert gone.status["phase"] == "Failed" and gone.status["error"]["reason"] == "JobDeleted"


def test_the_worker_input_names_the_run_it_may_write() -> None:
    rerun = finished_then_rerun()
    spec = VideoProcessingJobSpec.model_validate(rerun["spec"])
    job = build_job(rerun, spec, OperatorSettings())
    created = {**job, "metadata": {**job["metadata"], "uid": "job-uid"}}
    cm = build_input_configmap(rerun, spec, OperatorSettings(), created)
    data = WorkerInput.model_validate(json.loads(cm["data"]["input.json"]))
    assert data.resource is not None
    assert data.resource.job_name == job["metadata"]["name"] == resource_job_name(rerun)
