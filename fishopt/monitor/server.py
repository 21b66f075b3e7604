"""The drift monitor's hook for a server: ``observe(probs, embeddings)`` on the request path, ``snapshot()`` for
Prometheus gauges.

``observe`` only copies the batch into the detector's window under a lock (microseconds). ``snapshot`` runs a
check when new outputs arrived and the last check is older than ``min_interval_s``, then returns plain floats;
call it from the metrics handler or a background task, never from the request path.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from pathlib import Path

import numpy as np

from fishopt.errors import FishoptError
from fishopt.monitor.drift import TESTS, DriftDetector, DriftReport
from fishopt.monitor.profile import DriftProfile, load_profile

log = logging.getLogger(__name__)


class ServerMonitor:
    """Live drift statistics for a server.

    Gauges (keys of :meth:`snapshot`, valid Prometheus name parts; the server adds its prefix):

    - ``drift_detected``: 1 when the last check flagged the window, else 0;
    - ``drift_window_images`` / ``drift_window_size``: images in the window now / its size;
    - ``drift_observed_total``: images observed since start;
    - ``drift_checks_total`` and ``drift_check_seconds`` (wall time of the last check);
    - ``drift_level``: the calibrated-p level of the decision;
    - per test (``ks_softmax``, ``ks_entropy``, ``mean_entropy``, ``mmd``, ``ks_image``): ``drift_<test>_statistic``,
      ``drift_<test>_p_value`` and ``drift_<test>_p_calibrated``; NaN before the first full window and for a
      skipped test.

    Args:
        profile: The reference profile, or the artifact folder holding it.
        window: Sliding-window size.
        alpha: Target false-alarm rate on clean windows.
        min_interval_s: Seconds between checks (a snapshot in between returns the last values).
        seed: Seed of the calibration and permutations.
    """

    def __init__(
        self,
        profile: DriftProfile | str | Path,
        *,
        window: int = 500,
        alpha: float = 0.05,
        min_interval_s: float = 10.0,
        seed: int = 0,
    ) -> None:
        if not isinstance(profile, DriftProfile):
            profile = load_profile(profile)
        self.detector = DriftDetector(profile, window=window, alpha=alpha, seed=seed)
        self.min_interval_s = float(min_interval_s)
        self._lock = threading.Lock()
        self._check_lock = threading.Lock()
        self._observed = 0
        self._observed_at_check = 0
        self._last_check = -math.inf
        self._checks = 0
        self._report: DriftReport | None = None
        self._rng = np.random.default_rng(seed + 1)

    #: The server computes input statistics (off the request path) and passes them to :meth:`observe`.
    observes_image_stats = True

    def observe(
        self, probs: np.ndarray, embeddings: np.ndarray | None = None, image_stats: np.ndarray | None = None
    ) -> None:
        """Add a batch of softmax outputs (B, C) and, if the artifact gives them, embeddings (B, D) and the input
        statistics of its images (B, len(IMAGE_STATS)).

        Raises:
            DataError: Wrong shapes or values (see :meth:`DriftDetector.update`).
        """
        with self._lock:
            self.detector.update(probs, embeddings, image_stats)
            self._observed += len(np.atleast_2d(probs))

    def check(self) -> DriftReport:
        """Run a check now on a copy of the window (the request path keeps observing meanwhile)."""
        with self._check_lock:
            with self._lock:
                ready = self.detector.n >= self.detector.window
                probs, reduced = self.detector.window_outputs()
                image_stats = self.detector.window_image_stats()
                observed = self._observed
                rng = np.random.default_rng(self._rng.integers(2**63))
            if not ready:
                return self.detector.check()
            report = self.detector.check_outputs(probs, reduced, rng=rng, image_stats=image_stats)
            with self._lock:
                self._report, self._observed_at_check = report, observed
                self._last_check = time.monotonic()
                self._checks += 1
            if report.drift:
                log.warning(
                    "drift detected on the last %d images: %s",
                    report.n,
                    ", ".join(f"{k} p_cal={v.p_calibrated:.3g}" for k, v in report.tests.items() if v.drift),
                )
            return report

    def snapshot(self) -> dict[str, float]:
        """The gauges (see the class doc); runs a check first when due."""
        with self._lock:
            due = (
                self._observed > self._observed_at_check
                and self.detector.n >= self.detector.window
                and time.monotonic() - self._last_check >= self.min_interval_s
            )
        if due:
            try:
                self.check()
            except FishoptError as exc:  # a broken check must not break the metrics endpoint
                log.error("drift check failed: %s", exc)
        with self._lock:
            report = self._report
            out = {
                "drift_detected": float(bool(report and report.drift)),
                "drift_window_images": float(self.detector.n),
                "drift_window_size": float(self.detector.window),
                "drift_observed_total": float(self._observed),
                "drift_checks_total": float(self._checks),
                "drift_check_seconds": float(report.seconds) if report else math.nan,
                "drift_level": float(report.level) if report else math.nan,
            }
        for name in TESTS:
            test = report.tests.get(name) if report else None
            out[f"drift_{name}_statistic"] = test.statistic if test else math.nan
            out[f"drift_{name}_p_value"] = test.p_value if test else math.nan
            out[f"drift_{name}_p_calibrated"] = test.p_calibrated if test else math.nan
        return out
