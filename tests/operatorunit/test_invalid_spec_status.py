"""What an invalid spec's status says (issue 29 item 5: survivors of ``.ci/mutation decide``).

The Accepted, Progressing, Complete and Failed conditions all speak for the generation that was
checked, the messages are bounded (a spec can have many problems), no Job is named, and one
Warning event carries the reason.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from videojobs.errors import Problem
from videojobs_operator.decide import Context, Event, decide, is_finished, wants_to_start
from videojobs_operator.manifest import resource_job_name
from videojobs_operator.settings import OperatorSettings

NOW = dt.datetime(2026, 11, 25, 14, 0, 0, tzinfo=dt.UTC)


def resource(generation: int, status: dict[str, Any] | None) -> dict[str, Any]:
    return {
        "apiVersion": "videojobs.io/v1alpha1",
        "kind": "VideoProcessingJob",
        "metadata": {
            "name": "lecture",
            "namespace": "media",
            "uid": "u-1",
            "generation": generation,
        },
        "spec": {
            "source": {"url": "https://example.com/v.mp4"},
            "segments": [{"start": 0, "end": 5, "title": "Intro"}],
            "output": {"storage": {"pvc": {"claimName": "clips"}}},
        },
        "status": status,
    }


def test_an_invalid_spec_fails_every_condition_for_the_generation_it_saw() -> None:
    before = {  # accepted at generation 2, the spec edited since (generation 3)
        "observedGeneration": 2,
        "conditions": [
            {
                "type": "Accepted",
                "status": "True",
                "reason": "Valid",
                "message": "",
                "lastTransitionTime": "2026-11-25T12:00:00Z",
                "observedGeneration": 2,
            }
        ],
    }
    problems = [Problem("spec.backoffLimit", "must be at most 10")]
    d = decide(
        resource(3, before),
        None,
        [],
        Context(now=NOW, settings=OperatorSettings(), problems=problems),
    )
    assert not d.create_job
    assert d.status["phase"] == "Failed" and d.status["observedGeneration"] == 3
    assert "jobName" in d.status and d.status["jobName"] is None
    conditions = {c["type"]: c for c in d.status["conditions"]}
    assert list(conditions) == ["Accepted", "Progressing", "Complete", "Failed"]
    accepted = conditions["Accepted"]
    assert (accepted["status"], accepted["reason"]) == ("False", "InvalidSpec")
    assert accepted["observedGeneration"] == 3
    assert accepted["lastTransitionTime"] == "2026-11-25T14:00:00Z"  # it turned False now
    assert accepted["message"] == str(problems[0])
    assert all(c["observedGeneration"] == 3 for c in conditions.values())
    assert d.status["error"] == {
        "category": "InvalidSpec",
        "reason": "InvalidSpec",
        "message": str(problems[0]),
        "permanent": True,
    }
    assert d.events == [Event("Warning", "InvalidSpec", str(problems[0]))]


def test_many_problems_are_reported_within_bounded_messages() -> None:
    problems = [Problem(f"spec.segments[{i}].title", "x" * 100) for i in range(50)]
    for status in (None, {}):
        d = decide(
            resource(1, status),
            None,
            [],
            Context(now=NOW, settings=OperatorSettings(), problems=problems),
        )
        text = "; ".join(str(p) for p in problems)
        assert d.status["message"] == text[:1024]
        assert d.status["error"]["message"] == text[:2048]
        accepted = next(c for c in d.status["conditions"] if c["type"] == "Accepted")
        assert accepted["message"] == text[:1024]
        assert [e.message for e in d.events] == [text[:1024]]


def test_a_run_that_failed_in_its_job_stays_failed_when_the_spec_is_edited() -> None:
    """Only a failure *before* any Job (an invalid spec) is looked at again on a new generation;
    a run whose Job failed needs a new rerunToken to run again."""
    r = resource(2, None)
    r["status"] = {"phase": "Failed", "jobName": resource_job_name(r), "observedGeneration": 1}
    assert is_finished(r)
    assert not wants_to_start(r)
    r["status"] = {"phase": "Failed", "jobName": None, "observedGeneration": 1}
    assert not is_finished(r) and wants_to_start(r)
