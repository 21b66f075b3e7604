"""Prometheus metrics of the server (``GET /metrics``), in base units with bounded labels.

One :class:`ServerMetrics` per app, in its own ``CollectorRegistry`` (no global state: tests start several apps).
Names (all prefixed ``fishopt_``):

- traffic: ``requests_total{endpoint}``, ``request_failures_total{endpoint,reason}``, ``inferences_total`` (images),
  ``batch_executions_total``; ``pending_requests`` (queued), ``inflight_requests`` (inside the server),
  ``model_ready``; ``build_info{fishopt_version,model,model_version,format,precision,runtime,arch,isa}``.
- latency (seconds): ``request_duration_seconds{endpoint}`` (arrival to response), ``queue_duration_seconds``
  (queued to batch start), ``preprocess_duration_seconds`` (parse + decode), ``compute_duration_seconds`` (one
  batch's model call); ``batch_size`` (images per model call).
- model health: ``predictions_total{class}``, ``prediction_confidence_ratio`` (top-1 probability),
  ``prediction_entropy_ratio`` (entropy / log(classes): 0 certain, 1 uniform); ``monitor_<stat>`` gauges from the
  drift monitor's :meth:`~fishopt.serve.monitor.Monitor.snapshot`, ``monitor_dropped_batches_total``,
  ``monitor_errors_total``.
- the process: ``process_resident_memory_bytes``, ``process_cpu_seconds_total``, ... (prometheus-client).

``endpoint`` is one of :data:`ENDPOINTS`, ``reason`` one of :data:`REASONS`, ``class`` one of the model's classes.
"""

from __future__ import annotations

import logging
import re
from typing import Any

import numpy as np

from fishopt import __version__
from fishopt.benchmarks.fingerprint import cpu_info

log = logging.getLogger(__name__)

ENDPOINTS = ("infer", "classify", "health", "metadata", "metrics", "other")
REASONS = (
    "bad_request",
    "not_found",
    "method_not_allowed",
    "too_large",
    "overloaded",
    "not_ready",
    "timeout",
    "internal",
)
#: Latency buckets, 50 us to 10 s: fine enough for sub-millisecond models.
SECONDS_BUCKETS = (
    5e-5,
    1e-4,
    2e-4,
    3e-4,
    4e-4,
    5e-4,
    7.5e-4,
    1e-3,
    1.25e-3,
    1.5e-3,
    2e-3,
    2.5e-3,
    3e-3,
    4e-3,
    5e-3,
    7.5e-3,
    1e-2,
    1.5e-2,
    2e-2,
    3e-2,
    5e-2,
    7.5e-2,
    0.1,
    0.15,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
    10.0,
)
BATCH_BUCKETS = (1, 2, 3, 4, 6, 8, 12, 16, 24, 32, 48, 64, 128, 256)
RATIO_BUCKETS = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 0.99, 1.0)
PREFIX = "fishopt_"
_BAD = re.compile(r"[^a-zA-Z0-9_]")


def isa_summary() -> tuple[str, str]:
    """``(arch, isa)``: the machine and its relevant SIMD flags joined by ``,`` (``-`` when none is known)."""
    import platform

    flags = [name for name, present in cpu_info()["flags"].items() if present]
    return platform.machine(), ",".join(flags) or "-"


class _MonitorCollector:
    """Exports a monitor's :meth:`snapshot` as ``fishopt_monitor_<key>`` gauges at scrape time."""

    def __init__(self, monitor: Any, errors: Any) -> None:
        self.monitor = monitor
        self.errors = errors

    def describe(self) -> list:
        return []

    def collect(self):
        from prometheus_client.core import GaugeMetricFamily

        try:
            snapshot = dict(self.monitor.snapshot())
        except Exception:  # a monitor bug must not break /metrics
            log.exception("monitor.snapshot() failed")
            self.errors.inc()
            return
        for key, value in sorted(snapshot.items()):
            try:
                number = float(value)
            except (TypeError, ValueError):
                continue
            name = PREFIX + "monitor_" + _BAD.sub("_", str(key)).strip("_").lower()
            yield GaugeMetricFamily(name, f"Drift monitor statistic {key!r}", value=number)


