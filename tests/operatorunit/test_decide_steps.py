"""Each step of the operator's state machine, written out in full: the status patch, the Events
and the actions of every path of :func:`decide` and of the reconciler's Job-create decisions.

The patches are compared whole (conditions, times and all), so a step that writes one field
too many or too few, a wrong reason, or a condition in the wrong order fails here (issue 29:
the mutation score of ``decide.py``)."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from tests.operatorunit.test_decide_pure import NOW, ctx, job, pod, resource, running_status
from videojobs.errors import Problem
from videojobs_operator.decide import (
    Decision,
    Event,
    aggregate_progress,
    create_failure_reason,
    decide,
    drop_condition,
    foreign_job_decision,
    fresh_shard_progress,
    is_finished,
    job_create_retry_decision,
    job_rejected_decision,
    quota_exceeded,
    set_condition,
    ttl_seconds,
    wants_to_start,
)
from videojobs_operator.manifest import ANNOTATION_SHARDS, resource_job_name
from videojobs_operator.observe import WAITING_FOR_POD
from videojobs_operator.settings import OperatorSettings

T = "2026-11-25T14:00:00Z"  # NOW, as the status writes it
EARLIER = "2026-11-25T13:00:00Z"
JOB = resource_job_name(resource())


def cond(kind: str, status: str, reason: str, message: str, when: str = T, gen: int = 1) -> dict:
    return {
        "type": kind,
        "status": status,
        "reason": reason,
        "message": message,
        "lastTransitionTime": when,
        "observedGeneration": gen,
    }


ACCEPTED_EARLIER = cond("Accepted", "True", "Validated", "the spec is valid", EARLIER)


def running(**extra: Any) -> dict[str, Any]:
    """A resource whose run's Job runs (Accepted and Progressing since EARLIER)."""
    r = resource()
    r["status"] = running_status(r) | {
        "attempts": 1,
        "stage": "Cutting",
        "message": "the worker is running",
        "conditions": [
            ACCEPTED_EARLIER,
            cond("Progressing", "True", "Running", "the worker is running", EARLIER),
        ],
        **extra,
    }
    return r


def complete_job(**status: Any) -> dict[str, Any]:
    done = {"type": "Complete", "status": "True", "lastTransitionTime": "2026-11-25T13:58:00Z"}
    return job([done], succeeded=1, **status)


def failed_job(reason: str = "PodFailurePolicy", **status: Any) -> dict[str, Any]:
    failed = {"type": "Failed", "status": "True", "reason": reason}
    return job([failed | {"lastTransitionTime": "2026-11-25T13:57:00Z"}], failed=1, **status)


def sharded_job(shards: int = 2, **status: Any) -> dict[str, Any]:
    j = job(**status)
    j["metadata"]["annotations"] = {ANNOTATION_SHARDS: str(shards)}
    return j


# Conditions -----------------------------------------------------------------------------------


def test_conditions_keep_a_fixed_order_and_the_others_untouched() -> None:
    other = {"type": "Custom", "status": "True"}
    conds = set_condition([other], "Failed", "True", "R", "m", T, 3)
    conds = set_condition(conds, "Progressing", "False", "R", "m", T, 3)
    conds = set_condition(conds, "Complete", "False", "R", "m", T, None)
    conds = set_condition(conds, "Accepted", "True", "V", "ok", T, 3)
    assert [c["type"] for c in conds] == ["Accepted", "Progressing", "Complete", "Failed", "Custom"]
    assert conds[-1] == other and conds[-1] is not other
    assert conds[2] == cond("Complete", "False", "R", "m", T, None) | {"observedGeneration": None}
    assert drop_condition(conds, "Complete") == [conds[0], conds[1], conds[3], conds[4]]


def test_a_condition_without_a_transition_time_gets_now_while_unchanged() -> None:
    old = {"type": "Progressing", "status": "True", "reason": "Queued", "message": "q"}
    assert set_condition([old], "Progressing", "True", "JobCreated", "w", T, 2) == [
        cond("Progressing", "True", "JobCreated", "w", T, 2)
    ]


# What needs a Job -----------------------------------------------------------------------------


def test_wants_to_start_only_a_live_unfinished_run_without_its_job_recorded() -> None:
    fresh = resource()
    assert wants_to_start(fresh)
    assert not wants_to_start(resource(cancel=True))
    deleting = resource()
    deleting["metadata"]["deletionTimestamp"] = T
    assert not wants_to_start(deleting)
    recorded = running()
    assert not wants_to_start(recorded)
    assert wants_to_start(running(phase=None))
    assert wants_to_start(running(jobName="an-earlier-run"))
    no_status = resource()
    del no_status["status"]
    del no_status["spec"]["segments"]
    assert wants_to_start(no_status)


