"""A kmock Kubernetes emulator that behaves like a strict API server.

kmock stores objects exactly as sent. This subclass does what a real API server does on every
request (the rules themselves are pure functions in ``tests/mockapi/strict/rules.py``):

- **server-assigned metadata**: ``uid``, ``resourceVersion``, ``generation`` (bumped when the spec
  changes, only), ``creationTimestamp``; ``generateName``;
- **authentication and RBAC**: the bearer token names a ServiceAccount
  (``sa:<namespace>:<name>``); each request is authorized against the Roles and ClusterRoles the
  Helm chart renders (``tests/chart/chartkit.py``, from ``operator/videojobs_operator/rbac.py``)
  plus those created in the emulator (the worker's Role), answering 403 otherwise. The test's own
  client (no token) and the Job runner (``system:controller``) are cluster admins;
  ``Impersonate-User``/``Impersonate-Group`` make a request the named user's, after the caller's
  ``impersonate`` rights on those users (``serviceaccounts`` in their namespace for a
  ServiceAccount's username, as the API server checks) and groups are checked (recorded in
  ``impersonated``);
- **validation**: metadata rules (DNS-1123 names, label syntax and 63 characters, annotations
  256 KiB, objects 1.5 MiB, environment strings 128 KiB); built-in objects validated strictly with
  ``kubernetes-validate`` for the oldest and newest Kubernetes the chart supports; custom resources
  pruned to the CRD's structural schema and validated with it and its CEL rules, transition rules
  included; 422 otherwise;
- **status subresource**: a ``/status`` write changes only ``status``, a main-resource write never
  ``status``; ``resourceVersion`` in a write is a precondition (409 when stale).

Faults are injected on the real server instead, by ``tests/realk8s/faultproxy.py`` (the soak).

Every refused request is recorded in ``refused`` so tests can assert that nothing was.
"""

from __future__ import annotations

import collections
import datetime
import functools
import itertools
import json
import re
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp.web
import attrs
import jsonschema
import kmock
import kubernetes_validate
import yaml
from kmock._internal import apps, enums, rendering
from referencing import Registry, Resource

from tests.mockapi.strict import rules
from videojobs.models import GROUP, KIND, PLURAL, SHORT_NAMES, SINGULAR, VERSION

WRITE_ACTIONS = (enums.action.CREATE, enums.action.UPDATE, enums.action.DELETE)
REPO = Path(__file__).resolve().parents[2]
CRD_FILE = REPO / "crds" / "videoprocessingjobs.yaml"

OPERATOR_SA = rules.ServiceAccount("videojobs-system", "vj-videojobs")
"""The operator's identity in the rendered chart (release ``vj`` in ``videojobs-system``)."""
CONTROLLER_TOKEN = "system:controller"
"""The Job runner (kubelet, Job controller, garbage collector): a system component."""

HAS_STATUS = {"videoprocessingjobs", "pods", "jobs"}
"""Resources served with a status subresource."""

VERBS = {
    enums.action.FETCH: "get",
    enums.action.LIST: "list",
    enums.action.WATCH: "watch",
    enums.action.CREATE: "create",
    enums.action.DELETE: "delete",
}


def token(who: rules.ServiceAccount) -> str:
    """The bearer token the emulator reads as this ServiceAccount."""
    return f"sa:{who.namespace}:{who.name}"


def _now() -> str:
    # Fractional seconds keep creation order visible for resources created within one second
    # (a real API server writes whole seconds; the operator's FIFO breaks ties by name).
    return datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


@functools.cache
def crd_schema() -> dict[str, Any]:
    crd = yaml.safe_load(CRD_FILE.read_text())
    schema: dict[str, Any] = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    return schema


RBAC_KINDS = {"Role", "ClusterRole", "RoleBinding", "ClusterRoleBinding"}


def render_rbac(chart_dir: Path) -> tuple[dict[str, Any], ...]:
    """The Roles, ClusterRoles and bindings a chart directory renders with default values."""
    import helm_python as helm

    from tests.chart.chartkit import RELEASE, RELEASE_NAMESPACE

    rendered = helm.Chart.load(chart_dir).render({}, name=RELEASE, namespace=RELEASE_NAMESPACE)
    found = []
    for path, text in rendered.items():
        if path.endswith("NOTES.txt"):
            continue
        for doc in yaml.safe_load_all(text):
            if isinstance(doc, dict) and doc.get("kind") in RBAC_KINDS:
                found.append(doc)
    return tuple(found)


