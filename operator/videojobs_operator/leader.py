"""Leader election with a ``coordination.k8s.io/v1`` Lease, so extra replicas stand by.

The holder renews ``spec.renewTime`` every few seconds; a candidate takes the Lease over when
the holder has not renewed it for ``leaseDurationSeconds``. "Not renewed" is measured as
client-go does, on the candidate's own monotonic clock: the time since it last *saw the Lease
record change*, never the holder's ``renewTime`` against the local wall clock, so a holder whose
clock is behind (or a candidate whose clock is ahead) cannot have a live Lease stolen. Writes,
the release included, are merge patches carrying ``metadata.resourceVersion``, which the API
server treats as a precondition: of two candidates racing for an expired Lease, one gets 409
Conflict and keeps waiting, and a release never clears a Lease someone else holds by then.

The elector runs in a plain thread (the kubernetes client is synchronous); when the leader
cannot renew in time it sets the stop flag, kopf stops, and the process exits non-zero so that
Kubernetes restarts it as a standby. This is the same protocol as client-go's leaderelection
(one Lease, holderIdentity, renewTime, leaseDurationSeconds, leaseTransitions).
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import threading
import time
from collections.abc import Callable
from typing import Any

import kubernetes
from kubernetes.client.exceptions import ApiException

logger = logging.getLogger("videojobs.operator.leader")

SA_NAMESPACE_FILE = "/var/run/secrets/kubernetes.io/serviceaccount/namespace"


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _fmt(moment: dt.datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class LeaseElector:
    """Acquire, renew and release one Lease (rbac: leases get, create, patch)."""

    def __init__(
        self,
        api: kubernetes.client.ApiClient,
        namespace: str,
        identity: str,
        *,
        name: str = "videojobs-operator",
        lease_seconds: int = 15,
        renew_seconds: float = 5.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.leases = kubernetes.client.CoordinationV1Api(api)
        self.namespace = namespace
        self.identity = identity
        self.name = name
        self.lease_seconds = lease_seconds
        self.renew_seconds = renew_seconds
        self.lost = threading.Event()
        self.clock = clock
        self._last_renew: float | None = None
        """Our clock's time of our last successful write."""
        self._observed: tuple[Any, ...] | None = None
        """The Lease record as last seen (holder, times, transitions, resourceVersion)."""
        self._observed_at = 0.0
        """Our clock's time when the record was last seen to change."""
        self._version: str | None = None
        """resourceVersion after our last successful write (the release's precondition)."""

    def _observe(self, body: dict[str, Any]) -> float:
        """Remember the record; return for how long (our clock) it has not changed."""
        spec = body.get("spec") or {}
        record = (
            spec.get("holderIdentity"),
            spec.get("renewTime"),
            spec.get("acquireTime"),
            spec.get("leaseTransitions"),
            (body.get("metadata") or {}).get("resourceVersion"),
        )
        now = self.clock()
        if record != self._observed:
            self._observed, self._observed_at = record, now
        return now - self._observed_at

    def _wrote(self, response: Any) -> None:
        self._last_renew = self.clock()
        try:
            data = json.loads(response.data) if getattr(response, "data", None) else {}
        except (TypeError, ValueError):
            data = {}
        self._version = (data.get("metadata") or {}).get("resourceVersion") or self._version
        if data:
            self._observe(data)

    def try_acquire(self) -> bool:
        """One attempt to become (or stay) the holder; True when we hold the Lease now."""
        now = _now()
        try:
            lease = self.leases.read_namespaced_lease(
                self.name, self.namespace, _preload_content=False
            )
        except ApiException as exc:
            if exc.status != 404:
                raise
            return self._create(now)
        body = json.loads(lease.data)
        spec = body.get("spec") or {}
        holder = spec.get("holderIdentity")
        duration = int(spec.get("leaseDurationSeconds") or self.lease_seconds)
        unchanged_for = self._observe(body)
        expired = unchanged_for > duration
        if holder and holder != self.identity and not expired:
            return False
        patch_spec: dict[str, Any] = {
            "holderIdentity": self.identity,
            "renewTime": _fmt(now),
            "leaseDurationSeconds": self.lease_seconds,
        }
        if holder != self.identity:
            patch_spec["acquireTime"] = _fmt(now)
            patch_spec["leaseTransitions"] = int(spec.get("leaseTransitions") or 0) + 1
        patch = {
            "metadata": {"resourceVersion": body["metadata"].get("resourceVersion")},
            "spec": patch_spec,
        }
        try:
            response = self.leases.patch_namespaced_lease(
                self.name, self.namespace, patch, _preload_content=False
            )
        except ApiException as exc:
            if exc.status in (404, 409):
                return False
            raise
        if holder != self.identity:
            logger.info("acquired Lease %s/%s as %s", self.namespace, self.name, self.identity)
        self._wrote(response)
        return True

    def _create(self, now: dt.datetime) -> bool:
        body = {
            "apiVersion": "coordination.k8s.io/v1",
            "kind": "Lease",
            "metadata": {"name": self.name, "namespace": self.namespace},
            "spec": {
                "holderIdentity": self.identity,
                "leaseDurationSeconds": self.lease_seconds,
                "acquireTime": _fmt(now),
                "renewTime": _fmt(now),
                "leaseTransitions": 0,
            },
        }
        try:
            response = self.leases.create_namespaced_lease(
                self.namespace, body, _preload_content=False
            )
        except ApiException as exc:
            if exc.status == 409:
                return False
            raise
        logger.info("created Lease %s/%s as %s", self.namespace, self.name, self.identity)
        self._wrote(response)
        return True

    def acquire(self, stop: threading.Event) -> bool:
        """Block until we hold the Lease (True) or ``stop`` is set (False)."""
        logger.info("waiting for Lease %s/%s", self.namespace, self.name)
        while not stop.is_set():
            try:
                if self.try_acquire():
                    return True
            except Exception as exc:  # the API may be briefly unavailable
                logger.warning("leader election attempt failed: %s", exc)
            stop.wait(self.renew_seconds)
        return False

    def renew_until(self, halt: threading.Event, on_lost: Callable[[], None]) -> None:
        """Keep renewing until ``halt``; if renewing fails for a whole lease duration, mark
        the Lease lost and call ``on_lost`` (which stops the operator)."""
        while not halt.wait(self.renew_seconds):
            try:
                if self.try_acquire():
                    continue
            except Exception as exc:
                logger.warning("could not renew the Lease: %s", exc)
            last = self._last_renew if self._last_renew is not None else self.clock()
            if self.clock() - last >= self.lease_seconds:
                logger.error("lost the Lease %s/%s; stopping", self.namespace, self.name)
                self.lost.set()
                on_lost()
                return

    def release(self) -> None:
        """Give the Lease up (so a standby takes over at once); errors are ignored."""
        if self.lost.is_set() or self._last_renew is None:
            return
        try:
            # Precondition: the Lease is still as we last wrote it. If a standby took it over
            # meanwhile (we were paused past the lease duration), 409 leaves its claim alone.
            patch: dict[str, Any] = {"spec": {"holderIdentity": None, "renewTime": None}}
            if self._version is not None:
                patch["metadata"] = {"resourceVersion": self._version}
            self.leases.patch_namespaced_lease(
                self.name, self.namespace, patch, _preload_content=False
            )
        except ApiException as exc:
            if exc.status == 409:
                logger.info("not releasing the Lease: someone else holds it now")
                return
            logger.warning("could not release the Lease: %s", exc)
        except Exception as exc:
            logger.warning("could not release the Lease: %s", exc)


def lease_namespace(configured: str | None, env: dict[str, str]) -> str:
    """The configured namespace, else POD_NAMESPACE, else the service account's namespace."""
    if configured:
        return configured
    if env.get("POD_NAMESPACE"):
        return env["POD_NAMESPACE"]
    try:
        with open(SA_NAMESPACE_FILE, encoding="utf-8") as fh:
            return fh.read().strip()
    except OSError:
        return "default"
