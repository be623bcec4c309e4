"""Pure rules a Kubernetes API server applies to writes and requests.

Every function here takes plain JSON-like data and returns errors (strings naming the field) or a
result; nothing does I/O. The sources are Kubernetes' own validation code:
``apimachinery/pkg/util/validation`` (names, labels), ``apimachinery/pkg/api/validation``
(annotations: 256 KiB in total), etcd's request limit (1.5 MiB), the apiextensions structural
schema rules (pruning, int-or-string, CEL ``x-kubernetes-validations`` with ``oldSelf``), the
status subresource, and RBAC's rule matching (``plugin/pkg/auth/authorizer/rbac``).
"""

from __future__ import annotations

import copy
import functools
import json
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

import celpy
import jsonpatch
import jsonschema

DNS1123_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
DNS1035_LABEL = re.compile(r"^[a-z]([-a-z0-9]*[a-z0-9])?$")
QUALIFIED_NAME = re.compile(r"^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$")
LABEL_VALUE = QUALIFIED_NAME

MAX_LABEL = 63
MAX_SUBDOMAIN = 253
MAX_ANNOTATIONS_BYTES = 256 * 1024
MAX_OBJECT_BYTES = 3 * 512 * 1024  # etcd's request limit, 1.5 MiB
MAX_ENV_STRING_BYTES = 128 * 1024  # Linux MAX_ARG_STRLEN: one "NAME=value" string of execve

LABEL_NAMED = {"services", "namespaces"}
"""Resources whose names must be DNS-1035 (services) or DNS-1123 (namespaces) labels."""
JOB_LIKE = {"jobs"}
"""Names that become a label value (``batch.kubernetes.io/job-name``), so 63 characters."""


class Invalid(Exception):
    """A write the API server refuses; ``code`` is the HTTP status it answers."""

    def __init__(self, code: int, reason: str, errors: list[str]) -> None:
        super().__init__("; ".join(errors))
        self.code = code
        self.reason = reason
        self.errors = errors


# Metadata ------------------------------------------------------------------------------------


def dns1123_label_errors(value: str, field: str) -> list[str]:
    out = []
    if len(value) > MAX_LABEL:
        out.append(f"{field}: must be no more than {MAX_LABEL} characters")
    if not DNS1123_LABEL.match(value):
        out.append(f"{field}: {value[:80]!r} is not a DNS-1123 label")
    return out


def dns1123_subdomain_errors(value: str, field: str) -> list[str]:
    out = []
    if len(value) > MAX_SUBDOMAIN:
        out.append(f"{field}: must be no more than {MAX_SUBDOMAIN} characters")
    if not value or not all(DNS1123_LABEL.match(part) for part in value.split(".")):
        out.append(f"{field}: {value[:80]!r} is not a DNS-1123 subdomain")
    return out


def name_errors(plural: str, name: str, field: str = "metadata.name") -> list[str]:
    """The name rules of one resource."""
    if plural == "services":
        out = [] if DNS1035_LABEL.match(name) else [f"{field}: {name!r} is not a DNS-1035 label"]
        return out + ([f"{field}: longer than 63"] if len(name) > MAX_LABEL else [])
    if plural in LABEL_NAMED:
        return dns1123_label_errors(name, field)
    out = dns1123_subdomain_errors(name, field)
    if plural in JOB_LIKE and len(name) > MAX_LABEL:
        out.append(f"{field}: must be no more than {MAX_LABEL} characters (it is a label value)")
    return out


def qualified_name_errors(key: str, field: str) -> list[str]:
    """A label or annotation key: ``[prefix/]name`` (prefix a DNS subdomain, name <= 63)."""
    prefix, _, name = key.rpartition("/")
    out = []
    if "/" in key and (not prefix or dns1123_subdomain_errors(prefix, field)):
        out.append(f"{field}: prefix of {key!r} must be a DNS-1123 subdomain")
    if len(name) > MAX_LABEL:
        out.append(f"{field}: name part of {key!r} must be no more than 63 characters")
    if not QUALIFIED_NAME.match(name):
        out.append(f"{field}: {key!r} is not a qualified name")
    return out