@functools.cache
def chart_rbac() -> tuple[dict[str, Any], ...]:
    """What the repository's chart renders (its rules come from ``rbac.py``)."""
    from tests.chart.chartkit import CHART_DIR

    return render_rbac(CHART_DIR)


@functools.cache
def kube_versions() -> tuple[str, ...]:
    from tests.chart.chartkit import KUBE_VERSIONS

    return KUBE_VERSIONS


@functools.cache
def _kv_validator(desired: str, kind: str, api_version: str) -> Any:
    """``kubernetes_validate.validate(obj, desired, strict=True)``'s validator, built once.

    The library reads and parses its JSON schema files (megabytes) on every call; this builds the
    same ``Draft202012Validator`` over the same schema and registry once per (Kubernetes version,
    kind, apiVersion). Unknown kinds fall back to the library (which raises as before)."""
    from kubernetes_validate import utils

    if desired.startswith("v"):
        desired = desired[1:]
    mm = utils.major_minor(desired)
    if mm > utils.latest_version():
        return None
    version = [v for v in utils.all_versions() if utils.major_minor(v) <= mm][-1]
    group_version = re.sub(r"^([^./]*)(?:\.[^/]*)?/", r"\1-", api_version)
    schema_dir = f"v{version}-local-strict"
    try:
        schema = utils.schema_contents(
            f"kubernetes-json-schema/{schema_dir}/{kind.lower()}-{group_version}.json", desired
        )
    except FileNotFoundError:
        return None
    defs = utils.schema_contents(f"kubernetes-json-schema/{schema_dir}/_definitions.json", desired)
    registry = Resource.from_contents(defs) @ (Resource.from_contents(schema) @ Registry())
    return jsonschema.validators.Draft202012Validator(schema, registry=registry)


@functools.lru_cache(maxsize=4096)
def _builtin_errors(text: str) -> tuple[str, ...]:
    obj = json.loads(text)
    out = []
    for version in kube_versions():
        validator = _kv_validator(version, str(obj["kind"]), str(obj["apiVersion"]))
        try:
            if validator is None:  # not a kind the library knows: let it say so
                kubernetes_validate.validate(obj, version, strict=True)
            else:
                try:
                    validator.validate(obj)
                except jsonschema.ValidationError as exc:
                    raise kubernetes_validate.ValidationError(exc, version=version) from exc
        except kubernetes_validate.ValidationError as exc:
            path = ".".join(map(str, exc.path)) or "<root>"
            out.append(f"Kubernetes {version}: {path}: {exc.message}")
    return tuple(out)


def builtin_errors(obj: dict[str, Any]) -> list[str]:
    """Strict OpenAPI errors of a built-in object for the oldest and newest Kubernetes."""
    if not obj.get("apiVersion") or not obj.get("kind"):
        return []
    return list(_builtin_errors(json.dumps(obj, sort_keys=True)))


@dataclass(frozen=True)
class Refusal:
    identity: str
    code: int
    what: str
    message: str


class _InFlightLog(list):  # type: ignore[type-arg]
    """kmock's request log, reduced to the requests still being served.

    kmock routes each request by checking it against filters over its whole request log, which
    makes an emulator serving thousands of requests quadratic (seconds per request in the
    benchmark). Routing only needs the request itself to be in the log; nothing here asserts on
    past requests (counters below do that), so finished requests are dropped.
    """

    def __init__(self) -> None:
        super().__init__()
        self.count = 0
        self.active: dict[int, Any] = {}

    def append(self, request: Any) -> None:
        self.count += 1
        self.active[id(request)] = request

    def finish(self, request: Any) -> None:
        self.active.pop(id(request), None)

    def __len__(self) -> int:
        return self.count

    def __iter__(self) -> Any:
        return iter(list(self.active.values()))


