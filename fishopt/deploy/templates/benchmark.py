#!/usr/bin/env python3
"""Latency and throughput of this bundle's runtime on this device.

The same method as ``fishopt benchmark``: a real (golden) image, preprocessed once, repeated to the batch
size; ``--warmup`` untimed calls, then ``--iters`` timed calls (wall clock, each call returns host arrays,
so GPU work is finished); percentiles by linear interpolation between order statistics.

End to end (JPEG bytes in memory -> label, batch 1, infer.py's own path) is timed per input size
(``--input-sizes``, default ``native,1920x1080,590x445``: the golden image re-encoded in memory at a camera's frame
size, JPEG quality 90), split into decode, preprocess and model p50s, and compared with the general path (a full
decode, no DCT scaling) on the same bytes. Reported ratios: ``speedup_vs_full_decode``, ``input_over_model``
((decode + preprocess) / model) and ``e2e_over_model`` (end to end / model-only).

Usage:
    python3 benchmark.py [--runtime auto|onnxruntime|tensorrt] [--batch 1] [--warmup 10] [--iters 300]
                         [--input-sizes native,1920x1080,590x445] [--json]
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

from infer import HERE, BundleError, ImageError, bundle_pipeline, fishdecode, input_hw, load_bundle, load_image, open_model


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


def camera_bytes(path, size: str) -> bytes:
    """The image file's bytes (``native``), or the image re-encoded as a ``WxH`` JPEG (quality 90) in memory."""
    import io

    from PIL import Image

    if size == "native":
        return path.read_bytes()
    w, h = (int(v) for v in size.split("x"))
    with Image.open(path) as img:
        rgb = img.convert("RGB")
    scale = max(w / rgb.width, h / rgb.height)
    nw, nh = max(w, round(rgb.width * scale)), max(h, round(rgb.height * scale))
    left, top = (nw - w) // 2, (nh - h) // 2
    buf = io.BytesIO()
    rgb.resize((nw, nh), Image.LANCZOS).crop((left, top, left + w, top + h)).save(buf, "JPEG", quality=90)
    return buf.getvalue()


