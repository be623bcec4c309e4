"""A spec that failed validation runs once it is fixed (issue 29 item 5's worst survivor).

``is_finished`` keeps a resource that failed *before any Job existed* finished only for the
generation it saw: editing the spec makes a new generation, which must be validated again and,
valid now, start its Job. A mutant that keeps such a run finished whatever the generation (or
that re-fails the unchanged spec on every pass) lived because no test edited a spec after it
failed validation; these do, through the pure core and through the reconciler.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from tests.operatorunit.fakekube import FakeKube
from videojobs_operator.decide import Context, decide, is_finished, wants_to_start
from videojobs_operator.manifest import resource_job_name, validate_spec
from videojobs_operator.metrics import Metrics
from videojobs_operator.reconcile import Reconciler
from videojobs_operator.settings import OperatorSettings

NOW = dt.datetime(2026, 11, 25, 14, 0, 0, tzinfo=dt.UTC)
KEY = ("media", "lecture")


def resource() -> dict[str, Any]:
    return {
        "apiVersion": "videojobs.io/v1alpha1",
        "kind": "VideoProcessingJob",
        "metadata": {
            "name": "lecture",
            "namespace": "media",
            "uid": "u-1",
            "generation": 1,
            "creationTimestamp": "2026-11-25T13:00:00Z",
        },
        "spec": {
            "source": {"url": "https://example.com/v.mp4"},
            "segments": [{"start": 0, "end": 5, "title": "Intro"}],
            "output": {"storage": {"pvc": {"claimName": "clips"}}},
            "backoffLimit": 99,  # over the schema's maximum: invalid
        },
        "status": {},
    }


def fix_the_spec(body: dict[str, Any]) -> None:
    """The user's edit: a valid backoffLimit; the API server bumps the generation."""
    body["spec"]["backoffLimit"] = 2
    body["metadata"]["generation"] += 1


def apply(body: dict[str, Any], patch: dict[str, Any]) -> None:
    """A JSON merge patch of the status, as the API server applies it."""
    status = body.setdefault("status", {})
    for key, value in patch.items():
        if value is None:
            status.pop(key, None)
        else:
            status[key] = value


def conditions(body: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {c["type"]: c for c in body["status"].get("conditions") or []}


def test_an_invalid_spec_fixed_by_an_edit_runs_pure_core() -> None:
    body = resource()
    settings = OperatorSettings()
    assert wants_to_start(body)
    model, problems = validate_spec(body["spec"])
    assert model is None and problems
    failed = decide(body, None, [], Context(now=NOW, settings=settings, problems=problems))
    apply(body, failed.status)
    assert body["status"]["phase"] == "Failed"
    assert body["status"]["error"]["reason"] == "InvalidSpec"
    assert body["status"].get("jobName") is None, "it failed before any Job existed"

    # Unchanged, it stays failed: no new validation, no Job, no repeated Warning.
    assert is_finished(body) and not wants_to_start(body)
    again = decide(body, None, [], Context(now=NOW, settings=settings, admitted=True))
    assert not again.create_job and again.events == [] and again.status == {}

    # Fixed, the new generation is a run that wants to start, and starts when admitted.
    fix_the_spec(body)
    assert not is_finished(body), "a fixed spec must be looked at again"
    assert wants_to_start(body)
    model, problems = validate_spec(body["spec"])
    assert model is not None and not problems
    later = NOW + dt.timedelta(minutes=1)
    started = decide(body, None, [], Context(now=later, settings=settings, admitted=True))
    assert started.create_job
    apply(body, started.status)
    assert body["status"]["phase"] == "Pending"
    assert body["status"]["jobName"] == resource_job_name(body)
    assert body["status"]["observedGeneration"] == 2
    assert conditions(body)["Accepted"]["status"] == "True"
    assert "Failed" not in conditions(body), "the failed generation's condition is dropped"


async def test_an_invalid_spec_fixed_by_an_edit_runs_through_the_reconciler() -> None:
    kube = FakeKube()
    body = resource()
    rec = Reconciler(
        OperatorSettings(manage_worker_rbac=False),
        kube,  # type: ignore[arg-type]
        Metrics(),
        clock=lambda: NOW,
    )
    rec.bind({KEY: [body]}, {}, {})

    await rec.reconcile(KEY)
    for _, patch in kube.status_patches:
        apply(body, patch)
    assert body["status"]["phase"] == "Failed"
    assert body["status"]["error"]["reason"] == "InvalidSpec"
    assert [r for _, r, _ in kube.events] == ["InvalidSpec"]

    # The status event comes back through the watch: nothing more to do.
    written = len(kube.status_patches)
    await rec.reconcile(KEY)
    assert len(kube.status_patches) == written and len(kube.events) == 1
    assert not [c for c in kube.calls if c[0] == "create_job"]

    fix_the_spec(body)
    await rec.reconcile(KEY)
    assert ("create_job", resource_job_name(body)) in kube.calls, "the fixed spec runs"
    for _, patch in kube.status_patches[written:]:
        apply(body, patch)
    assert body["status"]["phase"] == "Pending"
    assert body["status"]["jobName"] == resource_job_name(body)
    assert conditions(body)["Accepted"]["status"] == "True"
    await rec.close()