class ServerMetrics:
    """Every metric the server exports, in one registry."""

    def __init__(self) -> None:
        from prometheus_client import (
            CollectorRegistry,
            Counter,
            Gauge,
            Histogram,
            Info,
            ProcessCollector,
            disable_created_metrics,
        )

        disable_created_metrics()  # no *_created series: half the exposition, nothing a dashboard uses
        self.registry = registry = CollectorRegistry()
        ProcessCollector(registry=registry)
        self.requests = Counter(
            PREFIX + "requests", "HTTP requests received, by endpoint", ["endpoint"], registry=registry
        )
        self.failures = Counter(
            PREFIX + "request_failures",
            "Requests answered with an error, by endpoint and reason",
            ["endpoint", "reason"],
            registry=registry,
        )
        self.request_seconds = Histogram(
            PREFIX + "request_duration_seconds",
            "Arrival to response, seconds",
            ["endpoint"],
            buckets=SECONDS_BUCKETS,
            registry=registry,
        )
        self.queue_seconds = Histogram(
            PREFIX + "queue_duration_seconds",
            "Queued to the start of the request's batch, seconds",
            buckets=SECONDS_BUCKETS,
            registry=registry,
        )
        self.preprocess_seconds = Histogram(
            PREFIX + "preprocess_duration_seconds",
            "Parsing the request and decoding its images, seconds",
            buckets=SECONDS_BUCKETS,
            registry=registry,
        )
        self.compute_seconds = Histogram(
            PREFIX + "compute_duration_seconds",
            "One batch's model call, seconds",
            buckets=SECONDS_BUCKETS,
            registry=registry,
        )
        self.batch_size = Histogram(
            PREFIX + "batch_size", "Images per model call", buckets=BATCH_BUCKETS, registry=registry
        )
        self.inferences = Counter(PREFIX + "inferences", "Images inferred", registry=registry)
        self.batches = Counter(PREFIX + "batch_executions", "Model calls (batches)", registry=registry)
        self.failed_batches = Counter(PREFIX + "batch_failures", "Model calls that raised", registry=registry)
        self.pending = Gauge(PREFIX + "pending_requests", "Requests queued for a batch", registry=registry)
        self.inflight = Gauge(PREFIX + "inflight_requests", "Inference requests inside the server", registry=registry)
        self.ready = Gauge(
            PREFIX + "model_ready", "1 when the model is loaded, warmed up and not draining", registry=registry
        )
        self.build = Info(PREFIX + "build", "fishopt version, model and machine", registry=registry)
        self.predictions = Counter(PREFIX + "predictions", "Top-1 predictions, by class", ["class"], registry=registry)
        self.confidence = Histogram(
            PREFIX + "prediction_confidence_ratio",
            "Top-1 probability of each prediction",
            buckets=RATIO_BUCKETS,
            registry=registry,
        )
        self.entropy = Histogram(
            PREFIX + "prediction_entropy_ratio",
            "Entropy of each prediction's probabilities / log(classes)",
            buckets=RATIO_BUCKETS,
            registry=registry,
        )
        self.monitor_dropped = Counter(
            PREFIX + "monitor_dropped_batches",
            "Batches not given to the health metrics and monitor (its queue was full)",
            registry=registry,
        )
        self.monitor_errors = Counter(
            PREFIX + "monitor_errors", "Exceptions raised by the drift monitor", registry=registry
        )
        for endpoint in ENDPOINTS:
            self.requests.labels(endpoint)
        for endpoint in ("infer", "classify"):
            self.request_seconds.labels(endpoint)
            for reason in REASONS:
                self.failures.labels(endpoint, reason)
        self.ready.set(0)
        self._classes: list[Any] = []

    def set_model(
        self, *, model: str, version: str, format: str, precision: str, runtime: str, class_names: list[str]
    ) -> None:
        """Fill ``build_info`` and create the per-class series (at zero) once the model is known."""

        arch, isa = isa_summary()
        self.build.info(
            {
                "fishopt_version": __version__,
                "model": model,
                "model_version": version,
                "format": format,
                "precision": precision,
                "runtime": runtime,
                "arch": arch,
                "isa": isa,
            }
        )
        self._classes = [self.predictions.labels(name) for name in class_names]

    def bind_gauges(self, pending, inflight) -> None:
        """Read the pending and in-flight gauges from callables at scrape time."""
        self.pending.set_function(pending)
        self.inflight.set_function(inflight)

    def add_monitor(self, monitor: Any) -> None:
        """Export ``monitor.snapshot()`` as gauges."""
        self.registry.register(_MonitorCollector(monitor, self.monitor_errors))

    def observe_predictions(self, probs: np.ndarray) -> None:
        """Record predictions per class and the confidence and entropy of each row of ``probs`` (N, classes)."""
        if probs.size == 0:
            return
        top = probs.argmax(axis=1)
        for index, count in enumerate(np.bincount(top, minlength=len(self._classes))):
            if count and index < len(self._classes):
                self._classes[index].inc(int(count))
        for value in probs.max(axis=1).tolist():
            self.confidence.observe(value)
        k = probs.shape[1]
        if k > 1:
            p = np.clip(probs.astype(np.float64), 1e-12, 1.0)
            entropy = -(p * np.log(p)).sum(axis=1) / np.log(k)
            for value in np.clip(entropy, 0.0, 1.0).tolist():
                self.entropy.observe(value)

    def render(self) -> tuple[bytes, str]:
        """``(body, content type)`` of the Prometheus text exposition."""
        from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

        return generate_latest(self.registry), CONTENT_TYPE_LATEST
