"""Drift detection on a sliding window of model outputs: :class:`DriftDetector` and its :class:`DriftReport`.

Five two-sample tests compare the window against the reference profile (:mod:`fishopt.monitor.profile`):

- ``ks_softmax``: a Kolmogorov-Smirnov test per softmax column, Bonferroni-corrected (black-box shift
  detection, Rabanser et al. 2019); its statistic is the largest D over the classes;
- ``ks_entropy``: a Kolmogorov-Smirnov test on the prediction entropy;
- ``mean_entropy``: the change of the mean prediction entropy (Welch's t-test for its own p-value). Added
  after measuring: with few independent photos per window (the fish data's clusters) the KS statistics are
  extreme values with a wide null, while the mean entropy leaves its null under every corruption that costs
  much accuracy (frost at severity 3: 0.70 nats against a 99th null percentile of 0.31);
- ``mmd``: the unbiased squared MMD with an RBF kernel (median-heuristic bandwidth) on the PCA-reduced
  penultimate embeddings, with a permutation p-value (skipped when the profile or the window has no
  embeddings);
- ``ks_image``: a Kolmogorov-Smirnov test per input statistic of the images (brightness, contrast,
  colourfulness, gradient, sharpness, blockiness: :mod:`fishopt.monitor.imagestats`), Bonferroni-corrected;
  its statistic is the largest D. Added after measuring: corruptions the model shrugs off (elastic warps,
  pixelation, zoom blur) left the output tests at a power of 0.0-0.6, while they change the pixels plainly
  (skipped when the profile or the window has no statistics).

The tests' own p-values assume independent images. Real image streams need not be, and the fish data is not
(its 998 test images are flips and rotations of 45 photos in 41 clusters): the KS p-value of a clean window
of other photos is often below 1e-5. So the decision is calibrated. At construction the detector draws clean
bootstrap windows from the reference: the reference's units (clusters of near-duplicate photos) are split in
two at random within each class; the window is drawn from the second part with multinomial class counts at
the reference's class frequencies (as a window of independent images would have); the statistics compare it
with the first part. A window's calibrated p-value per test is the rank of its statistic in that null; the
window is flagged when the smallest calibrated p-value is at or below the level at which ``alpha`` of the
clean bootstrap windows would be flagged (a min-p rule, :func:`fishopt.monitor.stats.joint_level`).

Keeping the class frequencies makes a change of the class mix (label shift) count as drift, as black-box
shift detection intends; splitting by unit makes the null hold the variation between photos. Bootstrap
windows come from half the reference's photos, real windows are compared with all of them: the calibration
is conservative. The MMD's reference is the half of the profile the PCA was not fitted on (see
:class:`fishopt.monitor.profile.DriftProfile`); its calibration uses all of it, both bootstrap sides holding
PCA images alike.
"""

from __future__ import annotations

import contextlib
import importlib.util
import logging
import math
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from fishopt.errors import ConfigError, DataError
from fishopt.monitor import stats
from fishopt.monitor.imagestats import IMAGE_STATS
from fishopt.monitor.profile import DriftProfile, check_probs

log = logging.getLogger(__name__)

TESTS = ("ks_softmax", "ks_entropy", "mean_entropy", "mmd", "ks_image")
#: Smallest window a check runs on.
MIN_WINDOW = 20


def one_thread() -> contextlib.AbstractContextManager:
    """Limit BLAS/OpenMP to one thread (threadpoolctl, when installed) for a check run beside a server.

    On a busy machine two BLAS threads spinning for each other made a 0.05 s check take up to 2.7 s.
    """
    if importlib.util.find_spec("threadpoolctl") is None:
        return contextlib.nullcontext()
    from threadpoolctl import threadpool_limits

    return threadpool_limits(1)


