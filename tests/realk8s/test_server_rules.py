"""What the real API server (and etcd, and the garbage collector) refuse or do, that our emulator
did not: each test failed on the code before its fix (docs/testing.md, "Real cluster")."""

from __future__ import annotations

import json
import time
import uuid
from typing import Any

import kubernetes
import pytest
from kubernetes.client.exceptions import ApiException

from tests.realk8s.conftest import K8s, OperatorProcess, RealCluster
from videojobs.models import ResourceRef, SegmentResult
from videojobs.models.status import OutputFile
from videojobs_operator.manifest import (
    build_input_configmap,
    build_job,
    build_merge_job,
    input_configmap_name,
    validate_spec,
)
from videojobs_operator.settings import OperatorSettings
from videojobs_worker.progress import ClusterReporter

GROUP, VERSION, PLURAL = "videojobs.io", "v1alpha1", "videoprocessingjobs"


def spec(**extra: Any) -> dict[str, Any]:
    return {
        "source": {"url": "http://127.0.0.1:9/sample.mp4"},
        "segments": [
            {"knowledgeId": f"part-{i}", "title": f"Part {i}", "start": str(i), "end": str(i + 1)}
            for i in range(4)
        ],
        "output": {"formats": ["mp4"], "storage": {"pvc": {"claimName": "clips"}}},
        **extra,
    }


def vpj(ns: str, name: str, body: dict[str, Any]) -> dict[str, Any]:
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "VideoProcessingJob",
        "metadata": {"name": name, "namespace": ns},
        "spec": body,
    }


# (a) Indexed Job: <job name>-<completions-1> must be a DNS label -------------------------------


@pytest.mark.parametrize("length", [52, 59, 63, 253])
def test_a_sharded_run_of_a_long_named_resource_gets_its_job(
    k8s: K8s, ns: str, length: int
) -> None:
    """The operator's Indexed Job for a resource with a long name is accepted by the real API
    server (upstream ValidateJob checks the pod hostname ``<job>-<completions-1>``)."""
    name = ("lecture-" + "x" * 300)[:length]
    resource = k8s.custom.create_namespaced_custom_object(
        GROUP, VERSION, ns, PLURAL, vpj(ns, name, spec(parallelism=16))
    )
    model, problems = validate_spec(resource["spec"])
    assert model is not None and not problems
    job = build_job(resource, model, OperatorSettings())
    assert job["spec"]["completionMode"] == "Indexed" and job["spec"]["completions"] == 4
    job["spec"]["suspend"] = True  # no pods needed: the server's validation is the point
    try:
        created = k8s.batch.create_namespaced_job(ns, job)
    except ApiException as exc:
        pytest.fail(f"the API server refused the operator's Job ({exc.status}): {exc.body}")
    hostname = f"{created.metadata.name}-{created.spec.completions - 1}"
    assert len(hostname) <= 63
    # its merge Job (a plain Job: its name goes into its pods' job-name label) is accepted too
    merge = build_merge_job(resource, model, OperatorSettings())
    merge["spec"]["suspend"] = True
    try:
        made = k8s.batch.create_namespaced_job(ns, merge)
    except ApiException as exc:
        pytest.fail(f"the API server refused the operator's merge Job ({exc.status}): {exc.body}")
    assert made.spec.template.metadata.labels["job-name"] == made.metadata.name


# (b) a big status: etcd's "request is too large" -------------------------------------------


def _big_spec() -> dict[str, Any]:
    """A CRD-valid spec of about 1.1 MB: 500 clips with long descriptions."""
    return {
        "source": {"url": "http://127.0.0.1:9/long.mp4"},
        "segments": [
            {
                "knowledgeId": f"k-{i:03d}",
                "title": f"Clip {i} " + "t" * 180,
                "description": "d" * 2000,
                "start": str(i * 10),
                "end": str(i * 10 + 9),
            }
            for i in range(500)
        ],
        "output": {"formats": ["mp4", "webm"], "storage": {"pvc": {"claimName": "clips"}}},
    }


