"""What a Job and its pods say about a run, read in full: every :class:`RunState` field of each
path of :func:`observe_run`, the errors of each exit, evictions, waiting pods and shards.

The states are compared whole, so a reading that loses a field, a reason or a time fails here
(issue 29: the mutation score of ``observe.py``)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from videojobs_operator.manifest import ANNOTATION_COMPLETION_INDEX, ANNOTATION_SHARDS
from videojobs_operator.observe import (
    EXIT_CATEGORIES,
    WAITING_FOR_POD,
    RunState,
    _exit_names,
    error_from_exit,
    evicted_for_space,
    job_condition,
    job_finished,
    observe_run,
    pod_shard,
    shard_total,
    shards_summary,
)

CREATED = "2026-11-25T13:00:00Z"
CREATED_AT = dt.datetime(2026, 11, 25, 13, 0, tzinfo=dt.UTC)


def job(*conditions: dict[str, Any], shards: int | None = None, **status: Any) -> dict:
    meta: dict[str, Any] = {"name": "j", "creationTimestamp": CREATED}
    if shards is not None:
        meta["annotations"] = {ANNOTATION_SHARDS: str(shards)}
    return {"metadata": meta, "status": {**status, "conditions": list(conditions)}}


def true(kind: str, **extra: Any) -> dict[str, Any]:
    return {"type": kind, "status": "True", **extra}


def pod(
    phase: str,
    minute: int = 1,
    *,
    exit_code: int | None = None,
    message: str = "",
    reason: str = "",
    waiting: str | None = None,
    shard: int | None = None,
    name: str | None = None,
) -> dict[str, Any]:
    state: dict[str, Any] = {}
    if exit_code is not None:
        state = {"terminated": {"exitCode": exit_code, "message": message, "reason": reason}}
    elif waiting is not None:
        state = {"waiting": {"reason": waiting, "message": message}}
    meta: dict[str, Any] = {
        "name": name or f"p-{minute}",
        "creationTimestamp": f"2026-11-25T13:{minute:02d}:00Z",
    }
    if shard is not None:
        meta["annotations"] = {ANNOTATION_COMPLETION_INDEX: str(shard)}
    return {
        "metadata": meta,
        "status": {"phase": phase, "containerStatuses": [{"name": "worker", "state": state}]},
    }


# Exit codes -----------------------------------------------------------------------------------


def test_exit_categories_are_the_exit_code_names_in_camel_case() -> None:
    assert _exit_names() == EXIT_CATEGORIES  # computed once at import; here again
    assert EXIT_CATEGORIES[13] == "LoginRequired"
    assert EXIT_CATEGORIES[1] == "Internal"
    assert EXIT_CATEGORIES[143] == "Terminated"


def test_an_exit_error_joins_hint_and_detail_once() -> None:
    assert error_from_exit(20, "connection reset") == {
        "category": "Network",
        "reason": "Network",
        "message": "network failure while downloading or publishing: connection reset",
        "exitCode": 20,
        "permanent": False,
    }
    # a detail the hint already says is not repeated; no detail, no colon
    assert error_from_exit(12, "private")["message"] == "the video is private"
    assert error_from_exit(12)["message"] == "the video is private"
    assert error_from_exit(12)["permanent"] is True


def test_unknown_exits_are_unknown_except_137_out_of_memory() -> None:
    assert error_from_exit(137) == {
        "category": "OOMKilled",
        "reason": "OOMKilled",
        "message": "the worker was killed (out of memory?): raise resources.memory",
        "exitCode": 137,
        "permanent": False,
    }
    assert error_from_exit(77, "boom") == {
        "category": "Unknown",
        "reason": "Unknown",
        "message": "the worker exited with code 77: boom",
        "exitCode": 77,
        "permanent": False,
    }
    assert len(error_from_exit(77, "b" * 2000)["message"]) == 1024


# Failed Jobs ----------------------------------------------------------------------------------


def test_a_failed_job_reads_the_workers_termination_report_last_line() -> None:
    report = 'log line\n{"exitCode": 11, "category": "Unavailable", "message": "gone"}'
    failed = true("Failed", reason="PodFailurePolicy", lastTransitionTime="2026-11-25T13:30:00Z")
    state = observe_run(job(failed, failed=1), [pod("Failed", exit_code=11, message=report)], None)
    message = "the video is unavailable (removed or HTTP 404/410): gone"
    assert state == RunState(
        "Failed",
        "Unavailable",
        message,
        1,
        {
            "category": "Unavailable",
            "reason": "Unavailable",
            "message": message,
            "exitCode": 11,
            "permanent": True,
        },
        None,
        "2026-11-25T13:30:00Z",
    )


def test_a_termination_message_that_is_not_json_is_kept_to_its_last_300_characters() -> None:
    text = "a" * 100 + "b" * 300
    state = observe_run(job(true("Failed")), [pod("Failed", exit_code=24, message=text)], None)
    assert state.message == "ffmpeg failed unexpectedly: " + "b" * 300
    listed = observe_run(job(true("Failed")), [pod("Failed", exit_code=24, message="[1]")], None)
    assert listed.message == "ffmpeg failed unexpectedly: [1]"
    empty = '{"message": ""}'
    bare = observe_run(job(true("Failed")), [pod("Failed", exit_code=24, message=empty)], None)
    assert bare.message == "ffmpeg failed unexpectedly: " + empty


def test_without_a_termination_message_the_kubelets_reason_is_the_detail() -> None:
    p = pod("Failed", exit_code=137, message="  ", reason="OOMKilled")
    state = observe_run(job(true("Failed")), [p], None)
    assert state.message == (
        "the worker was killed (out of memory?): raise resources.memory: OOMKilled"
    )
    assert state.reason == "OOMKilled"


def test_the_workers_own_error_wins_only_for_the_same_exit() -> None:
    own = {"category": "Unavailable", "reason": "VideoRemoved", "message": "m", "exitCode": 11}
    same = observe_run(job(true("Failed")), [pod("Failed", exit_code=11)], own)
    assert same.error == {**own, "permanent": True} and same.reason == "VideoRemoved"
    other = observe_run(job(true("Failed")), [pod("Failed", exit_code=20)], own)
    assert other.reason == "Network"
    no_exit = observe_run(job(true("Failed")), [pod("Failed")], own)
    assert no_exit.error == own and no_exit.error is not own


def test_a_failed_job_without_any_exit_reports_its_condition() -> None:
    failed = true("Failed", reason="PodFailurePolicy", message="rule 0 matched")
    assert observe_run(job(failed), [], None).error == {
        "category": "JobFailed",
        "reason": "PodFailurePolicy",
        "message": "rule 0 matched",
        "permanent": True,
    }
    assert observe_run(job(true("Failed")), [], None) == RunState(
        "Failed",
        "JobFailed",
        "the Job failed",
        1,
        {
            "category": "JobFailed",
            "reason": "JobFailed",
            "message": "the Job failed",
            "permanent": True,
        },
    )


def test_giving_up_names_the_attempts_and_the_last_exit() -> None:
    failed = true("Failed", reason="BackoffLimitExceeded")
    pods = [pod("Failed", 3, exit_code=20), pod("Failed", 1, exit_code=21)]
    state = observe_run(job(failed, failed=2, succeeded=1), pods, None)
    assert state.attempts == 3
    assert (
        state.message
        == "gave up after 3 attempts; last: network failure while downloading or publishing"
    )


def test_a_deadline_is_a_timeout_whatever_the_pods_say() -> None:
    failed = true("Failed", reason="DeadlineExceeded")
    state = observe_run(job(failed), [pod("Failed", exit_code=143)], None)
    assert state.error == {
        "category": "Timeout",
        "reason": "DeadlineExceeded",
        "message": "the job ran longer than activeDeadlineSeconds; raise "
        "spec.activeDeadlineSeconds or use a smaller maxHeight",
        "permanent": True,
    }


# Evictions for space --------------------------------------------------------------------------


def evicted(message: str, *, as_condition: bool = False, exit_code: int | None = 137) -> dict:
    p = pod("Failed", 5, exit_code=exit_code, name="p-evicted")
    if as_condition:
        p["status"]["conditions"] = [
            {
                "type": "DisruptionTarget",
                "status": "True",
                "reason": "TerminationByKubelet",
                "message": message,
            }
        ]
    else:
        p["status"].update({"reason": "Evicted", "message": message})
    return p


def test_only_an_eviction_for_storage_is_out_of_space() -> None:
    assert evicted_for_space(evicted("The node was low on resource: ephemeral-storage.")) == (
        "The node was low on resource: ephemeral-storage."
    )
    assert evicted_for_space(evicted("Usage of EmptyDir volume exceeds")) is not None
    assert evicted_for_space(evicted("local STORAGE")) == "local STORAGE"
    assert evicted_for_space(evicted("disk pressure", as_condition=True)) == "disk pressure"
    assert evicted_for_space(evicted("The node was low on resource: memory.")) is None
    no_message = evicted("x")
    del no_message["status"]["message"]
    assert evicted_for_space(no_message) is None  # "evicted" names no space
    other = evicted("disk", as_condition=True)
    other["status"]["conditions"][0]["reason"] = "PreemptionByScheduler"
    assert evicted_for_space(other) is None
    untrue = evicted("disk", as_condition=True)
    untrue["status"]["conditions"][0]["status"] = "False"
    assert evicted_for_space(untrue) is None
    wrong_type = evicted("disk", as_condition=True)
    wrong_type["status"]["conditions"][0]["type"] = "Ready"
    assert evicted_for_space(wrong_type) is None
    assert evicted_for_space({}) is None


def test_an_eviction_for_space_fails_the_run_as_no_space() -> None:
    p = evicted("ephemeral-storage")
    failed = true("Failed", lastTransitionTime="2026-11-25T13:30:00Z")
    message = (
        "the scratch or output volume is full: raise resources.scratchSize: pod p-evicted was "
        "evicted: ephemeral-storage"
    )
    error = {
        "category": "NoSpace",
        "reason": "NoSpace",
        "message": message,
        "exitCode": 137,
        "permanent": True,
    }
    state = observe_run(job(failed), [p], None)
    assert state == RunState("Failed", "NoSpace", message, 1, error, None, "2026-11-25T13:30:00Z")
    # the latest pod evicted, the Job not failed (yet): the same; no exit code: NoSpace's 22
    unfailed = observe_run(
        job(), [pod("Failed", 1, exit_code=1), evicted("disk", exit_code=None)], None
    )
    assert unfailed.reason == "NoSpace" and unfailed.completion_time is None
    assert unfailed.error is not None and unfailed.error["exitCode"] == 22
    assert unfailed.attempts == 2


def test_an_earlier_eviction_followed_by_a_new_pod_is_not_the_end() -> None:
    state = observe_run(job(), [evicted("disk"), pod("Running", 9)], None)
    assert state == RunState("Running", "Retrying", "attempt 2 after exit code 137 (137)", 2)


# Succeeded ------------------------------------------------------------------------------------


def test_a_complete_job_succeeds_at_its_completion_time_else_its_condition() -> None:
    done = true("Complete", lastTransitionTime="2026-11-25T13:40:00Z")
    assert observe_run(job(done, completionTime="2026-11-25T13:41:00Z"), [], None) == RunState(
        "Succeeded", "Succeeded", "all clips published", 1, completion_time="2026-11-25T13:41:00Z"
    )
    assert observe_run(job(done, succeeded=1, failed=1), [], None) == RunState(
        "Succeeded", "Succeeded", "all clips published", 2, completion_time="2026-11-25T13:40:00Z"
    )
    # a Complete condition that is not True is not completion
    assert observe_run(job({"type": "Complete", "status": "False"}), [], None).phase == "Pending"


def test_a_job_is_finished_by_a_true_complete_or_failed_condition() -> None:
    assert job_finished(job(true("Complete")))
    assert job_finished(job(true("Failed")))
    assert not job_finished(job({"type": "Failed", "status": "False"}))
    assert not job_finished(job(true("Suspended")))
    assert not job_finished({})
    assert job_condition(job(true("Failed", reason="R")), "Failed") == true("Failed", reason="R")


# Unfinished -----------------------------------------------------------------------------------


def test_a_job_without_pods_is_pending_since_its_creation() -> None:
    assert observe_run(job(), [], None) == RunState(
        "Pending",
        "JobCreated",
        WAITING_FOR_POD,
        1,
        stuck_since=CREATED_AT,
        timeout_reason="PodNotCreated",
        timeout_message=(
            "the Job controller created no worker pod for Job j (FailedCreate: a ResourceQuota "
            "or LimitRange, an admission policy or webhook, a missing ServiceAccount); see "
            "kubectl describe job j"
        ),
    )
    nameless = {"status": {"startTime": "2026-11-25T13:05:00Z"}}
    state = observe_run(nameless, [], None)
    assert state.stuck_since == CREATED_AT + dt.timedelta(minutes=5)
    assert state.timeout_message is not None and "for Job  (FailedCreate" in state.timeout_message


def test_a_pod_not_yet_started_is_pending_since_the_jobs_creation() -> None:
    state = observe_run(job(active=1), [pod("Pending", 7)], None)
    assert state == RunState(
        "Pending",
        "JobCreated",
        WAITING_FOR_POD,
        1,
        stuck_since=CREATED_AT,
        timeout_reason="PodNotStarted",
        timeout_message="pod p-7 was never scheduled or started; see kubectl describe pod p-7",
    )


def test_a_pod_in_container_creating_says_so() -> None:
    p = pod("Pending", 7, waiting="ContainerCreating")
    p["status"]["containerStatuses"].insert(0, {"name": "init", "state": {}})
    assert observe_run(job(active=1), [p], None) == RunState(
        "Pending",
        "ContainerCreating",
        "pod p-7 is being created (ContainerCreating)",
        1,
        stuck_since=CREATED_AT,
        timeout_reason="ContainerCreating",
        timeout_message=(
            "pod p-7 never left ContainerCreating: a Secret, ConfigMap or volume it mounts may "
            "be missing; see kubectl describe pod p-7"
        ),
    )


def test_a_stuck_pod_is_pending_since_the_pod_was_created() -> None:
    p = pod("Pending", 7, waiting="ImagePullBackOff", message="pull denied")
    assert observe_run(job(active=1), [p], None) == RunState(
        "Pending",
        "ImagePullBackOff",
        "pod p-7 waiting: ImagePullBackOff: pull denied",
        1,
        None,
        dt.datetime(2026, 11, 25, 13, 7, tzinfo=dt.UTC),
    )
    quiet = pod("Pending", 7, waiting="CreateContainerConfigError")
    del quiet["status"]["containerStatuses"][0]["state"]["waiting"]["message"]
    del quiet["metadata"]["creationTimestamp"]
    state = observe_run(job(active=1, startTime="2026-11-25T13:02:00Z"), [quiet], None)
    assert state.message == "pod p-7 waiting: CreateContainerConfigError"
    assert state.stuck_since == dt.datetime(2026, 11, 25, 13, 2, tzinfo=dt.UTC)


def test_an_unschedulable_pod_is_stuck_the_latest_one_counts() -> None:
    def unschedulable(minute: int, reason: str = "Unschedulable") -> dict[str, Any]:
        p = pod("Pending", minute)
        p["status"]["conditions"] = [
            {"type": "Ready", "status": "False", "reason": "Unschedulable"},
            {"type": "PodScheduled", "status": "False", "reason": reason, "message": f"m{minute}"},
        ]
        return p

    state = observe_run(job(), [unschedulable(4), unschedulable(2)], None)
    assert (state.reason, state.message) == ("Unschedulable", "pod p-4 waiting: Unschedulable: m4")
    assert state.attempts == 2
    other = observe_run(job(), [unschedulable(4, "SchedulerError")], None)
    assert other.reason == "JobCreated"
    scheduled = unschedulable(4)
    scheduled["status"]["conditions"][1]["status"] = "True"
    assert observe_run(job(), [scheduled], None).reason == "JobCreated"
    no_message = unschedulable(4)
    del no_message["status"]["conditions"][1]["message"]
    assert observe_run(job(), [no_message], None).message == "pod p-4 waiting: Unschedulable"


def test_a_waiting_pod_beside_a_running_one_is_running() -> None:
    pods = [pod("Running", 1), pod("Pending", 2, waiting="ErrImagePull")]
    assert observe_run(job(active=2), pods, None).phase == "Running"


def test_a_ready_job_whose_pods_are_not_listed_yet_is_running() -> None:
    assert observe_run(job(ready=1), [], None).phase == "Running"
    assert observe_run(job(ready=0), [], None).phase == "Pending"


def test_a_retry_names_the_attempt_and_the_earlier_exit() -> None:
    pods = [pod("Failed", 1, exit_code=0), pod("Failed", 2, exit_code=77), pod("Running", 3)]
    assert observe_run(job(failed=1, active=1), pods, None) == RunState(
        "Running", "Retrying", "attempt 3 after exit code 77 (77)", 3
    )
    # the latest pod's own exit is not a retry yet
    last = [pod("Running", 1), pod("Failed", 2, exit_code=20)]
    assert observe_run(job(), last, None) == RunState(
        "Running", "Running", "the worker is running", 2
    )


# Shards ---------------------------------------------------------------------------------------


def test_shards_come_from_the_annotation_else_an_indexed_jobs_completions() -> None:
    assert shard_total(job(shards=3)) == 3
    assert shard_total(job(shards=0)) == 1
    indexed = {"spec": {"completionMode": "Indexed", "completions": 4}}
    assert shard_total(indexed) == 4
    assert shard_total({"spec": {"completionMode": "Indexed"}}) == 1
    assert shard_total({"spec": {"completionMode": "NonIndexed", "completions": 4}}) == 1
    bad = {"metadata": {"annotations": {ANNOTATION_SHARDS: "x"}}, **indexed}
    assert shard_total(bad) == 4
    assert shard_total({}) == 1


def test_a_pods_shard_is_its_index_annotation_else_label() -> None:
    assert pod_shard(pod("Running", shard=2)) == 2
    labelled = {"metadata": {"labels": {ANNOTATION_COMPLETION_INDEX: "5"}}}
    assert pod_shard(labelled) == 5
    assert pod_shard({"metadata": {"annotations": {ANNOTATION_COMPLETION_INDEX: "x"}}}) is None
    assert pod_shard({}) is None


def test_shards_summary_only_for_a_sharded_job() -> None:
    assert shards_summary(job()) is None
    assert shards_summary(job(shards=3, completedIndexes="0,2", failedIndexes="1")) == {
        "count": 3,
        "succeeded": 2,
        "completedIndexes": "0,2",
        "failedIndexes": "1",
    }


def test_a_failed_shard_is_blamed_once_with_its_own_pods_exit() -> None:
    failed = true("Failed", reason="FailedIndexes")
    pods = [
        pod("Failed", 1, exit_code=20, shard=1),
        pod("Failed", 2, exit_code=12, shard=1, message="private video"),
        pod("Failed", 3, exit_code=143, shard=0),
    ]
    state = observe_run(job(failed, shards=2, failedIndexes="1,2", failed=2), pods, None)
    message = "shard 1 of 2: the video is private: private video"
    assert state.error == {
        "category": "Private",
        "reason": "Private",
        "message": message,
        "exitCode": 12,
        "permanent": True,
        "shard": 1,
    }
    assert state.message == message and state.attempts == 3
    # another shard's own report (killed when the Job failed) is not this failure's
    own = {"reason": "Terminated", "message": "x", "exitCode": 12, "shard": 0}
    assert observe_run(job(failed, shards=2, failedIndexes="1"), pods, own).message == message
    mine = {"reason": "Mine", "message": "shard 1: mine", "exitCode": 12, "shard": 1}
    assert observe_run(job(failed, shards=2, failedIndexes="1"), pods, mine).message == (
        "shard 1 of 2: mine"
    )


def test_without_failed_indexes_the_permanent_exit_is_blamed_not_the_terminated() -> None:
    failed = true("Failed", reason="PodFailurePolicy")
    pods = [
        pod("Failed", 1, exit_code=13, shard=1),
        pod("Failed", 2, exit_code=143, shard=0),
        pod("Failed", 3, exit_code=0, shard=2),
    ]
    state = observe_run(job(failed, shards=3), pods, None)
    assert state.error is not None and state.error["shard"] == 1
    assert state.reason == "LoginRequired"
    transient = [pod("Failed", 1, exit_code=20, shard=1), pod("Failed", 2, exit_code=143, shard=0)]
    assert observe_run(job(failed, shards=2), transient, None).error["shard"] == 1  # type: ignore[index]
    killed = [pod("Failed", 1, exit_code=143, shard=1), pod("Failed", 2, exit_code=143, shard=0)]
    assert observe_run(job(failed, shards=2), killed, None).error["shard"] == 0  # type: ignore[index]
    unknown_pods = observe_run(job(failed, shards=2), [pod("Failed", 1, exit_code=0)], None)
    assert unknown_pods.error is not None and "shard" not in unknown_pods.error
    no_pod_of_shard = observe_run(job(failed, shards=2, failedIndexes="1"), killed[1:], None)
    assert no_pod_of_shard.error is not None and no_pod_of_shard.error["exitCode"] == 143
    assert no_pod_of_shard.error["shard"] == 1


def test_the_failed_index_is_blamed_before_a_later_failure_of_another_shard() -> None:
    failed = true("Failed", reason="FailedIndexes")
    pods = [pod("Failed", 1, exit_code=21, shard=0), pod("Failed", 2, exit_code=20, shard=1)]
    state = observe_run(job(failed, shards=2, failedIndexes="0"), pods, None)
    assert state.error is not None and state.error["shard"] == 0
    assert state.reason == "Timeout"


def test_a_running_sharded_job_names_the_first_shard_being_retried() -> None:
    pods = [
        pod("Failed", 1, exit_code=20, shard=2),
        pod("Running", 2, shard=2),
        pod("Failed", 3, exit_code=0, shard=1),
        pod("Failed", 4, exit_code=21, shard=1),
        pod("Running", 5, shard=1),
        pod("Running", 6),
    ]
    state = observe_run(job(active=3, shards=3), pods, None)
    assert state == RunState(
        "Running", "Retrying", "shard 1 of 3: attempt 3 after exit code 21 (Timeout)", 6
    )
    calm = [pod("Running", 1, shard=0), pod("Running", 2, shard=1)]
    assert observe_run(job(active=2, shards=2), calm, None) == RunState(
        "Running", "Running", "2 shards are running", 2
    )


def test_the_job_controllers_counts_are_attempts_when_pods_are_gone() -> None:
    assert observe_run(job(failed=3), [], None).attempts == 3
    assert observe_run(job(succeeded=2), [], None).attempts == 2
    assert observe_run(job(failed=1, succeeded=1), [pod("Running")], None).attempts == 2


def test_an_unsharded_failure_reports_the_latest_exit_not_an_earlier_permanent_one() -> None:
    pods = [pod("Failed", 1, exit_code=13), pod("Failed", 2, exit_code=20)]
    assert observe_run(job(true("Failed")), pods, None).reason == "Network"


def test_a_pod_without_a_creation_time_is_the_earliest() -> None:
    undated = pod("Failed", 1, exit_code=20)
    del undated["metadata"]["creationTimestamp"]
    pods = [pod("Running", 2), undated]
    state = observe_run(job(active=1, failed=1), pods, None)
    assert state.reason == "Retrying" and state.message.startswith("attempt 2 after exit code 20")


def test_nameless_pods_are_named_empty_in_messages() -> None:
    def nameless(p: dict[str, Any]) -> dict[str, Any]:
        del p["metadata"]["name"]
        return p

    stuck = observe_run(job(), [nameless(pod("Pending", 3, waiting="ErrImagePull"))], None)
    assert stuck.message == "pod  waiting: ErrImagePull"
    creating = observe_run(job(), [nameless(pod("Pending", 3, waiting="ContainerCreating"))], None)
    assert creating.message == "pod  is being created (ContainerCreating)"
    waiting = observe_run(job(), [nameless(pod("Pending", 3))], None)
    assert waiting.timeout_message == (
        "pod  was never scheduled or started; see kubectl describe pod "
    )
    evicted_pod = nameless(evicted("disk"))
    gone = observe_run(job(true("Failed")), [evicted_pod], None)
    assert gone.message.endswith("raise resources.scratchSize: pod  was evicted: disk")


def test_a_blamed_shards_message_stays_within_the_status_limit() -> None:
    report = '{"message": "' + "d" * 2000 + '"}'
    p = pod("Failed", 1, exit_code=77, shard=1, message=report)
    state = observe_run(job(true("Failed"), shards=2, failedIndexes="1"), [p], None)
    assert len(state.message) == 1024 and state.message.startswith("shard 1 of 2: the worker")


def test_a_retried_shards_unknown_exit_is_named_by_its_number() -> None:
    pods = [pod("Failed", 1, exit_code=77, shard=0), pod("Running", 2, shard=0)]
    assert observe_run(job(active=1, shards=2), pods, None).message == (
        "shard 0 of 2: attempt 2 after exit code 77 (77)"
    )


def test_a_permanent_exit_is_blamed_before_a_later_transient_one() -> None:
    failed = true("Failed", reason="PodFailurePolicy")
    pods = [pod("Failed", 1, exit_code=13, shard=1), pod("Failed", 2, exit_code=20, shard=0)]
    state = observe_run(job(failed, shards=2), pods, None)
    assert state.error is not None and state.error["shard"] == 1
    assert state.reason == "LoginRequired"


def test_a_shard_pod_terminated_without_an_exit_code_blames_nobody() -> None:
    p = pod("Failed", 1, shard=1)
    p["status"]["containerStatuses"][0]["state"] = {"terminated": {"reason": "Error"}}
    state = observe_run(job(true("Failed", message="failed"), shards=2), [p], None)
    assert state.error == {
        "category": "JobFailed",
        "reason": "JobFailed",
        "message": "failed",
        "permanent": True,
    }


def test_a_shard_still_running_when_the_job_failed_is_not_blamed() -> None:
    failed = true("Failed", reason="FailedIndexes")
    pods = [pod("Failed", 1, exit_code=21, shard=0), pod("Running", 2, shard=1)]
    state = observe_run(job(failed, shards=2, failedIndexes="0"), pods, None)
    assert state.error is not None and state.error["shard"] == 0
    assert state.reason == "Timeout"
