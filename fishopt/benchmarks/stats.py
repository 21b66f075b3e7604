"""Statistics of timing samples: percentiles, a confidence interval on the median, CV, interleaving.

All times are in seconds in, milliseconds out (``summarize``). Nothing here imports torch.
"""

from __future__ import annotations

import math
import random
from collections.abc import Sequence
from statistics import NormalDist

#: Robust coefficient of variation above which a measurement is flagged unstable.
CV_WARN = 0.15


def percentile(samples: Sequence[float], q: float) -> float:
    """Return the ``q``-th percentile (0-100) by linear interpolation between order statistics.

    Raises:
        ValueError: If ``samples`` is empty or ``q`` is outside [0, 100].
    """
    if not samples:
        raise ValueError("percentile of no samples")
    if not 0.0 <= q <= 100.0:
        raise ValueError(f"percentile q must be in [0, 100], got {q}")
    xs = sorted(samples)
    pos = (len(xs) - 1) * q / 100.0
    lo = math.floor(pos)
    hi = min(lo + 1, len(xs) - 1)
    return xs[lo] + (xs[hi] - xs[lo]) * (pos - lo)


def median_ci(samples: Sequence[float], confidence: float = 0.95) -> tuple[float, float]:
    """Distribution-free confidence interval on the median from order statistics.

    Uses the normal approximation to the binomial rank distribution: ranks ``n/2 -+ z*sqrt(n)/2``.
    With fewer than 6 samples the interval is the whole range.

    Returns:
        ``(low, high)``.
    """
    if not samples:
        raise ValueError("confidence interval of no samples")
    xs = sorted(samples)
    n = len(xs)
    if n < 6:
        return xs[0], xs[-1]
    z = _z(confidence)
    half = z * math.sqrt(n) / 2.0
    lo = max(0, math.floor(n / 2.0 - half) - 1)
    hi = min(n - 1, math.ceil(n / 2.0 + half) - 1)
    return xs[lo], xs[hi]


def _z(confidence: float) -> float:
    """Two-sided standard normal quantile for ``confidence``."""
    return NormalDist().inv_cdf(0.5 + confidence / 2)


def cv(samples: Sequence[float]) -> float:
    """Coefficient of variation (sample standard deviation / mean); 0 for fewer than two samples."""
    n = len(samples)
    if n < 2:
        return 0.0
    mean = sum(samples) / n
    if mean == 0:
        return 0.0
    var = sum((x - mean) ** 2 for x in samples) / (n - 1)
    return math.sqrt(var) / mean


def robust_cv(samples: Sequence[float]) -> float:
    """Robust CV: 1.4826 x median absolute deviation / median (equals the CV for normal data).

    Unlike :func:`cv` it ignores the rare long outliers (a context switch, a page-fault burst) that
    dominate the plain CV of latency samples, so it says whether the *median* is trustworthy.
    """
    if len(samples) < 2:
        return 0.0
    med = percentile(samples, 50)
    if med == 0:
        return 0.0
    mad = percentile([abs(x - med) for x in samples], 50)
    return 1.4826 * mad / med


def summarize(seconds: Sequence[float]) -> dict:
    """Summarize per-call times.

    Args:
        seconds: Per-call wall times in seconds.

    Returns:
        ``{"n", "mean_ms", "p50_ms", "p90_ms", "p99_ms", "ci95_ms": [lo, hi], "cv", "robust_cv",
        "unstable"}``; ``unstable`` when the robust CV exceeds :data:`CV_WARN`.
    """
    ms = [s * 1000.0 for s in seconds]
    lo, hi = median_ci(ms)
    rcv = robust_cv(ms)
    return {
        "n": len(ms),
        "mean_ms": round(sum(ms) / len(ms), 4),
        "p50_ms": round(percentile(ms, 50), 4),
        "p90_ms": round(percentile(ms, 90), 4),
        "p99_ms": round(percentile(ms, 99), 4),
        "ci95_ms": [round(lo, 4), round(hi, 4)],
        "cv": round(cv(ms), 4),
        "robust_cv": round(rcv, 4),
        "unstable": rcv > CV_WARN,
    }


def interleaved_rounds(names: Sequence[str], rounds: int, seed: int = 0) -> list[list[str]]:
    """Order in which to time variants: every round runs each variant once, in a fresh order.

    Round ``r`` is a seeded shuffle, so no variant is always first or last after another; all
    variants see the same background load on average.

    Args:
        names: Variant names.
        rounds: Number of rounds.
        seed: Seed of the shuffles.

    Returns:
        ``rounds`` lists, each a permutation of ``names``.
    """
    rng = random.Random(seed)
    out = []
    for _ in range(rounds):
        order = list(names)
        rng.shuffle(order)
        out.append(order)
    return out


def speedup(baseline_ms: float | None, value_ms: float | None) -> float | None:
    """Return ``baseline / value`` rounded, or ``None`` when either is missing or zero."""
    if not baseline_ms or not value_ms:
        return None
    return round(baseline_ms / value_ms, 3)
