"""The operator against the kmock emulator with the fake Job runner: lifecycle scenarios.

Each scenario asserts on the resource's status, the Jobs (and pods) in the emulator and the
Events the operator posted. The fake runner plays kubelet and Job controller (``jobrunner.py``).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import aiohttp
import pytest

from tests.mockapi.conftest import (
    NS,
    Api,
    Operator,
    RunnerFactory,
    eventually,
    manifest,
    phase_is,
)
from tests.mockapi.emulator import Emulator
from tests.mockapi.jobrunner import Attempt
from videojobs.models import PERMANENT_EXIT_CODES, WorkerInput
from videojobs_operator import reconcile
from videojobs_operator.decide import Decision
from videojobs_operator.manifest import job_name

pytestmark = pytest.mark.mockapi

NUDGE = "test.videojobs.io/nudge"
"""An annotation the tests change to make the operator look at a resource again."""


@dataclass(frozen=True)
class Seen:
    """One decision of the operator: the resource as its pass saw it, and what it decided."""

    namespace: str
    name: str
    phase: str | None
    nudge: str | None
    decision: Decision


@pytest.fixture
def decisions(monkeypatch: pytest.MonkeyPatch) -> list[Seen]:
    """Every decision the operator makes (the pure ``decide`` the reconciler calls), in order.

    "Nothing happened" is asserted after the operator has decided about the resource in the
    state that matters (a pass that saw it, or a nudge): passes of one resource never overlap,
    so whatever an earlier decision asked for (creating a Job...) is done by then."""
    seen: list[Seen] = []
    real = reconcile.decide

    def recording(resource: Any, job: Any, pods: Any, ctx: Any) -> Decision:
        decision = real(resource, job, pods, ctx)
        meta = resource["metadata"]
        seen.append(
            Seen(
                meta.get("namespace", ""),
                meta["name"],
                (resource.get("status") or {}).get("phase"),
                (meta.get("annotations") or {}).get(NUDGE),
                decision,
            )
        )
        return decision

    monkeypatch.setattr(reconcile, "decide", recording)
    return seen


def decided(
    seen: list[Seen], name: str, *, after: int = 0, phase: str | None = None, nudge: str = ""
) -> Callable[[], list[Seen]]:
    """The decisions about ``name`` (from index ``after`` on, that saw ``phase``/``nudge``)."""

    def check() -> list[Seen]:
        return [
            s
            for s in seen[after:]
            if s.name == name
            and (phase is None or s.phase == phase)
            and (not nudge or s.nudge == nudge)
        ]

    return check


async def nudge(api: Api, name: str, value: str, ns: str = NS) -> None:
    """Change an annotation: the operator gets an event and decides about ``name`` again."""
    path = f"/apis/videojobs.io/v1alpha1/namespaces/{ns}/videoprocessingjobs/{name}"
    await api._send("PATCH", path, {"metadata": {"annotations": {NUDGE: value}}})


def conditions(status: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {c["type"]: c for c in status.get("conditions") or []}


async def event_posted(api: Api, name: str, reason: str, count: int = 1) -> None:
    """Events are posted right after the status write: wait for them."""
    await eventually(lambda: api.reasons(name).count(reason) >= count, what=f"event {reason}")


def script_for(**by_name: list[Attempt]) -> Any:
    return lambda name, _job: by_name.get(name, [Attempt()])


# Stays: the no-Go suite's quick check of a run's conditions and events.
async def test_happy_path_fake_worker(
    api: Api, operator: Operator, runner_factory: RunnerFactory
) -> None:
    runner = await runner_factory()
    await operator.start()
    await api.create(manifest("lecture"))
    await eventually(phase_is(api, "lecture", "Succeeded"), what="Succeeded")

    status = api.status("lecture")
    conds = conditions(status)
    assert conds["Complete"]["status"] == "True"
    assert conds["Accepted"]["status"] == "True"
    assert conds["Progressing"]["status"] == "False"
    assert "Failed" not in conds
    assert all(c["observedGeneration"] == 1 for c in conds.values())
    assert status["observedGeneration"] == 1
    assert status["stage"] == "Finished"
    assert status["jobName"].startswith("lecture-")
    assert status["attempts"] == 1
    assert status["startTime"] <= status["completionTime"]
    assert "error" not in status
    assert [j["metadata"]["name"] for j in api.jobs()] == [status["jobName"]]
    assert runner.stats.pods_created[status["jobName"]] == 1
    await event_posted(api, "lecture", "Succeeded")
    assert api.reasons("lecture") == ["JobCreated", "Succeeded"]
    assert all(e["type"] == "Normal" for e in api.events("lecture"))


# Stays: the Job exactly as the operator sent it (a real server adds defaults).
async def test_job_manifest(api: Api, operator: Operator, emulator: Emulator) -> None:
    await operator.start()
    created = await api.create(
        manifest(
            "secure",
            resources={"cpu": "2", "memory": "3Gi", "scratchSize": "7Gi"},
            backoffLimit=1,
            activeDeadlineSeconds=600,
            output={
                "storage": {
                    "s3": {
                        "bucket": "clips",
                        "credentialsSecretRef": {"name": "s3-creds", "key": "x"},
                    }
                }
            },
        )
    )
    jobs = await eventually(api.jobs, what="a Job")
    job = jobs[0]
    meta = job["metadata"]
    assert meta["ownerReferences"] == [
        {
            "apiVersion": "videojobs.io/v1alpha1",
            "kind": "VideoProcessingJob",
            "name": "secure",
            "uid": created["metadata"]["uid"],
            "controller": True,
            "blockOwnerDeletion": True,
        }
    ]
    labels = meta["labels"]
    assert labels["app.kubernetes.io/managed-by"] == "videojobs-operator"
    assert labels["app.kubernetes.io/instance"] == "secure"
    assert labels["videojobs.io/job"] == "secure"
    assert labels["videojobs.io/uid"] == created["metadata"]["uid"]
    spec = job["spec"]
    assert spec["backoffLimit"] == 1
    assert spec["activeDeadlineSeconds"] == 600
    assert spec["ttlSecondsAfterFinished"] == 3600
    rules = spec["podFailurePolicy"]["rules"]
    assert rules[0]["action"] == "FailJob"
    assert rules[0]["onExitCodes"]["values"] == list(PERMANENT_EXIT_CODES)
    assert rules[1] == {
        "action": "Ignore",
        "onPodConditions": [{"type": "DisruptionTarget", "status": "True"}],
    }
    pod = spec["template"]["spec"]
    assert pod["restartPolicy"] == "Never"
    assert pod["serviceAccountName"] == "videojobs-worker"
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    (container,) = pod["containers"]
    sc = container["securityContext"]
    assert sc["readOnlyRootFilesystem"] is True
    assert sc["allowPrivilegeEscalation"] is False
    assert sc["capabilities"] == {"drop": ["ALL"]}
    assert sc["runAsUser"] == 10001
    assert container["args"] == ["run"]
    assert container["resources"]["limits"] == {"cpu": "2", "memory": "3Gi"}
    assert container["resources"]["requests"] == {"cpu": "2", "memory": "3Gi"}
    scratch = next(v for v in pod["volumes"] if v["name"] == "scratch")
    assert scratch == {"name": "scratch", "emptyDir": {"sizeLimit": "7Gi"}}
    env = {e["name"]: e for e in container["env"]}
    assert env["AWS_SECRET_ACCESS_KEY"]["valueFrom"]["secretKeyRef"] == {
        "name": "s3-creds",
        "key": "AWS_SECRET_ACCESS_KEY",
    }
    # the run's input, created right after the Job and owned by it
    (cm,) = await eventually(lambda: emulator.live("configmaps", NS), what="the input ConfigMap")
    assert cm["metadata"]["ownerReferences"][0]["uid"] == job["metadata"]["uid"]
    worker_input = WorkerInput.model_validate_json(cm["data"]["input.json"])
    assert worker_input.resource is not None
    assert worker_input.resource.uid == created["metadata"]["uid"]
    assert worker_input.spec.output.storage.s3 is not None
    # the worker's ServiceAccount and its Role (only status patches) were provisioned
    roles = emulator.live("roles", NS)
    assert [r["rules"] for r in roles] == [
        [
            {
                "apiGroups": ["videojobs.io"],
                "resources": ["videoprocessingjobs/status"],
                "verbs": ["patch"],
            }
        ]
    ]
    assert [sa["metadata"]["name"] for sa in emulator.live("serviceaccounts", NS)] == [
        "videojobs-worker"
    ]


# Stays: the Accepted condition and the one Warning event, in a second.
async def test_invalid_spec(
    api: Api, operator: Operator, runner_factory: RunnerFactory, emulator: Emulator
) -> None:
    await runner_factory()
    await operator.start()
    bad = manifest("broken")
    bad["spec"]["output"]["formats"] = ["avi"]
    with pytest.raises(aiohttp.ClientResponseError) as refused:
        await api.create(bad)
    assert refused.value.status == 422  # the CRD's schema refuses it on a real server, too
    assert "spec.output.formats" in emulator.refused[-1].message
    # Stored before the schema said so (an older CRD): the operator still refuses it.
    emulator.validating = False
    await api.create(bad)
    emulator.validating = True
    await eventually(phase_is(api, "broken", "Failed"), what="Failed")
    status = api.status("broken")
    conds = conditions(status)
    assert conds["Accepted"]["status"] == "False"
    assert conds["Accepted"]["reason"] == "InvalidSpec"
    assert conds["Failed"]["reason"] == "InvalidSpec"
    assert status["error"]["reason"] == "InvalidSpec"
    assert "spec.output.formats[0]" in status["error"]["message"]
    assert api.jobs() == []
    await event_posted(api, "broken", "InvalidSpec")
    (event,) = api.events("broken")
    assert event["type"] == "Warning" and event["reason"] == "InvalidSpec"
    assert "spec.output.formats[0]" in event["message"]


# Stays: the operator's own transcript check; no cluster behaviour.
async def test_invalid_transcript_names_the_line(
    api: Api, operator: Operator, runner_factory: RunnerFactory
) -> None:
    await runner_factory()
    await operator.start()
    body = manifest("badvtt", segments=None)
    del body["spec"]["segments"]
    body["spec"]["transcript"] = {"inline": "WEBVTT\n\n00:00:01.000 --> nonsense\nHello\n"}
    body["spec"]["knowledgePoints"] = [{"id": "intro", "title": "Intro", "start": 0}]
    await api.create(body)
    await eventually(phase_is(api, "badvtt", "Failed"), what="Failed")
    status = api.status("badvtt")
    assert status["error"]["reason"] == "InvalidSpec"
    assert "line 3" in status["error"]["message"]
    assert api.jobs() == []


# Stays: records decide() inside the operator's process (not a separate one).
async def test_operator_restarted_mid_run(
    api: Api,
    operator: Operator,
    runner_factory: RunnerFactory,
    emulator: Emulator,
    decisions: list[Seen],
) -> None:
    gate = asyncio.Event()
    runner = await runner_factory(script_for(survivor=[Attempt(gate=gate)]))
    await operator.start()
    await api.create(manifest("survivor"))
    await eventually(phase_is(api, "survivor", "Running"), what="Running")
    await operator.stop()  # killed mid-run

    before = len(decisions)
    await operator.start()
    # the new operator has looked at the running resource (its Job from the earlier process)
    (first, *_) = await eventually(decided(decisions, "survivor", after=before), what="a pass")
    assert first.phase == "Running"
    assert not first.decision.create_job and not first.decision.delete_job
    assert first.decision.status.get("phase") in (None, "Running")
    assert api.status("survivor")["phase"] == "Running"
    gate.set()
    await eventually(phase_is(api, "survivor", "Succeeded"), what="Succeeded")
    assert len(api.jobs()) == 1
    assert emulator.counts["CREATE jobs"] == 1
    assert runner.stats.jobs_seen == [api.status("survivor")["jobName"]]


# Stays: not moved yet (time); the real tier's scripted worker can do it.
async def test_per_namespace_limit(
    api: Api, operator: Operator, runner_factory: RunnerFactory
) -> None:
    env = pytest.MonkeyPatch()
    runner = await runner_factory(lambda _n, _j: [Attempt(seconds=0.3)])
    try:
        env.setenv("VIDEOJOBS_MAX_RUNNING_JOBS_PER_NAMESPACE", "1")
        await operator.start()
        for ns in ("a", "b"):
            for i in range(2):
                await api.create(manifest(f"job{i}", namespace=ns))
        for ns in ("a", "b"):
            for i in range(2):
                await eventually(phase_is(api, f"job{i}", "Succeeded", ns), timeout=30)
    finally:
        env.undo()
    assert runner.stats.max_running_by_ns == {"a": 1, "b": 1}
    assert runner.stats.max_running == 2  # the namespaces did not block each other


# Stays: not moved yet (time); the real tier has rerun-while-running.
async def test_rerun_token_starts_a_new_run(
    api: Api, operator: Operator, runner_factory: RunnerFactory, emulator: Emulator
) -> None:
    runner = await runner_factory()
    await operator.start()
    await api.create(manifest("again"))
    await eventually(phase_is(api, "again", "Succeeded"), what="first run")
    first = api.status("again")
    await api.patch_spec("again", {"rerunToken": "2"})
    await eventually(
        lambda: (
            api.status("again").get("jobName") not in (None, first["jobName"])
            and api.status("again").get("phase") == "Succeeded"
        ),
        what="second run",
    )
    second = api.status("again")
    assert second["observedGeneration"] == 2
    assert runner.stats.jobs_seen == [first["jobName"], second["jobName"]]
    assert emulator.counts["CREATE jobs"] == 2
    await event_posted(api, "again", "Succeeded", count=2)


# Stays: the node agent pulls no images: no ImagePullBackOff for real.
async def test_image_pull_backoff_is_reported(
    api: Api, operator: Operator, runner_factory: RunnerFactory
) -> None:
    await runner_factory(script_for(noimage=[Attempt(waiting="ImagePullBackOff")]))
    await operator.start()
    await api.create(manifest("noimage"))
    await eventually(
        lambda: "ImagePullBackOff" in (api.status("noimage").get("message") or ""),
        what="ImagePullBackOff in status",
    )
    status = api.status("noimage")
    assert status["phase"] == "Pending"
    assert conditions(status)["Progressing"]["reason"] == "ImagePullBackOff"
    await event_posted(api, "noimage", "ImagePullBackOff")
    warnings = [e for e in api.events("noimage") if e["type"] == "Warning"]
    assert [e["reason"] for e in warnings] == ["ImagePullBackOff"]


# Stays: not moved yet (time); the real server can do it.
async def test_transcript_configmap_waited_for(
    api: Api, operator: Operator, runner_factory: RunnerFactory
) -> None:
    await runner_factory()
    await operator.start()
    body = manifest("fromcm")
    del body["spec"]["segments"]
    body["spec"]["transcript"] = {"configMapKeyRef": {"name": "talk", "key": "talk.vtt"}}
    body["spec"]["knowledgePoints"] = [
        {"id": "intro", "title": "Intro", "start": 0},
        {"id": "core", "title": "Core", "start": 2},
    ]
    await api.create(body)
    await eventually(
        lambda: "waiting for ConfigMap talk" in (api.status("fromcm").get("message") or ""),
        what="waiting for the ConfigMap",
    )
    assert api.jobs() == []
    vtt = "WEBVTT\n\n00:00.000 --> 00:02.000\nHello\n\n00:02.000 --> 00:04.000\nCore\n"
    await api.create_configmap("talk", {"talk.vtt": vtt})
    await eventually(phase_is(api, "fromcm", "Succeeded"), timeout=30, what="Succeeded")
    (job,) = api.jobs()
    pod = job["spec"]["template"]["spec"]
    volume = next(v for v in pod["volumes"] if v["name"] == "transcript")
    assert volume["configMap"] == {
        "name": "talk",
        "items": [{"key": "talk.vtt", "path": "transcript"}],
    }
    inputs = [c for c in api.emulator.live("configmaps", NS) if c["metadata"]["name"] != "talk"]
    assert json.loads(inputs[0]["data"]["input.json"])["transcriptPath"] == (
        "/var/run/videojobs/transcript/transcript"
    )


# Stays: not moved yet (time); the real server can do it.
async def test_watching_one_namespace(
    api: Api,
    operator: Operator,
    runner_factory: RunnerFactory,
    emulator: Emulator,
    decisions: list[Seen],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    scopes: set[tuple[str, str, str | None]] = set()  # the operator's (action, plural, ns)
    handle = Emulator._handle

    async def recording(self: Emulator, request: Any) -> Any:
        if request.resource is not None and self.role_of(self.identity(request)) == "operator":
            scopes.add((request.action.value, request.resource.plural or "", request.namespace))
        return await handle(self, request)

    monkeypatch.setattr(Emulator, "_handle", recording)
    await runner_factory()
    await operator.start(NS)
    await api.create(manifest("outside", namespace="elsewhere"))
    await api.create(manifest("inside"))
    await eventually(phase_is(api, "inside", "Succeeded"), what="Succeeded")
    # The operator never watches another namespace (and never lists Jobs or pods there), so
    # it cannot see "outside".
    watched = {
        (action, plural, ns)
        for action, plural, ns in scopes
        if action == "WATCH" or plural in ("jobs", "pods")
    }
    assert {ns for *_, ns in watched} == {NS}, scopes
    assert not [s for s in decisions if s.namespace != NS]
    assert api.status("outside", "elsewhere") == {}
    assert api.jobs("elsewhere") == []


# Stays: an 11-minute-old pending pod (time travel); real: 10 minutes.
async def test_stuck_pod_fails_after_the_pending_timeout(
    api: Api, operator: Operator, runner_factory: RunnerFactory
) -> None:
    # The pod has been "waiting" for 11 minutes; the default pending timeout is 10.
    stuck = Attempt(waiting="Unschedulable", waiting_since=660)
    await runner_factory(script_for(nowhere=[stuck]))
    await operator.start()
    await api.create(manifest("nowhere"))
    await eventually(phase_is(api, "nowhere", "Failed"), what="Failed")
    status = api.status("nowhere")
    assert status["error"]["reason"] == "Unschedulable"
    assert "Insufficient cpu" in status["error"]["message"]
    assert conditions(status)["Failed"]["reason"] == "Unschedulable"
    await eventually(lambda: not api.jobs() and not api.pods(), what="Job and pod removed")
    await event_posted(api, "nowhere", "Unschedulable")


# Stays: not moved yet (time); the real server can do it.
async def test_foreign_job_with_our_name_is_not_adopted(
    api: Api, operator: Operator, emulator: Emulator
) -> None:
    created = await api.create(manifest("squatted"))
    name = job_name("squatted", created["metadata"]["uid"], None)
    foreign = {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": name, "namespace": NS},
        "spec": {"template": {}},
    }
    await api._send("POST", f"/apis/batch/v1/namespaces/{NS}/jobs", foreign)
    await operator.start()
    await eventually(phase_is(api, "squatted", "Failed"), what="Failed")
    status = api.status("squatted")
    assert status["error"]["reason"] == "JobConflict"
    assert name in status["error"]["message"]
    (job,) = api.jobs()
    assert "ownerReferences" not in job["metadata"]  # left alone