def test_a_cancelled_or_failed_run_is_finished_only_for_its_own_job() -> None:
    r = running(phase="Cancelled")
    assert is_finished(r)
    r["status"]["jobName"] = None
    assert is_finished(r)  # cancelled before its Job existed
    assert not is_finished(running(phase="Failed", jobName="an-earlier-run"))
    assert not is_finished(running(phase="Running"))
    no_meta = running(phase="Failed", jobName=None)
    no_meta["metadata"] = {"name": "lecture", "uid": no_meta["metadata"]["uid"]}
    assert not is_finished(no_meta)  # no generation seen: a generation-less resource looks again


def test_ttl_comes_from_the_spec_before_the_operator_default() -> None:
    s = OperatorSettings(default_ttl_seconds_after_finished=60)
    assert ttl_seconds(resource(ttlSecondsAfterFinished="30"), s) == 30
    assert ttl_seconds(resource(ttlSecondsAfterFinished=0), s) == 0
    assert ttl_seconds(resource(), s) == 60
    no_spec = resource()
    no_spec["spec"] = None
    assert ttl_seconds(no_spec, OperatorSettings()) is None


# Finished runs --------------------------------------------------------------------------------


def test_a_finished_run_stops_a_job_still_running_and_records_the_new_generation() -> None:
    r = running(phase="Cancelled", completionTime="2026-11-25T13:59:00Z")
    r["metadata"]["generation"] = 4
    d = decide(r, job(active=1), [], ctx())
    assert d == Decision(status={"observedGeneration": 4}, delete_job=True)
    assert decide(r, failed_job(), [], ctx()) == Decision(status={"observedGeneration": 4})


def test_a_finished_run_is_deleted_exactly_when_its_ttl_ends() -> None:
    r = running(phase="Succeeded", completionTime="2026-11-25T13:59:00Z")
    s = OperatorSettings(default_ttl_seconds_after_finished=60)
    assert decide(r, None, [], ctx(settings=s)) == Decision(delete_resource=True)
    before = decide(r, None, [], ctx(settings=s, now=NOW - dt.timedelta(seconds=1)))
    assert before == Decision(requeue_after=1.0)
    no_time = running(phase="Succeeded")
    assert decide(no_time, None, [], ctx(settings=s)) == Decision()


def test_a_deleted_resource_gets_no_decision_even_when_invalid() -> None:
    r = resource()
    r["metadata"]["deletionTimestamp"] = T
    assert decide(r, None, [], ctx(problems=[Problem("spec", "bad")], admitted=True)) == Decision()


# An invalid spec ------------------------------------------------------------------------------


def test_an_invalid_spec_fails_without_a_job_with_every_field_written() -> None:
    r = running(error={"reason": "Old"}, completionTime=None)
    problems = [Problem("spec.segments", "empty"), Problem("transcript", "no cue", line=3)]
    d = decide(r, job(active=1), [], ctx(problems=problems))
    text = "spec.segments: empty; transcript, line 3: no cue"
    assert d == Decision(
        status={
            "phase": "Failed",
            "stage": None,
            "message": text,
            "conditions": [
                cond("Accepted", "False", "InvalidSpec", text),
                cond("Progressing", "False", "InvalidSpec", text),
                cond("Complete", "False", "InvalidSpec", text),
                cond("Failed", "True", "InvalidSpec", text),
            ],
            "completionTime": T,
            "error": {
                "category": "InvalidSpec",
                "reason": "InvalidSpec",
                "message": text,
                "permanent": True,
            },
            "jobName": None,
        },
        events=[Event("Warning", "InvalidSpec", text)],
    )


def test_a_long_invalid_spec_report_is_cut_to_the_status_limits() -> None:
    problems = [Problem(f"spec.segments[{i}]", "x" * 90) for i in range(40)]
    full = "; ".join(str(p) for p in problems)
    d = decide(resource(), None, [], ctx(problems=problems))
    assert d.status["message"] == full[:1024]
    assert d.status["error"]["message"] == full[:2048]
    assert d.status["conditions"][0]["message"] == full[:1024]
    assert d.events == [Event("Warning", "InvalidSpec", full[:1024])]


# Cancel ---------------------------------------------------------------------------------------


