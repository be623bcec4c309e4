"""The strict API server's rules, as pure functions (no server, no operator).

Stays while the emulator does (the gateway's cluster-backend tests use it): its own rules' tests.
"""

from __future__ import annotations

import copy
from typing import Any

import pytest

from tests.mockapi.emulator import OPERATOR_SA, builtin_errors, chart_rbac, crd_schema
from tests.mockapi.strict import rules
from videojobs_operator import rbac

VPJ: dict[str, Any] = {
    "apiVersion": "videojobs.io/v1alpha1",
    "kind": "VideoProcessingJob",
    "metadata": {"name": "talk", "namespace": "media"},
    "spec": {
        "source": {"url": "http://example.com/a.mp4"},
        "segments": [{"start": 0, "end": 2, "title": "Intro"}],
        "output": {"storage": {"pvc": {"claimName": "clips"}}},
    },
}


def vpj(**spec: Any) -> dict[str, Any]:
    body = copy.deepcopy(VPJ)
    body["spec"].update(spec)
    return body


# Metadata ------------------------------------------------------------------------------------


def test_names_follow_dns1123_and_their_lengths() -> None:
    assert rules.name_errors("configmaps", "a.b-c") == []
    assert rules.name_errors("configmaps", "Upper")
    assert rules.name_errors("configmaps", "a" * 253) == []
    assert rules.name_errors("configmaps", "a" * 254)
    assert rules.name_errors("jobs", "a" * 63) == []
    assert "63" in rules.name_errors("jobs", "a" * 64)[0]
    assert rules.name_errors("services", "1abc")
    assert rules.name_errors("namespaces", "a.b")


def test_label_keys_and_values() -> None:
    assert rules.label_errors({"app.kubernetes.io/name": "x", "k": ""}) == []
    assert rules.label_errors({"k": "v" * 64})[0].endswith("(64)")
    assert rules.label_errors({"k": "-bad"})
    assert rules.label_errors({"Bad_Prefix/k": "v"})
    assert rules.label_errors({"a/" + "k" * 64: "v"})
    assert rules.label_errors({"k": 1})


def test_annotations_total_256_kib() -> None:
    assert rules.annotation_errors({"a": "x" * (256 * 1024 - 1)}) == []
    assert rules.annotation_errors({"a": "x" * (256 * 1024)})
    assert rules.annotation_errors({"a": "x" * 200_000, "b": "y" * 100_000})


def test_object_size_and_env_strings() -> None:
    assert rules.size_errors({"data": "x" * 1_500_000}) == []
    assert rules.size_errors({"data": "x" * 1_600_000})
    job = {
        "metadata": {"name": "j"},
        "spec": {
            "template": {
                "spec": {"containers": [{"name": "c", "env": [{"name": "IN", "value": "x"}]}]}
            }
        },
    }
    assert rules.env_errors("jobs", job) == []
    job["spec"]["template"]["spec"]["containers"][0]["env"][0]["value"] = "字" * 50_000
    (error,) = rules.env_errors("jobs", job)
    assert "env[0] (IN)" in error and "150004 B" in error


def test_pod_template_labels_of_a_job_are_checked() -> None:
    job = {
        "metadata": {"name": "j"},
        "spec": {"template": {"metadata": {"labels": {"x": "y" * 64}}}},
    }
    assert rules.metadata_errors("jobs", job)


def test_builtin_objects_are_validated_strictly_for_old_and_new_kubernetes() -> None:
    good = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "a"}, "data": {"k": "v"}}
    assert builtin_errors(good) == []
    bad = {**good, "dta": {}}
    errors = builtin_errors(bad)
    assert len(errors) == 2 and "1.29" in errors[0] and "dta" in errors[0]


# Patches and the status subresource ----------------------------------------------------------


def test_merge_patch_and_its_inverse() -> None:
    old = {"a": {"b": 1, "c": [1]}, "d": 2}
    new = {"a": {"b": 2}, "e": None or 3}
    assert rules.merge_patch(old, {"a": {"b": 2, "c": None}, "d": None, "e": 3}) == new
    assert rules.merge_patch(old, rules.merge_diff(old, new)) == new


def test_json_patch() -> None:
    old = {"metadata": {"finalizers": ["a", "b"]}}
    ops = [{"op": "remove", "path": "/metadata/finalizers/0"}]
    assert rules.apply_patch(old, ops, "application/json-patch+json") == {
        "metadata": {"finalizers": ["b"]}
    }
    with pytest.raises(rules.Invalid):
        rules.apply_patch(old, [{"op": "test", "path": "/x", "value": 1}], "json-patch")


def test_status_write_cannot_change_spec_and_spec_write_cannot_change_status() -> None:
    current = {"metadata": {"generation": 3, "uid": "u"}, "spec": {"a": 1}, "status": {"p": 1}}
    proposed = {"metadata": {"generation": 9, "uid": "x"}, "spec": {"a": 2}, "status": {"p": 2}}
    via_status = rules.settle_update(current, proposed, "status", has_status=True)
    assert via_status["spec"] == {"a": 1} and via_status["status"] == {"p": 2}
    assert via_status["metadata"] == {"generation": 3, "uid": "u"}
    via_main = rules.settle_update(current, proposed, None, has_status=True)
    assert via_main["spec"] == {"a": 2} and via_main["status"] == {"p": 1}
    assert via_main["metadata"]["generation"] == 4  # spec changed
    labels_only = {**current, "metadata": {**current["metadata"], "labels": {"x": "y"}}}
    assert rules.settle_update(current, labels_only, None, True)["metadata"]["generation"] == 3


