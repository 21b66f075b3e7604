"""The drift-monitor hook and the thread that runs it (and the model-health metrics) off the request path.

A monitor is anything with :meth:`Monitor.observe` and :meth:`Monitor.snapshot`: the server hands it every
batch's softmax probabilities (and the embeddings where the artifact has them as a second output, else ``None``) and
exports its snapshot as ``fishopt_monitor_<key>`` Prometheus gauges. The default, :class:`NullMonitor`, does
nothing. ``fishopt serve --monitor module:factory`` plugs one in: ``factory(meta)`` gets the model metadata
(class_names, input_size, ...) and returns the monitor.

:class:`MonitorWorker` owns a bounded queue and one daemon thread: the batcher's callback only enqueues
(``put_nowait``; a full queue drops the batch and counts it), the thread updates the per-class prediction
counters, the confidence and entropy histograms, then calls ``monitor.observe``. A monitor that raises is
logged and counted, never fatal.
"""

from __future__ import annotations

import importlib
import logging
import queue
import threading
from collections.abc import Callable
from typing import Any, Protocol, runtime_checkable

import numpy as np

from fishopt.errors import ConfigError

log = logging.getLogger(__name__)


@runtime_checkable
class Monitor(Protocol):
    """What the server needs from a drift monitor. Both methods are called from one background thread
    (``observe``) and the ``/metrics`` handler (``snapshot``): make them thread-safe."""

    def observe(self, probs: np.ndarray, embeddings: np.ndarray | None) -> None:
        """Take one batch: softmax probabilities (N, classes) float32, embeddings (N, D) or ``None``."""

    def snapshot(self) -> dict[str, float]:
        """Current statistics, exported as gauges ``fishopt_monitor_<key>``."""


class NullMonitor:
    """The default monitor: observes nothing, reports nothing (``--monitor fishopt.serve.monitor:NullMonitor``)."""

    def __init__(self, meta: dict[str, Any] | None = None) -> None:
        self.meta = meta

    def observe(self, probs: np.ndarray, embeddings: np.ndarray | None) -> None:
        return None

    def snapshot(self) -> dict[str, float]:
        return {}


def load_monitor(ref: str, meta: dict[str, Any]) -> Monitor:
    """Import ``"module:factory"`` and return ``factory(meta)``.

    Raises:
        ConfigError: The module or attribute does not exist, the factory raised, or the result lacks
            ``observe``/``snapshot``.
    """
    module, _, attr = ref.partition(":")
    try:
        factory = getattr(importlib.import_module(module), attr)
    except (ImportError, AttributeError) as exc:
        raise ConfigError(f"cannot import monitor {ref!r} ({exc}); pass --monitor module:factory") from exc
    try:
        monitor = factory(meta)
    except Exception as exc:  # any failure of third-party code becomes one clear message
        raise ConfigError(f"monitor factory {ref!r} failed: {type(exc).__name__}: {exc}") from exc
    if not isinstance(monitor, Monitor):
        raise ConfigError(
            f"monitor {ref!r} returned {type(monitor).__name__}, which lacks observe(probs, embeddings) and snapshot()"
        )
    return monitor


class MonitorWorker:
    """Runs the model-health metrics and the monitor on each batch, in one background thread.

    A monitor with ``observes_image_stats = True`` (:class:`fishopt.monitor.ServerMonitor`) also gets the input
    statistics of each batch's images, computed here from the batch's model inputs by ``image_stats`` (about
    0.1-0.2 ms per image of one core, in this thread, never on the request path).

    Args:
        monitor: The drift monitor.
        metrics: The :class:`fishopt.serve.metrics.ServerMetrics` (``observe_predictions``, counters).
        maxsize: Batches that may wait; more are dropped (``fishopt_monitor_dropped_batches_total``).
        image_stats: ``model inputs -> (N, K) statistics or None``, for monitors that observe them.
    """

    def __init__(
        self,
        monitor: Monitor,
        metrics: Any,
        maxsize: int = 1024,
        image_stats: Callable[[Any], Any] | None = None,
    ) -> None:
        self.monitor = monitor
        self.metrics = metrics
        self.image_stats = image_stats if getattr(monitor, "observes_image_stats", False) else None
        self._queue: queue.Queue = queue.Queue(maxsize=maxsize)
        self._thread = threading.Thread(target=self._run, name="fishopt-monitor", daemon=True)
        self._started = False

    def start(self) -> None:
        """Start the thread."""
        self._thread.start()
        self._started = True

    @property
    def wants_inputs(self) -> bool:
        """Whether :meth:`submit` should be given the batch's model inputs (for the input statistics)."""
        return self.image_stats is not None

    def submit(self, probs: np.ndarray, embeddings: np.ndarray | None, inputs: np.ndarray | None = None) -> bool:
        """Enqueue one batch without blocking; return False (and count it) if the queue is full.

        ``inputs`` (the batch's model inputs, not modified afterwards) are used when :attr:`wants_inputs`.
        """
        try:
            self._queue.put_nowait((probs, embeddings, inputs))
            return True
        except queue.Full:
            self.metrics.monitor_dropped.inc()
            return False

    def join(self) -> None:
        """Wait until every enqueued batch was processed."""
        self._queue.join()

    def stop(self, timeout: float = 10.0) -> None:
        """Process what is queued, then stop the thread."""
        if not self._started:
            return
        self._queue.put((None, None, None))
        self._thread.join(timeout)
        self._started = False

    def _run(self) -> None:
        while True:
            probs, embeddings, inputs = self._queue.get()
            try:
                if probs is None:
                    return
                self.metrics.observe_predictions(probs)
                try:
                    if self.image_stats is not None and inputs is not None:
                        self.monitor.observe(probs, embeddings, self.image_stats(inputs))  # type: ignore[call-arg]
                    else:
                        self.monitor.observe(probs, embeddings)
                except Exception:  # a monitor bug must not stop the health metrics
                    self.metrics.monitor_errors.inc()
                    log.exception("monitor.observe() failed")
            finally:
                self._queue.task_done()