def test_cancel_while_running_clears_stage_and_error_and_drops_complete_and_failed() -> None:
    r = running(error={"reason": "Network"})
    r["spec"]["cancel"] = True
    r["status"]["conditions"] += [
        cond("Complete", "False", "X", "x"),
        cond("Failed", "False", "X", "x"),
    ]
    message = "cancelled by spec.cancel; clips already published are kept"
    d = decide(r, job(active=1), [pod("Running")], ctx())
    assert d == Decision(
        status={
            "phase": "Cancelled",
            "stage": None,
            "message": message,
            "conditions": [ACCEPTED_EARLIER, cond("Progressing", "False", "Cancelled", message)],
            "completionTime": T,
            "error": None,
        },
        events=[Event("Normal", "Cancelled", "cancelled; the Job was removed")],
        delete_job=True,
    )


def test_cancel_before_the_job_exists_deletes_nothing() -> None:
    d = decide(resource(cancel=True), None, [], ctx(admitted=True))
    assert d.events == [Event("Normal", "Cancelled", "cancelled before it started")]
    assert not d.delete_job and not d.create_job
    assert d.status["observedGeneration"] == 1 and d.status["completionTime"] == T


# Before the Job -------------------------------------------------------------------------------


def test_a_vanished_job_whose_worker_published_the_manifest_succeeded() -> None:
    r = running(manifestUri="s3://clips/m.json", completionTime="2026-11-25T13:59:30Z")
    message = "all clips published (the Job is gone)"
    d = decide(r, None, [], ctx(job_missing=True))
    assert d == Decision(
        status={
            "phase": "Succeeded",
            "stage": "Finished",
            "message": message,
            "conditions": [
                ACCEPTED_EARLIER,
                cond("Progressing", "False", "Succeeded", message),
                cond("Complete", "True", "Succeeded", message),
            ],
        },
        events=[Event("Normal", "Succeeded", message)],
    )


def test_a_vanished_job_with_a_manifest_and_an_error_failed() -> None:
    r = running(manifestUri="s3://clips/m.json", error={"reason": "Storage"})
    message = (
        f"the Job {JOB} was deleted before it finished; set a new spec.rerunToken to run again"
    )
    d = decide(r, None, [], ctx(job_missing=True, admitted=True))
    assert d == Decision(
        status={
            "phase": "Failed",
            "stage": None,
            "message": message,
            "conditions": [
                ACCEPTED_EARLIER,
                cond("Progressing", "False", "JobDeleted", message),
                cond("Complete", "False", "JobDeleted", message),
                cond("Failed", "True", "JobDeleted", message),
            ],
            "completionTime": T,
            "error": {
                "category": "JobDeleted",
                "reason": "JobDeleted",
                "message": message,
                "permanent": True,
            },
        },
        events=[Event("Warning", "JobDeleted", message)],
    )


def test_a_missing_job_of_an_earlier_run_starts_the_new_run() -> None:
    r = running(jobName="an-earlier-run")
    d = decide(r, None, [], ctx(job_missing=True, admitted=True))
    assert d.create_job and d.status["jobName"] == JOB


def test_a_run_waiting_for_its_input_says_why_once_and_looks_again_in_15s() -> None:
    why = "the transcript ConfigMap cm is missing"
    r = resource()
    d = decide(r, None, [], ctx(waiting_for=why, admitted=True))
    assert d == Decision(
        status={
            "phase": "Pending",
            "message": why,
            "conditions": [cond("Accepted", "False", "Waiting", why)],
            "observedGeneration": 1,
        },
        events=[Event("Warning", "Waiting", why)],
        requeue_after=15.0,
    )
    again = decide(resource(status=d.status), None, [], ctx(waiting_for=why))
    assert again == Decision(requeue_after=15.0)
    other = decide(resource(status=d.status), None, [], ctx(waiting_for="another reason"))
    assert other.events == [Event("Warning", "Waiting", "another reason")]


def test_an_admitted_run_starts_with_a_fresh_status_and_one_event() -> None:
    d = decide(resource(), None, [], ctx(admitted=True))
    assert d == Decision(
        status={
            "phase": "Pending",
            "stage": "Starting",
            "message": WAITING_FOR_POD,
            "observedGeneration": 1,
            "conditions": [
                cond("Accepted", "True", "Validated", "the spec is valid"),
                cond("Progressing", "True", "JobCreated", WAITING_FOR_POD),
            ],
            "jobName": JOB,
            "attempts": 1,
            "startTime": T,
        },
        events=[Event("Normal", "JobCreated", f"created Job {JOB}")],
        create_job=True,
    )


