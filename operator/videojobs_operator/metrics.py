"""Prometheus metrics and the HTTP endpoint serving ``/metrics``, ``/readyz`` and ``/healthz``.

Each operator instance has its own registry (tests run several operators in one process). Gauges
that describe the whole fleet (jobs by phase, queue depth) are computed at scrape time from the
reconciler's view instead of being kept up to date on every event.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.exposition import generate_latest
from prometheus_client.registry import Collector

PHASES = ("Pending", "Queued", "Running", "Succeeded", "Failed", "Cancelled")


class _FleetCollector(Collector):
    def __init__(self, phases: Callable[[], Mapping[str, int]], queued: Callable[[], int]) -> None:
        self._phases = phases
        self._queued = queued

    def collect(self) -> Iterator[GaugeMetricFamily]:
        by_phase = GaugeMetricFamily(
            "videojobs_jobs", "VideoProcessingJobs by phase", labels=["phase"]
        )
        counts = self._phases()
        for phase in PHASES:
            by_phase.add_metric([phase], counts.get(phase, 0))
        yield by_phase
        yield GaugeMetricFamily(
            "videojobs_queue_depth", "Resources waiting for a free slot", value=self._queued()
        )


class Metrics:
    """The operator's metrics."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.completions = Counter(
            "videojobs_completions", "Jobs that succeeded", registry=self.registry
        )
        self.failures = Counter(
            "videojobs_failures", "Jobs that failed, by reason", ["reason"], registry=self.registry
        )
        self.cancellations = Counter(
            "videojobs_cancellations", "Jobs cancelled", registry=self.registry
        )
        self.duration = Histogram(
            "videojobs_job_duration_seconds",
            "Time from Job creation to the end of the run",
            ["phase"],
            buckets=(10, 30, 60, 120, 300, 600, 1200, 1800, 3600, 7200, 14400, float("inf")),
            registry=self.registry,
        )
        self.reconcile_errors = Counter(
            "videojobs_reconcile_errors", "Reconcile passes that raised", registry=self.registry
        )
        self.api_writes = Counter(
            "videojobs_api_writes",
            "Kubernetes API writes by the operator",
            ["verb", "resource"],
            registry=self.registry,
        )

    def watch_fleet(
        self, phases: Callable[[], Mapping[str, int]], queued: Callable[[], int]
    ) -> None:
        """Register the scrape-time gauges."""
        self.registry.register(_FleetCollector(phases, queued))

    def render(self) -> bytes:
        """The text exposition format."""
        return generate_latest(self.registry)


async def serve(
    metrics: Metrics, port: int, ready: Callable[[], bool], host: str = "0.0.0.0"
) -> web.AppRunner:
    """Start the HTTP endpoint; the caller cleans up the returned runner."""

    async def metrics_view(_: web.Request) -> web.Response:
        return web.Response(body=metrics.render(), headers={"Content-Type": CONTENT_TYPE_LATEST})

    async def ready_view(_: web.Request) -> web.Response:
        ok = ready()
        return web.Response(text="ok\n" if ok else "not ready\n", status=200 if ok else 503)

    async def health_view(_: web.Request) -> web.Response:
        return web.Response(text="ok\n")

    app = web.Application()
    app.router.add_get("/metrics", metrics_view)
    app.router.add_get("/readyz", ready_view)
    app.router.add_get("/healthz", health_view)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, host, port).start()
    return runner