class _IndexedObjects(dict):  # type: ignore[type-arg]
    """kmock's object store (a dict keyed by (resource, namespace, name)), plus the keys of each
    plural in insertion order, so that reading one object or one resource's objects costs the
    same with ten objects stored or ten thousand (kmock scans every stored object per request)."""

    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        self.by_plural: dict[str | None, dict[Any, None]] = collections.defaultdict(dict)
        self.names: dict[tuple[str | None, str | None, str], Any] = {}
        for key in self:
            self._add(key)

    def _add(self, key: Any) -> None:
        self.by_plural[key[0].plural][key] = None
        self.names[(key[0].plural, key[1], key[2])] = key

    def _drop(self, key: Any) -> None:
        self.by_plural[key[0].plural].pop(key, None)
        self.names.pop((key[0].plural, key[1], key[2]), None)

    def __setitem__(self, key: Any, value: Any) -> None:
        super().__setitem__(key, value)
        self._add(key)

    def __delitem__(self, key: Any) -> None:
        super().__delitem__(key)
        self._drop(key)

    def pop(self, key: Any, *default: Any) -> Any:
        if key in self:
            self._drop(key)
        return super().pop(key, *default)

    def clear(self) -> None:
        super().clear()
        self.by_plural.clear()
        self.names.clear()

    def of(self, plural: str | None) -> list[tuple[Any, Any]]:
        """(key, object) of one plural, in insertion order."""
        return [(key, self[key]) for key in list(self.by_plural.get(plural, ()))]


class _CachedRouting(apps.RawHandler):  # type: ignore[misc]
    """kmock's routing (the first payload by priority whose filters take the request), with the
    answer remembered per kind of resource request.

    kmock sorts its payloads and runs every filter of every payload on each request, which is
    most of the emulator's time per request. A resource request's route depends on its method,
    action and shape; the remembered payload is still checked against the request, and anything
    else (discovery, a changed payload list, a mismatch) takes kmock's own way.
    """

    __slots__ = ()

    async def _handle(self, request: rendering.Request) -> aiohttp.web.StreamResponse:
        routes: dict[Any, Any] = self._routes  # type: ignore[attr-defined]
        resource = request.resource
        if resource is None or resource.plural is None or request.action is None:
            return await super()._handle(request)
        payloads = tuple(id(p) for p in self._payloads)
        if routes.get("payloads") != payloads:
            routes.clear()
            routes["payloads"] = payloads
        shape = (
            request.method,
            request.action,
            request.namespace is None,
            request.name is None,
            request.subresource,
        )
        payload = routes.get(shape)
        if payload is None:
            for candidate in self._sorted_payloads():
                if request in candidate._source and not candidate._disabled.is_set():
                    payload = candidate
                    break
            if payload is None:
                return await super()._handle(request)
            routes[shape] = payload
            return await payload(request)
        if payload._disabled.is_set() or request not in payload._source:
            routes.pop(shape, None)
            return await super()._handle(request)
        return await payload(request)

    def _sorted_payloads(self) -> list[Any]:
        # as RawHandler._handle orders them
        priorities = [payload.priorities for payload in self._payloads]
        width = max((len(p) for p in priorities), default=0)
        padded = [tuple(-x for x in p) + (0,) * (width - len(p)) for p in priorities]
        order = sorted(range(len(padded)), key=lambda i: padded[i])
        return [self._payloads[i] for i in order]


def _status_body(code: int, reason: str, message: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Status",
        "metadata": {},
        "status": "Failure",
        "code": code,
        "reason": reason,
        "message": message,
    }


REASONS = {
    403: "Forbidden",
    409: "Conflict",
    410: "Expired",
    415: "UnsupportedMediaType",
    422: "Invalid",
    429: "TooManyRequests",
    500: "InternalError",
}


