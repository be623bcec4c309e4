"""The chart's RBAC is exactly rbac.py's rules: nothing more, no wildcards."""

from __future__ import annotations

import importlib.util
from typing import Any

import pytest

from tests.chart.chartkit import RELEASE_NAMESPACE, REPO, find, objects, one
from tests.chart.test_render import COMBINATIONS, FULLNAME
from videojobs_operator import rbac

ROLE_KINDS = ("ClusterRole", "Role")


def _sync_chart() -> Any:
    spec = importlib.util.spec_from_file_location("sync_chart", REPO / "charts/tools/sync_chart.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_chart_rules_file_is_generated_from_rbac_py() -> None:
    sync = _sync_chart()
    assert sync.RBAC_FILE.read_text() == sync.render_rbac(), (
        "charts/videojobs/files/rbac.yaml is stale: run python3 charts/tools/sync_chart.py"
    )


@pytest.mark.parametrize("combo", list(COMBINATIONS))
def test_no_wildcards_anywhere(combo: str) -> None:
    for obj in objects(COMBINATIONS[combo]):
        if obj["kind"] not in ROLE_KINDS:
            continue
        for rule in obj["rules"]:
            assert "nonResourceURLs" not in rule
            for field in ("apiGroups", "resources", "verbs", "resourceNames"):
                assert "*" not in rule.get(field, []), f"{obj['metadata']['name']}: {rule}"
            assert not {"escalate", "bind", "impersonate"} & set(rule["verbs"]), rule


def test_cluster_mode_operator_rules() -> None:
    objs = objects()
    # No namespaces listed: the operator provisions the worker identity itself.
    assert one(objs, "ClusterRole")["rules"] == rbac.OPERATOR_RULES + rbac.WORKER_RBAC_RULES
    objs = objects(COMBINATIONS["cluster-with-namespaces"])
    assert one(objs, "ClusterRole")["rules"] == rbac.OPERATOR_RULES


def test_namespaced_mode_operator_rules() -> None:
    objs = objects(COMBINATIONS["namespaced"])
    roles = find(objs, "Role", FULLNAME)
    assert len(roles) == 2
    for role in roles:
        assert role["rules"] == rbac.OPERATOR_RULES
    forced = {
        "rbac": {"scope": "namespaced"},
        "operator": {"config": {"namespaces": ["media"], "manageWorkerRbac": True}},
    }
    assert one(objects(forced), "Role", FULLNAME)["rules"] == (
        rbac.OPERATOR_RULES + rbac.WORKER_RBAC_RULES
    )


def test_leader_election_rules() -> None:
    role = one(objects(), "Role", f"{FULLNAME}-leader-election")
    assert role["rules"] == rbac.LEADER_ELECTION_RULES
    assert role["metadata"]["namespace"] == RELEASE_NAMESPACE
    off = objects({"operator": {"config": {"leaderElection": False}}})
    assert not find(off, "Role", f"{FULLNAME}-leader-election")
    elsewhere = objects({"operator": {"config": {"leaderElectionNamespace": "locks"}}})
    assert one(elsewhere, "Role", f"{FULLNAME}-leader-election")["metadata"]["namespace"] == (
        "locks"
    )


def test_worker_rules() -> None:
    objs = objects(COMBINATIONS["everything"])
    roles = find(objs, "Role", "videojobs-worker")
    assert sorted(r["metadata"]["namespace"] for r in roles) == ["a", "b", "c"]
    for role in roles:
        assert role["rules"] == rbac.WORKER_RULES
    sa = [s for s in find(objs, "ServiceAccount", "videojobs-worker")]
    assert all(s["imagePullSecrets"] == [{"name": "regcred"}] for s in sa)


def test_every_rule_set_of_rbac_py_is_rendered_somewhere() -> None:
    """A rule set added to rbac.py but never rendered would go unnoticed otherwise."""
    rendered: list[list[dict[str, Any]]] = []
    for values in (COMBINATIONS["default"], COMBINATIONS["namespaced"]):
        rendered += [o["rules"] for o in objects(values) if o["kind"] in ROLE_KINDS]
    rule_sets = {
        name: value
        for name, value in vars(rbac).items()
        if name.endswith("_RULES") and isinstance(value, list)
    }
    assert set(rule_sets) == {
        "OPERATOR_RULES",
        "WORKER_RBAC_RULES",
        "LEADER_ELECTION_RULES",
        "WORKER_RULES",
    }, "rbac.py has a new rule set: render it in the chart and add it here"
    flat = [rule for rules in rendered for rule in rules]
    for name, rules in rule_sets.items():
        for rule in rules:
            assert rule in flat, f"{name} rule {rule} is not rendered"


def test_block_owner_deletion_comes_with_update_on_the_owners_finalizers() -> None:
    """OwnerReferencesPermissionEnforcement refuses an owner reference with blockOwnerDeletion
    unless the creator may update the owner's ``finalizers`` subresource."""
    from videojobs.models import VideoProcessingJobSpec
    from videojobs_operator.manifest import build_job
    from videojobs_operator.settings import OperatorSettings

    body = {
        "metadata": {"name": "lecture", "namespace": "media", "uid": "u", "generation": 1},
        "spec": {
            "source": {"url": "https://example.com/v.mp4"},
            "segments": [{"start": 0, "end": 5, "title": "Intro"}],
            "output": {"storage": {"pvc": {"claimName": "clips"}}},
        },
    }
    job = build_job(body, VideoProcessingJobSpec.model_validate(body["spec"]), OperatorSettings())
    for ref in job["metadata"]["ownerReferences"]:
        if not ref.get("blockOwnerDeletion"):
            continue
        group = ref["apiVersion"].split("/")[0]
        assert any(
            group in rule["apiGroups"]
            and "videoprocessingjobs/finalizers" in rule["resources"]
            and "update" in rule["verbs"]
            for rule in rbac.OPERATOR_RULES
        ), f"{ref['kind']}: blockOwnerDeletion needs update on videoprocessingjobs/finalizers"
    for combo in ("cluster-with-namespaces", "namespaced"):
        for obj in objects(COMBINATIONS[combo]):
            if obj["kind"] in ROLE_KINDS and obj["metadata"]["name"] == FULLNAME:
                assert {
                    "apiGroups": ["videojobs.io"],
                    "resources": ["videoprocessingjobs/finalizers"],
                    "verbs": ["update"],
                } in obj["rules"], combo