def label_errors(labels: Any, field: str = "metadata.labels") -> list[str]:
    if labels is None:
        return []
    if not isinstance(labels, dict):
        return [f"{field}: must be a map of strings"]
    out = []
    for key, value in labels.items():
        out += qualified_name_errors(str(key), f"{field}[{key}]")
        if not isinstance(value, str):
            out.append(f"{field}[{key}]: value must be a string")
            continue
        if len(value) > MAX_LABEL:
            out.append(f"{field}[{key}]: value must be no more than 63 characters ({len(value)})")
        if value and not LABEL_VALUE.match(value):
            out.append(f"{field}[{key}]: {value[:80]!r} is not a valid label value")
    return out


def annotation_errors(annotations: Any, field: str = "metadata.annotations") -> list[str]:
    if annotations is None:
        return []
    if not isinstance(annotations, dict):
        return [f"{field}: must be a map of strings"]
    out = []
    total = 0
    for key, value in annotations.items():
        out += qualified_name_errors(str(key), f"{field}[{key}]")
        if not isinstance(value, str):
            out.append(f"{field}[{key}]: value must be a string")
            continue
        total += len(str(key).encode()) + len(value.encode())
    if total > MAX_ANNOTATIONS_BYTES:
        out.append(f"{field}: total size {total} B exceeds {MAX_ANNOTATIONS_BYTES} B")
    return out


def object_meta_errors(plural: str, meta: Any, field: str = "metadata") -> list[str]:
    """Name (or generateName), labels and annotations of one object's metadata."""
    if not isinstance(meta, dict):
        return [f"{field}: missing"]
    out = []
    name = meta.get("name")
    if name:
        out += name_errors(plural, str(name), f"{field}.name")
    elif meta.get("generateName"):
        out += name_errors(plural, str(meta["generateName"]) + "abcde", f"{field}.generateName")
    else:
        out.append(f"{field}.name: Required value: name or generateName is required")
    if meta.get("namespace"):
        out += dns1123_label_errors(str(meta["namespace"]), f"{field}.namespace")
    out += label_errors(meta.get("labels"), f"{field}.labels")
    out += annotation_errors(meta.get("annotations"), f"{field}.annotations")
    return out


