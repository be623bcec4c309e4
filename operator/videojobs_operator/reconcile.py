"""The reconciler: level-triggered, one pass per resource at a time, I/O around ``decide``.

kopf keeps three in-memory indices (VideoProcessingJobs, their Jobs, the Jobs' pods), filled from
its watch streams and fully listed before any handler runs. Every event about a resource, its Job
or a pod calls :meth:`Reconciler.reconcile` for the resource; the pass reads the indices, asks the
pure :func:`decide` what to do and does it. Nothing is remembered that the cluster does not
also say: a restarted operator reads the same indices and continues (a Job of the current run is
found by its deterministic name, so it is never created twice).

Two small pieces of in-memory state make it efficient without making it wrong:

- ``written``: the operator-owned status fields this process wrote last, laid over the indexed
  status until the watch catches up, so that a pass started by a Job event does not repeat a
  write the resource's own event has not shown yet;
- ``starting``: runs admitted by the queue whose Job is not in the index yet, so that the
  running-job limits hold while the watch catches up.

The queue is kept incrementally (``queue.py``'s :class:`AdmissionQueue`): every pass tells it
what it saw of its own resource (waiting, running, neither) and its phase, so admitting, kicking
the queue and the fleet gauges cost the same with ten resources or ten thousand. The first pass
and every resync fill it from the whole index once (a safety net, as the resync is for events).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import logging
import time
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from kubernetes.client.exceptions import ApiException

from videojobs.bounded import plan_problems_bounded
from videojobs.errors import Problem
from videojobs.models import FINISHED_PHASES, VideoProcessingJobSpec
from videojobs_operator.decide import (
    ACTIVE_PHASES,
    OPERATOR_STATUS_FIELDS,
    REJECTED_CREATE_CODES,
    STARTUP_TIMEOUT_REASONS,
    Context,
    Decision,
    Event,
    decide,
    foreign_job_decision,
    job_create_retry_decision,
    job_rejected_decision,
    quota_exceeded,
    wants_to_start,
)
from videojobs_operator.kube import ForeignObjectError, Kube
from videojobs_operator.manifest import (
    ANNOTATION_SHARDS,
    LABEL_RUN,
    LABEL_UID,
    InputTooLarge,
    build_input_configmap,
    build_job,
    build_merge_job,
    is_merge_step,
    is_owned_by,
    resource_job_name,
    resource_merge_job_name,
    run_id,
    shard_count,
    validate_spec,
)
from videojobs_operator.metrics import Metrics
from videojobs_operator.observe import job_finished
from videojobs_operator.queue import AdmissionQueue, QueueEntry, queue_limit_text
from videojobs_operator.readiness import Readiness
from videojobs_operator.settings import OperatorSettings
from videojobs_operator.storage_policy import claim_sharing_problem, storage_problems
from videojobs_operator.timestamps import parse_time

logger = logging.getLogger("videojobs.operator")

Key = tuple[str, str]
IndexLike = Mapping[Key, Any]  # kopf.Index: key -> kopf.Store (an iterable of values)

RESYNC_SECONDS = 60.0
"""Every unfinished resource is looked at again this often, whatever the watches say."""
FINISHED_RESYNC_ROUNDS = 10
"""Finished resources are looked at by the resync only every this many rounds: their TTL has
its own timer and a re-run arrives as a watch event, so a pass over each of them every minute
only made the operator's cost grow with (resources x time)."""
CREATED_GRACE_SECONDS = 30.0
"""How long a Job this process created may take to appear in the watch before it is looked up."""
STAGE_WRITE_INTERVAL = 2.0
"""Least seconds between two status writes that only mirror the worker's stage."""
PROGRESS_ONLY_FIELDS = frozenset({"progress", "stage", "message", "conditions"})
"""A write of these alone is a sharded run's summed progress: at most one per
``summedProgressIntervalSeconds`` (a shard finishing, ``shards``, is written at once)."""