def end_to_end(model, data: bytes, size: tuple[int, int], model_p50: float, iters: int, warmup: int,
               pipeline: str = "fast") -> dict:
    """JPEG bytes -> label at batch 1 through infer.py's ``pipeline``, split per stage; the exact one for comparison."""
    stages: dict[str, list[float]] = {"decode": [], "preprocess": [], "model": [], "total": []}
    for i in range(warmup + iters):
        t0 = time.perf_counter()
        decoded = fishdecode.decode_rgb(data, size, fast=pipeline in fishdecode.DCT_PIPELINES)
        t1 = time.perf_counter()
        x = np.ascontiguousarray(fishdecode.fit_decoded(decoded, size, pipeline)[None])
        t2 = time.perf_counter()
        model(x)
        t3 = time.perf_counter()
        if i >= warmup:
            for key, value in (("decode", t1 - t0), ("preprocess", t2 - t1), ("model", t3 - t2), ("total", t3 - t0)):
                stages[key].append(value)
    full = time_calls(lambda: model(load_image(data, size, pipeline="exact")[None]), min(warmup, 2), max(1, iters // 3))
    p50 = {k: round(percentile(v, 50) * 1000, 4) for k, v in stages.items()}
    full_p50 = round(percentile(full, 50) * 1000, 4)
    return {
        "bytes": len(data), "decode_p50_ms": p50["decode"], "preprocess_p50_ms": p50["preprocess"],
        "model_p50_ms": p50["model"], "e2e_p50_ms": p50["total"], "e2e_p90_ms": round(percentile(stages["total"], 90) * 1000, 4),
        "full_decode_e2e_p50_ms": full_p50, "speedup_vs_full_decode": round(full_p50 / p50["total"], 3),
        "input_over_model": round((p50["decode"] + p50["preprocess"]) / p50["model"], 3) if p50["model"] else None,
        "e2e_over_model": round(p50["total"] / model_p50, 3) if model_p50 else None,
    }


def run(runtime: str, batch: int, warmup: int, iters: int, threads: int | None,
        input_sizes: tuple[str, ...] = ("native", "1920x1080", "590x445")) -> dict:
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
    one = np.ascontiguousarray(inputs[:1])
    model_p50 = row["p50_ms"] if batch == 1 else round(percentile(time_calls(lambda: model(one), 3, 50), 50) * 1000, 4)
    e2e_iters = max(1, min(iters, 60))
    pipeline = bundle_pipeline(bundle)
    row["e2e"] = {s: end_to_end(model, camera_bytes(image_path, s), size, model_p50, e2e_iters, min(warmup, 3), pipeline)
                  for s in input_sizes}
    first = row["e2e"][input_sizes[0]]
    row.update({
        "runtime": model.name, "runtime_version": model.version, "precision": model.precision,
        "batch": batch, "warmup": warmup, "threads": threads, "model_bs1_p50_ms": model_p50, "pipeline": pipeline,
        "e2e_p50_ms": first["e2e_p50_ms"], "e2e_p90_ms": first["e2e_p90_ms"],
        "decoder": "simplejpeg" if fishdecode._simplejpeg() is not None else "pillow",
        "machine": platform.machine(), "cpus": os.cpu_count(),
    })
    return row


def _sizes(text: str) -> tuple[str, ...]:
    out = []
    for item in text.split(","):
        item = item.strip().lower()
        if item != "native":
            w, h = (int(v) for v in item.split("x"))
            if w < 16 or h < 16:
                raise ValueError(item)
        out.append(item)
    return tuple(out)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Latency p50/p90 and throughput of this bundle's runtime.")
    parser.add_argument("--runtime", choices=("auto", "onnxruntime", "tensorrt"), default="auto")
    parser.add_argument("--batch", type=int, default=1)
    parser.add_argument("--warmup", type=int, default=10, help="untimed calls first")
    parser.add_argument("--iters", type=int, default=300, help="timed calls")
    parser.add_argument("--threads", type=int, default=None, help="CPU threads for onnxruntime")
    parser.add_argument("--input-sizes", default="native,1920x1080,590x445",
                        help="end-to-end input sizes: native (the golden file) and/or WxH camera frames")
    parser.add_argument("--json", action="store_true", help="print the result as one JSON object")
    args = parser.parse_args(argv)
    if args.batch < 1 or args.iters < 1 or args.warmup < 0:
        print("error: --batch and --iters must be at least 1, --warmup at least 0", file=sys.stderr)
        return 2
    try:
        sizes = _sizes(args.input_sizes)
    except ValueError:
        print(f"error: --input-sizes must be native and/or WIDTHxHEIGHT (e.g. 1920x1080), got {args.input_sizes!r}",
              file=sys.stderr)
        return 2
    try:
        row = run(args.runtime, args.batch, args.warmup, args.iters, args.threads, sizes)
    except (BundleError, ImageError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps(row))
    else:
        print(f"{row['runtime']} {row['runtime_version']} ({row['precision']}), batch {row['batch']}: "
              f"p50 {row['p50_ms']:.3f} ms, p90 {row['p90_ms']:.3f} ms, {row['throughput_ips']:.1f} images/s "
              f"(cv {row['cv']:.2f}, {row['n']} calls after {row['warmup']} warm-up)")
        for size, e in row["e2e"].items():
            print(f"  end to end {size} ({e['bytes'] / 1e3:.0f} kB JPEG, {row['decoder']}): p50 {e['e2e_p50_ms']:.3f} ms = "
                  f"decode {e['decode_p50_ms']:.3f} + preprocess {e['preprocess_p50_ms']:.3f} + model "
                  f"{e['model_p50_ms']:.3f}; {e['speedup_vs_full_decode']:.2f}x faster than a full decode, "
                  f"(decode+preprocess)/model {e['input_over_model']}, end to end / model-only {e['e2e_over_model']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
