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
cannot renew within its renew deadline (two thirds of the lease duration, as client-go's 10 s of
15 s) it sets the stop flag, kopf stops, and the process exits non-zero so that Kubernetes
restarts it as a standby. Every request carries a timeout that ends before that deadline, so an
API server that accepts the connection and never answers cannot hold the renewal past it: the
holder gives up leading before any standby can see the Lease expire. This is the same protocol
as client-go's leaderelection (one Lease, holderIdentity, renewTime, leaseDurationSeconds,
leaseTransitions).
"""

from __future__ import annotations

import copy
import datetime as dt
import json
import logging
import threading
import time
import uuid
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
        renew_deadline: float | None = None,
        request_timeout: float = 10.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if isinstance(api, kubernetes.client.ApiClient):
            # One try per request: urllib3's default retries (3) would restart the timeout.
            configuration = copy.deepcopy(api.configuration)
            configuration.retries = False
            api = kubernetes.client.ApiClient(configuration)
        self.leases = kubernetes.client.CoordinationV1Api(api)
        self.namespace = namespace
        self.identity = identity
        self.name = name
        self.lease_seconds = lease_seconds
        self.renew_seconds = renew_seconds
        self.renew_deadline = (
            renew_deadline if renew_deadline is not None else lease_seconds * 2 / 3
        )
        """A holder that has not renewed for this long stops leading (< ``lease_seconds``)."""
        self.request_timeout = request_timeout
        """The longest any one request may take (connect, and each read)."""
        self.api_reachable = False
        """Whether the last attempt got its answers from the API server (standby readiness)."""
        self._deadline: float | None = None
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

    def _timeout(self) -> float:
        """This request's timeout: ``request_timeout``, cut to end by the renew deadline."""
        if self._deadline is None:
            return self.request_timeout
        left = self._deadline - self.clock()
        if left <= 0:
            raise TimeoutError("the renew deadline passed")
        return min(self.request_timeout, left)

    def try_acquire(self, deadline: float | None = None) -> bool:
        """One attempt to become (or stay) the holder; True when we hold the Lease now.

        ``deadline`` (our clock): no request of this attempt may last beyond it."""
        self._deadline = deadline
        try:
            held = self._try_acquire()
        except ApiException:
            self.api_reachable = True
            raise
        except Exception:
            self.api_reachable = False
            raise
        finally:
            self._deadline = None
        self.api_reachable = True
        return held

    def _try_acquire(self) -> bool:
        now = _now()
        try:
            lease = self.leases.read_namespaced_lease(
                self.name, self.namespace, _preload_content=False, _request_timeout=self._timeout()
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
                self.name,
                self.namespace,
                patch,
                _preload_content=False,
                _request_timeout=self._timeout(),
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
                self.namespace, body, _preload_content=False, _request_timeout=self._timeout()
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
        """Keep renewing until ``halt``; if no renewal succeeds within the renew deadline, mark
        the Lease lost and call ``on_lost`` (which stops the operator).

        Each attempt's requests time out by the deadline, and failed attempts are retried
        every ``renew_seconds`` (sooner when the deadline is nearer), so ``on_lost`` runs at
        most a moment after the deadline even when the API server never answers; a standby
        can take over only a whole lease duration after our last renewal."""
        if self._last_renew is None:
            self._last_renew = self.clock()
        wait = self.renew_seconds
        while not halt.wait(wait):
            deadline = self._last_renew + self.renew_deadline
            if self._attempt(deadline):
                wait = self.renew_seconds
                continue
            left = self._last_renew + self.renew_deadline - self.clock()
            if left <= 0:
                logger.error(
                    "could not renew the Lease %s/%s for %.0f s: lost it; stopping",
                    self.namespace,
                    self.name,
                    self.renew_deadline,
                )
                self.lost.set()
                on_lost()
                return
            wait = min(self.renew_seconds, max(left, 0.05))

    def _attempt(self, deadline: float) -> bool:
        """One renewal, given up at ``deadline`` even if a request is still blocked (the
        timeouts end it soon after; this does not wait for that)."""
        outcome: list[bool] = []

        def attempt() -> None:
            try:
                outcome.append(self.try_acquire(deadline=deadline))
            except Exception as exc:
                logger.warning("could not renew the Lease: %s", exc)
                outcome.append(False)

        worker = threading.Thread(target=attempt, name="lease-renew", daemon=True)
        worker.start()
        worker.join(max(deadline - self.clock(), 0.0) + 0.05)
        return bool(outcome and outcome[0])

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
                self.name,
                self.namespace,
                patch,
                _preload_content=False,
                _request_timeout=self.request_timeout,
            )
        except ApiException as exc:
            if exc.status == 409:
                logger.info("not releasing the Lease: someone else holds it now")
                return
            logger.warning("could not release the Lease: %s", exc)
        except Exception as exc:
            logger.warning("could not release the Lease: %s", exc)


def process_identity(env: dict[str, str], hostname: str) -> str:
    """This process's holder identity: the pod's name (or the host's) plus a random suffix.

    The pod name alone is not enough: a restarted container keeps it, and would take the
    previous process's Lease as its own (renewing it at once, without waiting for it to expire,
    while the old process may still be leading). client-go adds a UUID for the same reason."""
    return f"{env.get('POD_NAME') or hostname}_{uuid.uuid4().hex[:12]}"


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