def _segment(i: int) -> SegmentResult:
    prefix = "file:///output/" + "long-prefix/" * 8
    return SegmentResult(
        index=i,
        knowledge_id=f"k-{i:03d}",
        title=f"Clip {i} " + "t" * 180,
        start=i * 10.0,
        end=i * 10.0 + 9,
        stem=f"{i:03d}-k-{i:03d}",
        precision="smart",
        files=[
            OutputFile.model_validate(
                {
                    "kind": kind,
                    "format": fmt,
                    "uri": f"{prefix}{i:03d}.{fmt}",
                    "bytes": 123456,
                    "sha256": "ab" * 32,
                }
            )
            for kind, fmt in (
                ("video", "mp4"),
                ("video", "webm"),
                ("thumbnail", "jpg"),
                ("subtitles", "vtt"),
            )
        ],
    )


class Recording:
    """The reporter's API client, recording the refusals the server answers."""

    def __init__(self, api: Any) -> None:
        self.api = api
        self.refusals: list[tuple[int, str]] = []

    def patch_namespaced_custom_object_status(self, *args: Any, **kwargs: Any) -> Any:
        try:
            return self.api.patch_namespaced_custom_object_status(*args, **kwargs)
        except ApiException as exc:
            self.refusals.append((exc.status, str(exc.body)[:300]))
            raise


def test_a_big_run_still_lands_its_manifest_when_etcd_refuses_the_size(k8s: K8s, ns: str) -> None:
    """500 clips on a ~1.1 MB spec: the worker's status with its 512 KiB clip list would pass
    etcd's 1.5 MiB request limit (a 500 from the API server). The reporter shrinks the list and
    the final write (``manifestUri``) lands."""
    body = k8s.custom.create_namespaced_custom_object(
        GROUP, VERSION, ns, PLURAL, vpj(ns, "big", _big_spec())
    )
    assert len(json.dumps(body["spec"])) > 1_000_000
    uid = body["metadata"]["uid"]
    k8s.custom.patch_namespaced_custom_object_status(
        GROUP, VERSION, ns, PLURAL, "big", {"status": {"phase": "Running", "jobName": "big-run"}}
    )
    api = Recording(kubernetes.client.CustomObjectsApi(k8s.api))
    reporter = ClusterReporter(
        ResourceRef(namespace=ns, name="big", uid=uid, generation=1, job_name="big-run"),
        interval=0.2,
        api=api,
    )
    try:
        reporter.stage("Cutting")
        for i in range(1, 501):
            reporter.segment(_segment(i), 500)
        reporter.finish("file:///output/big/manifest.json")
    finally:
        reporter.close()
    # the real server's answer to an object over etcd's limit
    print("REFUSED", api.refusals[:1], "budget now", reporter.segments_budget)
    assert any(code in (500, 413) and "too large" in body for code, body in api.refusals), (
        api.refusals
    )
    status = k8s.vpj(ns, "big")["status"]
    assert status.get("manifestUri") == "file:///output/big/manifest.json", (
        f"the final status never landed (patches sent: {reporter.patches_sent}); "
        f"status keys: {sorted(status)}"
    )
    assert status["segmentsSummary"] == "500/500"
    assert status["progress"]["stage"] == "Finished"
    segments = status.get("segments") or []
    assert len(segments) < 500, "the clip list was bounded"
    assert [s["index"] for s in segments] == list(range(1, len(segments) + 1))


# (c) ResourceQuota: 403 "exceeded quota" is retried --------------------------------------------


