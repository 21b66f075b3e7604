"""Two-sample statistics for drift detection, on numpy and scipy.

- Kolmogorov-Smirnov on every softmax column with a Bonferroni correction (black-box shift detection,
  Rabanser, Günnemann and Lipton, "Failing Loudly", NeurIPS 2019) and on the prediction entropy
  (:func:`ks_columns`, :func:`ks_statistics`);
- the unbiased squared maximum mean discrepancy with an RBF kernel (Gretton et al., JMLR 2012), bandwidth
  by the median heuristic, and its permutation p-value (:func:`mmd_permutation_test`);
- a PCA on the reference embeddings (:func:`fit_pca`);
- the null distribution by bootstrapped clean windows and the calibrated decision level
  (:func:`split_reference`, :func:`calibrated_p`, :func:`joint_level`).

scipy is imported inside the functions that need it.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence

import numpy as np

#: Probabilities are clipped to this before taking logarithms.
EPS = 1e-12


def softmax(logits: np.ndarray) -> np.ndarray:
    """Row-wise softmax of logits (N, C), numerically stable, float64."""
    z = np.asarray(logits, dtype=np.float64)
    z = z - z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


def entropy(probs: np.ndarray) -> np.ndarray:
    """Shannon entropy (nats) of each row of probabilities (N, C)."""
    p = np.clip(np.asarray(probs, dtype=np.float64), EPS, 1.0)
    return -(p * np.log(p)).sum(axis=1)


def ks_statistics(ref: np.ndarray, win: np.ndarray) -> np.ndarray:
    """Two-sample Kolmogorov-Smirnov statistics D of every column, vectorized.

    Args:
        ref: (n,) or (n, C) reference sample.
        win: (m,) or (m, C) window sample, same number of columns.

    Returns:
        D per column (C,) (a 0-d array for 1-d input): the largest distance between the two empirical CDFs,
        as :func:`scipy.stats.ks_2samp` computes it.
    """
    a = np.asarray(ref, dtype=np.float64)
    b = np.asarray(win, dtype=np.float64)
    one = a.ndim == 1
    if one:
        a, b = a[:, None], b[:, None]
    a, b = np.sort(a, axis=0), np.sort(b, axis=0)
    pooled = np.concatenate([a, b], axis=0)
    out = np.empty(a.shape[1])
    for j in range(a.shape[1]):
        cdf_a = np.searchsorted(a[:, j], pooled[:, j], side="right") / len(a)
        cdf_b = np.searchsorted(b[:, j], pooled[:, j], side="right") / len(b)
        out[j] = np.abs(cdf_a - cdf_b).max()
    return out[0] if one else out


def ks_columns(ref: np.ndarray, win: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Kolmogorov-Smirnov test of every column (scipy's ``ks_2samp``, exact or asymptotic p-values).

    Args:
        ref: (n, C) reference sample.
        win: (m, C) window sample.

    Returns:
        Statistics D (C,) and p-values (C,).
    """
    import warnings

    from scipy.stats import ks_2samp

    with warnings.catch_warnings():  # exact p-values of small samples fall back to asymptotic ones, with a warning
        warnings.filterwarnings("ignore", "ks_2samp: Exact calculation unsuccessful", RuntimeWarning)
        res = ks_2samp(np.asarray(ref, dtype=np.float64), np.asarray(win, dtype=np.float64), axis=0)
    return np.atleast_1d(np.asarray(res.statistic, np.float64)), np.atleast_1d(np.asarray(res.pvalue, np.float64))


def bonferroni(p_values: np.ndarray) -> float:
    """Bonferroni-corrected p-value of the smallest of ``k`` p-values: ``min(1, k * min(p))``."""
    p = np.asarray(p_values, dtype=np.float64)
    return float(min(1.0, len(p) * p.min())) if p.size else 1.0


def welch_p(ref: np.ndarray, win: np.ndarray) -> float:
    """Two-sided p-value of Welch's t-test for equal means (scipy's ``ttest_ind``, unequal variances)."""
    from scipy.stats import ttest_ind

    p = float(ttest_ind(np.asarray(ref, np.float64), np.asarray(win, np.float64), equal_var=False).pvalue)
    return p if np.isfinite(p) else 1.0


def fit_pca(x: np.ndarray, n_components: int = 32) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Principal components of the rows of ``x`` (SVD of the centered data).

    Args:
        x: (N, D) data.
        n_components: Components to keep (at most ``min(N - 1, D)``).

    Returns:
        ``(mean (D,), components (k, D), explained_variance_ratio (k,))``; project with
        ``(x - mean) @ components.T``. Component signs are fixed (largest loading positive), so a refit
        on the same data gives the same projection.
    """
    x = np.asarray(x, dtype=np.float64)
    k = max(1, min(int(n_components), x.shape[0] - 1, x.shape[1]))
    mean = x.mean(axis=0)
    _, s, vt = np.linalg.svd(x - mean, full_matrices=False)
    vt = vt[:k]
    signs = np.sign(vt[np.arange(k), np.abs(vt).argmax(axis=1)])
    vt = vt * np.where(signs == 0, 1.0, signs)[:, None]
    var = s**2
    ratio = var[:k] / var.sum() if var.sum() > 0 else np.zeros(k)
    return mean, vt, ratio


def sq_distances(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Pairwise squared Euclidean distances (n, m) between the rows of ``x`` and ``y``."""
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    d = (x * x).sum(1)[:, None] + (y * y).sum(1)[None, :] - 2.0 * x @ y.T
    return np.maximum(d, 0.0)


