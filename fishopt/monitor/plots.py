"""Plots of a drift report (each statistic against its clean-window null) and of a robustness grid (heat map)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from fishopt.io import atomic_write

_TITLES = {
    "ks_softmax": "KS on softmax (max over classes)",
    "ks_entropy": "KS on prediction entropy",
    "mean_entropy": "change of mean entropy (nats)",
    "mmd": "MMD² on reduced embeddings",
    "ks_image": "KS on input statistics (max)",
}


def save_drift_plot(report: Any, path: str | Path) -> Path:
    """Draw a :class:`fishopt.monitor.drift.DriftReport` to a PNG (written atomically).

    One panel per test: the histogram of the statistic on clean bootstrap windows, the calibrated threshold
    (dashed) and the window's statistic (red when it flags drift); a last panel with the per-class KS
    statistics.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = list(report.tests)
    per_class = report.tests.get("ks_softmax")
    panels = max(len(names) + (1 if per_class else 0), 1)
    cols = min(panels, 3)
    rows = -(-panels // cols)
    fig, grid = plt.subplots(rows, cols, figsize=(4.4 * cols, 3.4 * rows), squeeze=False)
    axes = grid.ravel()
    for ax in axes[panels:]:
        ax.axis("off")
    for ax, name in zip(axes, names, strict=False):
        test = report.tests[name]
        null = report.null.get(name)
        if null is not None and np.isfinite(null).any():
            ax.hist(null[np.isfinite(null)], bins=30, color="tab:gray", alpha=0.7, label="clean bootstrap windows")
        if np.isfinite(test.threshold):
            ax.axvline(test.threshold, color="k", ls="--", lw=1, label="threshold")
        ax.axvline(
            test.statistic,
            color="tab:red" if test.drift else "tab:green",
            lw=2,
            label=f"this window (p_cal {test.p_calibrated:.3g})",
        )
        ax.set_title(_TITLES.get(name, name), fontsize=9)
        ax.set_xlabel("statistic")
        ax.legend(fontsize=7)
    if per_class:
        ax = axes[len(names)]
        classes = per_class.details["classes"]
        ax.barh(list(classes), [v["statistic"] for v in classes.values()], color="tab:blue")
        ax.set_xlabel("KS statistic per class")
        ax.tick_params(axis="y", labelsize=7)
        ax.invert_yaxis()
    if not names:
        axes[0].text(0.5, 0.5, "no test ran", ha="center", va="center", transform=axes[0].transAxes)
    verdict = "DRIFT" if report.drift else "no drift"
    fig.suptitle(f"{verdict}: n={report.n}, alpha={report.alpha}, level={report.level:.3g}", fontsize=10)
    fig.tight_layout()
    atomic_write(path, lambda tmp: fig.savefig(tmp, format="png", dpi=110))
    plt.close(fig)
    return Path(path)


def save_robustness_heatmap(result: dict[str, Any], path: str | Path) -> Path:
    """Draw the top-1 grid (corruption x severity) of :func:`fishopt.monitor.robustness.run_robustness` to a PNG.

    With an FP32 reference, a second panel shows the change against it in points (red: worse).
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = list(result["corruptions"])
    sevs = [str(s) for s in result["severities"]]

    def grid(block: dict) -> np.ndarray:
        return np.array([[np.nan if block[c][s] is None else 100 * block[c][s] for s in sevs] for c in names])

    acc = grid(result["corruptions"])
    fp32 = result.get("fp32")
    panels = 2 if fp32 else 1
    fig, axes = plt.subplots(
        1, panels, figsize=(3.2 + 1.0 * len(sevs) * panels, 1.2 + 0.38 * len(names)), squeeze=False
    )
    ax = axes[0][0]
    im = ax.imshow(acc, cmap="viridis", vmin=0, vmax=100, aspect="auto")
    _annotate(ax, acc, "{:.0f}", dark=lambda v: v < 60)
    ax.set_title(f"{result['format']} top-1 (%)", fontsize=9)
    fig.colorbar(im, ax=ax, fraction=0.046)
    if fp32:
        delta = acc - grid(fp32["corruptions"])
        lim = max(1.0, float(np.nanmax(np.abs(delta))) if np.isfinite(delta).any() else 1.0)
        ax2 = axes[0][1]
        im2 = ax2.imshow(delta, cmap="RdBu", vmin=-lim, vmax=lim, aspect="auto")
        _annotate(ax2, delta, "{:+.1f}", dark=lambda v: abs(v) > 0.6 * lim)
        ax2.set_title("change vs FP32 (points)", fontsize=9)
        fig.colorbar(im2, ax=ax2, fraction=0.046)
    for a in axes[0]:
        a.set_xticks(range(len(sevs)), sevs)
        a.set_xlabel("severity")
        a.set_yticks(range(len(names)), [n.replace("_", " ") for n in names], fontsize=8)
    mce = result.get("mce")
    rel = result.get("relative_mce")
    extra = f", mCE {mce:.3f}, relative mCE {rel:.3f}" if fp32 and mce is not None and rel is not None else ""
    fig.suptitle(
        f"clean top-1 {100 * (result['clean'] or 0):.1f} %, mean corrupted "
        f"{100 * (result['mean_corrupted_top1'] or 0):.1f} %{extra} (n={result['n']})",
        fontsize=9,
    )
    fig.tight_layout()
    atomic_write(path, lambda tmp: fig.savefig(tmp, format="png", dpi=110))
    plt.close(fig)
    return Path(path)


def _annotate(ax: Any, values: np.ndarray, fmt: str, dark: Any) -> None:
    """Write each value in its cell, white where ``dark(value)`` says the cell is dark."""
    for (i, j), v in np.ndenumerate(values):
        if np.isfinite(v):
            ax.text(j, i, fmt.format(v), ha="center", va="center", fontsize=7, color="white" if dark(v) else "black")
