"""The VideoProcessingJob index: finished runs are kept without their spec's payload."""

from __future__ import annotations

import copy
import datetime as dt
from typing import Any

import pytest

from videojobs_operator.decide import Context, decide, wants_to_start
from videojobs_operator.handlers import LAST_APPLIED, vpj_index
from videojobs_operator.manifest import resource_job_name
from videojobs_operator.settings import OperatorSettings

NOW = dt.datetime(2026, 11, 25, 14, 0, 0, tzinfo=dt.UTC)


def body(status: dict[str, Any] | None = None, **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "videojobs.io/v1alpha1",
        "kind": "VideoProcessingJob",
        "metadata": {
            "name": "lecture",
            "namespace": "media",
            "uid": "u-1",
            "generation": 1,
            "creationTimestamp": "2026-11-25T13:00:00Z",
            "annotations": {LAST_APPLIED: '{"spec": "big"}', "team": "a"},
            "managedFields": [{"manager": "kubectl"}],
        },
        "spec": {
            "source": {"url": "https://example.com/v.mp4"},
            "segments": [{"start": 0, "end": 5, "title": "Intro"}] * 50,
            "transcript": {"inline": "WEBVTT\n\n" + "00:00.000 --> 00:01.000\nword\n\n" * 500},
            "output": {"storage": {"pvc": {"claimName": "clips"}}},
            **spec,
        },
        "status": status or {},
    }


def finished(phase: str = "Succeeded", **spec: Any) -> dict[str, Any]:
    b = body(**spec)
    b["status"] = {
        "phase": phase,
        "jobName": resource_job_name(b),
        "observedGeneration": 1,
        "completionTime": "2026-11-25T13:30:00Z",
    }
    return b


def indexed(b: dict[str, Any]) -> dict[str, Any]:
    (value,) = vpj_index(namespace="media", name="lecture", body=b).values()
    return value  # type: ignore[no-any-return]


@pytest.mark.parametrize("phase", ["Succeeded", "Failed", "Cancelled"])
def test_a_finished_run_keeps_only_what_ends_it_or_starts_the_next(phase: str) -> None:
    b = finished(phase, rerunToken="r1", ttlSecondsAfterFinished=3600)
    slim = indexed(b)
    assert slim["spec"] == {"rerunToken": "r1", "ttlSecondsAfterFinished": 3600}
    assert slim["metadata"]["annotations"] == {"team": "a"}
    assert "managedFields" not in slim["metadata"]
    assert slim["status"] == b["status"]
    settings = OperatorSettings()
    ctx = Context(now=NOW, settings=settings)
    full = decide(b, None, [], ctx)
    assert decide(slim, None, [], ctx) == full
    assert wants_to_start(slim) is wants_to_start(b) is False
    # the TTL ran out: both delete the resource
    late = Context(now=NOW + dt.timedelta(hours=2), settings=settings)
    assert decide(slim, None, [], late) == decide(b, None, [], late)
    assert decide(slim, None, [], late).delete_resource


def test_a_new_run_of_a_finished_resource_comes_in_whole() -> None:
    b = finished()
    b["spec"]["rerunToken"] = "again"  # the user asks for another run
    slim = indexed(b)
    assert slim["spec"] == b["spec"], "not finished any more: the pass needs the whole spec"
    assert wants_to_start(slim)


def test_waiting_and_running_resources_keep_their_spec() -> None:
    for status in ({}, {"phase": "Queued"}, {"phase": "Running", "jobName": "x"}):
        b = body(copy.deepcopy(status))
        assert indexed(b)["spec"] == b["spec"]