@dataclass
class _KeyState:
    uid: str | None = None
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    dirty: bool = False
    written: dict[str, Any] = field(default_factory=dict)
    last_write: float = 0.0
    last_progress_write: float = 0.0
    """Monotonic time of the last write of a sharded run's summed progress."""
    created_job: str | None = None
    created_at: float = 0.0
    timer: asyncio.TimerHandle | None = None
    failures: int = 0
    input_for: str | None = None
    """The Job whose input ConfigMap this process created (or found)."""
    merge_input_for: str | None = None
    """The merge Job whose input ConfigMap this process created (or found)."""
    merge_create_failures: int = 0
    """Merge Job creates that failed in a row: the backoff exponent."""
    created_merge: tuple[str, float] | None = None
    """(name, monotonic time) of the merge Job this process created last."""
    create_failures: int = 0
    """Job creates that failed in a row (429, 5xx): the backoff exponent."""
    create_retry_at: float = 0.0
    """Monotonic time before which a failed create is not tried again."""
    validated: tuple[Any, ...] | None = None
    """(generation, rerunToken, spec model, problems) of the last successful validation."""


@dataclass
class _Findings:
    """What a pass found out besides the indices (the inputs of ``decide``'s Context)."""

    job: dict[str, Any] | None
    """The run's Job (from the index, or from a GET when the index lost it)."""
    spec_model: VideoProcessingJobSpec | None = None
    problems: list[Problem] = field(default_factory=list)
    waiting_for: str | None = None
    admitted: bool = False
    job_missing: bool = False


def _values(index: IndexLike, key: Key) -> list[dict[str, Any]]:
    store = index.get(key)
    return list(store) if store is not None else []