def test_a_rerun_clears_the_earlier_runs_live_fields_and_conditions() -> None:
    r = running(
        phase="Failed",
        jobName="an-earlier-run",
        completionTime=EARLIER,
        progress={"percent": 40},
        error={"reason": "Network"},
        manifestUri="s3://old",
    )
    r["status"]["conditions"] += [
        cond("Complete", "False", "X", "x"),
        cond("Failed", "True", "X", "x"),
    ]
    d = decide(r, None, [], ctx(admitted=True))
    assert d.status == {
        "phase": "Pending",
        "stage": "Starting",
        "message": WAITING_FOR_POD,
        "conditions": [
            ACCEPTED_EARLIER,
            cond("Progressing", "True", "JobCreated", WAITING_FOR_POD, EARLIER),
        ],
        "jobName": JOB,
        "startTime": T,
        "completionTime": None,
        "progress": None,
        "error": None,
        "manifestUri": None,
    }
    assert d.create_job and len(d.events) == 1


def test_a_sharded_run_starts_with_one_fresh_entry_per_shard() -> None:
    r = resource(parallelism=2, segments=[{"start": 0, "end": 5}, {"start": 5, "end": 9}])
    r["status"] = {"shardProgress": {"0": {"percent": 80}, "2": {"percent": 5}, "x": 1}}
    d = decide(r, None, [], ctx(admitted=True))
    entry = {
        "stage": "Starting",
        "percent": 0,
        "segmentsDone": 0,
        "segmentsTotal": 0,
        "bytesDone": None,
        "updatedAt": None,
    }
    assert d.status["shardProgress"] == {"x": None, "2": None, "0": entry, "1": entry}
    assert d.status["shards"] == {
        "count": 2,
        "succeeded": 0,
        "completedIndexes": "",
        "failedIndexes": "",
    }


def test_an_unsharded_rerun_removes_the_earlier_runs_shard_fields() -> None:
    r = resource(status={"shardProgress": {"0": {}}, "shards": {"count": 2}})
    d = decide(r, None, [], ctx(admitted=True))
    assert d.status["shardProgress"] is None and d.status["shards"] is None
    plain = decide(resource(), None, [], ctx(admitted=True))
    assert "shardProgress" not in plain.status and "shards" not in plain.status


def test_fresh_shard_progress_of_one_shard_removes_the_map() -> None:
    assert fresh_shard_progress(1, {"0": {}}) is None
    assert fresh_shard_progress(0, None) is None
    assert fresh_shard_progress(2, None) == {
        "0": fresh_shard_progress(2, {})["0"],  # type: ignore[index]
        "1": fresh_shard_progress(2, {})["1"],  # type: ignore[index]
    }
    three = fresh_shard_progress(3, {"3": {}, "2": {}})
    assert three is not None and three["3"] is None and three["2"]["stage"] == "Starting"


def test_a_queued_run_waits_since_it_first_queued_with_one_event() -> None:
    d = decide(resource(), None, [], ctx())
    message = "waiting for a free slot"
    assert d == Decision(
        status={
            "phase": "Queued",
            "message": message,
            "observedGeneration": 1,
            "conditions": [
                cond("Accepted", "True", "Validated", "the spec is valid"),
                cond("Progressing", "True", "Queued", message),
            ],
            "queuedAt": T,
        },
        events=[Event("Normal", "Queued", message)],
    )
    r = resource(status=d.status | {"queuedAt": EARLIER})
    later = decide(r, None, [], ctx(queue_limit="2 running"))
    assert later == Decision(
        status={
            "message": "waiting for a free slot (2 running)",
            "conditions": [
                cond("Accepted", "True", "Validated", "the spec is valid"),
                cond("Progressing", "True", "Queued", "waiting for a free slot (2 running)"),
            ],
        }
    )


def test_a_rerun_that_queues_forgets_the_earlier_runs_job_and_manifest() -> None:
    r = running(phase="Succeeded", jobName="an-earlier-run", completionTime=EARLIER)
    r["status"]["manifestUri"] = "s3://old"
    d = decide(r, None, [], ctx())
    assert d.status["jobName"] is None
    assert d.status["completionTime"] is None and d.status["manifestUri"] is None
    assert d.status["phase"] == "Queued" and d.status["queuedAt"] == T
    assert d.events == [Event("Normal", "Queued", "waiting for a free slot")]


# Following the Job ----------------------------------------------------------------------------


def test_a_completed_job_succeeds_with_its_completion_time_and_attempts() -> None:
    r = running(segmentsSummary="3 of 3", error=None)
    r["status"]["conditions"].append(cond("Failed", "False", "X", "x"))
    d = decide(r, complete_job(completionTime="2026-11-25T13:58:30Z"), [pod("Succeeded")], ctx())
    message = "3 of 3 clips published"
    assert d == Decision(
        status={
            "phase": "Succeeded",
            "stage": "Finished",
            "message": message,
            "conditions": [
                ACCEPTED_EARLIER,
                cond("Progressing", "False", "Succeeded", message),
                cond("Complete", "True", "Succeeded", message),
            ],
            "completionTime": "2026-11-25T13:58:30Z",
        },
        events=[Event("Normal", "Succeeded", message)],
    )