@attrs.define(kw_only=True)
class Emulator(kmock.KubernetesEmulator, _CachedRouting):
    """kmock's emulator as a strict API server, plus request counters."""

    counts: collections.Counter[str] = attrs.field(factory=collections.Counter, init=False)
    """Requests by ``"<action> <plural>[/<subresource>]"``, e.g. ``"UPDATE jobs/status"``."""
    by_client: collections.Counter[tuple[str, str]] = attrs.field(
        factory=collections.Counter, init=False
    )
    """Requests by (client, ``"<action> <what>"``); client is ``operator`` (kopf or the
    kubernetes client) or ``other`` (the Job runner, the tests)."""
    impersonated: list[tuple[str, str, tuple[str, ...]]] = attrs.field(factory=list, init=False)
    """(caller, impersonated user, groups) of every request made by impersonation."""
    refused: list[Refusal] = attrs.field(factory=list, init=False)
    """Every request answered 403/409/422 by the strict rules."""
    validating: bool = attrs.field(default=True, init=False)
    rbac_source: tuple[dict[str, Any], ...] = attrs.field(factory=chart_rbac, init=False)
    """The rendered chart's RBAC objects; a test may swap in a mutated chart's."""
    _versions: itertools.count[int] = attrs.field(factory=lambda: itertools.count(1), init=False)
    _store: _IndexedObjects = attrs.field(factory=_IndexedObjects, init=False)
    _routes: dict[Any, Any] = attrs.field(factory=dict, init=False)

    def __attrs_post_init__(self) -> None:
        super().__attrs_post_init__()
        self._requests = _InFlightLog()
        self._store.update(self._objects._objects)  # (empty: nothing is stored yet)
        for key in self._store:
            self._store._add(key)
        object.__setattr__(self._objects, "_objects", self._store)
        self.resources.load_bundled()
        self.resources[f"{GROUP}/{VERSION}/{PLURAL}"] = {
            "kind": KIND,
            "singular": SINGULAR,
            "shortnames": set(SHORT_NAMES),
            "namespaced": True,
            "verbs": {"get", "list", "watch", "create", "update", "patch", "delete"},
            "subresources": {"status"},
        }

    # Identity --------------------------------------------------------------------------------

    @staticmethod
    def identity(request: rendering.Request) -> rules.ServiceAccount | str:
        """The ServiceAccount of the bearer token, ``controller`` or ``admin``."""
        auth = request.headers.get("Authorization", "")
        value = auth.removeprefix("Bearer ").strip()
        if value == CONTROLLER_TOKEN:
            return "controller"
        if value.startswith("sa:") and value.count(":") == 2:
            _, ns, name = value.split(":")
            return rules.ServiceAccount(ns, name)
        return "admin"

    @staticmethod
    def role_of(who: rules.ServiceAccount | rules.User | str) -> str:
        if who == OPERATOR_SA:
            return "operator"
        if isinstance(who, rules.ServiceAccount):
            return "worker"
        if isinstance(who, rules.User):
            return "user"
        return who

    def impersonation(
        self, request: rendering.Request, who: rules.ServiceAccount | str
    ) -> rules.User | Refusal | None:
        """The user a request impersonates (None: none; a Refusal: not allowed to)."""
        user = request.headers.get("Impersonate-User")
        if not user:
            return None
        raw = request._raw_request
        groups = tuple(raw.headers.getall("Impersonate-Group", [])) if raw is not None else ()
        if isinstance(who, rules.ServiceAccount):
            # As the API server does: a ServiceAccount's username is impersonated through
            # ``serviceaccounts`` in its namespace, any other through ``users``.
            sa_namespace, _, sa_name = user.removeprefix("system:serviceaccount:").partition(":")
            wanted: list[tuple[str, str, str | None]] = (
                [("serviceaccounts", sa_name, sa_namespace)]
                if user.startswith("system:serviceaccount:") and sa_namespace and sa_name
                else [("users", user, None)]
            )
            wanted += [("groups", g, None) for g in groups]
            for resource, name, namespace in wanted:
                attrs_ = rules.RequestAttributes(
                    verb="impersonate", group="", resource=resource, name=name, namespace=namespace
                )
                if not rules.authorize(self.rbac_objects(), who, attrs_):
                    msg = (
                        f'{resource} "{name}" is forbidden: User "{who.username}" cannot '
                        f'impersonate resource "{resource}" in API group ""'
                    )
                    return Refusal(self.role_of(who), 403, resource, msg)
        caller = who.username if isinstance(who, rules.ServiceAccount) else who
        self.impersonated.append((caller, user, groups))
        return rules.User(user, groups)

    def rbac_objects(self) -> list[dict[str, Any]]:
        found = list(self.rbac_source)
        for plural in ("roles", "rolebindings", "clusterroles", "clusterrolebindings"):
            found += self.live(plural)
        return found

    # Request handling ------------------------------------------------------------------------

    async def _handle(self, request: rendering.Request) -> aiohttp.web.StreamResponse:
        try:
            if request.resource is not None and request.action is not None:
                what = request.resource.plural or "?"
                if request.subresource:
                    what += f"/{request.subresource}"
                self.counts[f"{request.action.value} {what}"] += 1
                agent = request.headers.get("User-Agent", "")
                client = (
                    "operator" if ("kopf" in agent or "OpenAPI-Generator" in agent) else "other"
                )
                self.by_client[(client, f"{request.action.value} {what}")] += 1
                if request.resource.plural:  # discovery (/api/v1, /apis/x/v1) is open to all
                    early = await self._screen(request, what)
                    if early is not None:
                        return early
            return await super()._handle(request)
        finally:
            self._requests.finish(request)

    async def _screen(
        self, request: rendering.Request, what: str
    ) -> aiohttp.web.StreamResponse | None:
        """RBAC and validation; a response when the request is refused."""
        caller = self.identity(request)
        impersonated = self.impersonation(request, caller)
        if isinstance(impersonated, Refusal):
            self.refused.append(impersonated)
            return self._error(403, impersonated.message)
        who: rules.ServiceAccount | rules.User | str = impersonated or caller
        role = self.role_of(who)
        verb = VERBS.get(request.action)
        if request.action == enums.action.UPDATE:
            verb = "update" if request.method == enums.method.PUT else "patch"
        if request.action == enums.action.DELETE and request.name is None:
            verb = "deletecollection"
        assert request.resource is not None
        if isinstance(who, rules.ServiceAccount | rules.User) and verb is not None:
            attrs_ = rules.RequestAttributes(
                verb=verb,
                group=request.resource.group or "",
                resource=request.resource.plural or "",
                subresource=request.subresource,
                namespace=request.namespace,
                name=request.name,
            )
            if not rules.authorize(self.rbac_objects(), who, attrs_):
                scope = f' in the namespace "{request.namespace}"' if request.namespace else ""
                msg = (
                    f'{what} is forbidden: User "{who.username}" cannot {verb} resource '
                    f'"{what}" in API group "{attrs_.group}"{scope}'
                )
                return self._refuse(role, 403, what, msg)
        try:
            if request.action == enums.action.CREATE and isinstance(request.data, dict):
                self._on_create(request, role)
            elif request.action == enums.action.UPDATE and request.name is not None:
                self._on_update(request, role)
        except rules.Invalid as exc:
            return self._refuse(role, exc.code, what, f"{what} {request.name or ''}: {exc}")
        return None

    def _error(
        self, code: int, message: str, headers: dict[str, str] | None = None
    ) -> aiohttp.web.StreamResponse:
        body = _status_body(code, REASONS.get(code, "Failure"), message)
        return aiohttp.web.json_response(body, status=code, headers=headers or {})

    def _refuse(self, role: str, code: int, what: str, message: str) -> aiohttp.web.StreamResponse:
        self.refused.append(Refusal(role, code, what, message))
        return self._error(code, message)

    def _check(
        self,
        plural: str,
        obj: dict[str, Any],
        role: str,
        old: Any = None,
        subresource: str | None = None,
    ) -> Any:
        """Validate (and for custom resources prune) a prospective stored object."""
        if not self.validating:
            return obj
        if plural == PLURAL:
            schema = crd_schema()
            obj = rules.prune(obj, schema)
            errors = rules.metadata_errors(plural, obj)
            errors += rules.custom_resource_errors(obj, old, schema, subresource)
        else:
            errors = rules.metadata_errors(plural, obj)
            if role != "controller":
                errors += builtin_errors(obj)
        if errors:
            raise rules.Invalid(422, "Invalid", errors)
        return obj

    def _on_create(self, request: rendering.Request, role: str) -> None:
        assert request.resource is not None
        plural = request.resource.plural or ""
        data = request.data
        meta = data.setdefault("metadata", {})
        if request.namespace and not meta.get("namespace"):
            meta["namespace"] = request.namespace
        if not meta.get("name") and meta.get("generateName"):
            meta["name"] = meta["generateName"] + uuid.uuid4().hex[:5]
        if plural in HAS_STATUS:
            data.pop("status", None)  # the server resets status on create
            if plural == "pods":
                data["status"] = {"phase": "Pending"}
        meta["uid"] = str(uuid.uuid4())
        meta["generation"] = 1
        meta["creationTimestamp"] = _now()
        meta.pop("resourceVersion", None)
        checked = copy_json(self._check(plural, data, role))
        checked["metadata"]["resourceVersion"] = str(next(self._versions))
        data.clear()
        data.update(checked)

    def _on_update(self, request: rendering.Request, role: str) -> None:
        assert request.resource is not None
        plural = request.resource.plural or ""
        current_obj = self._find(plural, request.namespace, request.name)
        if current_obj is None or current_obj.deleted:
            return  # kmock answers 404
        current = copy_json(current_obj.raw)
        conflict = rules.resource_version_conflict(current, request.data)
        if conflict:
            raise rules.Invalid(409, "Conflict", [conflict])
        ctype = request.headers.get("Content-Type", "application/merge-patch+json")
        if request.method == enums.method.PUT:
            proposed = copy_json(request.data)
        else:
            proposed = rules.apply_patch(current, request.data, ctype)
        settled = rules.settle_update(current, proposed, request.subresource, plural in HAS_STATUS)
        if role == "controller" and isinstance(request.data, dict):
            # The Job runner's time travel: it backdates a Job's creationTimestamp.
            stamp = (request.data.get("metadata") or {}).get("creationTimestamp")
            if stamp:
                settled["metadata"]["creationTimestamp"] = stamp
        if settled == current:
            object.__setattr__(request, "data", {})
            return
        # Custom resources: transition rules see the old object.
        checked = self._check(plural, settled, role, old=current, subresource=request.subresource)
        checked["metadata"]["resourceVersion"] = str(next(self._versions))
        object.__setattr__(request, "data", rules.merge_diff(current, checked))

    def _find(self, plural: str | None, namespace: str | None, name: str | None) -> Any:
        key = self._store.names.get((plural, namespace, name))
        return None if key is None else self._store.get(key)

    def _KubernetesEmulator__get_objs(self, request: rendering.Request, strict: bool) -> list[Any]:
        """kmock's object lookup (same matching), by key or by plural instead of a full scan."""
        if request.resource is None:
            return []
        if request.name is not None and (strict or request.namespace is not None):
            obj = self._store.get((request.resource, request.namespace, request.name))
            return [] if obj is None else [obj]
        out = []
        for (resource, namespace, name), obj in self._store.of(request.resource.plural):
            namespace_ok = (
                namespace == request.namespace
                if strict
                else (request.namespace is None or namespace == request.namespace)
            )
            name_ok = request.name is None or name == request.name
            if resource == request.resource and namespace_ok and name_ok:
                out.append(obj)
        return out

    # Convenience accessors for assertions ------------------------------------------------

    @property
    def writes(self) -> int:
        """Create, patch and delete requests so far."""
        return sum(
            n for k, n in self.counts.items() if k.split()[0] in {"CREATE", "UPDATE", "DELETE"}
        )

    @property
    def requests_total(self) -> int:
        """All Kubernetes API requests so far."""
        return sum(self.counts.values())

    def live(self, plural: str, namespace: str | None = None) -> list[dict[str, Any]]:
        """Raw bodies of the objects of one resource that currently exist."""
        out: list[dict[str, Any]] = []
        for (_res, ns, _name), obj in self._store.of(plural):
            if (namespace is None or ns == namespace) and not obj.deleted:
                out.append(obj.raw)
        return out

    def ever(self, plural: str) -> list[dict[str, Any]]:
        """The first stored version of every object of a resource ever created."""
        out: list[dict[str, Any]] = []
        for _key, obj in self._store.of(plural):
            first = next((v for v in obj.history if v is not None), None)
            if first is not None:
                out.append(dict(first.raw))
        return out

    def history(self, plural: str, namespace: str, name: str) -> list[dict[str, Any]]:
        """Every stored version of one object, oldest first (deletions left out)."""
        obj = self._find(plural, namespace, name)
        return [] if obj is None else [dict(v.raw) for v in obj.history if v is not None]


def copy_json(value: Any) -> Any:
    return json.loads(json.dumps(value))
