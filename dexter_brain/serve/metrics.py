"""Prometheus metrics of one server: calls, errors and latency per endpoint, requests in flight, and the
state of the brain (carries held per TRM, memories in the bank) read at scrape time.

Each app has its own registry, so two apps in one process (tests, a host that mounts two brains) never
share or clash over metric names.
"""

from __future__ import annotations

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily

# Model calls take milliseconds; a turn on a busy machine can take seconds.
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class BrainCollector:
    """Reads the brain when scraped: carries held per TRM and the memory bank's size."""

    def __init__(self, brain):
        self.brain = brain

    def collect(self):
        carries = GaugeMetricFamily("dexter_brain_carries", "Conversations whose carry a TRM holds", labels=["trm"])
        for kind in ("memory", "tool", "reasoning"):
            part = getattr(self.brain, kind)
            if part is not None:
                carries.add_metric([kind], len(part.core.carries))
        yield carries
        if self.brain.memory is not None:
            yield GaugeMetricFamily("dexter_brain_memories", "Facts in the memory bank", value=len(self.brain.memory))


class ServeMetrics:
    """The server's metrics and their text rendering for ``GET /metrics``."""

    content_type = CONTENT_TYPE_LATEST

    def __init__(self, brain):
        self.registry = CollectorRegistry()
        self.requests = Counter("dexter_brain_requests", "HTTP requests handled", ["endpoint"],
                                registry=self.registry)
        self.errors = Counter("dexter_brain_request_errors", "HTTP requests answered with a 4xx or 5xx status",
                              ["endpoint", "status"], registry=self.registry)
        self.latency = Histogram("dexter_brain_request_seconds", "Time from request to response",
                                 ["endpoint"], buckets=LATENCY_BUCKETS, registry=self.registry)
        self.in_flight = Gauge("dexter_brain_requests_in_flight", "Requests being handled now",
                               registry=self.registry)
        self.carry_saves = Counter("dexter_brain_carry_saves", "Times the carries were saved to the carry directory",
                                   registry=self.registry)
        self.registry.register(BrainCollector(brain))
        self.requests_in_flight = 0

    def begin(self) -> None:
        self.requests_in_flight += 1
        self.in_flight.inc()

    def end(self, endpoint: str, status: int, seconds: float) -> None:
        self.requests_in_flight -= 1
        self.in_flight.dec()
        self.requests.labels(endpoint).inc()
        if status >= 400:
            self.errors.labels(endpoint, str(status)).inc()
        self.latency.labels(endpoint).observe(seconds)

    def render(self) -> bytes:
        return generate_latest(self.registry)
