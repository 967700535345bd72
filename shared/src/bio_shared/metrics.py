"""Prometheus metrics shared by every process.

Metrics are module-level singletons labelled by ``service`` so the embedded mode (all services in
one process, one registry) and the distributed mode export the same series. Worker processes with
several children set ``PROMETHEUS_MULTIPROC_DIR``; :func:`metrics_payload` then aggregates. No web
framework here: the middleware and the ``/metrics`` response are in :mod:`bio_shared.web.metrics`.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
    start_http_server,
)
from prometheus_client.core import GaugeMetricFamily

_LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)
_JOB_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 900)

HTTP_REQUESTS = Counter(
    "bio_http_requests_total", "HTTP requests by route template and status", ["service", "method", "route", "status"]
)
HTTP_LATENCY = Histogram(
    "bio_http_request_duration_seconds", "HTTP request latency", ["service", "method", "route"],
    buckets=_LATENCY_BUCKETS,
)
JOBS = Counter("bio_jobs_total", "Jobs by kind and outcome (submitted, succeeded, failed, retried)",
               ["service", "kind", "outcome"])
JOB_DURATION = Histogram("bio_job_duration_seconds", "Job run time", ["service", "kind"], buckets=_JOB_BUCKETS)
JOB_QUEUE_WAIT = Histogram("bio_job_queue_wait_seconds", "Time from submit to start", ["service", "kind"],
                           buckets=_JOB_BUCKETS)
INFERENCE = Histogram("bio_inference_seconds", "Model inference time", ["service", "model"],
                      buckets=_LATENCY_BUCKETS)
GALLERY_CACHE = Counter("bio_gallery_cache_total", "Gallery cache lookups by outcome (hit, miss, reload)",
                        ["service", "cache", "outcome"])
GALLERY_SIZE = Gauge("bio_gallery_size", "Enrolled templates or embeddings", ["service", "gallery"],
                     multiprocess_mode="max")
RATE_LIMITED = Counter("bio_rate_limit_rejections_total", "Requests refused by a rate limit", ["scope"])
AUTH_FAILURES = Counter("bio_auth_failures_total", "Failed authentications by reason", ["reason"])
UPSTREAM_ERRORS = Counter("bio_gateway_upstream_errors_total", "Proxy errors by service and kind",
                          ["service", "kind"])


class JobStateCollector:
    """``bio_jobs_in_state{service,status}``: pending and running jobs counted from each service's
    jobs table at scrape time (the queue backlog, as the database sees it)."""

    def __init__(self) -> None:
        self.queues: dict[str, Any] = {}

    def add(self, queue: Any) -> None:
        self.queues[queue.service] = queue

    def describe(self) -> list[GaugeMetricFamily]:
        return [GaugeMetricFamily("bio_jobs_in_state", "Jobs by state, from the jobs tables", labels=["service", "status"])]

    def collect(self) -> Iterator[GaugeMetricFamily]:
        family = GaugeMetricFamily("bio_jobs_in_state", "Jobs by state, from the jobs tables",
                                   labels=["service", "status"])
        for name, queue in list(self.queues.items()):
            try:
                counts = queue.state_counts()
            except Exception:
                continue
            for status in ("pending", "running"):
                family.add_metric([name, status], counts.get(status, 0))
        yield family


JOB_STATES = JobStateCollector()
REGISTRY.register(JOB_STATES)


def metrics_payload() -> tuple[bytes, str]:
    """The exposition text and its content type (aggregated across processes in multiprocess mode)."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
        return generate_latest(registry), CONTENT_TYPE_LATEST
    return generate_latest(), CONTENT_TYPE_LATEST


def start_metrics_server(port: int, addr: str = "127.0.0.1") -> None:
    """For Celery workers, which have no HTTP app of their own."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
        start_http_server(port, addr=addr, registry=registry)
    else:
        start_http_server(port, addr=addr)
