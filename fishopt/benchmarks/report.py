"""Benchmark outputs: ``results.json``, ``results.csv``, ``REPORT.md``, plots and the terminal table.

``results.json`` is ``{"schema_version", "fingerprint", "settings", "reference", "rows",
"recommendations", "warnings"}`` and fits :data:`fishopt.benchmarks.schema.RESULTS`.
"""

from __future__ import annotations

import csv
import io
from pathlib import Path

from fishopt.benchmarks.markdown import to_markdown
from fishopt.benchmarks.plots import save_confusion, save_e2e_split, save_pareto
from fishopt.benchmarks.recommend import across_models, best_by_precision, camera_targets, recommend, targets
from fishopt.benchmarks.schema import SCHEMA_VERSION, check_results
from fishopt.errors import ConfigError
from fishopt.io import atomic_write_json, atomic_write_text

#: Background load (share of all CPUs busy with other processes) above which timings are flagged.
BUSY_SHARE = 0.10
#: Background load above which multi-threaded PyTorch timings (and so speedups over eager) are distorted.
CONTENDED_SHARE = 0.25

CSV_COLUMNS = (
    "model",
    "variant",
    "runtime",
    "precision",
    "compute_precision",
    "mode",
    "device",
    "status",
    "reason",
    "top1",
    "macro_f1",
    "delta_top1",
    "agreement",
    "collapse",
    "bs1_p50_ms",
    "bs1_p90_ms",
    "bs1_p99_ms",
    "bs1_ci95_lo_ms",
    "bs1_ci95_hi_ms",
    "bs1_cv",
    "bs1_robust_cv",
    "e2e_p50_ms",
    "e2e_p99_ms",
    "speedup_bs1",
    "images_per_s",
    "speedup_throughput",
    "size_bytes",
    "build_seconds",
    "peak_mem_mb",
    "gops",
    "peak_gops",
    "peak_share",
    "best_batch",
    "best_images_per_s",
    "images_per_s_per_core",
    "e2e_1920x1080_p50_ms",
    "e2e_590x445_p50_ms",
)


def warnings_of(fp: dict, settings: dict, rows: list[dict]) -> list[str]:
    """Notes a reader must see: malloc, background load, unstable timings, failures, collapses."""
    out = []
    if not fp["malloc"]["tuned"]:
        out.append(
            "glibc malloc was NOT tuned (MALLOC_MMAP_THRESHOLD_/MALLOC_TRIM_THRESHOLD_ unset): "
            "PyTorch eager batch-32 times can be ~2x slower; run through 'fishopt benchmark' without --no-malloc-tuning"
        )
    share = (fp.get("background_load") or {}).get("background_share")
    if share is not None and share > BUSY_SHARE:
        out.append(
            f"other processes kept {100 * share:.0f}% of all CPUs busy during the run: absolute times are inflated, "
            "compare ratios only (variants were interleaved so all saw the same load)"
        )
    if share is not None and share > CONTENDED_SHARE and settings["threads"] > 1:
        out.append(
            f"heavy contention ({100 * share:.0f}% of CPUs busy elsewhere) with {settings['threads']} threads: PyTorch's "
            "OpenMP pool slows far more than ONNX Runtime/OpenVINO under load (1-3 ms -> 100+ ms), so speedups over "
            "torch-eager-fp32 are inflated; rerun on a quiet machine or with --threads 1"
        )
    for row in rows:
        lat = (row.get("latency") or {}).get("bs1")
        if lat and lat["unstable"]:
            out.append(
                f"{row['variant']}: bs1 latency unstable (robust CV {lat['robust_cv']:.2f}, CV {lat['cv']:.2f}); "
                "rerun on a quiet machine"
            )
        if row["status"] == "failed":
            out.append(f"{row['variant']}: FAILED at {row.get('stage') or '?'}: {row['reason']}")
        if row.get("accuracy") and row["accuracy"]["collapse"]:
            out.append(
                f"{row['variant']}: accuracy COLLAPSE (top-1 {row['accuracy']['delta_top1']:+.2f} points, "
                f"worst class {row['accuracy']['worst_class']})"
            )
    if settings.get("quick"):
        out.append(
            f"quick run: {settings['n_test']} of {settings['n_test_total']} test images and few rounds; not for publication"
        )
    if settings.get("leaky_split"):
        out.append("the checkpoint's split is LEAKY (by file): accuracy is inflated")
    return out


