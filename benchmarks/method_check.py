#!/usr/bin/env python3
"""Measure the benchmark's timing method itself: does timing in one process distort the rows, and what do the
worker settings (idle gap between workers, OpenMP wait policy of torch's worker) change?

Uses the artifacts of a finished ``fishopt benchmark`` run (its results.json names them). For each method it times
batch-1 model-only latency of the chosen variants and prints p50 per variant and method, plus the background load:

- ``alone``: each variant in its own worker, timed with no other worker alive (the reference);
- ``in-process``: all variants loaded in this one process, interleaved (the method before worker processes);
- ``workers gap=G``: one worker per variant, interleaved rounds, G ms idle between two workers' bursts;
- ``workers omp=PASSIVE``: as above with ``OMP_WAIT_POLICY=PASSIVE`` in the torch workers.

Usage (from the repository root):
    python benchmarks/method_check.py --run runs/benchmark --variants torch-eager-fp32,onnxruntime-int8,openvino-int8
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np


def _specs(run: Path, names: list[str], threads: int, env: dict | None = None) -> list:
    from fishopt.artifacts.registry import get_variant
    from fishopt.benchmarks.workers import WorkerSpec
    from fishopt.checkpoint import load_checkpoint

    results = json.loads((run / "results.json").read_text())
    rows = {r["variant"]: r for r in results["rows"]}
    ckpt = load_checkpoint(results["settings"]["checkpoint"])
    meta = {k: ckpt.meta[k] for k in ("input_size", "load_size", "mean", "std")}
    images = ckpt.split_images("test", limit=64, data=results["settings"]["data_root"]).images.numpy()
    specs = []
    for name in names:
        variant = get_variant(name)
        torch_worker = variant.fmt.backend == "torch"
        specs.append(
            WorkerSpec(
                name=name,
                runtime=variant.fmt.runtime,
                path=rows[name]["artifact"],
                settings=dict(variant.settings),
                device=variant.device,
                threads=threads,
                meta=meta,
                images=images,
                env=(env or {}) if torch_worker else {},
            )
        )
    return specs


def workers(specs: list, rounds: int, calls: int, settle: float) -> dict[str, float]:
    from fishopt.benchmarks.stats import summarize
    from fishopt.benchmarks.workers import close_workers, start_workers, time_rounds

    started, errors = start_workers(specs)
    try:
        job = {"kind": "model", "batch": 1}
        times, errs = time_rounds(started, {n: job for n in started}, 20, rounds, calls, settle=settle)
    finally:
        close_workers(started)
    out = {n: summarize(t["total"])["p50_ms"] for n, t in times.items()}
    return out | {n: float("nan") for n in {**errors, **errs}}


def alone(specs: list, rounds: int, calls: int) -> dict[str, float]:
    out = {}
    for spec in specs:
        out.update(workers([spec], rounds, calls, 0.0))
    return out


def in_process(specs: list, rounds: int, calls: int) -> dict[str, float]:
    from fishopt.artifacts.registry import resolve
    from fishopt.benchmarks.stats import summarize
    from fishopt.benchmarks.timing import TimingPlan, time_interleaved
    from fishopt.benchmarks.workers import normalize

    fns = {}
    for spec in specs:
        rt = resolve(spec.runtime).load(spec.path, threads=spec.threads, device=spec.device, **spec.settings)
        x = spec.images[:1]
        batch = np.ascontiguousarray(x.transpose(0, 2, 3, 1)) if rt.raw_input else normalize(x, spec.meta)
        fns[spec.name] = (lambda r, b: lambda: r(b))(rt, batch)
    times, _ = time_interleaved(fns, TimingPlan(20, rounds, calls))
    return {n: summarize(t)["p50_ms"] for n, t in times.items()}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--run", required=True, type=Path, help="output folder of a fishopt benchmark run")
    parser.add_argument("--variants", default="torch-eager-fp32,onnxruntime-int8,openvino-int8")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--calls", type=int, default=20)
    parser.add_argument("--json", type=Path, default=None, help="also write the table as JSON here")
    args = parser.parse_args(argv)
    from fishopt.benchmarks.fingerprint import LoadSampler

    names = [v.strip() for v in args.variants.split(",") if v.strip()]
    sampler = LoadSampler().start()
    t0 = time.perf_counter()
    table = {
        "alone": alone(_specs(args.run, names, args.threads), args.rounds, args.calls),
        "workers gap=0": workers(_specs(args.run, names, args.threads), args.rounds, args.calls, 0.0),
        "workers gap=2ms": workers(_specs(args.run, names, args.threads), args.rounds, args.calls, 0.002),
        "workers gap=10ms": workers(_specs(args.run, names, args.threads), args.rounds, args.calls, 0.010),
        "workers omp=PASSIVE gap=2ms": workers(
            _specs(args.run, names, args.threads, {"OMP_WAIT_POLICY": "PASSIVE"}), args.rounds, args.calls, 0.002
        ),
        "in-process": in_process(_specs(args.run, names, args.threads), args.rounds, args.calls),
    }
    load = sampler.stop()
    print(
        f"batch-1 p50 ms, {args.threads} threads, background load {load['background_cpus']} CPUs "
        f"({100 * (load['background_share'] or 0):.0f}%), {time.perf_counter() - t0:.0f} s"
    )
    print("method".ljust(30) + "".join(n[:22].rjust(24) for n in names))
    for method, row in table.items():
        base = table["alone"]
        cells = [f"{row.get(n, float('nan')):.4f} ({row.get(n, float('nan')) / base[n]:.2f}x)" for n in names]
        print(method.ljust(30) + "".join(c.rjust(24) for c in cells))
    if args.json:
        args.json.write_text(json.dumps({"background_load": load, "p50_ms": table}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
