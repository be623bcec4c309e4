"""Every example is valid against the models, the CRD's openAPIV3Schema and its CEL rules; broken
objects are rejected by the CEL rules the API server would run (evaluated with cel-python)."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import celpy
import jsonschema
import pytest
import yaml

from tests.mockapi.strict.rules import _int_or_string_errors
from videojobs.crd import build_crd
from videojobs.models import KIND
from videojobs.validation import check_file, load_manifests

EXAMPLES = Path(__file__).resolve().parent.parent.parent / "examples"
EXAMPLE_FILES = sorted(EXAMPLES.glob("*.yaml"))
SCHEMA = build_crd()["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
_CEL = celpy.Environment()


def _strict(node: dict[str, Any]) -> dict[str, Any]:
    """The schema with unknown fields rejected (kubectl's strict field validation)."""
    node = dict(node)
    if "properties" in node:
        node["properties"] = {k: _strict(v) for k, v in node["properties"].items()}
        node["additionalProperties"] = False
    if isinstance(node.get("items"), dict):
        node["items"] = _strict(node["items"])
    if isinstance(node.get("additionalProperties"), dict):
        node["additionalProperties"] = _strict(node["additionalProperties"])
    return node


VALIDATOR = jsonschema.Draft4Validator(_strict(SCHEMA))


def schema_errors(obj: Any, schema: dict[str, Any] = SCHEMA, path: str = "") -> list[str]:
    """jsonschema errors plus what jsonschema cannot see: int-or-string nodes hold int or str."""
    errors = [
        f"{'.'.join(map(str, e.absolute_path))}: {e.message}" for e in VALIDATOR.iter_errors(obj)
    ]
    return errors + _int_or_string_errors(obj, schema, path)


def cel_violations(
    obj: Any, old: Any = None, schema: dict[str, Any] = SCHEMA, path: str = ""
) -> list[str]:
    """Evaluate every x-kubernetes-validations rule on the object, as the API server does.

    Transition rules (those using ``oldSelf``) run only when there is an old object (an update).
    """
    out = []
    for rule in schema.get("x-kubernetes-validations", []):
        transition = "oldSelf" in rule["rule"]
        if transition and old is None:
            continue
        activation = {"self": celpy.json_to_cel(obj)}
        if transition:
            activation["oldSelf"] = celpy.json_to_cel(old)
        result = _CEL.program(_CEL.compile(rule["rule"])).evaluate(activation)
        assert isinstance(result, celpy.celtypes.BoolType), f"{path}: {rule['rule']} -> {result!r}"
        if not result:
            out.append(f"{path or '<root>'}: {rule['message']}")
    if isinstance(obj, dict):
        for key, child in schema.get("properties", {}).items():
            if key in obj:
                old_child = old.get(key) if isinstance(old, dict) and key in old else None
                out += cel_violations(obj[key], old_child, child, f"{path}.{key}")
    if isinstance(obj, list) and "items" in schema:
        for i, item in enumerate(obj):
            out += cel_violations(item, None, schema["items"], f"{path}[{i}]")
    return out


def job_documents(path: Path) -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all(path.read_text()) if d and d.get("kind") == KIND]


def test_the_required_examples_exist() -> None:
    names = {p.stem for p in EXAMPLE_FILES}
    assert {
        "explicit-segments",
        "webvtt-start-times",
        "srt-quotes",
        "whisper-json",
        "s3-output",
        "seed-json",
        "configmap-transcript",
        "local-sample",
    } <= names


@pytest.mark.parametrize("path", EXAMPLE_FILES, ids=lambda p: p.name)
def test_example_is_valid_everywhere(path: Path) -> None:
    jobs = load_manifests(path)
    assert jobs
    for checked in check_file(path):
        spec = checked.job.spec
        deferred = (spec.transcript and spec.transcript.url) or spec.needs_source_info
        assert checked.plan is not None or (deferred and checked.notes)
    for doc in job_documents(path):
        assert schema_errors(doc) == []
        assert cel_violations(doc) == []
        assert cel_violations(doc, old=copy.deepcopy(doc)) == [], "an unchanged update is allowed"


