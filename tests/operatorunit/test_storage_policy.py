"""The platform's storage rules: tenants choose only a prefix; destinations unique per resource."""

from __future__ import annotations

import json
from typing import Any

from tests.operatorunit.fakekube import FakeKube
from videojobs.models import VideoProcessingJobSpec, WorkerInput
from videojobs_operator.manifest import build_job, build_worker_input
from videojobs_operator.settings import OperatorSettings
from videojobs_operator.storage_policy import effective_spec, storage_problems

UID = "0c7d1a4e-1111-2222-3333-444455556666"
PLATFORM = OperatorSettings(
    s3_allowed_endpoints=["https://minio.storage.svc:9000/"],
    s3_allowed_buckets=["clips-{namespace}"],
    s3_credentials_secret="videojobs-s3",
    s3_namespace_prefix=True,
)


def resource(storage: dict[str, Any], name: str = "talk", namespace: str = "team-a") -> Any:
    return {
        "metadata": {"name": name, "namespace": namespace, "uid": UID, "generation": 1},
        "spec": {
            "source": {"url": "https://example.com/v.mp4"},
            "segments": [{"start": 0, "end": 5, "title": "Intro"}],
            "output": {"storage": storage},
        },
    }


def _spec(body: Any) -> VideoProcessingJobSpec:
    return VideoProcessingJobSpec.model_validate(body["spec"])


def _worker(body: Any, settings: OperatorSettings) -> tuple[WorkerInput, dict[str, Any]]:
    """The worker's input (as in its input ConfigMap) and its container env."""
    spec = _spec(body)
    job = build_job(body, spec, settings)
    container = job["spec"]["template"]["spec"]["containers"][0]
    env = {e["name"]: e for e in container["env"]}
    text = build_worker_input(body, spec, settings).model_dump_json(by_alias=True)
    return WorkerInput.model_validate(json.loads(text)), env


def test_default_destinations_are_namespace_and_name() -> None:
    settings = OperatorSettings()
    seen = set()
    for ns, name in (("team-a", "talk"), ("team-a", "other"), ("team-b", "talk")):
        for storage in ({"pvc": {"claimName": "clips"}}, {"s3": {"bucket": "clips"}}):
            body = resource(storage, name, ns)
            wi, _ = _worker(body, settings)
            out = wi.spec.output.storage
            where = out.pvc.path if out.pvc else out.s3.prefix  # type: ignore[union-attr]
            assert where == f"{ns}/{name}"
            seen.add((bool(out.pvc), where))
    assert len(seen) == 6


def test_a_tenant_may_only_use_the_platform_s3() -> None:
    bad = _spec(
        resource(
            {
                "s3": {
                    "bucket": "clips-team-b",
                    "endpoint": "http://10.0.0.5:9000",
                    "credentialsSecretRef": {"name": "stolen", "key": "x"},
                }
            }
        )
    )
    problems = {p.path: p.message for p in storage_problems(bad, "team-a", PLATFORM)}
    assert set(problems) == {
        "spec.output.storage.s3.endpoint",
        "spec.output.storage.s3.bucket",
        "spec.output.storage.s3.credentialsSecretRef",
    }
    assert "clips-team-a" in problems["spec.output.storage.s3.bucket"]
    assert storage_problems(bad, "team-a", OperatorSettings()) == []  # the defaults allow it
    good = _spec(resource({"s3": {"bucket": "clips-team-a", "prefix": "courses"}}))
    assert storage_problems(good, "team-a", PLATFORM) == []


def test_the_platform_fixes_endpoint_credentials_and_namespace_prefix() -> None:
    body = resource({"s3": {"bucket": "clips-team-a", "prefix": "courses/k8s"}})
    wi, env = _worker(body, PLATFORM)
    s3 = wi.spec.output.storage.s3
    assert s3 is not None
    assert s3.prefix == "team-a/courses/k8s"
    assert s3.endpoint == "https://minio.storage.svc:9000"
    assert wi.trusted_s3_endpoints == ["https://minio.storage.svc:9000/"]
    for key in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        assert env[key]["valueFrom"]["secretKeyRef"] == {"name": "videojobs-s3", "key": key}
    default = resource({"s3": {"bucket": "clips-team-a"}})
    wi, _ = _worker(default, PLATFORM)
    assert wi.spec.output.storage.s3 is not None
    assert wi.spec.output.storage.s3.prefix == "team-a/talk"


def test_the_namespace_prefix_cannot_be_climbed_out_of() -> None:
    spec = _spec(resource({"s3": {"bucket": "clips-team-a", "prefix": "x"}}))
    assert effective_spec(spec, "team-a", "talk", PLATFORM).output.storage.s3.prefix == (  # type: ignore[union-attr]
        "team-a/x"
    )
    root = _spec(resource({"s3": {"bucket": "clips-team-a", "prefix": ""}}))
    assert effective_spec(root, "team-a", "talk", PLATFORM).output.storage.s3.prefix == "team-a"  # type: ignore[union-attr]


async def test_the_operator_fails_a_forbidden_bucket_with_invalid_spec() -> None:
    from tests.operatorunit.test_reconcile_create import last_status
    from tests.operatorunit.test_reconcile_create import reconciler as make_reconciler
    from tests.operatorunit.test_reconcile_create import resource as vpj

    kube = FakeKube()
    body = vpj()
    body["spec"]["output"]["storage"] = {"s3": {"bucket": "clips-team-b"}}
    rec = make_reconciler(kube, body, s3_allowed_buckets=["clips-{namespace}"])
    await rec.reconcile(("media", "lecture"))
    status = last_status(kube)
    assert status["phase"] == "Failed"
    assert status["error"]["category"] == "InvalidSpec"
    assert "spec.output.storage.s3.bucket" in status["error"]["message"]
    assert "clips-media" in status["error"]["message"]
    assert not any(c[0] == "create_job" for c in kube.calls)
    await rec.close()