def median_bandwidth(x: np.ndarray, max_points: int = 1000, seed: int = 0) -> float:
    """The median heuristic: the median distance between distinct rows of ``x`` (a subsample if large).

    Returns:
        sigma for the kernel ``exp(-||a - b||^2 / (2 sigma^2))``; 1.0 if every distance is zero.
    """
    x = np.asarray(x, dtype=np.float64)
    if len(x) > max_points:
        x = x[np.random.default_rng(seed).choice(len(x), max_points, replace=False)]
    d = sq_distances(x, x)[np.triu_indices(len(x), k=1)]
    med = float(np.sqrt(np.median(d))) if d.size else 0.0
    return med if med > 0 else 1.0


def rbf_kernel(x: np.ndarray, y: np.ndarray, sigma: float) -> np.ndarray:
    """RBF kernel matrix ``exp(-||x_i - y_j||^2 / (2 sigma^2))``."""
    return np.exp(-sq_distances(x, y) / (2.0 * sigma * sigma))


def mmd2_unbiased(kxx: np.ndarray, kyy: np.ndarray, kxy: np.ndarray) -> float:
    """Unbiased estimate of the squared MMD from the three kernel blocks (Gretton et al. 2012, eq. 3).

    The diagonals of ``kxx`` and ``kyy`` are left out; the estimate is 0 in expectation under the null
    and can be negative.
    """
    m, n = kxx.shape[0], kyy.shape[0]
    sxx = (kxx.sum() - np.trace(kxx)) / (m * (m - 1))
    syy = (kyy.sum() - np.trace(kyy)) / (n * (n - 1))
    return float(sxx + syy - 2.0 * kxy.mean())


def mmd_permutation_test(
    kernel: np.ndarray, m: int, n_permutations: int = 200, rng: np.random.Generator | None = None
) -> tuple[float, float]:
    """Unbiased squared MMD and its permutation p-value.

    All permutations are evaluated with one matrix product: for a 0/1 assignment vector ``a`` of the first
    sample, the block sums are ``a'Ka``, ``a'K1 - a'Ka`` and ``1'K1 - 2a'K1 + a'Ka``.

    Args:
        kernel: (N, N) kernel matrix of the pooled sample; its first ``m`` rows are the first sample.
        m: Size of the first sample (the rest, ``N - m``, is the second).
        n_permutations: Random relabellings.
        rng: Random generator.

    Returns:
        ``(mmd2, p_value)`` with ``p = (1 + #{permuted >= observed}) / (1 + n_permutations)``.
    """
    rng = rng or np.random.default_rng()
    big = kernel.shape[0]
    n = big - m
    assign = np.zeros((big, n_permutations + 1))
    assign[:m, 0] = 1.0
    for j in range(1, n_permutations + 1):
        assign[rng.choice(big, m, replace=False), j] = 1.0
    ka = kernel @ assign
    rows = kernel.sum(axis=1)
    diag = np.diag(kernel)
    a_k_a = (assign * ka).sum(axis=0)
    a_k_1 = assign.T @ rows
    total = rows.sum()
    tr_x = assign.T @ diag
    tr_y = diag.sum() - tr_x
    sxx = (a_k_a - tr_x) / (m * (m - 1))
    syy = (total - 2.0 * a_k_1 + a_k_a - tr_y) / (n * (n - 1))
    sxy = (a_k_1 - a_k_a) / (m * n)
    stats = sxx + syy - 2.0 * sxy
    observed = float(stats[0])
    p = float((1 + np.sum(stats[1:] >= observed - 1e-12)) / (n_permutations + 1))
    return observed, p


