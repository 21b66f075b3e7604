"""Print drift and robustness reports as tables."""

from __future__ import annotations

from typing import Any


def _say(console: Any, text: str, **kwargs: Any) -> None:
    console.print(text, markup=False, soft_wrap=True, **kwargs)


def print_drift_report(report: Any, header: str = "") -> None:
    """Print a :class:`fishopt.monitor.drift.DriftReport`: one row per test, the skipped tests, the verdict."""
    from rich.console import Console
    from rich.table import Table

    console = Console()
    _say(console, f"{header}{report.n} images, alpha {report.alpha}, calibrated level {report.level:.3g}")
    table = Table()
    for col in ("test", "statistic", "threshold", "p-value (test)", "p-value (calibrated)", "drift"):
        table.add_column(col, justify="left" if col == "test" else "right")
    for name, test in report.tests.items():
        table.add_row(
            name,
            f"{test.statistic:.4g}",
            f"{test.threshold:.4g}",
            f"{test.p_value:.3g}",
            f"{test.p_calibrated:.3g}",
            "[red]yes[/red]" if test.drift else "no",
        )
    console.print(table)
    if "ks_softmax" in report.tests:
        _say(console, f"largest per-class shift: {report.tests['ks_softmax'].details['worst_class']}")
    for name, reason in report.skipped.items():
        _say(console, f"{name}: skipped, {reason}")
    console.print("[red]DRIFT DETECTED[/red]" if report.drift else "[green]no drift detected[/green]", soft_wrap=True)
    _say(
        console,
        "p-value (test) assumes independent images; the decision uses the calibrated p-value: the rank of "
        "the statistic among clean bootstrap windows of the reference.",
        style="dim",
    )


def print_robustness(result: dict[str, Any]) -> None:
    """Print a robustness result: top-1 (%) per corruption and severity (and the change against FP32), then the
    scores."""
    from rich.console import Console
    from rich.table import Table

    console = Console()
    sevs = [str(s) for s in result["severities"]]
    fp32 = result.get("fp32")
    table = Table(
        title=f"{result['format']} ({result['precision']}) on {result['data']}, n={result['n']}: top-1 %"
        + (" (change vs FP32)" if fp32 else "")
    )
    table.add_column("corruption")
    for s in sevs:
        table.add_column(f"s{s}", justify="right")
    if fp32:
        table.add_column("CE", justify="right")

    def cell(c: str, s: str) -> str:
        v = result["corruptions"][c][s]
        if v is None:
            return "-"
        ref = fp32["corruptions"][c][s] if fp32 else None
        return f"{100 * v:.1f}" if ref is None else f"{100 * v:.1f} ({100 * (v - ref):+.1f})"

    for c in result["corruptions"]:
        ce = result["ce"].get(c)
        extra = [("-" if ce is None else f"{ce:.3f}")] if fp32 else []
        table.add_row(c, *(cell(c, s) for s in sevs), *extra)
    console.print(table)
    _say(
        console,
        f"clean top-1 {100 * result['clean']:.2f} %, mean corrupted top-1 "
        f"{100 * result['mean_corrupted_top1']:.2f} % (mean error {result['mean_error']:.4f})",
    )
    if fp32:
        _say(
            console,
            f"FP32 reference: clean {100 * fp32['clean']:.2f} %, mean corrupted "
            f"{100 * fp32['mean_corrupted_top1']:.2f} %",
        )
        mce, rel = result["mce"], result["relative_mce"]
        lo, hi = result["ci95"]["relative_mce"]
        rel_text = "undefined" if rel is None else f"{rel:.3f}"
        if rel is not None and lo is not None:
            rel_text += f" (95 % CI {lo:.3f}-{hi:.3f})"
        verdict = "LESS ROBUST than FP32" if result["less_robust"] else "not measurably less robust than FP32"
        _say(console, f"mCE vs FP32 {'undefined' if mce is None else f'{mce:.3f}'}, relative mCE {rel_text}: {verdict}")