def test_a_completed_job_without_a_completion_time_uses_its_condition_and_counts_pods() -> None:
    r = running()
    del r["status"]["attempts"]
    pods = [pod("Failed", exit_code=20, created=EARLIER), pod("Succeeded")]
    d = decide(r, complete_job(), pods, ctx())
    assert d.status["completionTime"] == "2026-11-25T13:58:00Z"
    assert d.status["attempts"] == 2
    assert d.status["message"] == "all clips published"


def test_a_completed_sharded_job_writes_its_shards_and_starts_the_merge() -> None:
    r = running(shardProgress={"0": {"stage": "Finished", "percent": 100}})
    j = sharded_job(completedIndexes="0,1", succeeded=2)
    j["status"]["conditions"] = [{"type": "Complete", "status": "True"}]
    d = decide(r, j, [], ctx())
    assert d.status["shards"] == {
        "count": 2,
        "succeeded": 2,
        "completedIndexes": "0-1",
        "failedIndexes": "",
    }
    assert d.status["progress"] == {
        "stage": "Starting",
        "percent": 50,
        "segmentsDone": 0,
        "segmentsTotal": 0,
        "message": "2/2 shards finished",
    }
    # every index complete: the run is not finished yet, its merge step starts (issue 28)
    assert d.create_merge_job and not d.create_job
    assert d.status["stage"] == "Uploading" and "completionTime" not in d.status
    assert d.status["conditions"][-1]["reason"] == "Merging"


def test_a_failed_job_fails_the_run_with_its_exit_and_keeps_a_finished_job() -> None:
    r = running()
    d = decide(r, failed_job(), [pod("Failed", exit_code=12)], ctx())
    message = "the video is private"
    assert d == Decision(
        status={
            "phase": "Failed",
            "stage": None,
            "message": message,
            "conditions": [
                ACCEPTED_EARLIER,
                cond("Progressing", "False", "Private", message),
                cond("Complete", "False", "Private", message),
                cond("Failed", "True", "Private", message),
            ],
            "completionTime": "2026-11-25T13:57:00Z",
            "error": {
                "category": "Private",
                "reason": "Private",
                "message": message,
                "exitCode": 12,
                "permanent": True,
            },
        },
        events=[Event("Warning", "Private", message)],
    )


def test_a_failed_sharded_job_names_the_shard_and_updates_shards() -> None:
    r = running(attempts=2)
    j = sharded_job(failedIndexes="1", completedIndexes="0", failed=1, succeeded=1)
    j["status"]["conditions"] = [{"type": "Failed", "status": "True", "reason": "FailedIndexes"}]
    p = pod("Failed", exit_code=11)
    p["metadata"]["annotations"] = {"batch.kubernetes.io/job-completion-index": "1"}
    d = decide(r, j, [p], ctx())
    assert d.status["message"] == "shard 1 of 2: the video is unavailable (removed or HTTP 404/410)"
    assert d.status["shards"]["failedIndexes"] == "1" and "attempts" not in d.status
    assert not d.delete_job


def test_a_pending_run_fails_when_its_job_never_made_a_pod() -> None:
    r = running(phase="Pending", stage="Starting")
    j = job(active=0)
    j["metadata"]["creationTimestamp"] = "2026-11-25T13:49:00Z"
    s = OperatorSettings(pending_timeout_seconds=600)
    message = (
        "the Job controller created no worker pod for Job j (FailedCreate: a ResourceQuota or "
        "LimitRange, an admission policy or webhook, a missing ServiceAccount); see kubectl "
        "describe job j (for more than 600s)"
    )
    d = decide(r, j, [], ctx(settings=s))
    assert d == Decision(
        status={
            "phase": "Failed",
            "stage": None,
            "message": message,
            "conditions": [
                ACCEPTED_EARLIER,
                cond("Progressing", "False", "PodNotCreated", message),
                cond("Complete", "False", "PodNotCreated", message),
                cond("Failed", "True", "PodNotCreated", message),
            ],
            "completionTime": T,
            "error": {
                "category": "PodNotCreated",
                "reason": "PodNotCreated",
                "message": message,
                "permanent": True,
            },
        },
        events=[Event("Warning", "PodNotCreated", message)],
        delete_job=True,
    )
    # one second before the timeout it still waits, and looks again then
    early = decide(r, j, [], ctx(settings=s, now=NOW - dt.timedelta(seconds=61)))
    assert early.requeue_after == pytest.approx(1.0) and not early.delete_job
    assert early.status == {
        "message": WAITING_FOR_POD,
        "conditions": [
            ACCEPTED_EARLIER,
            cond("Progressing", "True", "JobCreated", WAITING_FOR_POD, EARLIER),
        ],
    }


