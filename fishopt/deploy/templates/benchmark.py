#!/usr/bin/env python3
"""Latency and throughput of this bundle's runtime on this device.

The same method as ``fishopt benchmark``: a real (golden) image, preprocessed once, repeated to the batch
size; ``--warmup`` untimed calls, then ``--iters`` timed calls (wall clock, each call returns host arrays,
so GPU work is finished); percentiles by linear interpolation between order statistics. End to end
(decode + resize + model, one image from its file) is timed as well: ``e2e_p50_ms``/``e2e_p90_ms``.

Usage:
    python3 benchmark.py [--runtime auto|onnxruntime|tensorrt] [--batch 1] [--warmup 10] [--iters 300] [--json]
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import sys
import time

import numpy as np

from infer import HERE, BundleError, ImageError, input_hw, load_bundle, load_image, open_model


def percentile(samples: list[float], q: float) -> float:
    """``q``-th percentile (0-100), linear interpolation between order statistics."""
    xs = sorted(samples)
    pos = (len(xs) - 1) * q / 100.0
    lo = math.floor(pos)
    hi = min(lo + 1, len(xs) - 1)
    return xs[lo] + (xs[hi] - xs[lo]) * (pos - lo)


def summarize(seconds: list[float], batch: int) -> dict:
    """Per-call times (s) -> mean/p50/p90/p99 in ms, coefficient of variation, images per second."""
    ms = [s * 1000.0 for s in seconds]
    mean = sum(ms) / len(ms)
    var = sum((x - mean) ** 2 for x in ms) / max(1, len(ms) - 1)
    return {
        "n": len(ms),
        "mean_ms": round(mean, 4),
        "p50_ms": round(percentile(ms, 50), 4),
        "p90_ms": round(percentile(ms, 90), 4),
        "p99_ms": round(percentile(ms, 99), 4),
        "cv": round(math.sqrt(var) / mean, 4) if mean else 0.0,
        "throughput_ips": round(batch * len(ms) / sum(seconds), 2),
    }


def time_calls(fn, warmup: int, iters: int) -> list[float]:
    """Call ``fn`` ``warmup`` times untimed, then ``iters`` times timed; return per-call seconds."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(iters):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return times


def run(runtime: str, batch: int, warmup: int, iters: int, threads: int | None) -> dict:
    """Benchmark the model; return the result row."""
    bundle = load_bundle()
    golden = json.loads((HERE / bundle["verify"]["golden"]).read_text(encoding="utf-8"))
    image_path = HERE / golden["images"][0]["file"]
    size = input_hw(bundle)
    fixed = bundle["model"]["input"]["shape"][0]
    if isinstance(fixed, int) and fixed > 0 and batch != fixed:
        raise BundleError(f"the model's batch size is fixed at {fixed}; pass --batch {fixed}")
    model = open_model(bundle, runtime, threads=threads)
    image = load_image(image_path, size)
    inputs = np.ascontiguousarray(np.repeat(image[None], batch, axis=0))
    row = summarize(time_calls(lambda: model(inputs), warmup, iters), batch)
    e2e = time_calls(lambda: model(load_image(image_path, size)[None]), min(warmup, 3), max(1, min(iters, 50)))
    row.update({
        "runtime": model.name, "runtime_version": model.version, "precision": model.precision,
        "batch": batch, "warmup": warmup, "threads": threads,
        "e2e_p50_ms": round(percentile(e2e, 50) * 1000, 4), "e2e_p90_ms": round(percentile(e2e, 90) * 1000, 4),
        "machine": platform.machine(), "cpus": os.cpu_count(),
    })
    return row


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Latency p50/p90 and throughput of this bundle's runtime.")
    parser.add_argument("--runtime", choices=("auto", "onnxruntime", "tensorrt"), default="auto")
    parser.add_argument("--batch", type=int, default=1)
    parser.add_argument("--warmup", type=int, default=10, help="untimed calls first")
    parser.add_argument("--iters", type=int, default=300, help="timed calls")
    parser.add_argument("--threads", type=int, default=None, help="CPU threads for onnxruntime")
    parser.add_argument("--json", action="store_true", help="print the result as one JSON object")
    args = parser.parse_args(argv)
    if args.batch < 1 or args.iters < 1 or args.warmup < 0:
        print("error: --batch and --iters must be at least 1, --warmup at least 0", file=sys.stderr)
        return 2
    try:
        row = run(args.runtime, args.batch, args.warmup, args.iters, args.threads)
    except (BundleError, ImageError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps(row))
    else:
        print(f"{row['runtime']} {row['runtime_version']} ({row['precision']}), batch {row['batch']}: "
              f"p50 {row['p50_ms']:.3f} ms, p90 {row['p90_ms']:.3f} ms, {row['throughput_ips']:.1f} images/s "
              f"(cv {row['cv']:.2f}, {row['n']} calls after {row['warmup']} warm-up); "
              f"end to end (decode+resize+model, 1 image) p50 {row['e2e_p50_ms']:.2f} ms")
    return 0


if __name__ == "__main__":
    sys.exit(main())
