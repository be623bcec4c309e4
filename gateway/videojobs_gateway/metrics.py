"""Prometheus metrics of one app instance (own registry, so tests can build many apps)."""

from __future__ import annotations

from collections.abc import Callable, Iterator

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from prometheus_client.registry import Collector

from videojobs_gateway.convert import STATUSES


class _JobsCollector(Collector):
    def __init__(self, counts: Callable[[], dict[str, int]]) -> None:
        self._counts = counts

    def collect(self) -> Iterator[Metric]:
        family = GaugeMetricFamily(
            "videojobs_gateway_jobs", "Jobs in the store by status", labels=["status"]
        )
        counts = self._counts()
        for word in STATUSES:
            family.add_metric([word], counts.get(word, 0))
        yield family


class Metrics:
    """Request counters and latency histograms, plus jobs by status at scrape time."""

    def __init__(self, counts: Callable[[], dict[str, int]]) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "videojobs_gateway_requests",
            "HTTP requests by route, method and status code",
            ["route", "method", "code"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "videojobs_gateway_request_seconds",
            "HTTP request latency by route",
            ["route", "method"],
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 10),
            registry=self.registry,
        )
        self.registry.register(_JobsCollector(counts))

    def observe(self, route: str, method: str, code: int, seconds: float) -> None:
        self.requests.labels(route, method, str(code)).inc()
        self.latency.labels(route, method).observe(seconds)

    def render(self) -> tuple[bytes, str]:
        return generate_latest(self.registry), CONTENT_TYPE_LATEST