def test_a_stuck_pod_times_out_with_its_own_reason_and_a_cut_message() -> None:
    r = running(phase="Pending")
    p = pod("Pending", waiting="ErrImagePull", created="2026-11-25T13:40:00Z")
    p["status"]["containerStatuses"][0]["state"]["waiting"]["message"] = "y" * 1100
    d = decide(r, job(active=1), [p], ctx(settings=OperatorSettings(pending_timeout_seconds=60)))
    assert d.status["error"]["reason"] == "ErrImagePull"
    assert d.status["message"] == f"pod p-00 waiting: ErrImagePull: {'y' * 1100}"[:1024]
    assert d.delete_job and d.events[0].reason == "ErrImagePull"


def test_a_running_run_mirrors_its_stage_and_writes_nothing_new_twice() -> None:
    r = running(phase="Pending", stage="Starting", progress={"stage": "Downloading"})
    d = decide(r, job(active=1), [pod("Running")], ctx())
    assert d == Decision(status={"phase": "Running", "stage": "Downloading"})
    steady = running(phase="Running", stage="Downloading", progress={"stage": "Downloading"})
    assert decide(steady, job(active=1), [pod("Running")], ctx()) == Decision()


def test_a_finished_worker_whose_job_is_not_complete_yet_is_uploading() -> None:
    r = running(progress={"stage": "Finished"})
    d = decide(r, job(active=1), [pod("Running")], ctx())
    assert d.status == {"stage": "Uploading"}
    none = running(progress={"percent": 3})
    assert decide(none, job(active=1), [pod("Running")], ctx()).status == {"stage": "Starting"}


def test_a_pending_run_is_starting_whatever_its_progress_says() -> None:
    r = running(phase="Pending", stage="Starting", progress={"stage": "Cutting"})
    r["status"]["message"] = WAITING_FOR_POD
    r["status"]["conditions"][1] = cond("Progressing", "True", "JobCreated", WAITING_FOR_POD)
    j = job(active=1)
    j["metadata"]["creationTimestamp"] = T
    assert decide(r, j, [pod("Pending")], ctx()) == Decision(requeue_after=600.0)


def test_a_retry_is_announced_once_when_the_attempts_change() -> None:
    r = running()
    first = pod("Failed", exit_code=21, created="2026-11-25T13:50:00Z")
    second = pod("Running", created="2026-11-25T13:51:00Z")
    message = "attempt 2 after exit code 21 (Timeout)"
    d = decide(r, job(failed=1, active=1), [first, second], ctx())
    assert d == Decision(
        status={
            "stage": "Starting",
            "message": message,
            "conditions": [
                ACCEPTED_EARLIER,
                cond("Progressing", "True", "Retrying", message, EARLIER),
            ],
            "attempts": 2,
        },
        events=[Event("Normal", "Retrying", message)],
    )
    r["status"].update(d.status)
    assert decide(r, job(failed=1, active=1), [first, second], ctx()).events == []


def test_a_stuck_pod_is_announced_once_when_its_message_changes() -> None:
    r = running(phase="Pending", stage="Starting")
    p = pod("Pending", waiting="ImagePullBackOff")
    d = decide(r, job(active=1), [p], ctx())
    message = "pod p-00 waiting: ImagePullBackOff: Back-off pulling image"
    assert d.events == [Event("Warning", "ImagePullBackOff", message)]
    assert d.status["message"] == message and d.requeue_after == pytest.approx(540)
    r["status"].update(d.status)
    assert decide(r, job(active=1), [p], ctx()).events == []


def test_a_running_sharded_run_sums_its_shards_progress() -> None:
    r = running(
        shardProgress={
            "0": {"stage": "Uploading", "percent": 90, "segmentsDone": 2, "segmentsTotal": 3},
            "1": {"stage": "Cutting", "percent": 41, "segmentsDone": 1, "segmentsTotal": 3},
        }
    )
    j = sharded_job(active=2)
    p0, p1 = pod("Running"), pod("Running")
    d = decide(r, j, [p0, p1], ctx())
    assert d.status == {
        "message": "2 shards are running",
        "conditions": [
            ACCEPTED_EARLIER,
            cond("Progressing", "True", "Running", "2 shards are running", EARLIER),
        ],
        "attempts": 2,
        "shards": {"count": 2, "succeeded": 0, "completedIndexes": "", "failedIndexes": ""},
        "progress": {
            "stage": "Cutting",
            "percent": 65,
            "segmentsDone": 3,
            "segmentsTotal": 6,
            "message": "0/2 shards finished",
        },
    }
    r["status"].update(d.status)
    r["status"]["progress"]["updatedAt"] = T  # the time alone does not make a new write
    assert decide(r, j, [p0, p1], ctx()) == Decision()


