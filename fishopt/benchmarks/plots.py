"""Plots: accuracy against bs1 latency with the Pareto front (labels carry the share of the measured peak); where
the end-to-end time goes (decode / preprocess / model, stacked, per input size); the recommended variant's confusion
matrix."""

from __future__ import annotations

from pathlib import Path

from fishopt.benchmarks.markdown import e2e_entries
from fishopt.io import atomic_write
from fishopt.training.report import save_confusion_png


def pareto_front(points: list[tuple[float, float]]) -> list[int]:
    """Indices of the points no other point beats on both axes (lower x = latency, higher y = accuracy).

    Returns:
        The front's indices, sorted by increasing x.
    """
    order = sorted(range(len(points)), key=lambda i: (points[i][0], -points[i][1]))
    front, best_y = [], float("-inf")
    for i in order:
        if points[i][1] > best_y:
            front.append(i)
            best_y = points[i][1]
    return front


def _plottable(results: dict) -> list[dict]:
    return [r for r in results["rows"] if r["status"] == "ok" and r.get("accuracy") and r.get("latency")]


def save_pareto(results: dict, path: str | Path) -> Path:
    """Draw top-1 against bs1 p50 latency (marker area ~ artifact size, front as a line) to a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = _plottable(results)
    fig, ax = plt.subplots(figsize=(8, 5.5))
    if rows:
        xs = [r["latency"]["bs1"]["p50_ms"] for r in rows]
        ys = [100 * r["accuracy"]["top1"] for r in rows]
        biggest = max((r.get("size_bytes") or 1) for r in rows)
        sizes = [40 + 400 * (r.get("size_bytes") or 0) / biggest for r in rows]
        colors = {"fp32": "tab:blue", "fp16": "tab:orange", "bf16": "tab:purple", "int8": "tab:green"}
        ax.scatter(xs, ys, s=sizes, c=[colors.get(r["precision"], "gray") for r in rows], alpha=0.6, edgecolors="k")
        for x, y, r in zip(xs, ys, rows, strict=True):
            share = f" ({100 * r['peak_share']:.0f}% pk)" if r.get("peak_share") is not None else ""
            ax.annotate(r["variant"] + share, (x, y), textcoords="offset points", xytext=(5, 4), fontsize=7)
        front = pareto_front(list(zip(xs, ys, strict=True)))
        ax.plot([xs[i] for i in front], [ys[i] for i in front], "r--", lw=1, label="Pareto front")
        ax.axhline(
            100 * results["reference"]["top1"] - results["settings"]["max_drop"],
            color="gray",
            lw=0.8,
            ls=":",
            label=f"FP32 top-1 - {results['settings']['max_drop']} pt",
        )
        if max(xs) / max(min(xs), 1e-9) > 20:
            ax.set_xscale("log")
        for prec, color in colors.items():
            if any(r["precision"] == prec for r in rows):
                ax.scatter([], [], c=color, alpha=0.6, edgecolors="k", label=prec)
        ax.legend(fontsize=8)
    else:
        ax.text(0.5, 0.5, "no variant ran", ha="center", va="center", transform=ax.transAxes)
    ax.set_xlabel("batch-1 latency p50 (ms)")
    ax.set_ylabel("test top-1 (%)")
    ax.set_title("accuracy vs latency (marker area ~ artifact size)")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    atomic_write(path, lambda tmp: fig.savefig(tmp, format="png", dpi=110))
    plt.close(fig)
    return Path(path)


def save_confusion(results: dict, out: Path) -> Path | None:
    """Confusion matrix PNG of the recommended latency variant, CPU first, else GPU (``None`` if none)."""

    recs = results["recommendations"]
    rec = (recs.get("cpu-latency") or {}).get("variant") or (recs.get("gpu-latency") or {}).get("variant")
    row = next((r for r in results["rows"] if r["variant"] == rec), None)
    if row is None or not (row.get("accuracy") or {}).get("confusion"):
        return None
    path = Path(out) / f"confusion-{rec}.png"
    acc = row["accuracy"]
    title = f"{rec}: top-1 {acc['top1']:.3f}, macro-F1 {acc['macro_f1']:.3f}"
    return save_confusion_png(acc, path, title=title)


STAGES = (("decode", "tab:red"), ("preprocess", "tab:orange"), ("model", "tab:blue"))


def save_e2e_split(results: dict, path: str | Path) -> Path | None:
    """Stacked bars of the end-to-end p50 split (decode, preprocess, model) per variant, one panel per input size.

    Today's pipeline (full decode + torch resize + eager FP32) is the first bar of each panel. ``None`` when no
    end-to-end row was measured.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    sizes = [
        s
        for s in results["settings"].get("input_sizes", [])
        if any((r.get("e2e") or {}).get(s) for r in results["rows"])
    ]
    if not sizes:
        return None
    fig, axes = plt.subplots(len(sizes), 1, figsize=(9, 2.2 + 0.32 * len(results["rows"]) * len(sizes)), squeeze=False)
    for ax, size in zip(axes[:, 0], sizes, strict=True):
        bars = [
            (label, block["stages_p50_ms"])
            for label, block in e2e_entries(results, size, "today's pipeline (eager FP32)", code=False)
        ]
        labels = [b[0] for b in bars]
        left = [0.0] * len(bars)
        for stage, color in STAGES:
            widths = [b[1].get(stage, 0.0) for b in bars]
            ax.barh(labels, widths, left=left, color=color, label=stage)
            left = [a + b for a, b in zip(left, widths, strict=True)]
        for i, total in enumerate(left):
            ax.text(total, i, f" {total:.2f}", va="center", fontsize=7)
        ax.invert_yaxis()
        ax.set_title(f"end-to-end batch 1, {size} JPEG -> label (p50 per stage, ms)", fontsize=9)
        ax.tick_params(labelsize=7)
        ax.grid(axis="x", alpha=0.3)
        if max(left) / max(min(left), 1e-9) > 30:
            ax.set_xscale("log")
    axes[0, 0].legend(fontsize=7, loc="lower right")
    fig.tight_layout()
    atomic_write(path, lambda tmp: fig.savefig(tmp, format="png", dpi=110))
    plt.close(fig)
    return Path(path)
