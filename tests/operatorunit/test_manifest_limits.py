"""The Job manifest within what a real API server accepts: label values, metadata, names."""

from __future__ import annotations

import re
from typing import Any

from videojobs.models import VideoProcessingJobSpec
from videojobs_operator import handlers
from videojobs_operator.manifest import (
    ANNOTATION_RESOURCE,
    LABEL_JOB,
    LABEL_UID,
    build_job,
    label_value,
    labels_for,
)
from videojobs_operator.settings import OperatorSettings

UID = "0c7d1a4e-1111-2222-3333-444455556666"
LABEL_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")
LONGEST = "a" * 60 + "." + "b" * 192  # 253 characters: the longest valid resource name


def resource(name: str) -> dict[str, Any]:
    return {
        "metadata": {"name": name, "namespace": "media", "uid": UID, "generation": 1},
        "spec": {
            "source": {"url": "https://example.com/v.mp4"},
            "segments": [{"start": 0, "end": 5, "title": "Intro"}],
            "output": {"storage": {"pvc": {"claimName": "clips"}}},
        },
    }


def test_label_values_are_bounded_valid_and_distinct_for_long_names() -> None:
    assert len(LONGEST) == 253
    for name in (LONGEST, "x" * 64, "a-" * 40 + "z", "a" * 53 + "." + "b" * 20):
        for key, value in labels_for(resource(name)).items():
            assert len(value) <= 63 and LABEL_VALUE.match(value), (key, value)
    assert label_value("lecture") == "lecture", "short names stay readable as they are"
    assert label_value("b" * 64) != label_value("b" * 65), "truncation keeps values unique"
    assert label_value(LONGEST).startswith("a" * 20)


def test_job_and_pods_carry_the_full_name_in_an_annotation_and_the_uid_label() -> None:
    body = resource(LONGEST)
    job = build_job(body, VideoProcessingJobSpec.model_validate(body["spec"]), OperatorSettings())
    for meta in (job["metadata"], job["spec"]["template"]["metadata"]):
        assert meta["annotations"][ANNOTATION_RESOURCE] == LONGEST
        assert meta["labels"][LABEL_UID] == UID
        assert all(len(v) <= 63 for v in meta["labels"].values())
    assert len(job["metadata"]["name"]) <= 63


def test_indices_key_jobs_and_pods_by_the_full_resource_name() -> None:
    body = resource(LONGEST)
    job = build_job(body, VideoProcessingJobSpec.model_validate(body["spec"]), OperatorSettings())
    pod = {"metadata": dict(job["spec"]["template"]["metadata"], name="p"), "status": {}}
    assert list(handlers.job_index(namespace="media", body=job)) == [("media", LONGEST)]
    assert list(handlers.pod_index(namespace="media", body=pod)) == [("media", LONGEST)]
    # an object from an older operator (no annotation) is still found by its label
    old = {"metadata": {"name": "j", "labels": {LABEL_JOB: "lecture"}}}
    assert list(handlers.job_index(namespace="media", body=old)) == [("media", "lecture")]