# Shard progress -------------------------------------------------------------------------------


def test_summed_progress_counts_missing_shards_as_starting() -> None:
    progress = {
        "0": {
            "stage": "Cutting",
            "percent": 100,
            "bytesDone": 5,
            "updatedAt": "2026-11-25T13:10:00Z",
        },
        "1": {"stage": "Bogus", "percent": "50", "bytesDone": "7", "updatedAt": T},
        "2": None,
    }
    assert aggregate_progress(progress, 4, 1) == {
        "stage": "Starting",
        "percent": 37,
        "segmentsDone": 0,
        "segmentsTotal": 0,
        "message": "1/4 shards finished",
        "bytesDone": 12,
        "updatedAt": T,
    }
    both = {"0": {"stage": "Uploading"}, "1": {"stage": "Probing", "bytesDone": 0}}
    assert aggregate_progress(both, 2, 0) == {
        "stage": "Probing",
        "percent": 0,
        "segmentsDone": 0,
        "segmentsTotal": 0,
        "message": "0/2 shards finished",
        "bytesDone": 0,
    }
    assert aggregate_progress(None, 1, 1)["stage"] == "Starting"


# The reconciler's Job-create decisions --------------------------------------------------------


def test_a_job_name_taken_by_a_foreign_job_fails_the_run() -> None:
    message = "Job x exists and is not ours"
    d = foreign_job_decision(resource(), ctx(), message)
    assert d == Decision(
        status={
            "phase": "Failed",
            "message": message,
            "observedGeneration": 1,
            "conditions": [
                cond("Progressing", "False", "JobConflict", message),
                cond("Complete", "False", "JobConflict", message),
                cond("Failed", "True", "JobConflict", message),
            ],
            "completionTime": T,
            "error": {
                "category": "JobConflict",
                "reason": "JobConflict",
                "message": message,
                "permanent": True,
            },
        },
        events=[Event("Warning", "JobConflict", message)],
    )


def test_a_refused_job_fails_the_run_with_the_servers_message() -> None:
    r = running(phase="Pending")
    d = job_rejected_decision(r, ctx(), 422, "spec.template: Invalid value")
    text = "the API server refused the Job (422): spec.template: Invalid value"
    assert d == Decision(
        status={
            "phase": "Failed",
            "stage": None,
            "message": text,
            "conditions": [
                ACCEPTED_EARLIER,
                cond("Progressing", "False", "JobRejected", text),
                cond("Complete", "False", "JobRejected", text),
                cond("Failed", "True", "JobRejected", text),
            ],
            "completionTime": T,
            "error": {
                "category": "JobRejected",
                "reason": "JobRejected",
                "message": text,
                "permanent": True,
            },
            "jobName": None,
        },
        events=[Event("Warning", "JobRejected", text)],
    )
    long = job_rejected_decision(r, ctx(), 403, "z" * 2000)
    assert len(long.status["message"]) == 1024
    assert long.status["error"]["message"] == long.status["message"]
    assert long.events[0].message == long.status["message"]


def test_only_a_403_naming_an_exceeded_quota_is_a_quota() -> None:
    assert quota_exceeded(403, 'pods "x" is forbidden: exceeded quota: q')
    assert not quota_exceeded(422, "exceeded quota")
    assert not quota_exceeded(403, "forbidden by policy")
    assert create_failure_reason(403, "exceeded quota: q") == "QuotaExceeded"
    assert create_failure_reason(None, "exceeded quota") == "JobCreateFailed"
    assert create_failure_reason(503, "unavailable") == "JobCreateFailed"


def test_a_failed_create_is_retried_with_a_reason_and_one_event_per_reason() -> None:
    d = job_create_retry_decision(resource(), ctx(), 503, "etcd timeout", 7.4)
    text = "creating the Job failed (503: etcd timeout); retrying in 7s"
    assert d == Decision(
        status={
            "message": text,
            "conditions": [cond("Progressing", "True", "JobCreateFailed", text)],
            "observedGeneration": 1,
            "phase": "Queued",
        },
        events=[Event("Warning", "JobCreateFailed", text)],
        requeue_after=7.4,
    )
    again = job_create_retry_decision(resource(status=d.status), ctx(), None, "refused", 30)
    text2 = "creating the Job failed (refused); retrying in 30s"
    assert again == Decision(
        status={
            "message": text2,
            "conditions": [cond("Progressing", "True", "JobCreateFailed", text2)],
        },
        requeue_after=30,
    )
    quota = job_create_retry_decision(
        resource(status=again.status | {"phase": "Pending"}), ctx(), 403, "exceeded quota: q", 60
    )
    text3 = "creating the Job failed (403: exceeded quota: q); retrying in 60s"
    assert quota.events == [Event("Warning", "QuotaExceeded", text3)]
    assert "phase" not in quota.status
    assert quota.status["conditions"] == [cond("Progressing", "True", "QuotaExceeded", text3)]
    long = job_create_retry_decision(resource(), ctx(), 500, "w" * 2000, 1)
    assert len(long.status["message"]) == 1024 and long.events[0].message == long.status["message"]