class Reconciler:
    """Owns the per-resource passes, the queue and the periodic resync."""

    def __init__(
        self,
        settings: OperatorSettings,
        kube: Kube,
        metrics: Metrics,
        *,
        clock: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.UTC),
    ) -> None:
        self.settings = settings
        self.kube = kube
        self.metrics = metrics
        self.clock = clock
        self.vpjs: IndexLike = {}
        self.job_index: IndexLike = {}
        self.pod_index: IndexLike = {}
        self._states: dict[Key, _KeyState] = {}
        self._starting: set[Key] = set()
        self._tasks: set[asyncio.Task[None]] = set()
        self.queue = AdmissionQueue()
        self._phases: dict[Key, str] = {}
        self._phase_counts: Counter[str] = Counter()
        self._seeded = False
        self.readiness = Readiness()
        metrics.watch_fleet(self.phase_counts, self.queue_depth)

    @property
    def ready(self) -> bool:
        """The CRD is served and kopf's indices are filled (``readiness.py``)."""
        return self.readiness.ready

    def bind(self, vpjs: IndexLike, job_index: IndexLike, pod_index: IndexLike) -> None:
        """Attach kopf's indices (they are filled before any handler runs)."""
        self.vpjs, self.job_index, self.pod_index = vpjs, job_index, pod_index

    # Views used by metrics and the queue -----------------------------------------------------

    def _resource(self, key: Key) -> dict[str, Any] | None:
        values = _values(self.vpjs, key)
        if not values:
            return None
        body = values[-1]
        state = self._states.get(key)
        if state is None or not state.written or state.uid != body["metadata"].get("uid"):
            return body
        status = dict(body.get("status") or {})
        if all(status.get(k) == v for k, v in state.written.items()):
            state.written.clear()  # the watch caught up
            return body
        for k, v in state.written.items():
            if v is None:
                status.pop(k, None)
            else:
                status[k] = v
        return {**body, "status": status}

    def _run_job(
        self, key: Key, resource: Mapping[str, Any], *, merge: bool = False
    ) -> dict[str, Any] | None:
        """The current run's Job (``merge``: its merge Job) from the index."""
        name = resource_merge_job_name(resource) if merge else resource_job_name(resource)
        for job in _values(self.job_index, key):
            if job["metadata"]["name"] == name and is_owned_by(job, resource):
                return job
        return None

    def phase_counts(self) -> Mapping[str, int]:
        """Resources by phase (for the jobs gauge), as their last passes saw them."""
        return +self._phase_counts

    def queue_depth(self) -> int:
        """Resources in phase Queued."""
        return self._phase_counts.get("Queued", 0)

    def _running(self) -> Counter[str]:
        """Active Jobs (not finished) per namespace, plus admitted runs not yet indexed."""
        return self.queue.running()

    def _track(self, key: Key) -> None:
        """Tell the queue and the phase counts what the index (and this process) says of
        ``key`` now: O(1) in the number of resources."""
        resource = self._resource(key)
        if resource is None:
            self._starting.discard(key)
            self.queue.discard(key)
            self._set_phase(key, None)
            return
        self._set_phase(key, (resource.get("status") or {}).get("phase") or "Pending")
        job = self._run_job(key, resource)
        if job is not None:
            self._starting.discard(key)
        if key in self._starting or (job is not None and not job_finished(job)):
            self.queue.set_running(key, self._pods_of(resource, job))
        elif (merge := self._run_job(key, resource, merge=True)) is not None and not (
            job_finished(merge)
        ):
            self.queue.set_running(key, 1)  # the merge pod counts against the pod budget
        elif job is None and wants_to_start(resource):
            state = self._states.get(key)
            created = resource["metadata"].get("creationTimestamp") or ""
            retry_at = state.create_retry_at if state is not None else 0.0
            pods = self._pods_of(resource, None)
            self.queue.set_waiting(QueueEntry(key[0], key[1], created, pods), retry_at)
        else:
            self.queue.discard(key)

    def _pods_of(self, resource: Mapping[str, Any], job: Mapping[str, Any] | None) -> int:
        """Worker pods a run asks for at once: its Job's shard count, else its spec's."""
        if job is not None:
            shards = str((job["metadata"].get("annotations") or {}).get(ANNOTATION_SHARDS) or "")
            return int(shards) if shards.isdigit() else 1
        return shard_count(resource.get("spec"), self.settings)

    def _set_phase(self, key: Key, phase: str | None) -> None:
        old = self._phases.pop(key, None)
        if old is not None:
            self._phase_counts[old] -= 1
        if phase is not None:
            self._phases[key] = phase
            self._phase_counts[phase] += 1

    def _seed(self) -> None:
        """Fill the queue from the whole index (first pass, resync)."""
        self._seeded = True
        for key in set(self._phases) - set(self.vpjs):
            self._track(key)
        for key in list(self.vpjs):
            self._track(key)

    def _admissible(self) -> list[Key]:
        return self.queue.admissible(
            self.settings.max_running_jobs,
            self.settings.max_running_jobs_per_namespace,
            time.monotonic(),
            self.settings.max_running_pods,
        )

    def _admit(self, key: Key) -> bool:
        # No await between computing and marking: the event loop cannot interleave another
        # admission, so the limits hold without a lock.
        self._track(key)
        if key in self._admissible():
            self._starting.add(key)
            self.queue.set_running(key)
            return True
        return False

    def kick_queue(self) -> None:
        """Look at the resources the queue would admit now."""
        for key in self._admissible():
            self.enqueue(key)

    # Scheduling --------------------------------------------------------------------------------

    def enqueue(self, key: Key, delay: float = 0.0) -> None:
        """Reconcile ``key`` soon (after ``delay`` seconds), without waiting for it."""
        state = self._states.setdefault(key, _KeyState())
        loop = asyncio.get_running_loop()
        if delay > 0:
            # a timer that has fired (its time is past) plans nothing any more
            pending = state.timer is not None and state.timer.when() > loop.time()
            if pending:
                assert state.timer is not None
                if state.timer.when() <= loop.time() + delay:
                    return  # an earlier look is already planned
                state.timer.cancel()
            state.timer = loop.call_later(delay, self.enqueue, key)
            return
        task = loop.create_task(self.reconcile(key))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def resync_forever(self) -> None:
        """Reconcile what is not finished every :data:`RESYNC_SECONDS`, and everything every
        :data:`FINISHED_RESYNC_ROUNDS` rounds (a safety net for missed events)."""
        rounds = 0
        while True:
            await asyncio.sleep(RESYNC_SECONDS)
            rounds += 1
            self._seed()
            for key in self.resync_keys(everything=rounds % FINISHED_RESYNC_ROUNDS == 0):
                self.enqueue(key)

    def resync_keys(self, *, everything: bool) -> list[Key]:
        """The resources a resync round looks at: all, or those whose last pass saw them
        unfinished."""
        if everything:
            return list(self.vpjs)
        return [key for key in self.vpjs if self._phases.get(key) not in FINISHED_PHASES]

    async def close(self) -> None:
        """Cancel timers and running passes."""
        for state in self._states.values():
            if state.timer is not None:
                state.timer.cancel()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    # The pass ----------------------------------------------------------------------------------

    async def reconcile(self, key: Key) -> None:
        """Bring one resource a step closer to its desired state; passes never overlap."""
        self.readiness.indexed()  # kopf calls handlers only once every index is filled
        if not self._seeded:
            self._seed()
        state = self._states.setdefault(key, _KeyState())
        state.dirty = True
        if state.lock.locked():
            return  # the running pass will go round once more
        async with state.lock:
            while state.dirty:
                state.dirty = False
                try:
                    try:
                        await self._reconcile_once(key, state)
                    finally:
                        self._track(key)
                    state.failures = 0
                except asyncio.CancelledError:
                    raise
                except Exception:
                    state.failures += 1
                    self.metrics.reconcile_errors.inc()
                    delay = min(300.0, 2.0 ** min(state.failures, 8))
                    logger.exception(
                        "reconcile failed; retrying in %.0fs",
                        delay,
                        extra=_ref(key),
                    )
                    self.enqueue(key, delay)
        if key not in self.vpjs and not state.lock.locked():
            self._forget(key)

    def _forget(self, key: Key) -> None:
        state = self._states.pop(key, None)
        if state is not None and state.timer is not None:
            state.timer.cancel()
        self._starting.discard(key)
        self.queue.discard(key)
        self._set_phase(key, None)

    async def _reconcile_once(self, key: Key, state: _KeyState) -> None:
        resource = self._resource(key)
        if resource is None:  # deleted: its slot (if any) is free now
            self._release(key)
            return
        self._note_object(state, resource)
        now = self.clock()
        job = self._run_job(key, resource)
        merge_job = self._run_job(key, resource, merge=True)
        every_pod = self._run_pods(key, resource)
        pods = [p for p in every_pod if not is_merge_step(p)]
        if job is not None:
            await self._adopt_job(key, state, resource, job)
        if merge_job is not None and state.merge_input_for != merge_job["metadata"]["name"]:
            await self._ensure_merge_input(state, resource, merge_job)
        elif self._awaiting_created_job(state, resource):
            return  # created by this process a moment ago: wait for the watch to show it
        await self._delete_stale_jobs(key, resource)
        found = await self._find_out(key, state, resource, job)
        if found is None:
            return  # a failed create backs off; the next try is planned
        ctx = Context(
            now=now,
            settings=self.settings,
            problems=found.problems,
            waiting_for=found.waiting_for,
            admitted=found.admitted,
            job_missing=found.job_missing,
            queue_limit=queue_limit_text(self.settings),
            merge_job=merge_job,
            merge_pods=[p for p in every_pod if is_merge_step(p)],
        )
        decision = decide(resource, found.job, pods, ctx)
        if decision.create_merge_job and self._merge_on_its_way(state, resource):
            self.enqueue(key, CREATED_GRACE_SECONDS)  # look again should the watch not show it
        elif decision.create_merge_job:
            await self._create_merge_job(key, state, resource)
        if decision.create_job and found.spec_model is not None:
            decision = await self._try_create_job(
                key, state, resource, found.spec_model, ctx, decision
            )
        elif found.admitted and not decision.create_job:
            self._starting.discard(key)
        await self._carry_out(key, state, resource, found.job, pods, decision)

    # The steps of a pass -----------------------------------------------------------------------

    def _release(self, key: Key) -> None:
        """The resource is gone: free its slot and let the queue move."""
        self._starting.discard(key)
        self._track(key)
        self.kick_queue()

    @staticmethod
    def _note_object(state: _KeyState, resource: Mapping[str, Any]) -> None:
        """A new object under the key (or the first sight of it): forget the old one's state."""
        uid = resource["metadata"].get("uid")
        if state.uid != uid:
            state.uid, state.written, state.created_job = uid, {}, None
            state.validated = None

    def _run_pods(self, key: Key, resource: Mapping[str, Any]) -> list[dict[str, Any]]:
        """The indexed pods of the resource's current run."""
        meta = resource["metadata"]
        run = run_id(meta["uid"], (resource.get("spec") or {}).get("rerunToken"))
        return [
            p
            for p in _values(self.pod_index, key)
            if (labels := p.get("metadata", {}).get("labels") or {}).get(LABEL_RUN) == run
            and labels.get(LABEL_UID) == meta["uid"]
        ]

    async def _adopt_job(
        self, key: Key, state: _KeyState, resource: Mapping[str, Any], job: Mapping[str, Any]
    ) -> None:
        """The run's Job is in the index: it is no longer starting, and an unfinished one has
        its input ConfigMap."""
        self._starting.discard(key)
        state.created_job = None
        state.create_failures = 0
        if state.input_for != job["metadata"]["name"] and not job_finished(job):
            # created by an earlier process, or its ConfigMap failed: make sure it exists
            model, invalid = validate_spec(resource.get("spec"))
            if model is not None and not invalid:
                await self._ensure_input(state, resource, model, job)

    @staticmethod
    def _awaiting_created_job(state: _KeyState, resource: Mapping[str, Any]) -> bool:
        """True while a Job this process created may still be on its way to the index."""
        if state.created_job != resource_job_name(resource):
            return False
        if time.monotonic() - state.created_at < CREATED_GRACE_SECONDS:
            return True
        state.created_job = None  # never showed up: the pass below checks with a GET
        return False

    async def _find_out(
        self,
        key: Key,
        state: _KeyState,
        resource: Mapping[str, Any],
        job: dict[str, Any] | None,
    ) -> _Findings | None:
        """What ``decide`` needs to know besides the indices: for a run that wants to start,
        its validation and admission; for an active run whose Job left the index, a GET that
        confirms it gone. None when a failed create is still backing off (the pass is
        re-enqueued)."""
        found = _Findings(job=job)
        status = resource.get("status") or {}
        expected = resource_job_name(resource)
        cancel = (resource.get("spec") or {}).get("cancel")
        if job is None and wants_to_start(resource):
            wait = state.create_retry_at - time.monotonic()
            if wait > 0 and not cancel:
                self.enqueue(key, wait)
                return None
            found.spec_model, found.problems, found.waiting_for = await self._validate_cached(
                state, resource
            )
            if not found.problems and not found.waiting_for and not cancel:
                found.admitted = self._admit(key)
        elif (
            job is None
            and status.get("jobName") == expected
            and status.get("phase") in ACTIVE_PHASES
        ):
            # The index says the Job is gone: make sure before declaring it deleted.
            found.job = await self.kube.get_job(resource["metadata"]["namespace"], expected)
            found.job_missing = found.job is None
        return found

    async def _carry_out(
        self,
        key: Key,
        state: _KeyState,
        resource: dict[str, Any],
        job: Mapping[str, Any] | None,
        pods: list[dict[str, Any]],
        decision: Decision,
    ) -> None:
        """Do what the decision says: delete the Job, write the status, post the Events,
        delete the resource, look again later, and free the slot of a run that ended."""
        meta = resource["metadata"]
        if decision.delete_job and (decision.status.get("error") or {}).get("reason") in (
            STARTUP_TIMEOUT_REASONS
        ):
            await self._explain_startup_timeout(resource, job, pods, decision)
        if decision.delete_job:
            await self.kube.delete_job(meta["namespace"], resource_job_name(resource))
            merge = self._run_job(key, resource, merge=True)
            if merge is not None and not job_finished(merge):
                await self.kube.delete_job(meta["namespace"], merge["metadata"]["name"])
        await self._write_status(key, state, resource, decision)
        for event in decision.events:
            await self.kube.post_event(resource, event.type, event.reason, event.message)
        if decision.delete_resource:
            logger.info("deleting finished resource (ttlSecondsAfterFinished)", extra=_ref(key))
            await self.kube.delete_resource(meta["namespace"], meta["name"], meta["uid"])
        if decision.requeue_after is not None:
            self.enqueue(key, decision.requeue_after)
        if decision.status.get("phase") in FINISHED_PHASES or decision.delete_job:
            self._starting.discard(key)
            state.validated = None  # the finished run's spec model is not needed again
            self._count_finish(resource, decision)
            self._track(key)
            self.kick_queue()

    async def _explain_startup_timeout(
        self,
        resource: Mapping[str, Any],
        job: Mapping[str, Any] | None,
        pods: list[dict[str, Any]],
        decision: Decision,
    ) -> None:
        """Add the newest Warning Event of the pod (or, without one, of the Job) to a pending
        timeout's message: the kubelet's FailedMount, the Job controller's FailedCreate."""
        ns = resource["metadata"]["namespace"]
        target = ("Pod", pods[-1]["metadata"]["name"]) if pods else None
        if target is None and job is not None:
            target = ("Job", job["metadata"]["name"])
        if target is None:
            return
        try:
            why = await self.kube.latest_warning(ns, *target)
        except Exception as exc:  # an explanation is never worth failing the pass
            logger.debug("could not read the events of %s %s: %s", *target, exc)
            return
        if not why:
            return
        text = f"{decision.status['message']}; last event of {target[0]} {target[1]}: {why}"
        decision.status["message"] = text[:1024]
        decision.status["error"] = {**decision.status["error"], "message": text[:1024]}
        for i, event in enumerate(decision.events):
            if event.type == "Warning":
                decision.events[i] = Event(event.type, event.reason, text[:1024])

    async def _validate_cached(
        self, state: _KeyState, resource: Mapping[str, Any]
    ) -> tuple[VideoProcessingJobSpec | None, list[Problem], str | None]:
        """:meth:`_validate`, remembered per generation and run (a queued job is looked at
        often; its ConfigMap is read once)."""
        ident = (
            resource["metadata"].get("generation"),
            (resource.get("spec") or {}).get("rerunToken"),
        )
        if state.validated is not None and state.validated[:2] == ident:
            return state.validated[2], state.validated[3], None
        spec, problems, waiting_for = await self._validate(resource)
        if waiting_for is None:
            state.validated = (*ident, spec, problems)
        return spec, problems, waiting_for

    async def _validate(
        self, resource: Mapping[str, Any]
    ) -> tuple[VideoProcessingJobSpec | None, list[Problem], str | None]:
        """The spec model, problems that make it invalid, or what it still waits for."""
        spec, problems = validate_spec(resource.get("spec"))
        if spec is None:
            return None, problems, None
        refused = storage_problems(spec, resource["metadata"]["namespace"], self.settings)
        if refused:
            return None, refused, None
        shared = await self._claim_problem(resource, spec)
        if shared is not None:
            return None, [shared], None
        if spec.needs_source_info:
            return spec, [], None  # chapters or captions: only the worker (yt-dlp) can plan it
        ref = None
        text: str | bytes | None = None
        if spec.transcript is not None:
            ref = spec.transcript.config_map_key_ref
            text = spec.transcript.inline
            if ref is not None:
                ns = resource["metadata"]["namespace"]
                cm = await self.kube.read_configmap(ns, ref.name)
                data = (cm or {}).get("data") or {}
                binary = (cm or {}).get("binaryData") or {}
                if cm is None or (ref.key not in data and ref.key not in binary):
                    what = f"ConfigMap {ref.name}"
                    if cm is not None:
                        what = f"key {ref.key!r} in {what}"
                    return spec, [], f"spec.transcript.configMapKeyRef: waiting for {what}"
                # binaryData: a transcript in another encoding, decoded (with transcript.encoding)
                # where it is parsed, as the worker decodes the mounted file
                text = data[ref.key] if ref.key in data else _base64(binary[ref.key])
            if text is None:
                return spec, [], None  # at a URL: the worker fetches and plans it
        label = f"ConfigMap/{ref.name}[{ref.key}]" if ref is not None else "spec.transcript.inline"
        # parsing and planning in a child process with a time and memory budget
        problems = await plan_problems_bounded(spec, text, label)
        return (None, problems, None) if problems else (spec, [], None)

    async def _claim_problem(
        self, resource: Mapping[str, Any], spec: VideoProcessingJobSpec
    ) -> Problem | None:
        """A sharded run's claim must be ReadWriteMany (read once per generation, as the rest
        of the validation)."""
        pvc = spec.output.storage.pvc
        shards = shard_count(resource.get("spec"), self.settings)
        if pvc is None or shards <= 1:
            return None
        claim = await self.kube.read_claim(resource["metadata"]["namespace"], pvc.claim_name)
        return claim_sharing_problem(claim, pvc.claim_name, shards)

    async def _delete_stale_jobs(self, key: Key, resource: Mapping[str, Any]) -> None:
        """Remove unfinished Jobs of earlier runs (the rerunToken changed while they ran)."""
        expected = (resource_job_name(resource), resource_merge_job_name(resource))
        for job in _values(self.job_index, key):
            meta = job["metadata"]
            if (
                meta["name"] not in expected
                and is_owned_by(job, resource)
                and not job_finished(job)
                and not meta.get("deletionTimestamp")
            ):
                logger.info("deleting Job %s of an earlier run", meta["name"])
                await self.kube.delete_job(meta["namespace"], meta["name"])

    async def _try_create_job(
        self,
        key: Key,
        state: _KeyState,
        resource: Mapping[str, Any],
        spec: VideoProcessingJobSpec,
        ctx: Context,
        decision: Decision,
    ) -> Decision:
        """Create the Job; on any failure release the admitted slot and decide again.

        A refusal a retry cannot fix (403 admission/policy, 422 invalid, …) fails the run with
        the server's message; anything else (429, 5xx, no connection, a 403 "exceeded quota"
        that clears when other work finishes) keeps the phase, says why in the Progressing
        condition and tries again with exponential backoff (``Retry-After`` when the server
        sends one).
        """
        try:
            await self._create_job(key, state, resource, spec)
        except ForeignObjectError as exc:
            self._starting.discard(key)
            return foreign_job_decision(resource, ctx, str(exc))
        except InputTooLarge as exc:
            self._starting.discard(key)
            return job_rejected_decision(resource, ctx, 413, str(exc))
        except Exception as exc:
            self._starting.discard(key)
            code, message, retry_after = _api_error(exc)
            if code in REJECTED_CREATE_CODES and not quota_exceeded(code, message):
                logger.warning("the API server refused the Job: %s", message, extra=_ref(key))
                return job_rejected_decision(resource, ctx, code, message)
            state.create_failures += 1
            self.metrics.reconcile_errors.inc()
            delay = min(300.0, 2.0 ** min(state.create_failures, 8))
            if retry_after is not None:
                delay = max(1.0, min(300.0, retry_after))
            state.create_retry_at = time.monotonic() + delay
            logger.warning(
                "creating the Job failed (%s); retrying in %.0fs",
                message,
                delay,
                extra=_ref(key),
            )
            return job_create_retry_decision(resource, ctx, code, message, delay)
        state.create_failures = 0
        state.create_retry_at = 0.0
        return decision

    async def _create_job(
        self,
        key: Key,
        state: _KeyState,
        resource: Mapping[str, Any],
        spec: VideoProcessingJobSpec,
    ) -> None:
        meta = resource["metadata"]
        if self.settings.manage_worker_rbac:
            await self.kube.ensure_worker_rbac(
                meta["namespace"],
                self.settings.worker_service_account,
                annotations=self.settings.worker_service_account_annotations,
                pull_secrets=self.settings.worker_image_pull_secrets,
            )
        manifest = build_job(resource, spec, self.settings)
        # the input must fit in its ConfigMap: find out before there is a Job (InputTooLarge)
        probe = {**manifest, "metadata": {**manifest["metadata"], "uid": "-"}}
        build_input_configmap(resource, spec, self.settings, probe)
        created = await self.kube.create_job(manifest, meta["uid"])
        state.created_job = manifest["metadata"]["name"]
        state.created_at = time.monotonic()
        logger.info("created Job %s", state.created_job, extra=_ref(key))
        await self._ensure_input(state, resource, spec, created)

    async def _create_merge_job(
        self, key: Key, state: _KeyState, resource: Mapping[str, Any]
    ) -> None:
        """Create the run's merge Job (adopting one an earlier pass or process created) and its
        input ConfigMap; a failure is logged and tried again with backoff."""
        spec, problems = validate_spec(resource.get("spec"))
        if spec is None or problems:
            return  # the run validated when it started; a spec edited since waits for a rerun
        manifest = build_merge_job(resource, spec, self.settings)
        try:
            created = await self.kube.create_job(manifest, resource["metadata"]["uid"])
        except Exception as exc:
            state.merge_create_failures += 1
            delay = min(300.0, 2.0 ** min(state.merge_create_failures, 8))
            self.metrics.reconcile_errors.inc()
            logger.warning(
                "creating the merge Job failed (%s); retrying in %.0fs",
                _api_error(exc)[1],
                delay,
                extra=_ref(key),
            )
            self.enqueue(key, delay)
            return
        state.merge_create_failures = 0
        state.created_merge = (manifest["metadata"]["name"], time.monotonic())
        logger.info("created merge Job %s", manifest["metadata"]["name"], extra=_ref(key))
        await self._ensure_merge_input(state, resource, created)

    @staticmethod
    def _merge_on_its_way(state: _KeyState, resource: Mapping[str, Any]) -> bool:
        """True while the merge Job this process created may still be on its way to the index
        (no second create, which would only meet a 409)."""
        if state.created_merge is None:
            return False
        name, at = state.created_merge
        fresh = time.monotonic() - at < CREATED_GRACE_SECONDS
        return fresh and name == resource_merge_job_name(resource)

    async def _ensure_merge_input(
        self, state: _KeyState, resource: Mapping[str, Any], job: Mapping[str, Any]
    ) -> None:
        """The merge Job's input ConfigMap (the run's worker input), owned by the merge Job."""
        name = job["metadata"]["name"]
        if job_finished(job) or not job["metadata"].get("uid"):
            return
        spec, problems = validate_spec(resource.get("spec"))
        if spec is None or problems:
            return
        if await self._create_input(resource, spec, job):
            state.merge_input_for = name

    async def _ensure_input(
        self,
        state: _KeyState,
        resource: Mapping[str, Any],
        spec: VideoProcessingJobSpec,
        job: Mapping[str, Any],
    ) -> None:
        """Create the run's input ConfigMap, owned by its Job (once per Job and process).

        The pod waits in ContainerCreating until it exists; a failure here is logged and the
        next pass about the Job tries again."""
        name = job["metadata"]["name"]
        if state.input_for == name or not job["metadata"].get("uid"):
            return
        if await self._create_input(resource, spec, job):
            state.input_for = name

    async def _create_input(
        self, resource: Mapping[str, Any], spec: VideoProcessingJobSpec, job: Mapping[str, Any]
    ) -> bool:
        """Create ``job``'s input ConfigMap (owned by it); False, logged, when that failed (the
        next pass about the Job tries again)."""
        try:
            await self.kube.create_configmap(
                build_input_configmap(resource, spec, self.settings, job)
            )
        except Exception as exc:
            logger.warning("could not create the input of Job %s: %s", job["metadata"]["name"], exc)
            return False
        return True

    async def _write_status(
        self, key: Key, state: _KeyState, resource: Mapping[str, Any], decision: Decision
    ) -> None:
        patch = dict(decision.status)
        if not patch:
            return
        wait = self._write_wait(state, patch)
        if wait > 0:
            self.enqueue(key, wait)  # the pass then writes what is current by that time
            return
        meta = resource["metadata"]
        await self.kube.patch_status(meta["namespace"], meta["name"], patch)
        state.last_write = time.monotonic()
        if "progress" in patch:
            state.last_progress_write = state.last_write
        for k, v in patch.items():
            if k in OPERATOR_STATUS_FIELDS:
                state.written[k] = v

    def _write_wait(self, state: _KeyState, patch: Mapping[str, Any]) -> float:
        """How long a status write waits (0: none). A change of the mirrored stage alone waits
        a little (stages can flip quickly); a sharded run's summed progress alone is rewritten
        at most every ``summedProgressIntervalSeconds``, whatever the shard count."""
        now = time.monotonic()
        if set(patch) <= {"stage", "message", "conditions"} and "stage" in patch:
            return state.last_write + STAGE_WRITE_INTERVAL - now
        interval = self.settings.summed_progress_interval_seconds
        if interval and "progress" in patch and set(patch) <= PROGRESS_ONLY_FIELDS:
            return state.last_progress_write + interval - now
        return 0.0

    def _count_finish(self, resource: Mapping[str, Any], decision: Decision) -> None:
        phase = decision.status.get("phase")
        if phase not in FINISHED_PHASES:
            return
        if phase == "Succeeded":
            self.metrics.completions.inc()
        elif phase == "Failed":
            reason = (decision.status.get("error") or {}).get("reason") or "Unknown"
            self.metrics.failures.labels(reason=reason).inc()
        else:
            self.metrics.cancellations.inc()
        status = resource.get("status") or {}
        start = parse_time(status.get("startTime"))
        end = parse_time(decision.status.get("completionTime")) or self.clock()
        if start is not None:
            self.metrics.duration.labels(phase=phase).observe(
                max(0.0, (end - start).total_seconds())
            )


