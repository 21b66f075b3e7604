#!/usr/bin/env python3
"""Does fishopt's p50 (batch 1, or ``--batch N``) agree with the runtimes' own tools on the same file and threads?

For an OpenVINO IR: OpenVINO's ``benchmark_app`` (it ships in the openvino wheel; ``-data_shape`` at the batch,
1 stream, ``-nthreads``, sync API) against fishopt's worker timing of the variant. For an ONNX file: a plain
``InferenceSession.run`` loop in a fresh process (the same intra-op threads and spinning setting as the variant)
against fishopt's worker timing. Tool and fishopt alternate in rounds (tool, fishopt, tool, ...) so background
load falls on both; the verdict compares the medians of the per-round medians: fishopt within ``--tolerance``
(default 15 %) of the tool, or exit status 1.

Usage (from the repository root, after a benchmark run):
    python benchmarks/tool_agreement.py --run runs/benchmark --variants openvino-int8,onnxruntime-int8,onnx-fp32
    python benchmarks/tool_agreement.py --run runs/benchmark/efficientnet_lite0 --variants openvino-int8 --batch 32
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import statistics
import subprocess
import sys
from pathlib import Path

PLAIN_ORT = r"""
import sys, time, numpy as np, onnxruntime as ort
path, threads, spin, n, batch = sys.argv[1], int(sys.argv[2]), sys.argv[3], int(sys.argv[4]), int(sys.argv[5])
o = ort.SessionOptions(); o.intra_op_num_threads = threads; o.inter_op_num_threads = 1
o.add_session_config_entry("session.intra_op.allow_spinning", spin)
s = ort.InferenceSession(path, o, providers=["CPUExecutionProvider"])
i = s.get_inputs()[0]
shape = [batch if not isinstance(d, int) else d for d in i.shape]
x = (np.random.default_rng(0).integers(0, 255, shape).astype(np.uint8) if i.type == "tensor(uint8)"
     else np.random.default_rng(0).standard_normal(shape).astype(np.float32))
for _ in range(50): s.run(None, {i.name: x})
t = []
for _ in range(n):
    t0 = time.perf_counter(); s.run(None, {i.name: x}); t.append(time.perf_counter() - t0)