def test_progressing_sorts_before_complete_whatever_came_first() -> None:
    conds = set_condition(
        [cond("Complete", "False", "X", "x")], "Progressing", "True", "R", "m", T, 1
    )
    assert [c["type"] for c in conds] == ["Progressing", "Complete"]


def test_a_pending_run_fails_exactly_when_its_timeout_ends() -> None:
    r = running(phase="Pending", stage="Starting")
    j = job(active=0)
    j["metadata"]["creationTimestamp"] = "2026-11-25T13:50:00Z"
    s = OperatorSettings(pending_timeout_seconds=600)
    d = decide(r, j, [], ctx(settings=s))
    assert d.status["phase"] == "Failed" and d.delete_job and d.requeue_after is None


def test_an_unschedulable_pod_is_announced_with_a_warning() -> None:
    r = running(phase="Pending", stage="Starting")
    p = pod("Pending")
    p["status"]["conditions"] = [
        {"type": "PodScheduled", "status": "False", "reason": "Unschedulable", "message": "0/3"}
    ]
    d = decide(r, job(active=1), [p], ctx())
    message = "pod p-00 waiting: Unschedulable: 0/3"
    assert d.events == [Event("Warning", "Unschedulable", message)]
    assert d.status["message"] == message
    running_pod = decide(running(message="x"), job(active=1), [pod("Running")], ctx())
    assert running_pod.events == []  # the pod starting is said by the phase, not an Event


def test_rejecting_again_writes_every_condition_not_only_accepted() -> None:
    problems = [Problem("spec.segments", "empty")]
    first = decide(resource(), None, [], ctx(problems=problems))
    # the status of that rejection, now naming an earlier run's Job (a rerunToken was set)
    again = resource(status=first.status | {"jobName": "an-earlier-run"})
    d = decide(again, None, [], ctx(problems=problems))
    assert d.status["conditions"] == first.status["conditions"]
    assert [c["type"] for c in d.status["conditions"]] == [
        "Accepted",
        "Progressing",
        "Complete",
        "Failed",
    ]


def test_shard_report_times_alone_do_not_rewrite_the_summed_progress() -> None:
    entry = {"stage": "Cutting", "percent": 10, "updatedAt": "2026-11-25T13:59:00Z"}
    r = running(shardProgress={"0": entry, "1": entry})
    j = sharded_job(active=2)
    pods = [pod("Running"), pod("Running")]
    first = decide(r, j, pods, ctx())
    assert first.status["progress"]["updatedAt"] == "2026-11-25T13:59:00Z"
    r["status"].update(first.status)
    assert decide(r, j, pods, ctx()) == Decision()


def test_a_two_shard_run_gets_its_shard_fields_on_its_first_start() -> None:
    r = resource(parallelism=2, segments=[{"start": 0, "end": 5}, {"start": 5, "end": 9}])
    d = decide(r, None, [], ctx(admitted=True))
    assert set(d.status["shardProgress"]) == {"0", "1"}
    assert d.status["shards"]["count"] == 2


def test_a_running_run_without_a_progressing_condition_gets_one_now() -> None:
    r = running()
    r["status"]["conditions"] = [ACCEPTED_EARLIER]
    d = decide(r, job(active=1), [pod("Running")], ctx())
    assert d.status == {
        "stage": "Starting",  # the worker has not reported a stage yet
        "conditions": [
            ACCEPTED_EARLIER,
            cond("Progressing", "True", "Running", "the worker is running"),
        ],
    }


def test_a_create_retry_keeps_the_other_conditions() -> None:
    r = resource(status={"phase": "Queued", "conditions": [ACCEPTED_EARLIER]})
    d = job_create_retry_decision(r, ctx(), None, "refused", 5)
    text = "creating the Job failed (refused); retrying in 5s"
    assert d.status["conditions"] == [
        ACCEPTED_EARLIER,
        cond("Progressing", "True", "JobCreateFailed", text),
    ]
