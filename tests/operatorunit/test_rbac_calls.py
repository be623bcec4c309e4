"""The operator's RBAC is derived from the calls its code makes (issue 28 item 6).

Every Kubernetes request of the operator is either a method of a ``kubernetes.client`` API
object the code holds (``self.core = kubernetes.client.CoreV1Api(api)`` ...) or a watch kopf
opens for a ``@kopf.on.event`` / ``@kopf.index`` resource (plus kopf's own Event posts). This test
reads the operator's source, finds every such method it refers to, asks the client library which
HTTP request the method makes (its generated ``*_with_http_info`` names path and verb), and
compares the resulting (group, resource, verb) set with the rules in ``rbac.py``, which the chart
renders: a granted verb that no code calls fails, and so does a call that no rule grants. The
real API server enforces the same rules on every request in tests/realk8s.
"""

from __future__ import annotations

import ast
import functools
import inspect
import re
from pathlib import Path

import kubernetes.client

from videojobs_operator import rbac

PACKAGE = Path(rbac.__file__).resolve().parent
CUSTOM_PLURAL = "videoprocessingjobs"  # the only custom resource the operator reads or writes

# Granted without a request of the operator's own: (group, resource, verb) -> why.
NOT_A_CALL = {
    ("videojobs.io", "videoprocessingjobs/finalizers", "update"): (
        "the Job's ownerReference sets blockOwnerDeletion: OwnerReferencesPermissionEnforcement "
        "checks this right on the owner when the Job is created"
    ),
}
# Requests that need no rule: discovery is readable by every authenticated client.
NO_RULE_NEEDED = {("", "discovery", "get")}

Triple = tuple[str, str, str]


def _http(cls: type, method: str) -> tuple[str, str]:
    """(path, HTTP method) of a generated client method."""
    src = inspect.getsource(getattr(cls, f"{method}_with_http_info"))
    (path,) = set(re.findall(r"'(/apis?/[^']*)'", src))
    (verb,) = set(re.findall(r"'(GET|POST|PUT|PATCH|DELETE)'", src))
    return path, verb


def _triple(cls: type, method: str) -> Triple:
    path, http = _http(cls, method)
    parts = path.strip("/").split("/")
    group = "" if parts[0] == "api" else parts[1]
    rest = parts[2:] if parts[0] == "api" else parts[3:]
    if rest[:1] == ["namespaces"] and len(rest) > 2:
        rest = rest[2:]  # /namespaces/{namespace}/<resource>...
    resource, *tail = rest
    if resource == "{plural}":
        group, resource = "videojobs.io", CUSTOM_PLURAL
    named = bool(tail) and tail[0] == "{name}"
    subresource = tail[1] if named and len(tail) > 1 else None
    if subresource:
        resource = f"{resource}/{subresource}"
    verb = {
        "GET": "get" if named else "list",
        "POST": "create",
        "PUT": "update",
        "PATCH": "patch",
        "DELETE": "delete" if named else "deletecollection",
    }[http]
    return group, resource, verb


def _api_holders(trees: dict[Path, ast.Module]) -> dict[str, type]:
    """Attribute name -> client API class, from ``self.X = kubernetes.client.YApi(...)``."""
    holders: dict[str, type] = {}
    for tree in trees.values():
        for node in ast.walk(tree):
            if not (isinstance(node, ast.Assign) and isinstance(node.value, ast.Call)):
                continue
            func = ast.unparse(node.value.func)
            if not func.startswith("kubernetes.client.") or not func.endswith("Api"):
                continue
            for target in node.targets:
                if isinstance(target, ast.Attribute):
                    holders[target.attr] = getattr(kubernetes.client, func.rsplit(".", 1)[1])
    return holders


def _kopf_watches(trees: dict[Path, ast.Module]) -> set[Triple]:
    found: set[Triple] = set()
    for tree in trees.values():
        for node in ast.walk(tree):
            if not isinstance(node, ast.Call):
                continue
            name = ast.unparse(node.func)
            if name not in ("kopf.on.event", "kopf.index"):
                continue
            args = [ast.unparse(a).strip("'\"") for a in node.args[:3]]
            group = {"GROUP": "videojobs.io"}.get(args[0], args[0])
            resource = {"PLURAL": CUSTOM_PLURAL}.get(args[2], args[2])
            found |= {(group, resource, "list"), (group, resource, "watch")}
    return found


@functools.cache
def calls() -> frozenset[Triple]:
    """What the operator's code asks of the API server."""
    trees = {p: ast.parse(p.read_text()) for p in sorted(PACKAGE.glob("*.py"))}
    holders = _api_holders(trees)
    assert {"core", "batch", "custom"} <= set(holders), holders
    found: set[Triple] = set()
    for tree in trees.values():
        for node in ast.walk(tree):
            if not (isinstance(node, ast.Attribute) and isinstance(node.value, ast.Attribute)):
                continue
            cls = holders.get(node.value.attr)
            if cls is None or node.attr.startswith("_") or not hasattr(cls, node.attr):
                continue
            if node.attr in ("api_client",):
                continue
            found.add(_triple(cls, node.attr))
        found |= _kopf_watches(trees)
    # kopf posts its own warnings about resources as core/v1 Events (settings.posting)
    found.add(("", "events", "create"))
    # crd_served: GET /apis/videojobs.io/v1alpha1 through api.call_api
    found.add(("", "discovery", "get"))
    return frozenset(found)


def granted() -> set[Triple]:
    rules = rbac.OPERATOR_RULES + rbac.WORKER_RBAC_RULES + rbac.LEADER_ELECTION_RULES
    return {
        (group, resource, verb)
        for rule in rules
        for group in rule["apiGroups"]
        for resource in rule["resources"]
        for verb in rule["verbs"]
    }


def test_the_client_method_reading_is_right() -> None:
    """The path/verb reading on methods whose request is known."""
    core, custom = kubernetes.client.CoreV1Api, kubernetes.client.CustomObjectsApi
    assert _triple(core, "read_namespaced_config_map") == ("", "configmaps", "get")
    assert _triple(core, "list_namespaced_event") == ("", "events", "list")
    assert _triple(kubernetes.client.BatchV1Api, "create_namespaced_job") == (
        "batch", "jobs", "create",
    )  # fmt: skip
    assert _triple(custom, "patch_namespaced_custom_object_status") == (
        "videojobs.io", "videoprocessingjobs/status", "patch",
    )  # fmt: skip
    assert _triple(custom, "list_cluster_custom_object") == (
        "videojobs.io", "videoprocessingjobs", "list",
    )  # fmt: skip
    assert _triple(kubernetes.client.RbacAuthorizationV1Api, "patch_namespaced_role") == (
        "rbac.authorization.k8s.io", "roles", "patch",
    )  # fmt: skip


def test_every_call_is_granted() -> None:
    missing = calls() - granted() - NO_RULE_NEEDED
    assert not missing, f"calls no rule in rbac.py grants (the API server will say 403): {missing}"


def test_every_granted_verb_is_called() -> None:
    unused = granted() - calls() - set(NOT_A_CALL)
    assert not unused, f"rules in rbac.py no code of the operator uses: {sorted(unused)}"