def pod_specs(plural: str, obj: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    """(path, pod spec) of a Pod, or of the pod template of a Job or CronJob."""
    spec = obj.get("spec") or {}
    if plural == "pods":
        yield "spec", spec
    elif plural == "jobs":
        yield "spec.template.spec", (spec.get("template") or {}).get("spec") or {}
    elif plural == "cronjobs":
        template = ((spec.get("jobTemplate") or {}).get("spec") or {}).get("template") or {}
        yield "spec.jobTemplate.spec.template.spec", template.get("spec") or {}


def env_errors(plural: str, obj: dict[str, Any]) -> list[str]:
    """Environment strings the kernel would refuse at exec (``NAME=value`` over 128 KiB)."""
    out = []
    for path, spec in pod_specs(plural, obj):
        for group in ("initContainers", "containers"):
            for i, container in enumerate(spec.get(group) or []):
                for j, env in enumerate(container.get("env") or []):
                    value = env.get("value")
                    if not isinstance(value, str):
                        continue
                    size = len(str(env.get("name", "")).encode()) + 2 + len(value.encode())
                    if size > MAX_ENV_STRING_BYTES:
                        out.append(
                            f"{path}.{group}[{i}].env[{j}] ({env.get('name')}): {size} B, over "
                            f"the {MAX_ENV_STRING_BYTES} B a single environment string may have"
                        )
    return out


def template_meta_errors(plural: str, obj: dict[str, Any]) -> list[str]:
    """Labels and annotations of embedded pod templates."""
    spec = obj.get("spec") or {}
    out = []
    if plural == "jobs":
        meta = (spec.get("template") or {}).get("metadata") or {}
        out += label_errors(meta.get("labels"), "spec.template.metadata.labels")
        out += annotation_errors(meta.get("annotations"), "spec.template.metadata.annotations")
        selector = (spec.get("selector") or {}).get("matchLabels")
        out += label_errors(selector, "spec.selector.matchLabels")
    return out


def size_errors(obj: Any) -> list[str]:
    size = len(json.dumps(obj, separators=(",", ":")).encode())
    if size > MAX_OBJECT_BYTES:
        return [f"object: {size} B exceeds the {MAX_OBJECT_BYTES} B limit of a stored object"]
    return []


def metadata_errors(plural: str, obj: dict[str, Any]) -> list[str]:
    """Everything about names, labels, annotations and sizes of a written object."""
    return (
        object_meta_errors(plural, obj.get("metadata"))
        + template_meta_errors(plural, obj)
        + env_errors(plural, obj)
        + size_errors(obj)
    )


# Patches -------------------------------------------------------------------------------------


def merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386 JSON merge patch (``null`` deletes, lists replace)."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    result = copy.deepcopy(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = merge_patch(result.get(key), value)
    return result


def apply_patch(target: dict[str, Any], patch: Any, content_type: str) -> dict[str, Any]:
    """The object after a PATCH of one of the content types the clients here send."""
    if "json-patch" in content_type or isinstance(patch, list):
        try:
            result = jsonpatch.apply_patch(target, patch)
        except (jsonpatch.JsonPatchException, jsonpatch.JsonPointerException) as exc:
            raise Invalid(422, "Invalid", [f"json patch: {exc}"]) from exc
        return dict(result)
    if "apply-patch" in content_type:
        raise Invalid(415, "UnsupportedMediaType", ["server-side apply is not emulated"])
    return dict(merge_patch(target, patch))


def merge_diff(old: Any, new: Any) -> Any:
    """A merge patch that turns ``old`` into ``new`` (keys gone from ``new`` become ``null``)."""
    if not isinstance(old, dict) or not isinstance(new, dict):
        return copy.deepcopy(new)
    out: dict[str, Any] = {}
    for key in old:
        if key not in new:
            out[key] = None
    for key, value in new.items():
        if key not in old:
            out[key] = copy.deepcopy(value)
        elif old[key] != value:
            out[key] = merge_diff(old[key], value)
    return out


# Status subresource, generation, preconditions ----------------------------------------------

SERVER_OWNED_META = ("uid", "creationTimestamp", "generation", "resourceVersion")


def resource_version_conflict(current: dict[str, Any], body: Any) -> str | None:
    """A message when the write names a resourceVersion other than the stored one."""
    if not isinstance(body, dict):
        return None
    wanted = (body.get("metadata") or {}).get("resourceVersion")
    have = (current.get("metadata") or {}).get("resourceVersion")
    if wanted is not None and str(wanted) != str(have):
        return (
            "Operation cannot be fulfilled: the object has been modified; please apply your "
            f"changes to the latest version and try again (resourceVersion {wanted} != {have})"
        )
    return None


def spec_part(obj: dict[str, Any]) -> dict[str, Any]:
    """What ``generation`` counts: everything but metadata and status."""
    return {k: v for k, v in obj.items() if k not in {"metadata", "status"}}


def settle_update(
    current: dict[str, Any], proposed: dict[str, Any], subresource: str | None, has_status: bool
) -> dict[str, Any]:
    """The object the server stores for an update of ``current`` to ``proposed``.

    With a status subresource, a write to ``/status`` changes only ``status`` and a write to the
    main resource changes everything but ``status``. Server-owned metadata cannot be changed;
    ``generation`` goes up by one when the spec part changes.
    """
    if subresource == "status":
        result = copy.deepcopy(current)
        if "status" in proposed:
            result["status"] = copy.deepcopy(proposed["status"])
        else:
            result.pop("status", None)
    else:
        result = copy.deepcopy(proposed)
        if has_status:
            if "status" in current:
                result["status"] = copy.deepcopy(current["status"])
            else:
                result.pop("status", None)
    meta = result.setdefault("metadata", {})
    old_meta = current.get("metadata") or {}
    for key in SERVER_OWNED_META:
        if key in old_meta:
            meta[key] = old_meta[key]
    for key in ("name", "namespace"):
        if key in old_meta:
            meta[key] = old_meta[key]
    if spec_part(result) != spec_part(current):
        meta["generation"] = int(old_meta.get("generation", 1)) + 1
    return result


# Custom resources: pruning, schema, CEL ------------------------------------------------------

OBJECT_META_FIELDS = {
    "name",
    "generateName",
    "namespace",
    "uid",
    "resourceVersion",
    "generation",
    "creationTimestamp",
    "deletionTimestamp",
    "deletionGracePeriodSeconds",
    "labels",
    "annotations",
    "ownerReferences",
    "finalizers",
    "managedFields",
    "selfLink",
}


def prune(obj: Any, schema: dict[str, Any], root: bool = True) -> Any:
    """Drop every field the structural schema does not specify, as the API server does."""
    if root and isinstance(obj, dict):
        out = {}
        for key, value in obj.items():
            if key in ("apiVersion", "kind"):
                out[key] = value
            elif key == "metadata" and isinstance(value, dict):
                out[key] = {k: v for k, v in value.items() if k in OBJECT_META_FIELDS}
            elif key in schema.get("properties", {}):
                out[key] = prune(value, schema["properties"][key], root=False)
            elif schema.get("x-kubernetes-preserve-unknown-fields"):
                out[key] = value
        return out
    if schema.get("x-kubernetes-preserve-unknown-fields") and "properties" not in schema:
        return copy.deepcopy(obj)
    if isinstance(obj, dict):
        props = schema.get("properties")
        extra = schema.get("additionalProperties")
        out = {}
        for key, value in obj.items():
            if props is not None and key in props:
                out[key] = prune(value, props[key], root=False)
            elif isinstance(extra, dict):
                out[key] = prune(value, extra, root=False)
            elif extra is True or schema.get("x-kubernetes-preserve-unknown-fields"):
                out[key] = copy.deepcopy(value)
        return out
    if isinstance(obj, list) and isinstance(schema.get("items"), dict):
        return [prune(item, schema["items"], root=False) for item in obj]
    return copy.deepcopy(obj)


@functools.cache
def _validator(schema_json: str) -> jsonschema.Draft4Validator:
    return jsonschema.Draft4Validator(json.loads(schema_json))


def schema_errors(obj: Any, schema: dict[str, Any]) -> list[str]:
    """OpenAPI v3 schema errors (after pruning), plus int-or-string typing."""
    body = {k: v for k, v in obj.items() if k not in ("apiVersion", "kind", "metadata")}
    sub = {k: v for k, v in schema.items() if k != "properties"}
    sub["properties"] = {
        k: v for k, v in schema.get("properties", {}).items() if k not in ("metadata",)
    }
    validator = _validator(json.dumps(sub, sort_keys=True))
    errors = [
        f"{'.'.join(map(str, e.absolute_path)) or '<root>'}: {e.message}"
        for e in validator.iter_errors(body)
    ]
    return errors + _int_or_string_errors(body, schema, "")


def _int_or_string_errors(obj: Any, schema: dict[str, Any], path: str) -> list[str]:
    if schema.get("x-kubernetes-int-or-string"):
        ok = isinstance(obj, str) or (isinstance(obj, int) and not isinstance(obj, bool))
        return [] if ok else [f"{path}: {obj!r} is neither an integer nor a string"]
    out = []
    if isinstance(obj, dict):
        for key, child in schema.get("properties", {}).items():
            if key in obj:
                out += _int_or_string_errors(obj[key], child, f"{path}.{key}".lstrip("."))
    if isinstance(obj, list) and isinstance(schema.get("items"), dict):
        for i, item in enumerate(obj):
            out += _int_or_string_errors(item, schema["items"], f"{path}[{i}]")
    return out


_CEL = celpy.Environment()


@functools.cache
def _program(rule: str) -> Any:
    return _CEL.program(_CEL.compile(rule))


def is_transition_rule(rule: str) -> bool:
    return re.search(r"\boldSelf\b", rule) is not None


def cel_errors(obj: Any, old: Any, schema: dict[str, Any], path: str = "") -> list[str]:
    """Evaluate every ``x-kubernetes-validations`` rule, as the API server does.

    Transition rules (using ``oldSelf``) run only on updates, and only where the old object has a
    value at the same path; list items are correlated only in ``x-kubernetes-list-type: map``
    lists (by their keys), map values by key.
    """
    out = []
    has_old = old is not _ABSENT
    for rule in schema.get("x-kubernetes-validations", []):
        transition = is_transition_rule(rule["rule"])
        if transition and not has_old:
            continue
        activation = {"self": celpy.json_to_cel(obj)}
        if transition:
            activation["oldSelf"] = celpy.json_to_cel(old)
        try:
            result = _program(rule["rule"]).evaluate(activation)
        except celpy.CELEvalError as exc:
            out.append(f"{path or '<root>'}: rule {rule['rule']!r} failed to evaluate: {exc}")
            continue
        if not isinstance(result, celpy.celtypes.BoolType):
            out.append(f"{path or '<root>'}: rule {rule['rule']!r} gave {result!r}")
        elif not result:
            out.append(f"{path or '<root>'}: {rule.get('message', rule['rule'])}")
    if isinstance(obj, dict):
        props = schema.get("properties") or {}
        extra = schema.get("additionalProperties")
        for key, value in obj.items():
            child = props.get(key) if key in props else extra if isinstance(extra, dict) else None
            if child is None:
                continue
            old_child = old[key] if has_old and isinstance(old, dict) and key in old else _ABSENT
            out += cel_errors(value, old_child, child, f"{path}.{key}".lstrip("."))
    if isinstance(obj, list) and isinstance(schema.get("items"), dict):
        keys = schema.get("x-kubernetes-list-map-keys") or []
        mapped = schema.get("x-kubernetes-list-type") == "map" and keys and has_old
        olds = {}
        if mapped and isinstance(old, list):
            olds = {tuple(o.get(k) for k in keys): o for o in old if isinstance(o, dict)}
        for i, item in enumerate(obj):
            old_item: Any = _ABSENT
            if mapped and isinstance(item, dict):
                old_item = olds.get(tuple(item.get(k) for k in keys), _ABSENT)
            out += cel_errors(item, old_item, schema["items"], f"{path}[{i}]")
    return out


class _Absent:
    def __repr__(self) -> str:
        return "<absent>"


_ABSENT: Any = _Absent()
ABSENT: Any = _ABSENT
"""Pass as ``old`` on a create."""


def _value_at(obj: Any, path: str) -> Any:
    """The value at a dotted error path (``spec.segments[0].start``), or ABSENT."""
    node = obj
    for part in re.findall(r"[^.\[\]]+|\[\d+\]", path):
        if part.startswith("["):
            index = int(part[1:-1])
            if not isinstance(node, list) or index >= len(node):
                return ABSENT
            node = node[index]
        elif isinstance(node, dict) and part in node:
            node = node[part]
        else:
            return ABSENT
    return node


def _error_path(error: str) -> str:
    return error.split(":", 1)[0]


def custom_resource_errors(
    obj: dict[str, Any],
    old: dict[str, Any] | None,
    schema: dict[str, Any],
    subresource: str | None = None,
) -> list[str]:
    """Schema and CEL errors of a (pruned) custom resource; ``old`` on updates.

    A ``/status`` write is validated on ``status`` only. On updates, errors at paths whose value
    did not change are dropped (validation ratcheting, on by default since Kubernetes 1.30), so an
    object admitted under a laxer schema can still have its finalizers and status written.
    """
    body = {k: v for k, v in obj.items() if k not in ("apiVersion", "kind", "metadata")}
    old_body: Any = ABSENT
    if old is not None:
        old_body = {k: v for k, v in old.items() if k not in ("apiVersion", "kind", "metadata")}
    errors = schema_errors(obj, schema)
    if not errors and subresource == "status":
        # Only errors under status are kept below (root rules included, their path is <root>):
        # evaluating the rules of status alone gives the same errors at a fraction of the cost.
        status_schema = (schema.get("properties") or {}).get("status")
        if status_schema is not None and "status" in body:
            old_status = old_body.get("status", ABSENT) if isinstance(old_body, dict) else ABSENT
            errors = cel_errors(body["status"], old_status, status_schema, "status")
    elif not errors:
        errors = cel_errors(body, old_body, schema)
    if subresource == "status":
        errors = [e for e in errors if _error_path(e).startswith("status")]
    if old is not None:
        errors = [
            e
            for e in errors
            if _error_path(e) in ("", "<root>")
            or _value_at(body, _error_path(e)) != _value_at(old_body, _error_path(e))
            or _value_at(body, _error_path(e)) is ABSENT
        ]
    return errors


# RBAC ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ServiceAccount:
    namespace: str
    name: str

    @property
    def username(self) -> str:
        return f"system:serviceaccount:{self.namespace}:{self.name}"


@dataclass(frozen=True)
class User:
    """A user acting by impersonation (``Impersonate-User``/``Impersonate-Group``)."""

    name: str
    groups: tuple[str, ...] = ()

    @property
    def username(self) -> str:
        return self.name


@dataclass(frozen=True)
class RequestAttributes:
    """What RBAC looks at: verb, API group, resource[/subresource], namespace, name."""

    verb: str
    group: str
    resource: str
    subresource: str | None = None
    namespace: str | None = None
    name: str | None = None


def rule_allows(rule: dict[str, Any], req: RequestAttributes) -> bool:
    """One PolicyRule against one request (resource requests only)."""
    groups = rule.get("apiGroups") or []
    resources = rule.get("resources") or []
    verbs = rule.get("verbs") or []
    names = rule.get("resourceNames") or []
    wanted = req.resource + (f"/{req.subresource}" if req.subresource else "")
    return (
        ("*" in groups or req.group in groups)
        and ("*" in verbs or req.verb in verbs)
        and ("*" in resources or wanted in resources or f"*/{req.subresource}" in resources)
        and (not names or (req.name is not None and req.name in names))
    )


def _binds(binding: dict[str, Any], who: ServiceAccount | User) -> bool:
    if isinstance(who, User):
        groups = {*who.groups, "system:authenticated"}
        home = (binding.get("metadata") or {}).get("namespace")
        # RBAC matches a ServiceAccount subject by its username (an impersonated one, too).
        return any(
            (s.get("kind") == "User" and s.get("name") == who.name)
            or (s.get("kind") == "Group" and s.get("name") in groups)
            or (
                s.get("kind") == "ServiceAccount"
                and who.name == f"system:serviceaccount:{s.get('namespace', home)}:{s.get('name')}"
            )
            for s in binding.get("subjects") or []
        )
    for subject in binding.get("subjects") or []:
        kind = subject.get("kind")
        if (
            kind == "ServiceAccount"
            and subject.get("name") == who.name
            and subject.get("namespace", (binding.get("metadata") or {}).get("namespace"))
            == who.namespace
        ):
            return True
        if kind == "User" and subject.get("name") == who.username:
            return True
        if kind == "Group" and subject.get("name") in (
            "system:serviceaccounts",
            f"system:serviceaccounts:{who.namespace}",
            "system:authenticated",
        ):
            return True
    return False


def authorize(
    objects: Iterable[dict[str, Any]], who: ServiceAccount | User, req: RequestAttributes
) -> bool:
    """Whether the Roles, ClusterRoles and their bindings in ``objects`` allow the request."""
    objs = list(objects)
    cluster_roles = {
        o["metadata"]["name"]: o.get("rules") or [] for o in objs if o.get("kind") == "ClusterRole"
    }
    roles = {
        (o["metadata"].get("namespace"), o["metadata"]["name"]): o.get("rules") or []
        for o in objs
        if o.get("kind") == "Role"
    }
    for binding in objs:
        kind = binding.get("kind")
        if kind not in ("ClusterRoleBinding", "RoleBinding") or not _binds(binding, who):
            continue
        ref = binding.get("roleRef") or {}
        if kind == "ClusterRoleBinding":
            rules = (
                cluster_roles.get(ref.get("name"), []) if ref.get("kind") == "ClusterRole" else []
            )
        else:
            ns = (binding.get("metadata") or {}).get("namespace")
            if req.namespace is None or ns != req.namespace:
                continue
            if ref.get("kind") == "ClusterRole":
                rules = cluster_roles.get(ref.get("name"), [])
            else:
                rules = roles.get((ns, ref.get("name")), [])
        if any(rule_allows(rule, req) for rule in rules):
            return True
    return False
