"""Print evaluation reports and draw confusion matrices."""

from __future__ import annotations

from pathlib import Path

from fishopt.io import atomic_write


def print_report(report: dict) -> None:
    """Print top-1, macro-F1 and per-class recall as a rich table, then the units with errors (if reported)."""
    from rich.console import Console
    from rich.table import Table

    leaky = " [red]LEAKY split by file: inflated[/red]" if report.get("leaky") else ""
    table = Table(
        title=f"{report.get('split', '')} n={report['n']}  top-1 {report['top1']:.4f}  "
        f"macro-F1 {report['macro_f1']:.4f}{leaky}"
    )
    table.add_column("class")
    table.add_column("recall", justify="right")
    table.add_column("images", justify="right")
    for i, (name, recall) in enumerate(report["per_class"].items()):
        table.add_row(name, "-" if recall is None else f"{recall:.4f}", str(sum(report["confusion"][i])))
    console = Console()
    console.print(table)
    if ci_text(report):
        console.print(f"top-1 {report['top1']:.4f}{ci_text(report)}", markup=False)
    ignored = report.get("ignored_folders")
    if ignored:
        folders = ", ".join(f"{name} ({n} images)" for name, n in ignored.items())
        console.print(
            f"[bold red]NOT EVALUATED[/bold red]: class folder(s) the checkpoint does not know: {folders}; "
            f"the checkpoint has {len(report['per_class'])} classes"
        )
    units = report.get("units")
    if units:
        console.print(
            f"by {units['by']}: {units['n']} units (photos or clusters of photos), {units['all_correct']} with every "
            f"image right, {units['majority_correct']} with most images right"
        )
        for u in units["failing"]:
            wrong = ", ".join(f"{k} {v}" for k, v in u["predicted"].items())
            console.print(
                f"  {u['unit']}: {u['top1'] * 100:.0f} % of {u['n']} images right; wrong: {wrong}", markup=False
            )


def ci_text(report: dict) -> str:
    """`` (95 % CI 0.912-0.968 over 41 clusters)`` for a report with ``top1_ci95``, else empty."""
    ci = report.get("top1_ci95") or {}
    if ci.get("low") is None:
        return ""
    what = (
        f"{ci['units']} {ci['by']}s"
        if ci["by"] != "image"
        else f"{ci['units']} images: no photo groups known, too narrow"
    )
    return f" (95 % CI {ci['low']:.4f}-{ci['high']:.4f} over {what})"


def save_confusion_png(report: dict, path: str | Path, title: str | None = None) -> Path:
    """Draw the confusion matrix of a report to a PNG (written atomically)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    names = list(report["per_class"])
    cm = np.array(report["confusion"])
    fig, ax = plt.subplots(figsize=(7, 6))
    ax.imshow(cm, cmap="Blues")
    ax.set_xticks(range(len(names)), names, rotation=60, ha="right", fontsize=8)
    ax.set_yticks(range(len(names)), names, fontsize=8)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    for (i, j), v in np.ndenumerate(cm):
        if v:
            ax.text(j, i, str(v), ha="center", va="center", fontsize=7, color="white" if v > cm.max() / 2 else "black")
    ax.set_title(title or f"top-1 {report['top1']:.3f}, macro-F1 {report['macro_f1']:.3f}")
    fig.tight_layout()
    atomic_write(path, lambda tmp: fig.savefig(tmp, format="png", dpi=110))
    plt.close(fig)
    return Path(path)
