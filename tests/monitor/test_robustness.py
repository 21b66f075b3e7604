"""Robustness scores on constructed grids, and the runner on a tiny checkpoint and its artifact."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from fishopt.errors import CheckpointError, ConfigError
from fishopt.monitor.robustness import Grid, quick_robustness, run_robustness, summarize

pytest.importorskip("corrupt_tta")


def grid(clean: float, acc: dict[tuple[str, int], float], n: int = 200) -> Grid:
    """A grid whose images are right in the given shares (the first ``share * n`` images)."""

    def col(share: float) -> np.ndarray:
        return np.arange(n) < round(share * n)

    return Grid(clean=col(clean), corrupted={k: col(v) for k, v in acc.items()})


def test_scores_against_the_reference() -> None:
    names, sevs = ["noise", "blur"], [1, 2]
    ref = grid(0.9, {("noise", 1): 0.8, ("noise", 2): 0.6, ("blur", 1): 0.9, ("blur", 2): 0.7})
    worse = grid(0.9, {("noise", 1): 0.7, ("noise", 2): 0.5, ("blur", 1): 0.9, ("blur", 2): 0.7})
    s = summarize(worse, names, sevs, ref, n_bootstrap=200)
    # CE: noise (0.3 + 0.5) / (0.2 + 0.4) = 4/3, blur 0.4 / 0.4 = 1 -> mCE 7/6
    assert s["ce"] == {"noise": pytest.approx(4 / 3), "blur": pytest.approx(1.0)}
    assert s["mce"] == pytest.approx(7 / 6, abs=1e-6)
    # relative: noise (0.2 + 0.4) / (0.1 + 0.3) = 1.5; blur (0 + 0.2) / (0 + 0.2) = 1
    assert s["relative_mce"] == pytest.approx(1.25, abs=1e-6)
    assert s["corruptions"]["noise"] == {"1": 0.7, "2": 0.5}
    assert s["mean_corrupted_top1"] == pytest.approx(0.7) and s["mean_error"] == pytest.approx(0.3)
    lo, hi = s["ci95"]["relative_mce"]
    assert lo <= s["relative_mce"] <= hi
    assert s["less_robust"] is (lo > 1.0)
    same = summarize(ref, names, sevs, ref, n_bootstrap=50)
    assert same["mce"] == same["relative_mce"] == 1.0 and not same["less_robust"]
    alone = summarize(ref, names, sevs)
    assert alone["mce"] == 1.0 and alone["ci95"]["mce"] == [1.0, 1.0]
    # a corruption the reference never errs on has no CE: left out of the mean, reported as None
    perfect = grid(1.0, {("noise", 1): 1.0, ("noise", 2): 1.0, ("blur", 1): 0.5, ("blur", 2): 0.5})
    s = summarize(
        grid(1.0, {("noise", 1): 0.9, ("noise", 2): 1.0, ("blur", 1): 0.5, ("blur", 2): 0.5}),
        names,
        sevs,
        perfect,
        n_bootstrap=20,
    )
    assert s["ce"]["noise"] is None and s["mce"] == pytest.approx(1.0)


def test_clearly_less_robust_variant_is_flagged() -> None:
    names, sevs = ["noise"], [3]
    ref = grid(0.95, {("noise", 3): 0.75}, n=400)
    bad = grid(0.95, {("noise", 3): 0.55}, n=400)
    s = summarize(bad, names, sevs, ref)
    assert s["relative_mce"] == pytest.approx(2.0) and s["less_robust"]


def test_run_on_checkpoint_and_artifact(monitor_run, tmp_path: Path) -> None:
    from fishopt.training.evaluate import evaluate_checkpoint

    kwargs = {"corruptions": ["gaussian_noise", "contrast"], "severities": [1, 5], "workers": 1}
    res = run_robustness(monitor_run.checkpoint, **kwargs)
    assert res["format"] == "checkpoint" and "fp32" not in res and res["mce"] == 1.0
    assert res["clean"] == pytest.approx(evaluate_checkpoint(monitor_run.checkpoint)["top1"])
    assert set(res["corruptions"]) == {"gaussian_noise", "contrast"}
    assert set(res["corruptions"]["contrast"]) == {"1", "5"}
    art = run_robustness(monitor_run.artifact, **kwargs)
    assert art["format"] == "torch-eager-fp32" and art["fp32"]["corruptions"] == res["corruptions"]
    assert art["corruptions"] == res["corruptions"]  # the same model: the same corrupted images, the same answers
    assert art["relative_mce"] in (1.0, None) and not art["less_robust"]
    data = run_robustness(monitor_run.checkpoint, data=monitor_run.root, limit=30, **kwargs)
    assert data["n"] == 30 and data["data"].startswith("all images of")

    from fishopt.monitor.plots import save_robustness_heatmap

    png = save_robustness_heatmap(art, tmp_path / "heat.png")
    assert png.read_bytes()[:4] == b"\x89PNG"


def test_quick_robustness_for_several_variants(monitor_run) -> None:
    from fishopt.checkpoint import load_checkpoint
    from fishopt.monitor.robustness import checkpoint_predictor

    ckpt = load_checkpoint(monitor_run.checkpoint)
    exact = checkpoint_predictor(ckpt)

    def dull(images):  # a variant that loses the class signal under corruption: always "class 0"
        out = exact(images)
        return np.where(np.arange(out.shape[1]) == 0, 1.0, 0.0)[None, :].repeat(len(out), 0)

    res = quick_robustness(
        monitor_run.checkpoint,
        {"same": exact, "artifact": monitor_run.artifact, "dull": dull},
        corruptions=["fog", "contrast"],
        limit=None,
        workers=1,
    )
    assert res["settings"]["severity"] == 3 and set(res["variants"]) == {"same", "artifact", "dull"}
    fp32 = res["fp32"]["corruptions"]
    assert res["variants"]["same"]["corruptions"] == fp32 == res["variants"]["artifact"]["corruptions"]
    assert res["variants"]["dull"]["clean"] < res["fp32"]["clean"]


def test_bad_targets(monitor_run, tmp_path: Path) -> None:
    with pytest.raises(CheckpointError, match="not found"):
        run_robustness(tmp_path / "nope.pt")
    with pytest.raises(CheckpointError, match="not an artifact folder"):
        run_robustness(tmp_path)
    with pytest.raises(CheckpointError, match="not the one artifact"):
        run_robustness(monitor_run.artifact, reference=_other_checkpoint(monitor_run, tmp_path))
    with pytest.raises(ConfigError, match="unknown corruption"):
        run_robustness(monitor_run.checkpoint, corruptions=["rain"])


def _other_checkpoint(monitor_run, tmp_path: Path) -> Path:
    from helpers import make_tiny_checkpoint

    return make_tiny_checkpoint(tmp_path / "other", monitor_run.root, seed=1)


def test_bootstrap_resamples_whole_units() -> None:
    from fishopt.monitor.robustness import bootstrap_weights

    units = ["a"] * 6 + ["b"] * 3 + ["c"]
    w = bootstrap_weights(10, units, 200, seed=0)
    np.testing.assert_allclose(w.sum(axis=1), 1.0)
    assert (w[:, :6] == w[:, :1]).all() and (w[:, 6:9] == w[:, 6:7]).all()  # a unit's images move together
    assert ((w[:, 0] == 0) | (w[:, 9] == 0) | (w[:, 6] == 0)).mean() > 0.5  # whole units left out
    # on clustered data the unit bootstrap gives the wider interval
    ref = grid(0.9, {("n", 1): 0.6}, n=100)
    worse = Grid(clean=ref.clean, corrupted={("n", 1): np.arange(100) < 50})
    clusters = [f"u{i // 20}" for i in range(100)]
    by_image = summarize(worse, ["n"], [1], ref, n_bootstrap=300)["ci95"]["relative_mce"]
    by_unit = summarize(worse, ["n"], [1], ref, units=clusters, n_bootstrap=300)["ci95"]["relative_mce"]
    assert by_unit[1] - by_unit[0] > by_image[1] - by_image[0]