@dataclass
class TestResult:
    """One test of a window.

    Attributes:
        statistic: ``ks_softmax``: the largest KS D over the classes; ``ks_entropy``: KS D; ``mean_entropy``: the
            absolute change of the mean entropy (nats); ``mmd``: unbiased MMD^2; ``ks_image``: the largest KS D over
            the input statistics.
        p_value: The test's own p-value (Bonferroni over classes; KS; Welch; permutation), valid for independent
            images.
        p_calibrated: Rank of the statistic among clean bootstrap windows: ``(1 + #{null >= statistic}) / (1 + B)``.
        threshold: The statistic above which this test alone flags the window.
        drift: Whether this test flags the window.
        details: Test-specific figures (per-class D and p for ``ks_softmax``; window/reference means).
    """

    statistic: float
    p_value: float
    p_calibrated: float
    threshold: float
    drift: bool
    details: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON types (infinite thresholds as ``None``)."""
        thr = self.threshold if math.isfinite(self.threshold) else None
        return {
            "statistic": self.statistic,
            "p_value": self.p_value,
            "p_calibrated": self.p_calibrated,
            "threshold": thr,
            "drift": self.drift,
            **self.details,
        }


@dataclass
class DriftReport:
    """The result of :meth:`DriftDetector.check`.

    Attributes:
        drift: Whether the window is flagged.
        n: Images in the window.
        window: The detector's window size.
        ready: False while the window is not full (then nothing was tested).
        alpha: Target false-alarm rate on clean windows.
        level: Calibrated p-values at or below this flag the window.
        tests: Results by test name.
        skipped: Tests that did not run, with the reason.
        seconds: Wall time of the check.
        null: Null statistics of the clean bootstrap windows, by test (for plots; not in :meth:`to_dict`).
    """

    drift: bool
    n: int
    window: int
    ready: bool
    alpha: float
    level: float
    tests: dict[str, TestResult] = field(default_factory=dict)
    skipped: dict[str, str] = field(default_factory=dict)
    seconds: float = 0.0
    null: dict[str, np.ndarray] = field(default_factory=dict, repr=False)

    def to_dict(self) -> dict[str, Any]:
        """``{"drift", "n", "window", "ready", "alpha", "level", "tests": {name: {...}}, "skipped", "seconds"}``."""
        return {
            "drift": self.drift,
            "n": self.n,
            "window": self.window,
            "ready": self.ready,
            "alpha": self.alpha,
            "level": self.level,
            "tests": {k: v.to_dict() for k, v in self.tests.items()},
            "skipped": dict(self.skipped),
            "seconds": round(self.seconds, 4),
        }


class DriftDetector:
    """Sliding-window drift detector against a reference profile.

    ``update`` appends outputs to the window (cheap: a copy and a projection); ``check`` tests the window
    (well under a second of one core at a 500-image window); call it off the request path.

    Args:
        profile: The reference profile.
        window: Window size (the last ``window`` images are tested).
        alpha: Target false-alarm rate on clean windows.
        n_bootstrap: Clean bootstrap windows for the calibration.
        n_permutations: Permutations of the MMD p-value.
        reference_fraction: Share of the reference units a bootstrap pseudo-reference gets.
        max_reference: At most this many reference images enter the MMD (a fixed, seeded subsample).
        seed: Seed of the bootstrap, the permutations and the subsample.

    Raises:
        ConfigError: Bad settings.
    """

    def __init__(
        self,
        profile: DriftProfile,
        window: int = 500,
        *,
        alpha: float = 0.05,
        n_bootstrap: int = 500,
        n_permutations: int = 200,
        reference_fraction: float = 0.5,
        max_reference: int = 1000,
        seed: int = 0,
    ) -> None:
        if int(window) < MIN_WINDOW:
            raise ConfigError(f"window must be at least {MIN_WINDOW} images, got {window}")
        if not 0.0 < alpha < 1.0:
            raise ConfigError(f"alpha must be in (0, 1), got {alpha}")
        if n_bootstrap < math.ceil(len(TESTS) / alpha):
            raise ConfigError(
                f"n_bootstrap must be at least {math.ceil(len(TESTS) / alpha)} for alpha={alpha}, got {n_bootstrap}"
            )
        if n_permutations < 1 or not 0.0 < reference_fraction < 1.0:
            raise ConfigError("n_permutations must be >= 1 and reference_fraction in (0, 1)")
        self.profile = profile
        self.window = int(window)
        self.alpha = float(alpha)
        self.n_bootstrap = int(n_bootstrap)
        self.n_permutations = int(n_permutations)
        self.reference_fraction = float(reference_fraction)
        self.seed = int(seed)
        self._rng = np.random.default_rng(seed)
        self._ref_probs = profile.probs.astype(np.float64)
        self._ref_entropy = stats.entropy(self._ref_probs)
        n_classes = self._ref_probs.shape[1]
        self._probs = np.zeros((self.window, n_classes), np.float64)
        self._has_emb = np.zeros(self.window, bool)
        self._ref_img = None if profile.image_stats is None else profile.image_stats.astype(np.float64)
        self._img = None if self._ref_img is None else np.zeros((self.window, self._ref_img.shape[1]), np.float64)
        self._has_img = np.zeros(self.window, bool)
        self._count = 0
        self._pos = 0
        self._ref_red = self._k_ref = self._k_cal = self._emb = None
        self._cal_pos = np.full(profile.n, -1)
        if profile.has_embeddings:
            pick = np.random.default_rng(seed)
            reduced = profile.reduce(profile.embeddings)
            # the check's reference: images the PCA was not fitted on (projected like new images)
            idx = np.arange(len(reduced)) if profile.pca_fit is None else np.flatnonzero(~profile.pca_fit)
            if len(idx) > max_reference:
                idx = np.sort(pick.choice(idx, max_reference, replace=False))
            self._ref_red = reduced[idx]
            self._k_ref = stats.rbf_kernel(self._ref_red, self._ref_red, profile.bandwidth)
            # the calibration's: all of them (both sides of a bootstrap split hold PCA images alike)
            cal = np.arange(len(reduced))
            if len(cal) > 2 * max_reference:
                cal = np.sort(pick.choice(cal, 2 * max_reference, replace=False))
            self._cal_pos[cal] = np.arange(len(cal))  # reference image -> row of the calibration kernel, or -1
            self._k_cal = stats.rbf_kernel(reduced[cal], reduced[cal], profile.bandwidth)
            self._emb = np.zeros((self.window, reduced.shape[1]), np.float64)
        start = time.perf_counter()
        with one_thread():
            self._null = self._calibrate()
        self.calibration_seconds = time.perf_counter() - start
        import scipy.stats  # noqa: F401 - the checks use it: import it now, not in the first check (0.5 s)

    # ------------------------------------------------------------------------------------------ window
    @property
    def n(self) -> int:
        """Images in the window now."""
        return self._count

    def reset(self) -> None:
        """Empty the window."""
        self._count = self._pos = 0
        self._has_emb[:] = False
        self._has_img[:] = False

    def update(
        self, probs: np.ndarray, embeddings: np.ndarray | None = None, image_stats: np.ndarray | None = None
    ) -> None:
        """Append a batch of outputs to the sliding window.

        Args:
            probs: Softmax outputs (B, C).
            embeddings: Penultimate embeddings (B, D) in the profile's raw space, or ``None``.
            image_stats: Input statistics of the batch's images (B, len(IMAGE_STATS)), or ``None``.

        Raises:
            DataError: Wrong shapes, non-finite values, or rows that are not probabilities.
        """
        probs = np.asarray(probs, dtype=np.float64)
        if probs.ndim == 1:
            probs = probs[None, :]
        check_probs(probs, self._probs.shape[1], "probs")
        reduced = None
        if embeddings is not None:
            emb = np.asarray(embeddings, dtype=np.float64)
            if emb.ndim == 1:
                emb = emb[None, :]
            if emb.ndim != 2 or len(emb) != len(probs) or not np.isfinite(emb).all():
                raise DataError(f"embeddings must be finite (B, D) with B = {len(probs)} rows, got shape {emb.shape}")
            if self._emb is not None:
                if emb.shape[1] != self.profile.embedding_dim:
                    raise DataError(
                        f"embeddings have {emb.shape[1]} dimensions, the profile's {self.profile.embedding_dim}"
                    )
                reduced = self.profile.reduce(emb)
        img = None
        if image_stats is not None:
            img = np.asarray(image_stats, dtype=np.float64)
            if img.ndim == 1:
                img = img[None, :]
            if img.shape != (len(probs), len(IMAGE_STATS)) or not np.isfinite(img).all():
                raise DataError(
                    f"image statistics must be finite with shape ({len(probs)}, {len(IMAGE_STATS)}), got {img.shape}"
                )
            if self._img is None:
                img = None
        if len(probs) > self.window:
            probs = probs[-self.window :]
            reduced = None if reduced is None else reduced[-self.window :]
            img = None if img is None else img[-self.window :]
        rows = (self._pos + np.arange(len(probs))) % self.window
        self._probs[rows] = probs
        self._has_emb[rows] = reduced is not None
        if reduced is not None:
            self._emb[rows] = reduced
        self._has_img[rows] = img is not None
        if img is not None:
            self._img[rows] = img
        self._pos = int((self._pos + len(probs)) % self.window)
        self._count = min(self.window, self._count + len(probs))

    def window_outputs(self) -> tuple[np.ndarray, np.ndarray | None]:
        """Copies of the window's softmax outputs (n, C) and reduced embeddings (n, k), or ``None`` where any
        image of the window came without embeddings."""
        rows = np.arange(self._count)
        probs = self._probs[rows].copy()
        emb = self._emb[rows].copy() if self._emb is not None and self._has_emb[rows].all() else None
        return probs, emb

    def window_image_stats(self) -> np.ndarray | None:
        """A copy of the window's input statistics (n, len(IMAGE_STATS)), or ``None`` where any image of the
        window came without them."""
        rows = np.arange(self._count)
        return self._img[rows].copy() if self._img is not None and self._has_img[rows].all() else None

    # ------------------------------------------------------------------------------------- calibration
    def _calibrate(self) -> np.ndarray:
        """Null statistics (B, len(TESTS)) of clean bootstrap windows drawn from the reference (see the module doc)."""
        prof = self.profile
        splitter = stats.ReferenceSplitter(prof.units, prof.labels, prof.n)
        freq = None if prof.labels is None else np.bincount(prof.labels, minlength=len(prof.class_names)) / prof.n
        out = np.full((self.n_bootstrap, len(TESTS)), np.nan)
        for b in range(self.n_bootstrap):
            ref, rest = splitter(self.reference_fraction, self._rng)
            win = stats.draw_window(rest, prof.labels, freq, self.window, self._rng)
            out[b, 0] = stats.ks_statistics(self._ref_probs[ref], self._ref_probs[win]).max()
            out[b, 1] = float(stats.ks_statistics(self._ref_entropy[ref], self._ref_entropy[win]))
            out[b, 2] = abs(self._ref_entropy[win].mean() - self._ref_entropy[ref].mean())
            if self._k_cal is not None:
                w, r = self._cal_pos[win], self._cal_pos[ref]
                w, r = w[w >= 0], r[r >= 0]
                if len(w) >= 2 and len(r) >= 2:
                    out[b, 3] = stats.mmd2_unbiased(
                        self._k_cal[np.ix_(w, w)], self._k_cal[np.ix_(r, r)], self._k_cal[np.ix_(w, r)]
                    )
            if self._ref_img is not None:
                out[b, 4] = stats.ks_statistics(self._ref_img[ref], self._ref_img[win]).max()
        return out

    def null(self) -> dict[str, np.ndarray]:
        """The null statistics of the clean bootstrap windows, by test."""
        return {name: self._null[:, j].copy() for j, name in enumerate(TESTS) if not np.isnan(self._null[:, j]).all()}

    # ------------------------------------------------------------------------------------------- check
    def check(self) -> DriftReport:
        """Test the current window against the reference.

        Returns:
            The report; ``ready=False`` (and no tests) while the window holds fewer than ``window`` images.
        """
        if self._count < self.window:
            filled = f"window {self._count}/{self.window} filled"
            return DriftReport(
                drift=False,
                n=self._count,
                window=self.window,
                ready=False,
                alpha=self.alpha,
                level=float("nan"),
                skipped=dict.fromkeys(TESTS, filled),
            )
        probs, emb = self.window_outputs()
        return self.check_outputs(probs, emb, image_stats=self.window_image_stats())

    def check_outputs(
        self,
        probs: np.ndarray,
        reduced: np.ndarray | None = None,
        rng: np.random.Generator | None = None,
        image_stats: np.ndarray | None = None,
    ) -> DriftReport:
        """Test a full window of outputs given explicitly; the sliding window is not touched.

        With its own ``rng`` this is safe to run in another thread while :meth:`update` goes on (the
        reference data is only read).

        BLAS runs on one thread (:func:`one_thread`): a check should not compete with inference for cores.

        Args:
            probs: Softmax outputs (n, C).
            reduced: PCA-reduced embeddings (n, k) (see :meth:`DriftProfile.reduce`), or ``None``.
            rng: Random generator of the permutations (default: the detector's).
            image_stats: Input statistics of the window's images (n, len(IMAGE_STATS)), or ``None``.
        """
        with one_thread():
            return self._test(probs, reduced, rng or self._rng, image_stats)

    def _test(
        self,
        probs: np.ndarray,
        reduced: np.ndarray | None,
        rng: np.random.Generator,
        image_stats: np.ndarray | None = None,
    ) -> DriftReport:
        start = time.perf_counter()
        probs = np.asarray(probs, dtype=np.float64)
        check_probs(probs, self._ref_probs.shape[1], "probs")
        if reduced is not None and (
            reduced.ndim != 2
            or len(reduced) != len(probs)
            or (self._ref_red is not None and reduced.shape[1] != self._ref_red.shape[1])
        ):
            raise DataError(
                f"reduced embeddings must have shape ({len(probs)}, k) in the profile's PCA space, got {reduced.shape}"
            )
        results: dict[str, tuple[float, float, dict[str, Any]]] = {}
        skipped: dict[str, str] = {}

        d, p = stats.ks_columns(self._ref_probs, probs)
        worst = int(d.argmax())
        per_class = {
            name: {"statistic": float(d[i]), "p_value": float(p[i])} for i, name in enumerate(self.profile.class_names)
        }
        results["ks_softmax"] = (
            float(d.max()),
            stats.bonferroni(p),
            {"worst_class": self.profile.class_names[worst], "classes": per_class},
        )
        ent = stats.entropy(probs)
        d_e, p_e = stats.ks_columns(self._ref_entropy[:, None], ent[:, None])
        results["ks_entropy"] = (float(d_e[0]), float(p_e[0]), {})
        means = {"window_mean": float(ent.mean()), "reference_mean": float(self._ref_entropy.mean())}
        results["mean_entropy"] = (
            abs(means["window_mean"] - means["reference_mean"]),
            stats.welch_p(self._ref_entropy, ent),
            means,
        )
        emb = reduced
        if self._k_ref is None:
            skipped["mmd"] = "the reference profile has no embeddings (the artifact gives none)"
        elif emb is None:
            skipped["mmd"] = "the window has no embeddings (the artifact gives none)"
        else:
            k_rr = self._k_ref
            k_wr = stats.rbf_kernel(emb, self._ref_red, self.profile.bandwidth)
            k_ww = stats.rbf_kernel(emb, emb, self.profile.bandwidth)
            pooled = np.block([[k_ww, k_wr], [k_wr.T, k_rr]])
            mmd2, p_m = stats.mmd_permutation_test(pooled, len(emb), self.n_permutations, rng)
            results["mmd"] = (mmd2, p_m, {"bandwidth": float(self.profile.bandwidth), "dims": int(emb.shape[1])})
        if self._ref_img is None:
            skipped["ks_image"] = "the reference profile has no input statistics (remake it with --make-profile)"
        elif image_stats is None:
            skipped["ks_image"] = "the window has no input statistics (camera-size raw inputs, or none were given)"
        else:
            img = np.asarray(image_stats, dtype=np.float64)
            if img.shape != (len(probs), self._ref_img.shape[1]):
                raise DataError(
                    f"image statistics must have shape ({len(probs)}, {self._ref_img.shape[1]}), got {img.shape}"
                )
            d_i, p_i = stats.ks_columns(self._ref_img, img)
            per_stat = {
                name: {"statistic": float(d_i[j]), "p_value": float(p_i[j])} for j, name in enumerate(IMAGE_STATS)
            }
            results["ks_image"] = (
                float(d_i.max()),
                stats.bonferroni(p_i),
                {"worst_statistic": IMAGE_STATS[int(d_i.argmax())], "statistics": per_stat},
            )

        active = [TESTS.index(t) for t in TESTS if t in results]
        level = stats.joint_level(self._null[:, active], self.alpha)
        tests: dict[str, TestResult] = {}
        for name in TESTS:
            if name not in results:
                continue
            statistic, p_value, details = results[name]
            null = self._null[:, TESTS.index(name)]
            p_cal = stats.calibrated_p(null, statistic)
            tests[name] = TestResult(
                statistic=statistic,
                p_value=p_value,
                p_calibrated=p_cal,
                threshold=stats.threshold_for(null, level),
                drift=bool(p_cal <= level),
                details=details,
            )
        return DriftReport(
            drift=any(t.drift for t in tests.values()),
            n=len(probs),
            window=self.window,
            ready=True,
            alpha=self.alpha,
            level=level,
            tests=tests,
            skipped=skipped,
            seconds=time.perf_counter() - start,
            null=self.null(),
        )