def assemble(
    fp: dict,
    settings: dict,
    reference: dict,
    rows: list[dict],
    e2e_today: dict | None = None,
    camera: dict | None = None,
    profiles: dict | None = None,
    robustness: dict | None = None,
) -> dict:
    """Build the results dict (adds recommendations, targets and warnings).

    Args:
        e2e_today: Per input size, today's pipeline (full decode + torch resize + eager FP32) on the baseline.
        camera: Per input size, the end-to-end inputs (files, mean size) and the fast-path agreement verdict.
        profiles: Per-operator profiles by variant (the appendix).
        robustness: The quick robustness check of the recommended variants
            (:func:`fishopt.monitor.robustness.quick_robustness`, or ``{"skipped": reason}``).
    """
    batch = str(max(settings["batch_sizes"]))
    ref = {k: reference[k] for k in ("n", "top1", "macro_f1", "per_class", "top1_ci95") if k in reference}
    recs = recommend(rows, settings["max_drop"], settings["batch_sizes"])
    today = e2e_today or {}
    return {
        "schema_version": SCHEMA_VERSION,
        "fingerprint": fp,
        "settings": {**settings, "best_by_precision": best_by_precision(rows, batch)},
        "reference": ref,
        "rows": rows,
        "recommendations": recs,
        "targets": {**targets(rows, recs, batch), "camera": camera_targets(rows, recs, today, settings["max_drop"])},
        "e2e_today": today,
        "camera": camera or {},
        "profiles": profiles or {},
        "robustness": robustness or {},
        "warnings": warnings_of(fp, settings, rows) + _roofline_warnings(rows) + _camera_warnings(camera or {}),
    }


def _roofline_warnings(rows: list[dict]) -> list[str]:
    return [
        f"{r['variant']}: {100 * r['peak_share']:.0f}% of the measured "
        f"{r.get('compute_precision') or r['precision']} "
        "peak: the peak measurement was disturbed (background load during it); rerun on a quiet machine"
        for r in rows
        if (r.get("peak_share") or 0) > 1.0
    ]


_PIPELINE_TEXT = {
    "turbo": "DCT scaling + uint8 resize",
    "fast": "DCT scaling + float resize",
    "full": "full decode + float resize",
    "exact": "full decode + exact resize, today's pixels",
}


def _camera_warnings(camera: dict) -> list[str]:
    out = []
    for size, c in camera.items():
        failed = [k for k in c.get("checks") or [c["agreement"]] if not k["taken"]]
        if not failed:
            continue
        why = ", ".join(
            f"{k.get('pipeline', '?')} {100 * k['agreement']:.1f}% / {k['delta_points']:+.2f} points" for k in failed
        )
        out.append(
            f"input size {size}: faster decode paths changed the reference's answers (agreement / top-1: {why}): "
            f"its end-to-end rows use the {c['pipeline']} pipeline ({_PIPELINE_TEXT.get(c['pipeline'], '?')})"
        )
    return out


