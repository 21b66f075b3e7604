"""Stats helpers on synthetic timings: percentiles, median CI, CV, interleaving."""

from __future__ import annotations

import random

import pytest

from fishopt.benchmarks import stats


def test_percentiles_match_linear_interpolation() -> None:
    xs = [float(i) for i in range(1, 101)]  # 1..100
    assert stats.percentile(xs, 50) == pytest.approx(50.5)
    assert stats.percentile(xs, 90) == pytest.approx(90.1)
    assert stats.percentile(xs, 99) == pytest.approx(99.01)
    assert stats.percentile([3.0], 99) == 3.0
    assert stats.percentile([5.0, 1.0, 3.0], 0) == 1.0


@pytest.mark.parametrize("bad", [[], None])
def test_percentile_rejects_empty(bad) -> None:
    with pytest.raises(ValueError):
        stats.percentile(bad or [], 50)
    with pytest.raises(ValueError):
        stats.percentile([1.0], 101)


def test_median_ci_brackets_median_and_narrows_with_n() -> None:
    rng = random.Random(0)
    small = [rng.gauss(10, 1) for _ in range(30)]
    large = [rng.gauss(10, 1) for _ in range(3000)]
    for xs in (small, large):
        lo, hi = stats.median_ci(xs)
        assert lo <= stats.percentile(xs, 50) <= hi
    assert (stats.median_ci(large)[1] - stats.median_ci(large)[0]) < (
        stats.median_ci(small)[1] - stats.median_ci(small)[0]
    )
    assert stats.median_ci([1.0, 2.0, 3.0]) == (1.0, 3.0)


def test_median_ci_coverage_is_about_95_percent() -> None:
    rng = random.Random(1)
    hits = 0
    for _ in range(400):
        lo, hi = stats.median_ci([rng.expovariate(1.0) for _ in range(41)])
        hits += lo <= 0.6931 <= hi  # true median of Exp(1) = ln 2
    assert 0.90 <= hits / 400 <= 0.995


def test_cv_and_robust_cv_flag_noise_not_outliers() -> None:
    steady = [1.0] * 99 + [50.0]  # one long outlier (a context switch)
    assert stats.cv(steady) > 1.0
    assert stats.robust_cv(steady) == 0.0
    noisy = [1.0, 2.0, 0.5, 1.5, 3.0, 0.7] * 5
    summary = stats.summarize(noisy)
    assert summary["unstable"] is True
    assert not stats.summarize([0.001] * 20)["unstable"]
    assert stats.cv([2.0]) == 0.0


def test_summarize_reports_milliseconds() -> None:
    s = stats.summarize([0.001, 0.002, 0.003])
    assert s["p50_ms"] == pytest.approx(2.0)
    assert s["n"] == 3 and s["ci95_ms"] == [1.0, 3.0]
    assert set(s) >= {"p90_ms", "p99_ms", "cv", "robust_cv", "mean_ms"}


def test_interleaved_rounds_are_permutations_in_varying_order() -> None:
    names = ["a", "b", "c", "d"]
    rounds = stats.interleaved_rounds(names, 12, seed=3)
    assert len(rounds) == 12
    assert all(sorted(r) == names for r in rounds)
    assert len({r[0] for r in rounds}) > 1  # not always the same variant first
    assert rounds == stats.interleaved_rounds(names, 12, seed=3)


def test_speedup() -> None:
    assert stats.speedup(10.0, 2.0) == 5.0
    assert stats.speedup(None, 2.0) is None and stats.speedup(1.0, 0.0) is None


def test_time_interleaved_runs_rounds_and_drops_crashing_variant() -> None:
    from fishopt.benchmarks.timing import TimingPlan, time_interleaved

    log: list[str] = []
    state = {"n": 0}

    def crashes_later() -> None:
        state["n"] += 1
        if state["n"] > 4:
            raise RuntimeError("boom")

    calls = {"a": lambda: log.append("a"), "b": lambda: log.append("b"), "c": crashes_later}
    times, errors = time_interleaved(calls, TimingPlan(warmup=1, rounds=5, calls=3))
    assert set(times) == {"a", "b"} and len(times["a"]) == 15
    assert errors == {"c": "RuntimeError: boom"}
    # interleaved: a and b alternate in rounds instead of all a then all b
    first_b = log.index("b")
    assert any(x == "a" for x in log[first_b:])