def _api_error(exc: BaseException) -> tuple[int | None, str, float | None]:
    """(HTTP status, the server's message, Retry-After seconds) of a failed API call."""
    code = getattr(exc, "status", None)
    if not isinstance(code, int) or not isinstance(exc, ApiException):
        return None, f"{type(exc).__name__}: {exc}"[:512], None
    message = str(exc.reason or "")
    try:
        body = json.loads(exc.body or "{}")
        if isinstance(body, dict) and body.get("message"):
            message = str(body["message"])
    except (TypeError, ValueError):
        if exc.body:
            message = str(exc.body)[:512]
    retry_after = None
    header = (exc.headers or {}).get("Retry-After") if exc.headers else None
    if header is not None:
        try:
            retry_after = float(header)
        except ValueError:
            retry_after = None
    return code, message[:900], retry_after


def _ref(key: Key) -> dict[str, Any]:
    """Log ``extra`` that kopf's JSON formatter renders as the object reference."""
    return {"k8s_ref": {"namespace": key[0], "name": key[1]}, "k8s_skip": True}


def _base64(value: object) -> bytes:
    """A ConfigMap's binaryData value (the API server checked it is base64)."""
    import base64
    import binascii

    try:
        return base64.b64decode(str(value))
    except binascii.Error:
        return b""