def test_model_round_trip_stays_valid_against_the_schema() -> None:
    """What the models write back (e.g. the operator) is accepted by the API server too."""
    for path in EXAMPLE_FILES:
        for job in load_manifests(path):
            data = job.model_dump(mode="json", by_alias=True, exclude_none=True)
            assert schema_errors(data) == [], path
            assert cel_violations(data) == [], path


def _base() -> dict[str, Any]:
    return job_documents(EXAMPLES / "webvtt-start-times.yaml")[0]


def _explicit() -> dict[str, Any]:
    return job_documents(EXAMPLES / "explicit-segments.yaml")[0]


def _mutate(doc: dict[str, Any], path: str, value: Any) -> dict[str, Any]:
    doc = copy.deepcopy(doc)
    *parents, last = path.split(".")
    node = doc
    for part in parents:
        node = node[int(part)] if isinstance(node, list) else node[part]
    if value is _DELETE:
        del node[last]
    elif isinstance(node, list):
        node[int(last)] = value
    else:
        node[last] = value
    return doc


_DELETE = object()

CEL_BROKEN = [
    (
        "both segments and transcript",
        _base,
        "spec.segments",
        [{"title": "x", "start": 0, "end": 5}],
        "exactly one of segments",
    ),
    (
        "neither segments nor transcript",
        _base,
        "spec.transcript",
        _DELETE,
        "exactly one of segments",
    ),
    (
        "two transcript sources",
        _base,
        "spec.transcript.url",
        "https://example.org/t.vtt",
        "exactly one of inline",
    ),
    (
        "kp with start and quote",
        _base,
        "spec.knowledgePoints.0.quote",
        "welcome today",
        "exactly one of start, quote or cues",
    ),
    (
        "kp with end and cues",
        _base,
        "spec.knowledgePoints.0",
        {"id": "a", "title": "A", "cues": "1", "end": 5},
        "end cannot be combined with cues",
    ),
    (
        "two storage backends",
        _base,
        "spec.output.storage.s3",
        {"bucket": "abc"},
        "exactly one of pvc or s3",
    ),
    (
        "chapters with knowledge points",
        _base,
        "spec.segmentation",
        {"fromChapters": True},
        "segmentation.fromChapters (which takes no segments or knowledgePoints)",
    ),
    (
        "chapters with segments",
        _explicit,
        "spec.segmentation",
        {"fromChapters": True},
        "segmentation.fromChapters (which takes no segments or knowledgePoints)",
    ),
    (
        "captions from the source and inline",
        _base,
        "spec.transcript.fromSource",
        {"languages": ["en"]},
        "exactly one of inline, configMapKeyRef, url or fromSource",
    ),
    ("no storage backend", _base, "spec.output.storage.pvc", _DELETE, "exactly one of pvc or s3"),
    ("absolute pvc path", _base, "spec.output.storage.pvc.path", "/etc", "path must be relative"),
    (
        "dot-dot pvc path",
        _base,
        "spec.output.storage.pvc.path",
        "a/../../b",
        "path must be relative",
    ),
]


@pytest.mark.parametrize(
    ("make", "path", "value", "message"),
    [c[1:] for c in CEL_BROKEN],
    ids=[c[0] for c in CEL_BROKEN],
)
def test_cel_rejects_broken_objects(make: Any, path: str, value: Any, message: str) -> None:
    doc = _mutate(make(), path, value)
    violations = cel_violations(doc)
    assert any(message in v for v in violations), violations


@pytest.mark.parametrize(
    ("make", "path", "value"),
    [
        (_base, "spec.knowledgePoints.1.end", "00:00:05"),
        (_explicit, "spec.segments.2.end", 100),
        (_explicit, "spec.segments.0.end", "00:00:00"),
        (_explicit, "spec.segments.0", {"title": "x", "start": "5m", "end": "00:04:00"}),
    ],
    ids=["kp clock", "segment ints", "segment equal clock", "mixed forms"],
)
def test_end_before_start_is_left_to_the_models(make: Any, path: str, value: Any) -> None:
    """No CEL rule compares int-or-string times (their cost estimate is over budget before
    Kubernetes 1.34, tests/unit/test_crd_cel_cost.py); the models, hence the operator, do."""
    doc = _mutate(make(), path, value)
    assert cel_violations(doc) == []
    from pydantic import ValidationError

    from videojobs.models.resource import VideoProcessingJob

    with pytest.raises(ValidationError, match="must be after start"):
        VideoProcessingJob.model_validate(doc)


