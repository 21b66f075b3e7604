"""The drift statistics on known distributions."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats as sps

from fishopt.monitor import stats


def assert_roughly_uniform(p: np.ndarray) -> None:
    """P(p <= a) close to a at several levels (p-values of discrete statistics are not exactly uniform)."""
    for a in (0.05, 0.1, 0.25, 0.5, 0.75):
        assert abs(np.mean(p <= a) - a) <= 0.07, (a, np.mean(p <= a))


def test_softmax_and_entropy() -> None:
    p = stats.softmax(np.array([[0.0, 0.0], [1000.0, 0.0]]))
    np.testing.assert_allclose(p, [[0.5, 0.5], [1.0, 0.0]])
    np.testing.assert_allclose(stats.entropy(p), [np.log(2), 0.0], atol=1e-9)


def test_ks_statistics_match_scipy() -> None:
    rng = np.random.default_rng(0)
    a = np.round(rng.normal(size=(300, 4)), 1)  # rounded: ties
    b = np.round(rng.normal(0.2, 1.0, size=(170, 4)), 1)
    ours = stats.ks_statistics(a, b)
    d, p = stats.ks_columns(a, b)
    np.testing.assert_allclose(ours, d)
    np.testing.assert_allclose(p, [sps.ks_2samp(a[:, j], b[:, j]).pvalue for j in range(4)])
    assert float(stats.ks_statistics(a[:, 0], b[:, 0])) == pytest.approx(d[0])


def test_ks_p_values_uniform_under_the_null() -> None:
    rng = np.random.default_rng(1)
    p = np.array([stats.ks_columns(rng.normal(size=(200, 1)), rng.normal(size=(100, 1)))[1][0] for _ in range(300)])
    assert_roughly_uniform(p)


def test_bonferroni() -> None:
    assert stats.bonferroni(np.array([0.01, 0.5, 0.9])) == pytest.approx(0.03)
    assert stats.bonferroni(np.array([0.5, 0.9])) == 1.0


def test_mmd_permutation_matches_direct_estimate_and_is_uniform_under_the_null() -> None:
    rng = np.random.default_rng(2)
    x, y = rng.normal(size=(30, 3)), rng.normal(size=(45, 3))
    z = np.vstack([x, y])
    sigma = stats.median_bandwidth(z)
    k = stats.rbf_kernel(z, z, sigma)
    direct = stats.mmd2_unbiased(k[:30, :30], k[30:, 30:], k[:30, 30:])
    observed, p = stats.mmd_permutation_test(k, 30, 99, rng)
    assert observed == pytest.approx(direct)
    assert 0.01 <= p <= 1.0
    ps = []
    for _ in range(150):
        x, y = rng.normal(size=(25, 2)), rng.normal(size=(25, 2))
        z = np.vstack([x, y])
        ps.append(stats.mmd_permutation_test(stats.rbf_kernel(z, z, stats.median_bandwidth(z)), 25, 49, rng)[1])
    assert_roughly_uniform(np.array(ps))


def test_shifted_gaussian_is_detected_by_both_tests() -> None:
    rng = np.random.default_rng(3)
    x, y = rng.normal(size=(100, 2)), rng.normal(size=(100, 2)) + np.array([0.8, 0.0])
    z = np.vstack([x, y])
    _, p_mmd = stats.mmd_permutation_test(stats.rbf_kernel(z, z, stats.median_bandwidth(z)), 100, 199, rng)
    assert p_mmd == pytest.approx(1 / 200)
    assert stats.bonferroni(stats.ks_columns(x, y)[1]) < 1e-4


def test_pca_is_orthonormal_and_deterministic() -> None:
    rng = np.random.default_rng(4)
    x = rng.normal(size=(200, 3)) @ rng.normal(size=(3, 10)) + 0.01 * rng.normal(size=(200, 10))
    _, comps, ratio = stats.fit_pca(x, 5)
    np.testing.assert_allclose(comps @ comps.T, np.eye(5), atol=1e-9)
    assert ratio[:3].sum() > 0.99 and np.all(np.diff(ratio) <= 1e-12)
    _, comps2, _ = stats.fit_pca(x[::-1].copy(), 5)
    np.testing.assert_allclose(comps[:3], comps2[:3], atol=1e-6)
    assert stats.fit_pca(x[:4], 32)[1].shape == (3, 10)  # at most N - 1 axes


def test_split_reference_keeps_units_whole_and_strata_on_both_sides() -> None:
    rng = np.random.default_rng(5)
    units = np.repeat([f"u{i}" for i in range(12)], 5)
    labels = np.repeat(np.arange(12) % 3, 5)
    for _ in range(20):
        ref, win = stats.split_reference(units, labels, len(units), 0.5, rng)
        assert set(units[ref]).isdisjoint(units[win])
        assert sorted(np.concatenate([ref, win])) == list(range(len(units)))
        assert set(labels[ref]) == set(labels[win]) == {0, 1, 2}
    ref, win = stats.split_reference(None, None, 10, 0.5, rng)
    assert len(ref) + len(win) == 10 and len(ref) and len(win)
    ref, win = stats.split_reference(["a"] * 6, None, 6, 0.5, rng)  # one unit: falls back to images
    assert len(ref) and len(win)


def test_calibrated_level_controls_the_min_p_false_alarm_rate() -> None:
    rng = np.random.default_rng(6)
    null = rng.normal(size=(1000, 3))
    level = stats.joint_level(null, 0.05)
    assert 0.05 / 3 <= level <= 0.05  # between Bonferroni and a single test
    fresh = rng.normal(size=(3000, 3))
    p = np.array([[stats.calibrated_p(null[:, j], v) for j, v in enumerate(row)] for row in fresh])
    assert np.mean(p.min(axis=1) <= level) == pytest.approx(0.05, abs=0.015)
    for j in range(3):
        thr = stats.threshold_for(null[:, j], level)
        assert stats.calibrated_p(null[:, j], np.nextafter(thr, np.inf)) <= level < stats.calibrated_p(null[:, j], thr)
    assert stats.joint_level(null[:1], 0.05) == 0.0
    assert stats.threshold_for(null[:, 0], 0.0) == float("inf")


def test_draw_window_keeps_the_class_frequencies() -> None:
    rng = np.random.default_rng(7)
    labels = np.repeat([0, 1, 2], [100, 50, 10])
    freq = np.array([0.5, 0.3, 0.2])
    pool = np.flatnonzero(labels != 2)  # class 2 absent from the pool: its share goes to the others
    counts = np.array(
        [np.bincount(labels[stats.draw_window(pool, labels, freq, 80, rng)], minlength=3) for _ in range(300)]
    )
    assert counts[:, 2].max() == 0 and (counts.sum(axis=1) == 80).all()
    assert counts[:, 0].mean() == pytest.approx(80 * 0.5 / 0.8, rel=0.05)
    win = stats.draw_window(pool, labels, freq, 80, rng)
    assert len(np.unique(win[labels[win] == 0])) == (labels[win] == 0).sum()  # no repeats while images last
    big = stats.draw_window(np.flatnonzero(labels == 2), labels, freq, 30, rng)  # more than the pool holds
    assert len(big) == 30 and len(np.unique(big)) == 10
    plain = stats.draw_window(pool, None, None, 500, rng)
    assert len(plain) == len(pool) and len(np.unique(plain)) == len(pool)
