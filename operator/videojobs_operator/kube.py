"""The only module that calls the Kubernetes API (besides kopf's own watching).

Calls go through the official client in a worker thread (``asyncio.to_thread``), so a slow API
server never blocks the operator's event loop. Responses are read raw (``_preload_content=False``)
and returned as plain dicts, the same shape kopf hands to handlers. Every call here has a rule in
``rbac.py``; the comment on each method names it.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import logging
import uuid
from collections.abc import Callable
from typing import Any, TypeVar

import kubernetes
from kubernetes.client.exceptions import ApiException

from videojobs.models import GROUP, PLURAL, VERSION
from videojobs_operator import rbac
from videojobs_operator.metrics import Metrics

logger = logging.getLogger("videojobs.operator.kube")
T = TypeVar("T")


class ForeignObjectError(Exception):
    """An object with the wanted name exists but belongs to someone else."""


def make_api_client() -> kubernetes.client.ApiClient:
    """An API client from the in-cluster service account, else from the kubeconfig."""
    config = kubernetes.client.Configuration()
    try:
        kubernetes.config.load_incluster_config(client_configuration=config)
    except kubernetes.config.ConfigException:
        kubernetes.config.load_kube_config(client_configuration=config)
    config.connection_pool_maxsize = 32
    return kubernetes.client.ApiClient(config)


def _data(response: Any) -> dict[str, Any]:
    raw = response.data
    return json.loads(raw) if raw else {}


class Kube:
    """Async wrappers around the calls the operator makes."""

    def __init__(self, api: kubernetes.client.ApiClient, metrics: Metrics) -> None:
        self.api = api
        self.metrics = metrics
        self.batch = kubernetes.client.BatchV1Api(api)
        self.core = kubernetes.client.CoreV1Api(api)
        self.custom = kubernetes.client.CustomObjectsApi(api)
        self.rbac_api = kubernetes.client.RbacAuthorizationV1Api(api)
        self._rbac_ready: set[str] = set()
        self._rbac_locks: dict[str, asyncio.Lock] = {}

    async def _call(
        self, verb: str, resource: str, fn: Callable[..., T], *args: Any, **kwargs: Any
    ) -> T:
        if verb in ("create", "patch", "delete", "update"):
            self.metrics.api_writes.labels(verb=verb, resource=resource).inc()
        return await asyncio.to_thread(fn, *args, **kwargs)

    # batch/v1 jobs: get, create, delete --------------------------------------------------------

    async def _read(
        self, resource: str, fn: Callable[..., Any], name: str, namespace: str
    ) -> dict[str, Any] | None:
        """GET one object; None when it does not exist."""
        try:
            resp = await self._call("get", resource, fn, name, namespace, _preload_content=False)
        except ApiException as exc:
            if exc.status == 404:
                return None
            raise
        return _data(resp)

    async def get_job(self, namespace: str, name: str) -> dict[str, Any] | None:
        """The Job, or None when it does not exist (rbac: jobs get)."""
        return await self._read("jobs", self.batch.read_namespaced_job, name, namespace)

    async def create_job(self, manifest: dict[str, Any], owner_uid: str) -> dict[str, Any]:
        """Create the Job, or adopt the existing one of the same name if it is ours.

        (rbac: jobs create, get.) A 409 means an earlier attempt (maybe by a previous operator
        process) already created it: read it and accept it when its controller owner is the
        same resource; anything else is a :class:`ForeignObjectError`.
        """
        meta = manifest["metadata"]
        try:
            resp = await self._call(
                "create",
                "jobs",
                self.batch.create_namespaced_job,
                meta["namespace"],
                manifest,
                _preload_content=False,
            )
            return _data(resp)
        except ApiException as exc:
            if exc.status != 409:
                raise
        existing = await self.get_job(meta["namespace"], meta["name"])
        if existing is None:  # deleted between our create and get: let the next pass retry
            raise RuntimeError(f"Job {meta['name']} conflicted but does not exist")
        refs = existing.get("metadata", {}).get("ownerReferences") or []
        if not any(r.get("uid") == owner_uid and r.get("controller") for r in refs):
            raise ForeignObjectError(f"Job {meta['name']} exists and is not owned by this job")
        logger.info("adopted existing Job %s/%s", meta["namespace"], meta["name"])
        return existing

    async def delete_job(self, namespace: str, name: str) -> None:
        """Delete the Job and (through the garbage collector) its pods (rbac: jobs delete)."""
        try:
            await self._call(
                "delete",
                "jobs",
                self.batch.delete_namespaced_job,
                name,
                namespace,
                propagation_policy="Background",
                _preload_content=False,
            )
        except ApiException as exc:
            if exc.status != 404:
                raise

    # core/v1 configmaps: get ---------------------------------------------------------------

    async def read_configmap(self, namespace: str, name: str) -> dict[str, Any] | None:
        """The ConfigMap, or None when missing (rbac: configmaps get)."""
        return await self._read("configmaps", self.core.read_namespaced_config_map, name, namespace)

    async def read_claim(self, namespace: str, name: str) -> dict[str, Any] | None:
        """The PersistentVolumeClaim, or None when missing (rbac: persistentvolumeclaims get):
        its access modes say whether a sharded run's pods on several nodes can all mount it."""
        return await self._read(
            "persistentvolumeclaims",
            self.core.read_namespaced_persistent_volume_claim,
            name,
            namespace,
        )

    async def create_configmap(self, manifest: dict[str, Any]) -> None:
        """Create a ConfigMap owned by a Job (rbac: configmaps create, get, delete).

        The run's input ConfigMap has the run's name, so one that exists is usually the same
        one (an earlier pass made it). But a 409 can also find the input of an earlier Job of
        the same name that was deleted: the garbage collector is about to delete it (its
        owner is gone), under the pod that needs it. Such a stale input (made by this operator,
        controller-owned by a Job with another uid) is deleted, with its uid as precondition,
        and created again; anything else that is not ours is a :class:`ForeignObjectError`.
        """
        meta = manifest["metadata"]
        ns = meta["namespace"]
        owner = next(r for r in meta.get("ownerReferences") or [] if r.get("controller"))
        for _attempt in range(3):
            try:
                await self._call(
                    "create",
                    "configmaps",
                    self.core.create_namespaced_config_map,
                    ns,
                    manifest,
                    _preload_content=False,
                )
                return
            except ApiException as exc:
                if exc.status != 409:
                    raise
            existing = await self.read_configmap(ns, meta["name"])
            if existing is None:
                continue  # deleted meanwhile (the garbage collector): create it now
            emeta = existing.get("metadata") or {}
            refs = emeta.get("ownerReferences") or []
            controller = next((r for r in refs if r.get("controller")), None)
            if controller is not None and controller.get("uid") == owner["uid"]:
                return  # this Job's own input
            ours = (emeta.get("labels") or {}).get("app.kubernetes.io/managed-by") == (
                (meta.get("labels") or {}).get("app.kubernetes.io/managed-by")
            )
            if controller is None or controller.get("kind") != "Job" or not ours:
                raise ForeignObjectError(
                    f"ConfigMap {meta['name']} exists and does not belong to Job {owner['name']}"
                )
            if emeta.get("deletionTimestamp"):
                # on its way out (finalizers): a later pass creates the new one
                raise RuntimeError(
                    f"ConfigMap {meta['name']} of an earlier Job is being deleted; retrying"
                )
            logger.info(
                "replacing ConfigMap %s/%s: it belonged to an earlier Job %s (uid %s)",
                ns,
                meta["name"],
                controller.get("name"),
                controller.get("uid"),
            )
            try:
                await self._call(
                    "delete",
                    "configmaps",
                    self.core.delete_namespaced_config_map,
                    meta["name"],
                    ns,
                    body=kubernetes.client.V1DeleteOptions(
                        preconditions=kubernetes.client.V1Preconditions(uid=emeta.get("uid"))
                    ),
                    _preload_content=False,
                )
            except ApiException as exc:
                if exc.status not in (404, 409):
                    raise
        raise RuntimeError(f"ConfigMap {meta['name']} could not be created (kept conflicting)")

    # videojobs.io: discovery, list, patch status, delete ------------------------------------

    async def crd_served(self) -> bool:
        """True when the API server serves videoprocessingjobs (discovery: every
        authenticated client may read it, no rule needed)."""
        try:
            resp = await self._call(
                "get",
                "discovery",
                self.api.call_api,
                f"/apis/{GROUP}/{VERSION}",
                "GET",
                auth_settings=["BearerToken"],
                _return_http_data_only=True,
                _preload_content=False,
            )
        except ApiException as exc:
            if exc.status == 404:
                return False
            raise
        return any(r.get("name") == PLURAL for r in _data(resp).get("resources") or [])

    async def count_resources(self, namespaces: list[str | None]) -> int:
        """Whether VideoProcessingJobs exist: 0 or at least 1 (rbac: videoprocessingjobs
        list; one item per scope is enough)."""
        total = 0
        for ns in namespaces:
            if ns is None:
                resp = await self._call(
                    "list",
                    "videoprocessingjobs",
                    self.custom.list_cluster_custom_object,
                    GROUP,
                    VERSION,
                    PLURAL,
                    limit=1,
                    _preload_content=False,
                )
            else:
                resp = await self._call(
                    "list",
                    "videoprocessingjobs",
                    self.custom.list_namespaced_custom_object,
                    GROUP,
                    VERSION,
                    ns,
                    PLURAL,
                    limit=1,
                    _preload_content=False,
                )
            total += len(_data(resp).get("items") or [])
        return total

    async def patch_status(self, namespace: str, name: str, patch: dict[str, Any]) -> None:
        """JSON-merge-patch the status subresource (rbac: videoprocessingjobs/status patch)."""
        await self._call(
            "patch",
            "videoprocessingjobs/status",
            self.custom.patch_namespaced_custom_object_status,
            GROUP,
            VERSION,
            namespace,
            PLURAL,
            name,
            {"status": patch},
            _preload_content=False,
        )

    async def delete_resource(self, namespace: str, name: str, uid: str) -> None:
        """Delete a VideoProcessingJob, only if it is still the same object (rbac: delete)."""
        body = {"preconditions": {"uid": uid}, "propagationPolicy": "Background"}
        try:
            await self._call(
                "delete",
                "videoprocessingjobs",
                self.custom.delete_namespaced_custom_object,
                GROUP,
                VERSION,
                namespace,
                PLURAL,
                name,
                body=body,
                _preload_content=False,
            )
        except ApiException as exc:
            if exc.status not in (404, 409):
                raise

    # events: create, list ----------------------------------------------------------------------

    async def latest_warning(self, namespace: str, kind: str, name: str) -> str | None:
        """``reason: message`` of the newest Warning Event about one object, e.g. the Job
        controller's FailedCreate or the kubelet's FailedMount (rbac: events list)."""
        resp = await self._call(
            "list",
            "events",
            self.core.list_namespaced_event,
            namespace,
            field_selector=f"involvedObject.kind={kind},involvedObject.name={name},type=Warning",
            _preload_content=False,
        )
        items = _data(resp).get("items") or []
        if not items:
            return None

        def when(event: dict[str, Any]) -> str:
            return str(event.get("lastTimestamp") or event.get("eventTime") or "") or str(
                (event.get("metadata") or {}).get("creationTimestamp") or ""
            )

        newest = max(items, key=when)
        return f"{newest.get('reason', '')}: {newest.get('message', '')}".strip(": ")

    async def post_event(
        self, resource: dict[str, Any], type_: str, reason: str, message: str
    ) -> None:
        """Post a core/v1 Event about the resource (rbac: events create). Failures are logged."""
        meta = resource["metadata"]
        now = dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        body = {
            "apiVersion": "v1",
            "kind": "Event",
            "metadata": {
                # at most 253 characters, however long the resource's name
                "name": f"{meta['name'][: 253 - 17]}.{uuid.uuid4().hex[:16]}",
                "namespace": meta["namespace"],
            },
            "involvedObject": {
                "apiVersion": resource.get("apiVersion", f"{GROUP}/{VERSION}"),
                "kind": resource.get("kind", "VideoProcessingJob"),
                "name": meta["name"],
                "namespace": meta["namespace"],
                "uid": meta["uid"],
            },
            "type": type_,
            "reason": reason,
            "message": message[:1024],
            "source": {"component": "videojobs-operator"},
            "reportingComponent": "videojobs-operator",
            "firstTimestamp": now,
            "lastTimestamp": now,
            "count": 1,
        }
        try:
            await self._call(
                "create",
                "events",
                self.core.create_namespaced_event,
                meta["namespace"],
                body,
                _preload_content=False,
            )
        except ApiException as exc:  # an event is never worth failing a reconcile
            logger.warning("could not post event %s: %s", reason, exc.reason)

    # worker RBAC: serviceaccounts, roles, rolebindings get/create ------------------------------

    async def ensure_worker_rbac(
        self,
        namespace: str,
        account: str,
        *,
        annotations: dict[str, str] | None = None,
        pull_secrets: list[str] | None = None,
    ) -> None:
        """Create the worker ServiceAccount, Role and RoleBinding when missing, and bring the
        ones the operator manages up to date (once per namespace and process).

        rbac: serviceaccounts get/create/patch, roles get/create/patch, rolebindings
        get/create. The Role grants exactly ``rbac.WORKER_RULES`` (an older operator's Role is
        patched to them); the ServiceAccount carries the configured annotations (IRSA, workload
        identity) and imagePullSecrets (a private worker image).
        """
        if namespace in self._rbac_ready:
            return
        lock = self._rbac_locks.setdefault(namespace, asyncio.Lock())
        async with lock:  # concurrent first Jobs in a namespace: one of them provisions
            if namespace not in self._rbac_ready:
                await self._provision_worker_rbac(
                    namespace, account, dict(annotations or {}), list(pull_secrets or [])
                )
                self._rbac_ready.add(namespace)

    async def _provision_worker_rbac(
        self, namespace: str, account: str, annotations: dict[str, str], pull_secrets: list[str]
    ) -> None:
        labels = {
            "app.kubernetes.io/managed-by": "videojobs-operator",
            "app.kubernetes.io/part-of": "videojobs",
        }
        meta = {"name": account, "namespace": namespace, "labels": labels}
        account_body: dict[str, Any] = {
            "apiVersion": "v1",
            "kind": "ServiceAccount",
            "metadata": {**meta, "annotations": annotations} if annotations else meta,
        }
        if pull_secrets:
            account_body["imagePullSecrets"] = [{"name": n} for n in pull_secrets]
        objects: list[tuple[str, Callable[..., Any], Callable[..., Any], dict[str, Any]]] = [
            (
                "serviceaccounts",
                self.core.read_namespaced_service_account,
                self.core.create_namespaced_service_account,
                account_body,
            ),
            (
                "roles",
                self.rbac_api.read_namespaced_role,
                self.rbac_api.create_namespaced_role,
                {
                    "apiVersion": "rbac.authorization.k8s.io/v1",
                    "kind": "Role",
                    "metadata": meta,
                    "rules": rbac.WORKER_RULES,
                },
            ),
            (
                "rolebindings",
                self.rbac_api.read_namespaced_role_binding,
                self.rbac_api.create_namespaced_role_binding,
                {
                    "apiVersion": "rbac.authorization.k8s.io/v1",
                    "kind": "RoleBinding",
                    "metadata": meta,
                    "roleRef": {
                        "apiGroup": "rbac.authorization.k8s.io",
                        "kind": "Role",
                        "name": account,
                    },
                    "subjects": [
                        {"kind": "ServiceAccount", "name": account, "namespace": namespace}
                    ],
                },
            ),
        ]
        for resource, read, create, body in objects:
            try:
                resp = await self._call(
                    "get", resource, read, account, namespace, _preload_content=False
                )
            except ApiException as exc:
                if exc.status != 404:
                    raise
            else:
                await self._update_worker_object(resource, _data(resp), body)
                continue
            try:
                await self._call(
                    "create", resource, create, namespace, body, _preload_content=False
                )
            except ApiException as exc:
                if exc.status != 409:
                    raise

    async def _update_worker_object(
        self, resource: str, current: dict[str, Any], wanted: dict[str, Any]
    ) -> None:
        """Patch an existing worker ServiceAccount or Role the operator manages to what it
        would create now (objects someone else made are left alone)."""
        meta = current.get("metadata") or {}
        if (meta.get("labels") or {}).get("app.kubernetes.io/managed-by") != "videojobs-operator":
            return
        patch: dict[str, Any] = {}
        if resource == "roles" and current.get("rules") != wanted["rules"]:
            patch["rules"] = wanted["rules"]
        if resource == "serviceaccounts":
            have = meta.get("annotations") or {}
            extra = {k: v for k, v in (wanted["metadata"].get("annotations") or {}).items()
                     if have.get(k) != v}  # fmt: skip
            if extra:
                patch["metadata"] = {"annotations": extra}
            secrets = list(current.get("imagePullSecrets") or [])
            missing = [s for s in wanted.get("imagePullSecrets", []) if s not in secrets]
            if missing:
                patch["imagePullSecrets"] = secrets + missing
        if not patch:
            return
        name, namespace = meta["name"], meta["namespace"]
        fn = (
            self.rbac_api.patch_namespaced_role
            if resource == "roles"
            else self.core.patch_namespaced_service_account
        )
        logger.info("updating worker %s %s/%s", resource, namespace, name)
        await self._call("patch", resource, fn, name, namespace, patch, _preload_content=False)