def test_schema_rejects_what_the_models_reject() -> None:
    for path, value in [
        ("spec.output.formats", []),
        ("spec.output.formats", ["avi"]),
        ("spec.transcript.format", "docx"),
        ("spec.output.formatz", ["mp4"]),
        ("spec.segmentation.overlap", "sometimes"),
        ("spec.knowledgePoints.0.start", 1.5),
        ("spec.knowledgePoints.0.id", "not an id"),
    ]:
        assert schema_errors(_mutate(_base(), path, value)), (path, value)


def test_transition_rules() -> None:
    old = _mutate(_base(), "spec.cancel", True)
    assert cel_violations(_mutate(old, "spec.cancel", False), old=old) == [
        ".spec: cancel cannot be undone on its own; set a new rerunToken to run again"
    ]
    rerun = _mutate(_mutate(old, "spec.cancel", False), "spec.rerunToken", "again-1")
    assert cel_violations(rerun, old=old) == []
    moved = _mutate(_base(), "spec.source.url", "https://example.org/other")
    assert any("are immutable" in v for v in cel_violations(moved, old=_base()))
    edited = _mutate(_base(), "spec.knowledgePoints.0.title", "Changed")
    assert any("are immutable" in v for v in cel_violations(edited, old=_base()))
    # output and segmentation may change (e.g. to re-run with other formats)
    assert cel_violations(_mutate(_base(), "spec.output.formats", ["webm"]), old=_base()) == []


def _immutable(doc: dict[str, Any], old: dict[str, Any]) -> bool:
    return any("are immutable" in v for v in cel_violations(doc, old=old))


def test_immutability_cannot_be_bypassed_by_adding_removing_or_swapping_fields() -> None:
    """Field-level transition rules run only when the field exists on both sides; the rule over
    the whole spec compares presence too."""
    without_kps = _mutate(_base(), "spec.knowledgePoints", _DELETE)
    assert _immutable(_base(), old=without_kps), "adding knowledgePoints later"
    assert _immutable(without_kps, old=_base()), "removing knowledgePoints"
    swapped = _explicit()
    swapped["spec"]["source"] = copy.deepcopy(_base()["spec"]["source"])
    assert _immutable(swapped, old=_base()), "transcript swapped for segments"
    assert _immutable(_base(), old=swapped), "segments swapped for transcript"
    assert not _immutable(copy.deepcopy(_base()), old=_base())
    assert not _immutable(_explicit(), old=_explicit())


def _timed_points() -> dict[str, Any]:
    return job_documents(EXAMPLES / "timed-points-no-transcript.yaml")[0]


def _agree(doc: dict[str, Any]) -> tuple[list[str], str | None]:
    """The CEL violations and the models' refusal (None: accepted) of one object."""
    from pydantic import ValidationError

    from videojobs.models.resource import VideoProcessingJob

    try:
        VideoProcessingJob.model_validate(doc)
        refusal = None
    except ValidationError as exc:
        refusal = str(exc)
    return cel_violations(doc), refusal


@pytest.mark.parametrize(
    ("make", "path", "value", "accepted"),
    [
        (_timed_points, None, None, True),
        (_timed_points, "spec.knowledgePoints.1.end", _DELETE, False),
        (_timed_points, "spec.knowledgePoints.0.start", _DELETE, False),
        (_timed_points, "spec.knowledgePoints", [], False),
        (_timed_points, "spec.knowledgePoints", _DELETE, False),
        (_timed_points, "spec.segmentation", {"auto": {}}, False),
        (_base, "spec.transcript", _DELETE, False),  # its points have start times only
    ],
    ids=["all timed", "one without end", "one without start", "no points", "points absent",
         "auto needs a transcript", "start times only"],
)  # fmt: skip
def test_timed_points_need_no_transcript_and_cel_agrees_with_the_models(
    make: Any, path: str | None, value: Any, accepted: bool
) -> None:
    doc = make() if path is None else _mutate(make(), path, value)
    assert "transcript" not in doc["spec"]
    violations, refusal = _agree(doc)
    assert (violations == []) is accepted, violations
    assert (refusal is None) is accepted, refusal