def merge(results: list[dict], latency_budget_ms: float | None = None) -> dict:
    """One results dict holding the rows of several runs (e.g. two checkpoints): one row per model x variant.

    The first run's fingerprint and settings are kept; every row keeps its ``model`` and gains ``run`` (the index of
    its run) so the table, CSV and plots show them side by side. ``recommendations`` are per model (each model's
    variants against its own FP32 reference, keys ``<model> <target>``); ``across_models`` picks across models
    (:func:`fishopt.benchmarks.recommend.across_models`: the fastest variant within ``max_drop`` points of the most
    accurate one, and with ``latency_budget_ms`` the most accurate variant under that budget). Latency ratios are
    only comparable between rows of runs with similar background load (listed per run in
    ``settings["merged_runs"]``). ``camera_by_model``, ``e2e_today_by_model`` and ``camera_targets_by_model`` keep each
    run's decode-pipeline gates, today's-pipeline timings and end-to-end targets (the top-level ``camera``,
    ``e2e_today`` and ``targets`` are the first run's).

    Raises:
        ConfigError: Nothing to merge, or the runs measured accuracy on different test splits.
    """
    if not results:
        raise ConfigError("nothing to merge: pass the output folders of one or more fishopt benchmark runs")
    hashes = {res["fingerprint"].get("split_hash") for res in results}
    if len(hashes) > 1:
        raise ConfigError(
            "these benchmark runs measured accuracy on different test splits "
            f"({', '.join(sorted(str(h) for h in hashes))}); compare models trained on one split "
            "(fishopt train data.split_file=<the other run>/split.json)"
        )
    out = {**results[0], "rows": [], "warnings": []}
    runs = []
    recs: dict[str, dict] = {}
    for i, res in enumerate(results):
        model = res["settings"].get("model")
        runs.append(
            {
                "checkpoint": res["settings"]["checkpoint"],
                "model": model,
                "reference": {k: res["reference"].get(k) for k in ("top1", "macro_f1", "top1_ci95")}
                if res.get("reference")
                else None,
                "background_load": res["fingerprint"].get("background_load"),
                "time_utc": res["fingerprint"]["time_utc"],
                "elapsed_seconds": res["settings"].get("elapsed_seconds"),
            }
        )
        rows = [{**row, "run": i, "model": row.get("model") or model} for row in res["rows"]]
        out["rows"] += rows
        out["warnings"] += [f"run {i} ({model}): {w}" for w in res["warnings"]]
        for target, rec in recommend(rows, res["settings"]["max_drop"], res["settings"]["batch_sizes"]).items():
            recs[f"{model} {target}"] = {**rec, "model": model}
    out["settings"] = {**results[0]["settings"], "merged_runs": runs, "latency_budget_ms": latency_budget_ms}
    names = [str(res["settings"].get("model") or i) for i, res in enumerate(results)]
    out["robustness_by_model"] = {n: res.get("robustness") or {} for n, res in zip(names, results, strict=True)}
    # each model has its own decode-pipeline gates, today's pipeline and end-to-end targets (the top level: run 0's)
    out["camera_by_model"] = {n: res.get("camera") or {} for n, res in zip(names, results, strict=True)}
    out["e2e_today_by_model"] = {n: res.get("e2e_today") or {} for n, res in zip(names, results, strict=True)}
    out["camera_targets_by_model"] = {
        n: (res.get("targets") or {}).get("camera") for n, res in zip(names, results, strict=True)
    }
    out["recommendations"] = recs
    out["across_models"] = across_models(
        out["rows"], out["settings"]["max_drop"], latency_budget_ms, out["settings"]["batch_sizes"]
    )
    return out


def flat_row(row: dict) -> dict:
    """One CSV line of a row (throughput at the largest batch size)."""
    acc = row.get("accuracy") or {}
    bs1 = (row.get("latency") or {}).get("bs1") or {}
    e2e = bs1.get("e2e") or {}
    tp = row.get("throughput") or {}
    big = tp[max(tp, key=int)] if tp else {}
    ci = bs1.get("ci95_ms") or [None, None]
    return {
        **{k: row.get(k) for k in ("variant", "runtime", "precision", "mode", "device", "status", "reason")},
        "top1": acc.get("top1"),
        "macro_f1": acc.get("macro_f1"),
        "delta_top1": acc.get("delta_top1"),
        "agreement": acc.get("agreement"),
        "collapse": acc.get("collapse"),
        "bs1_p50_ms": bs1.get("p50_ms"),
        "bs1_p90_ms": bs1.get("p90_ms"),
        "bs1_p99_ms": bs1.get("p99_ms"),
        "bs1_ci95_lo_ms": ci[0],
        "bs1_ci95_hi_ms": ci[1],
        "bs1_cv": bs1.get("cv"),
        "bs1_robust_cv": bs1.get("robust_cv"),
        "e2e_p50_ms": e2e.get("p50_ms"),
        "e2e_p99_ms": e2e.get("p99_ms"),
        "speedup_bs1": row.get("speedup_bs1"),
        "images_per_s": big.get("images_per_s"),
        "speedup_throughput": row.get("speedup_throughput"),
        **{
            k: row.get(k)
            for k in (
                "size_bytes",
                "build_seconds",
                "peak_mem_mb",
                "gops",
                "peak_gops",
                "peak_share",
                "model",
                "compute_precision",
            )
        },
        "best_batch": (row.get("throughput_best") or {}).get("batch_size"),
        "best_images_per_s": (row.get("throughput_best") or {}).get("images_per_s"),
        "images_per_s_per_core": (row.get("throughput_best") or {}).get("images_per_s_per_core"),
        **{
            f"e2e_{size}_p50_ms": (((row.get("e2e") or {}).get(size) or {}).get("total") or {}).get("p50_ms")
            for size in ("1920x1080", "590x445")
        },
    }