def test_a_quota_refusal_is_retried_and_shown_not_failed(
    real_cluster: RealCluster, ns: str, operator: OperatorProcess
) -> None:
    k8s = real_cluster.k8s
    k8s.core.create_namespaced_resource_quota(
        ns, {"metadata": {"name": "jobs"}, "spec": {"hard": {"count/jobs.batch": "0"}}}
    )
    k8s.wait(
        "the quota's status",
        lambda: (k8s.core.read_namespaced_resource_quota("jobs", ns).status.hard or {}).get(
            "count/jobs.batch"
        ),
        60,
    )
    real_cluster.claim(ns, "clips")
    operator.start()
    k8s.custom.create_namespaced_custom_object(GROUP, VERSION, ns, PLURAL, vpj(ns, "quota", spec()))

    def progressing() -> dict[str, Any] | None:
        status = k8s.vpj(ns, "quota").get("status") or {}
        assert status.get("phase") != "Failed", f"the run failed on a quota: {status}"
        conds = {c["type"]: c for c in status.get("conditions") or []}
        cond = conds.get("Progressing") or {}
        return cond if cond.get("reason") == "QuotaExceeded" else None

    cond = k8s.wait("a QuotaExceeded condition", progressing, 90)
    assert "exceeded quota" in cond["message"] and "retrying in" in cond["message"]
    # still not failed after a couple of retries
    time.sleep(5)
    assert (k8s.vpj(ns, "quota").get("status") or {}).get("phase") != "Failed"
    k8s.core.patch_namespaced_resource_quota(
        "jobs", ns, {"spec": {"hard": {"count/jobs.batch": "5"}}}
    )
    job = k8s.wait(
        "the Job once the quota allows it",
        lambda: (k8s.vpj(ns, "quota").get("status") or {}).get("jobName"),
        180,
    )
    assert k8s.batch.read_namespaced_job(job, ns).metadata.name == job


# (d) the input ConfigMap's owner, checked on 409 ---------------------------------------------


async def test_a_stale_input_of_a_deleted_job_is_replaced(
    real_cluster: RealCluster, ns: str, operator: OperatorProcess
) -> None:
    """The input ConfigMap of an earlier Job of the same name (deleted; the garbage collector
    will delete its input) is replaced, with the operator's own RBAC, and the new one survives
    the garbage collector."""
    from videojobs_operator.kube import Kube
    from videojobs_operator.metrics import Metrics

    k8s = real_cluster.k8s
    resource = k8s.custom.create_namespaced_custom_object(
        GROUP, VERSION, ns, PLURAL, vpj(ns, "stale", spec())
    )
    model, _ = validate_spec(resource["spec"])
    assert model is not None
    settings = OperatorSettings()
    job = build_job(resource, model, settings)
    job["spec"]["suspend"] = True
    api = kubernetes.config.new_client_from_config(config_file=str(operator.kubeconfig))
    kube = Kube(api, Metrics())
    name = input_configmap_name(job["metadata"]["name"])

    # An input left by a Job of the same name that no longer exists. The garbage collector
    # deletes it at once (its owner is gone); a finalizer holds it in its last moments, as a
    # busy garbage collector or a slow deletion would, so that the operator meets the 409.
    stale = build_input_configmap(
        resource, model, settings, {"metadata": {**job["metadata"], "uid": str(uuid.uuid4())}}
    )
    stale["data"] = {"input.json": "{}"}
    stale["metadata"]["finalizers"] = ["videojobs.io/test-hold"]
    stale_uid = k8s.core.create_namespaced_config_map(ns, stale).metadata.uid
    live = k8s.batch.create_namespaced_job(ns, job)
    fresh = build_input_configmap(resource, model, settings, k8s.plain(live))
    retry = False
    try:
        await kube.create_configmap(fresh)
    except ApiException as exc:
        pytest.fail(f"the operator's request was refused ({exc.status}): {exc.body}")
    except Exception:
        retry = True  # the reconciler tries again on its next pass (_ensure_input)
    k8s.core.patch_namespaced_config_map(name, ns, {"metadata": {"finalizers": None}})

    def stale_gone() -> bool:
        try:
            return k8s.core.read_namespaced_config_map(name, ns).metadata.uid != stale_uid
        except ApiException as exc:
            if exc.status == 404:
                return True
            raise

    k8s.wait("the stale input gone", stale_gone, 30)
    if retry:
        await kube.create_configmap(fresh)
    # the garbage collector deletes what is owned by a Job that does not exist: give it time
    time.sleep(4)
    try:
        got = k8s.core.read_namespaced_config_map(name, ns)
    except ApiException as exc:
        assert exc.status == 404
        got = None
    assert got is not None, "the run's input was garbage-collected under its Job"
    owner = got.metadata.owner_references[0]
    assert owner.uid == live.metadata.uid and owner.kind == "Job"
    assert got.data == fresh["data"]