print(sorted(t)[len(t) // 2] * 1000)
"""


def benchmark_app(xml: str, shape: list[int], threads: int, seconds: int, precision: str | None = None) -> float:
    """Median latency (ms) from OpenVINO's benchmark_app (``-infer_precision`` when ``precision`` is given: without
    it benchmark_app takes the CPU's default, bf16 on CPUs with AMX or AVX-512 BF16, even for an f32 variant)."""
    exe = shutil.which("benchmark_app") or str(Path(sys.executable).with_name("benchmark_app"))
    cmd = [
        exe,
        "-m",
        xml,
        "-d",
        "CPU",
        "-data_shape",
        "[" + ",".join(map(str, shape)) + "]",
        "-nstreams",
        "1",
        "-nthreads",
        str(threads),
        "-hint",
        "none",
        "-api",
        "sync",
        "-t",
        str(seconds),
    ]
    if precision:
        cmd += ["-infer_precision", precision]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600, check=False)
    found = re.search(r"Median:\s+([\d.]+)\s+(ms|us)", proc.stdout)
    if proc.returncode != 0 or found is None:
        raise RuntimeError(f"benchmark_app failed ({' '.join(cmd)}):\n{proc.stdout[-1500:]}\n{proc.stderr[-1500:]}")
    value, unit = found.groups()
    return float(value) / (1000.0 if unit == "us" else 1.0)


def plain_ort(path: str, threads: int, spinning: bool, calls: int, batch: int = 1) -> float:
    """Median latency (ms) of a plain InferenceSession.run loop in a fresh process."""
    out = subprocess.run(
        [sys.executable, "-c", PLAIN_ORT, path, str(threads), "1" if spinning else "0", str(calls), str(batch)],
        capture_output=True,
        text=True,
        timeout=600,
        check=True,
    ).stdout
    return float(out.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--run", required=True, type=Path, help="output folder of a fishopt benchmark run")
    parser.add_argument("--variants", default="openvino-int8,onnxruntime-int8")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=int, default=3, help="benchmark_app duration per round (whole seconds)")
    parser.add_argument("--calls", type=int, default=2000, help="calls per round (plain loop and fishopt)")
    parser.add_argument("--batch", type=int, default=1, help="batch size timed (a dynamic-batch file at this size)")
    parser.add_argument("--tolerance", type=float, default=0.15)
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args(argv)
    if args.batch < 1:
        parser.error(f"--batch must be at least 1, got {args.batch}")

    from fishopt.artifacts.registry import get_variant
    from fishopt.benchmarks.fingerprint import LoadSampler
    from fishopt.benchmarks.stats import summarize
    from fishopt.benchmarks.workers import WorkerSpec, close_workers, start_workers

    results = json.loads((args.run / "results.json").read_text())
    rows = {r["variant"]: r for r in results["rows"]}
    settings = results["settings"]
    input_size = settings.get("input_size") or [112, 112]
    from fishopt.checkpoint import load_checkpoint

    ckpt = load_checkpoint(settings["checkpoint"])
    meta = {k: ckpt.meta[k] for k in ("input_size", "load_size", "mean", "std")}
    images = ckpt.split_images("test", limit=max(8, args.batch), data=settings["data_root"]).images.numpy()
    sampler = LoadSampler().start()
    report, failed = {}, False
    for name in [v.strip() for v in args.variants.split(",") if v.strip()]:
        variant, row = get_variant(name), rows[name]
        spec = WorkerSpec(
            name=name,
            runtime=variant.fmt.runtime,
            path=row["artifact"],
            settings=dict(variant.settings),
            threads=args.threads,
            meta=meta,
            images=images,
        )
        workers, errors = start_workers([spec])
        if errors:
            print(f"{name}: cannot load: {errors[name]}")
            failed = True
            continue
        tool_ms, ours_ms = [], []
        try:
            job = {"kind": "model", "batch": args.batch}
            workers[name].time(job, 0, 50)
            # the precision fishopt's worker compiled the variant in: benchmark_app gets the same
            precision = workers[name].request("info").get("inference_precision")
            for _ in range(args.rounds):
                if variant.fmt.backend == "openvino":
                    raw = bool(row.get("raw_input"))
                    shape = [args.batch, *settings["load_size"], 3] if raw else [args.batch, 3, *input_size]
                    tool_ms.append(benchmark_app(row["artifact"], shape, args.threads, args.seconds, precision))
                    tool = f"benchmark_app (1 stream, sync, {precision or 'default'})"
                else:
                    spinning = bool(variant.settings.get("spinning"))
                    tool_ms.append(plain_ort(row["artifact"], args.threads, spinning, args.calls, args.batch))
                    tool = "plain InferenceSession.run loop"
                stages = workers[name].time(job, args.calls)
                ours_ms.append(summarize(stages["total"])["p50_ms"])
        finally:
            close_workers(workers)
        tool_p50, ours_p50 = statistics.median(tool_ms), statistics.median(ours_ms)
        ratio = ours_p50 / tool_p50
        ok = abs(ratio - 1.0) <= args.tolerance
        failed |= not ok
        report[name] = {
            "tool": tool,
            "tool_p50_ms": round(tool_p50, 4),
            "fishopt_p50_ms": round(ours_p50, 4),
            "ratio": round(ratio, 3),
            "within_tolerance": ok,
            "tool_rounds": tool_ms,
            "fishopt_rounds": ours_ms,
        }
        print(
            f"{name:24s} {tool:34s} {tool_p50:.4f} ms   fishopt {ours_p50:.4f} ms   ratio {ratio:.2f} "
            f"({'ok' if ok else 'OUTSIDE'} +-{100 * args.tolerance:.0f}%)"
        )
    load = sampler.stop()
    share = 100 * (load["background_share"] or 0)
    print(f"batch {args.batch}, threads {args.threads}; background load {load['background_cpus']} CPUs ({share:.0f}%)")
    if args.json:
        args.json.write_text(json.dumps({"batch": args.batch, "background_load": load, "variants": report}, indent=1))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