def to_csv(results: dict) -> str:
    """``results.csv``: one line per row."""
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=CSV_COLUMNS, lineterminator="\n")
    writer.writeheader()
    for row in results["rows"]:
        writer.writerow(flat_row(row))
    return buf.getvalue()


def write_all(results: dict, out: Path, show: bool = True) -> dict[str, Path]:
    """Validate and write every output; print the terminal table.

    Returns:
        Name -> path of what was written.
    """

    check_results(results)
    out = Path(out)
    for stale in out.glob("confusion-*.png"):  # from an earlier run with --overwrite
        stale.unlink()
    paths = {
        "json": atomic_write_json(out / "results.json", results),
        "csv": atomic_write_text(out / "results.csv", to_csv(results)),
        "pareto": save_pareto(results, out / "pareto.png"),
    }
    split = save_e2e_split(results, out / "e2e_split.png")
    if split is not None:
        paths["e2e_split"] = split
    confusion = save_confusion(results, out)
    if confusion is not None:
        paths["confusion"] = confusion
    paths["markdown"] = atomic_write_text(
        out / "REPORT.md", to_markdown(results, {k: p.name for k, p in paths.items()})
    )
    if show:
        print_table(results)
    return paths


def _fmt(value: float | None, spec: str = ".2f", suffix: str = "") -> str:
    return "-" if value is None else f"{value:{spec}}{suffix}"


def print_table(results: dict) -> None:
    """Print the rows and recommendations as a rich table."""
    from rich.console import Console
    from rich.table import Table

    big = str(max(results["settings"]["batch_sizes"]))
    table = Table(
        title=f"fishopt benchmark ({results['settings']['threads']} threads, "
        f"malloc {'tuned' if results['fingerprint']['malloc']['tuned'] else 'NOT tuned'})"
    )
    for col in (
        "variant",
        "status",
        "top-1",
        "Δ pts",
        "bs1 p50 ms",
        "e2e p50 ms",
        "speedup",
        f"img/s bs{big}",
        "size MB",
    ):
        table.add_column(col, justify="left" if col in ("variant", "status") else "right")
    for row in results["rows"]:
        acc = row.get("accuracy") or {}
        bs1 = (row.get("latency") or {}).get("bs1") or {}
        tp = ((row.get("throughput") or {}).get(big) or {}).get("images_per_s")
        status = {"ok": "[green]ok[/green]", "skipped": "[yellow]skipped[/yellow]", "failed": "[red]failed[/red]"}[
            row["status"]
        ]
        table.add_row(
            row["variant"],
            status,
            _fmt(acc.get("top1"), ".4f"),
            _fmt(acc.get("delta_top1"), "+.2f"),
            _fmt(bs1.get("p50_ms"), ".3f"),
            _fmt((bs1.get("e2e") or {}).get("p50_ms"), ".3f"),
            _fmt(row.get("speedup_bs1"), ".2f", "x"),
            _fmt(tp, ".1f"),
            _fmt(row["size_bytes"] / 1e6 if row.get("size_bytes") else None, ".2f"),
        )
    console = Console()
    if not console.is_terminal:
        console.width = 160
    console.print(table)
    for target, rec in results["recommendations"].items():
        console.print(f"[bold]{target}[/bold]: {rec['variant'] or '-'}  ({rec['reason']})")
    for warning in results["warnings"]:
        console.print(f"[yellow]warning:[/yellow] {warning}")
