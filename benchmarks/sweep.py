#!/usr/bin/env python
"""Run a grid of training recipes (and seeds) and collect their validation and test scores in one table.

Recipes are chosen on VALIDATION (the selection run's balanced accuracy and top-1); the test columns are shown so
that every measured number is on record, never to choose. Each run is a plain ``fishopt train`` in its own
process (``--parallel`` at a time, useful on a GPU machine), with ``trainer.refit=false`` unless a recipe sets it.

    python benchmarks/sweep.py --recipes recipes.txt --seeds 0,1,2 --out /tmp/sweep --parallel 8 -- trainer.accelerator=gpu

``recipes.txt`` holds one recipe per line: ``name: override override ...`` (``#`` starts a comment). Results:
``sweep.json`` (every run) and ``sweep.md`` (mean +- sd over seeds per recipe), written as runs finish.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor, as_completed
from pathlib import Path


def parse_recipes(text: str) -> dict[str, list[str]]:
    """``name: overrides`` lines -> {name: [override, ...]}."""
    out: dict[str, list[str]] = {}
    for raw in text.splitlines():
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        name, _, rest = line.partition(":")
        out[name.strip()] = rest.split()
    return out


def run_one(name: str, overrides: list[str], seed: int, out: Path, common: list[str], timeout: float) -> dict:
    """Train one recipe at one seed; return its scores (or the error)."""
    run_name = f"{name}-s{seed}"
    args = [
        sys.executable,
        "-c",
        "import sys; from fishopt.cli import main; sys.exit(main())",
        "train",
        f"out_dir={out / 'runs'}",
        f"run_name={run_name}",
        f"seed={seed}",
        "trainer.refit=false",
        "trainer.progress_bar=false",
        *common,
        *overrides,
    ]
    start = time.perf_counter()
    log = out / "logs" / f"{run_name}.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("w") as handle:
        proc = subprocess.run(args, stdout=handle, stderr=subprocess.STDOUT, timeout=timeout, check=False)
    row = {
        "recipe": name,
        "seed": seed,
        "overrides": overrides,
        "seconds": round(time.perf_counter() - start, 1),
        "exit": proc.returncode,
    }
    metrics_file = out / "runs" / run_name / "metrics.json"
    if proc.returncode == 0 and metrics_file.is_file():
        metrics = json.loads(metrics_file.read_text())
        row.update(
            val_top1=metrics["val"]["top1"],
            test_top1=metrics["test"]["top1"],
            test_macro_f1=metrics["test"]["macro_f1"],
            val_macro_f1=metrics["val"]["macro_f1"],
        )
        ci = metrics["test"].get("top1_ci95") or {}
        row["test_ci95"] = [ci.get("low"), ci.get("high")]
    else:
        row["error"] = log.read_text()[-2000:]
    return row


def summarize(rows: list[dict]) -> str:
    """Markdown table: per recipe, mean +- sd over seeds of val and test top-1."""
    lines = [
        "| recipe | seeds | val top-1 | test top-1 | test macro-F1 | minutes per run |",
        "|---|---|---|---|---|---|",
    ]
    by: dict[str, list[dict]] = {}
    for row in rows:
        by.setdefault(row["recipe"], []).append(row)

    def stat(values: list[float]) -> str:
        if not values:
            return "-"
        mean = 100 * statistics.mean(values)
        return f"{mean:.2f}" + (f" +- {100 * statistics.stdev(values):.2f}" if len(values) > 1 else "")

    for name, runs in by.items():
        ok = [r for r in runs if "val_top1" in r]
        minutes = statistics.mean(r["seconds"] for r in runs) / 60
        lines.append(
            f"| {name} | {len(ok)}/{len(runs)} | {stat([r['val_top1'] for r in ok])} | "
            f"{stat([r['test_top1'] for r in ok])} | {stat([r['test_macro_f1'] for r in ok])} | {minutes:.1f} |"
        )
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    """Entry point."""
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--recipes", required=True, help="file of 'name: overrides' lines")
    p.add_argument("--seeds", default="0", help="comma-separated seeds")
    p.add_argument("--out", required=True, help="output folder (runs/, logs/, sweep.json, sweep.md)")
    p.add_argument("--parallel", type=int, default=1, help="runs at a time")
    p.add_argument("--timeout", type=float, default=3600, help="seconds per run")
    p.add_argument("common", nargs="*", help="overrides for every run (after --)")
    args = p.parse_args(argv)
    recipes = parse_recipes(Path(args.recipes).read_text())
    seeds = [int(s) for s in args.seeds.split(",")]
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    jobs = [(name, overrides, seed) for seed in seeds for name, overrides in recipes.items()]
    rows: list[dict] = []
    env_threads = os.environ.get("OMP_NUM_THREADS")
    print(f"{len(jobs)} runs, {args.parallel} at a time, OMP_NUM_THREADS={env_threads}", flush=True)
    with ThreadPoolExecutor(max_workers=args.parallel) as pool:
        futures = {pool.submit(run_one, n, o, s, out, args.common, args.timeout): (n, s) for n, o, s in jobs}
        for future in as_completed(futures):
            row = future.result()
            rows.append(row)
            print(json.dumps({k: v for k, v in row.items() if k != "error"}), flush=True)
            (out / "sweep.json").write_text(json.dumps(rows, indent=1))
            (out / "sweep.md").write_text(summarize(sorted(rows, key=lambda r: (r["recipe"], r["seed"]))))
    print(summarize(sorted(rows, key=lambda r: (r["recipe"], r["seed"]))))
    return 0


if __name__ == "__main__":
    sys.exit(main())
