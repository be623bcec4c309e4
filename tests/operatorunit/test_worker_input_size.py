"""The worker input reaches the pod as a mounted file, whatever its size: the largest input the
CRD allows (a 64k-character CJK inline transcript) would be ~200 KB in one environment
string, over the 128 KiB Linux allows, so the container would never start."""

from __future__ import annotations

import base64
import gzip
import json
import random
from typing import Any

import pytest

from videojobs.models import INPUT_FILE, VideoProcessingJobSpec, WorkerInput
from videojobs.models.spec import INLINE_TRANSCRIPT_MAX
from videojobs_operator.manifest import InputTooLarge, build_input_configmap, build_job
from videojobs_operator.settings import OperatorSettings

MAX_ARG_STRLEN = 128 * 1024
"""Linux's limit on one environment string (name=value)."""
OBJECT_MAX = 1536 * 1024
"""etcd's default request limit, which bounds every object (the resource and the ConfigMap)."""
CONFIGMAP_MAX = 1024 * 1024


def cjk(n: int, seed: int = 0) -> str:
    rng = random.Random(seed)
    return "".join(chr(rng.randint(0x4E00, 0x9FFF)) for _ in range(n))


def resource(spec: dict[str, Any]) -> dict[str, Any]:
    return {
        "metadata": {"name": "lecture", "namespace": "media", "uid": "u-1", "generation": 1},
        "spec": spec,
    }


def transcript_spec(inline: str, points: int = 20) -> dict[str, Any]:
    return {
        "source": {"url": "https://example.com/v.mp4"},
        "transcript": {"inline": inline, "format": "webvtt"},
        "knowledgePoints": [
            {"id": f"k{i}", "title": cjk(200, i), "description": cjk(2000, i), "start": i * 10}
            for i in range(points)
        ],
        "output": {"storage": {"pvc": {"claimName": "clips"}}},
    }


def job_and_input(body: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    spec = VideoProcessingJobSpec.model_validate(body["spec"])
    job = build_job(body, spec, OperatorSettings())
    created = {**job, "metadata": {**job["metadata"], "uid": "job-uid"}}
    return job, build_input_configmap(body, spec, OperatorSettings(), created)


def read_input(cm: dict[str, Any]) -> WorkerInput:
    if "data" in cm:
        return WorkerInput.model_validate_json(cm["data"]["input.json"])
    packed = base64.b64decode(cm["binaryData"]["input.json.gz"])
    return WorkerInput.model_validate_json(gzip.decompress(packed))


def test_the_largest_inline_transcript_is_a_file_not_an_environment_string() -> None:
    inline = "WEBVTT\n\n" + cjk(INLINE_TRANSCRIPT_MAX - 8)
    assert len(inline) == INLINE_TRANSCRIPT_MAX
    body = resource(transcript_spec(inline))
    job, cm = job_and_input(body)
    container = job["spec"]["template"]["spec"]["containers"][0]
    for item in container["env"]:
        size = len(f"{item['name']}={item.get('value', '')}".encode())
        assert size < 4096, f"{item['name']}: {size} bytes in one environment string"
    assert {"name": "VIDEOJOBS_INPUT_FILE", "value": INPUT_FILE} in container["env"]
    assert len(json.dumps(job).encode()) < 64 * 1024, "the Job stays small"
    # the input itself: ~200 KB of UTF-8, in the ConfigMap, intact
    text = cm["data"]["input.json"]
    assert len(text.encode()) > MAX_ARG_STRLEN, "this input would not fit in an env var"
    assert len(json.dumps(cm).encode()) < CONFIGMAP_MAX
    assert read_input(cm).spec.transcript is not None
    assert read_input(cm).spec.transcript.inline == inline
    owner = cm["metadata"]["ownerReferences"][0]
    assert (owner["kind"], owner["uid"], owner["controller"]) == ("Job", "job-uid", True)
    assert not owner.get("blockOwnerDeletion"), "needs no update on jobs/finalizers"


def test_an_input_near_the_object_limit_is_gzipped_into_binary_data() -> None:
    """Up to 1.5 MiB of spec fits in etcd but not in a ConfigMap's 1 MiB: gzip makes it fit."""
    body = resource(transcript_spec("WEBVTT\n\n" + cjk(60000), points=150))
    size = len(json.dumps(body["spec"], ensure_ascii=False).encode())
    assert CONFIGMAP_MAX < size < OBJECT_MAX
    _, cm = job_and_input(body)
    assert "data" not in cm
    assert len(base64.b64decode(cm["binaryData"]["input.json.gz"])) < CONFIGMAP_MAX
    assert len(json.dumps(cm).encode()) < OBJECT_MAX
    assert read_input(cm).spec.knowledge_points[149].description == cjk(2000, 149)


def test_an_input_that_cannot_fit_fails_before_a_job_exists() -> None:
    rng = random.Random(1)
    noise = "".join(chr(rng.randint(0x4E00, 0x9FFF)) for _ in range(60000))
    body = resource(transcript_spec("WEBVTT\n\n" + noise, points=400))
    spec = VideoProcessingJobSpec.model_validate(body["spec"])
    job = {"metadata": {"name": "j", "namespace": "media", "uid": "x"}}
    with pytest.raises(InputTooLarge, match="too large to hand to the worker"):
        build_input_configmap(body, spec, OperatorSettings(), job)