def test_stale_resource_version_is_a_conflict() -> None:
    current = {"metadata": {"resourceVersion": "7"}}
    assert rules.resource_version_conflict(current, {"metadata": {"resourceVersion": "7"}}) is None
    assert rules.resource_version_conflict(current, {"spec": {}}) is None
    assert "6 != 7" in str(
        rules.resource_version_conflict(current, {"metadata": {"resourceVersion": "6"}})
    )


# Custom resources ----------------------------------------------------------------------------


def test_unknown_fields_are_pruned() -> None:
    body = vpj(bogus=1)
    body["metadata"]["extra"] = 1
    body["spec"]["source"]["nope"] = 2
    pruned = rules.prune(body, crd_schema())
    assert "bogus" not in pruned["spec"] and "nope" not in pruned["spec"]["source"]
    assert "extra" not in pruned["metadata"]
    assert rules.custom_resource_errors(pruned, None, crd_schema()) == []


def test_schema_and_cel_rules_on_create() -> None:
    schema = crd_schema()
    assert rules.custom_resource_errors(vpj(), None, schema) == []
    both = vpj(transcript={"inline": "WEBVTT\n"})
    assert rules.custom_resource_errors(both, None, schema)  # segments XOR transcript (CEL)
    # "end after start" is left to the models (a CEL time comparison is over the 1.29 cost
    # budget, tests/unit/test_crd_cel_cost.py); a storage one-of rule stands in for it
    two_backends = vpj(output={"storage": {"pvc": {"claimName": "c"}, "s3": {"bucket": "b12"}}})
    assert rules.custom_resource_errors(two_backends, None, schema)
    wrong_type = vpj(segments=[{"start": True, "end": 2, "title": "x"}])
    assert rules.custom_resource_errors(wrong_type, None, schema)


def test_transition_rules_run_on_update_only() -> None:
    schema = crd_schema()
    old = vpj()
    changed = vpj(segments=[{"start": 0, "end": 3, "title": "Intro"}])
    assert rules.custom_resource_errors(changed, None, schema) == []
    errors = rules.custom_resource_errors(changed, old, schema)
    assert errors and errors[0].startswith("spec") and "immutable" in errors[0]


# RBAC ----------------------------------------------------------------------------------------


def attrs(verb: str, resource: str, group: str = "", **kw: Any) -> rules.RequestAttributes:
    sub = None
    if "/" in resource:
        resource, sub = resource.split("/")
    return rules.RequestAttributes(verb, group, resource, sub, kw.get("ns", "media"), None)


def test_the_chart_rules_authorize_the_operator_and_nothing_more() -> None:
    objs = list(chart_rbac())
    for rule in rbac.OPERATOR_RULES:
        for group in rule["apiGroups"]:
            for resource in rule["resources"]:
                for verb in rule["verbs"]:
                    assert rules.authorize(objs, OPERATOR_SA, attrs(verb, resource, group))
    assert not rules.authorize(objs, OPERATOR_SA, attrs("update", "configmaps"))
    assert not rules.authorize(objs, OPERATOR_SA, attrs("get", "secrets"))
    vpjs = "videoprocessingjobs/status"
    assert not rules.authorize(objs, OPERATOR_SA, attrs("update", vpjs, "videojobs.io"))
    other = rules.ServiceAccount("media", "videojobs-worker")
    assert not rules.authorize(objs, other, attrs("get", "configmaps"))
    lease = attrs("patch", "leases", "coordination.k8s.io", ns="videojobs-system")
    assert rules.authorize(objs, OPERATOR_SA, lease)
    elsewhere = attrs("patch", "leases", "coordination.k8s.io", ns="media")
    assert not rules.authorize(objs, OPERATOR_SA, elsewhere)


def test_a_role_binding_grants_only_in_its_namespace() -> None:
    worker = rules.ServiceAccount("media", "w")
    objs = [
        {
            "kind": "Role",
            "metadata": {"name": "w", "namespace": "media"},
            "rules": rbac.WORKER_RULES,
        },
        {
            "kind": "RoleBinding",
            "metadata": {"name": "w", "namespace": "media"},
            "roleRef": {"kind": "Role", "name": "w"},
            "subjects": [{"kind": "ServiceAccount", "name": "w", "namespace": "media"}],
        },
    ]
    status = attrs("patch", "videoprocessingjobs/status", "videojobs.io")
    assert rules.authorize(objs, worker, status)
    assert not rules.authorize(objs, worker, attrs("patch", "videoprocessingjobs", "videojobs.io"))
    other_ns = attrs("patch", "videoprocessingjobs/status", "videojobs.io", ns="other")
    assert not rules.authorize(objs, worker, other_ns)
    assert not rules.authorize(objs, rules.ServiceAccount("other", "w"), status)