class ReferenceSplitter:
    """Splits reference indices into a pseudo-reference and a pseudo-window part, by unit, stratified by class.

    Whole units (clusters of near-duplicate photos) go to one side, so a clean window holds photos the
    pseudo-reference does not: the bootstrap sees the variation between photos a deployment sees. Without
    units every image is its own unit; without labels there is one stratum. A unit's stratum is its most
    common class.

    Args:
        units: Unit of each reference image, or ``None``.
        labels: Class id of each reference image, or ``None``.
        n: Number of reference images.
    """

    def __init__(self, units: Sequence[str] | None, labels: Sequence[int] | None, n: int) -> None:
        unit_of = np.asarray(units).astype(str) if units is not None else np.arange(n).astype(str)
        label_of = np.asarray(labels) if labels is not None else np.zeros(n, dtype=int)
        members: dict[str, list[int]] = defaultdict(list)
        for i, u in enumerate(unit_of):
            members[u].append(i)
        strata: dict[int, list[str]] = defaultdict(list)
        for u, idx in members.items():
            values, counts = np.unique(label_of[idx], return_counts=True)
            strata[int(values[counts.argmax()])].append(u)
        self.n = n
        self.members = {u: np.asarray(idx) for u, idx in members.items()}
        self.strata = [sorted(strata[k]) for k in sorted(strata)]

    def __call__(self, fraction: float, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        """One random split: ``(reference_indices, window_indices)``, both non-empty when ``n >= 2``.

        Each stratum gives ``fraction`` of its units to the pseudo-reference (randomized rounding keeps the
        expected share; at least one unit on each side where it has two).
        """
        ref_units: list[str] = []
        win_units: list[str] = []
        for group in self.strata:
            order = rng.permutation(len(group))
            k = fraction * len(group)
            k = int(np.floor(k) + (rng.random() < k - np.floor(k)))
            if len(group) >= 2:
                k = min(max(k, 1), len(group) - 1)
            ref_units += [group[i] for i in order[:k]]
            win_units += [group[i] for i in order[k:]]
        if not ref_units or not win_units:  # a single unit per stratum everywhere: fall back to images
            perm = rng.permutation(self.n)
            cut = min(max(1, round(fraction * self.n)), self.n - 1)
            return np.sort(perm[:cut]), np.sort(perm[cut:])
        ref = np.sort(np.concatenate([self.members[u] for u in ref_units]))
        win = np.sort(np.concatenate([self.members[u] for u in win_units]))
        return ref, win


def split_reference(
    units: Sequence[str] | None, labels: Sequence[int] | None, n: int, fraction: float, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """One split of :class:`ReferenceSplitter` (for repeated splits, build the splitter once)."""
    return ReferenceSplitter(units, labels, n)(fraction, rng)


def draw_window(
    pool: np.ndarray, labels: np.ndarray | None, freq: np.ndarray | None, size: int, rng: np.random.Generator
) -> np.ndarray:
    """Draw a clean bootstrap window of ``size`` images from ``pool`` (indices).

    Without labels: ``min(size, len(pool))`` images without replacement. With labels: the class counts are
    multinomial at the reference's class frequencies ``freq`` (restricted to the classes ``pool`` holds), as in
    a window of independent images, and each class's images are drawn from ``pool`` without replacement up to
    what it holds, then with replacement.

    Returns:
        The window's indices, sorted (repeats possible with labels).
    """
    if labels is None or freq is None:
        return np.sort(rng.choice(pool, size=min(size, len(pool)), replace=False))
    pool_labels = labels[pool]
    present = np.unique(pool_labels)
    p = freq[present] / freq[present].sum()
    counts = rng.multinomial(size, p)
    parts = []
    for cls, k in zip(present, counts, strict=True):
        members = pool[pool_labels == cls]
        first = rng.permutation(members)[: min(k, len(members))]
        extra = rng.choice(members, size=k - len(first), replace=True) if k > len(first) else members[:0]
        parts += [first, extra]
    return np.sort(np.concatenate(parts))


def calibrated_p(null: np.ndarray, observed: float) -> float:
    """Empirical p-value of ``observed`` against bootstrapped null statistics: ``(1 + #{null >= obs}) / (1 + B)``."""
    null = np.asarray(null, dtype=np.float64)
    return float((1 + np.sum(null >= observed)) / (1 + len(null)))


def joint_level(null: np.ndarray, alpha: float) -> float:
    """The calibrated-p level at which at most ``alpha`` of the clean bootstrap windows raise an alarm.

    A window is flagged when the smallest calibrated p-value of its tests is at or below the level (a
    min-p rule in the style of Westfall and Young: tighter than Bonferroni for correlated tests). Each
    bootstrap window's own calibrated p-values are computed leaving it out.

    Args:
        null: (B, T) null statistics, one row per clean bootstrap window, one column per test.
        alpha: Target false-alarm rate.

    Returns:
        The level (0.0 if even the smallest attainable p-value would flag more than ``alpha``).
    """
    null = np.asarray(null, dtype=np.float64)
    b = null.shape[0]
    if b < 2:
        return 0.0
    geq = (null[None, :, :] >= null[:, None, :]).sum(axis=1) - 1  # others at least as large, per window and test
    # on the scale of calibrated_p (denominator B + 1, as for a new window): the in-sample rate then estimates
    # a new window's false-alarm rate without the +1/B bias of a (B - 1)-denominator
    loo_min = ((1 + geq) / (b + 1)).min(axis=1)
    candidates = np.arange(1, b + 2) / (b + 1)
    ok = [lv for lv in candidates if np.mean(loo_min <= lv) <= alpha]
    return float(max(ok)) if ok else 0.0


def threshold_for(null: np.ndarray, level: float) -> float:
    """The statistic a window must exceed for its calibrated p-value to be at or below ``level``."""
    null = np.sort(np.asarray(null, dtype=np.float64))[::-1]
    k = int(np.floor(level * (len(null) + 1) + 1e-9)) - 1  # at most k null values may be >= the statistic
    if k < 0:
        return float("inf")
    if k >= len(null):
        return float("-inf")
    return float(null[k])
