"""Prometheus metrics, shared across gunicorn workers when PROMETHEUS_MULTIPROC_DIR is set."""

from __future__ import annotations

import functools
import os

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge, Histogram, generate_latest

REQUESTS = Counter("somlier_requests_total", "Requests by endpoint and status", ["endpoint", "status"])
ERRORS = Counter("somlier_errors_total", "Responses with status >= 400", ["endpoint"])
LATENCY = Histogram(
    "somlier_request_seconds", "Request latency", ["endpoint"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5),
)
BATCH = Histogram("somlier_batch_rows", "One-row requests computed in one predict call", buckets=(1, 2, 4, 8, 16, 32, 64))
# livemax: 1 for a version while a live worker serves it; a dead worker's files are dropped.
MODEL_VERSION_INFO = "somlier_model_version_info"
MODEL = Gauge(MODEL_VERSION_INFO, "The serving model version (value 1)", ["version"], multiprocess_mode="livemax")


@functools.cache
def _children(endpoint: str, status: int):
    """Labelled children, looked up once: ``labels()`` costs more than the increment itself."""
    return REQUESTS.labels(endpoint, str(status)), LATENCY.labels(endpoint), ERRORS.labels(endpoint)


def observe(endpoint: str, status: int, seconds: float) -> None:
    requests, latency, errors = _children(endpoint, status)
    requests.inc()
    latency.observe(seconds)
    if status >= 400:
        errors.inc()


_shown_version: list[str] = []


def set_version(version: str) -> None:
    """1 for the serving version, 0 for the one it replaced (clear() is not multiprocess-safe; ``render`` drops the 0s).

    Callers hold the serving state's lock, so the gauge changes with the predictor it names.
    """
    if _shown_version == [version]:
        return
    for previous in _shown_version:
        MODEL.labels(previous).set(0)
    _shown_version[:] = [version]
    MODEL.labels(version).set(1)


class _ServingVersionsOnly:
    """A registry's metrics with the version gauge's 0 samples left out.

    A worker cannot delete a sample from the multiprocess files (its file keeps one entry per
    version it ever served), so a replaced version stays at 0; after 300 switches /metrics
    would list 301 versions. What is served now is what has 1 in some live worker.
    """

    def __init__(self, registry):
        self.registry = registry

    def collect(self):
        for metric in self.registry.collect():
            if metric.name == MODEL_VERSION_INFO:
                metric.samples = [sample for sample in metric.samples if sample.value != 0]
            yield metric


def render() -> tuple[bytes, str]:
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
    else:
        from prometheus_client import REGISTRY as registry
    return generate_latest(_ServingVersionsOnly(registry)), CONTENT_TYPE_LATEST
