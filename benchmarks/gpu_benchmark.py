#!/usr/bin/env python
"""GPU rows of the fishopt benchmark: PyTorch eager FP32/FP16/BF16, torch.compile (incl. CUDA graphs) and
the registry's GPU formats (TensorRT FP16/INT8) when installed, measured like ``fishopt benchmark``.

Same method as the CPU harness (:mod:`fishopt.benchmarks.harness`): accuracy on the checkpoint's test
split against the FP32 reference, warm-up, variants interleaved in rounds in one process, bs1
latency (model-only and end-to-end) and throughput per batch size; every call ends with a device
sync (the logits are copied back). Writes the same ``results.json`` / ``REPORT.md`` / ``pareto.png``.

Without CUDA it prints a skip message and exits 0.

    python benchmarks/gpu_benchmark.py --checkpoint runs/default/model.pt --out benchmarks/results-gpu
"""

from __future__ import annotations

import argparse
import copy
import logging
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import numpy as np

#: name -> (precision, torch.compile mode or None for eager)
TORCH_VARIANTS = {
    "torch-eager-fp32": ("fp32", None),
    "torch-eager-fp16": ("fp16", None),
    "torch-eager-bf16": ("bf16", None),
    "torch-compile-fp32": ("fp32", "default"),
    "torch-compile-fp16": ("fp16", "default"),
    "torch-compile-fp16-reduce-overhead": ("fp16", "reduce-overhead"),
    "torch-compile-bf16-max-autotune": ("bf16", "max-autotune"),
}


class CudaTorchRuntime:
    """A torch module on the GPU behind the Runtime call convention (numpy in, numpy logits out).

    The last input array is kept on the device, so timing a fixed batch measures the model (plus the
    logits copy that syncs), not the host-to-device copy of the input.
    """

    raw_input = False

    def __init__(self, model, dtype, cudagraphs: bool, device: str = "cuda") -> None:
        self.model, self.dtype, self.cudagraphs, self.device = model, dtype, cudagraphs, device
        self._host: np.ndarray | None = None
        self._dev = None

    def __call__(self, batch: np.ndarray) -> np.ndarray:
        import torch

        if batch is not self._host:
            self._host = batch
            dev = torch.from_numpy(np.ascontiguousarray(batch)).to(self.device, self.dtype)
            self._dev = dev.contiguous(memory_format=torch.channels_last)
        with torch.inference_mode():
            if self.cudagraphs:
                torch.compiler.cudagraph_mark_step_begin()
            out = self.model(self._dev)
            return out.float().cpu().numpy()

    def close(self) -> None:
        self.model = None


def _dtype(precision: str):
    import torch

    return {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}[precision]


def torch_variant(name: str, ckpt, test, batch_sizes, device: str = "cuda") -> tuple[dict, SimpleNamespace, CudaTorchRuntime | None]:
    """Prepare one eager/compiled GPU variant; compile time (first calls per batch size) is its build time."""
    import torch

    from fishopt.benchmarks.timing import model_input
    from fishopt.benchmarks.variants import mark, new_row

    precision, mode = TORCH_VARIANTS[name]
    fmt = SimpleNamespace(name=name, runtime="torch", precision=precision, method=mode, kind="compile" if mode else "export",
                          backend="inductor" if mode else "torch", needs_gpu=True)
    row = {**new_row(fmt), "device": device}
    cuda = device == "cuda"
    try:
        if cuda:
            torch.cuda.reset_peak_memory_stats()
        before = torch.cuda.memory_allocated() if cuda else 0
        t0 = time.perf_counter()
        model = copy.deepcopy(ckpt.model).to(device, _dtype(precision)).to(memory_format=torch.channels_last).eval()
        if mode:
            model = torch.compile(model, mode=mode)
        runtime = CudaTorchRuntime(model, _dtype(precision), cudagraphs=cuda and mode == "reduce-overhead", device=device)
        for bs in sorted(set(batch_sizes)):
            for _ in range(3):  # compiles (and records CUDA graphs) per shape
                runtime(model_input(test.images, ckpt.meta, False, bs))
        if cuda:
            torch.cuda.synchronize()
            row["peak_mem_mb"] = round((torch.cuda.max_memory_allocated() - before) / 2**20, 1)
        row["build_seconds"] = round(time.perf_counter() - t0, 2)
        row["size_bytes"] = sum(p.numel() for p in ckpt.model.parameters()) * torch.finfo(_dtype(precision)).bits // 8
        row["raw_input"] = False
    except Exception as exc:  # any torch/Inductor error: a failed row, the run goes on
        return mark(row, "failed", f"{type(exc).__name__}: {exc}", "build"), fmt, None
    return row, fmt, runtime


def registry_gpu_variants(ckpt, folder: Path, threads: int, data_root: Path,
                          wanted: set[str] | None = None) -> list[tuple[dict, object | None]]:
    """The registry's GPU formats (TensorRT; only ``wanted`` ones when given) built through the one build verb;
    skipped rows when absent."""
    from fishopt.benchmarks.variants import build_variant, load_variant
    from fishopt.export.registry import list_formats

    out = []
    for fmt in (f for f in list_formats(needs_gpu=True) if not wanted or f.name in wanted):
        row, path = build_variant(fmt, ckpt.path, folder / fmt.name, data_root)
        out.append((row, fmt, load_variant(fmt, row, path, threads) if path is not None else None))
    return out


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--checkpoint", default="runs/default/model.pt", help="model.pt (default: runs/default/model.pt; make train)")
    p.add_argument("--out", default="benchmarks/results-gpu", help="output folder")
    p.add_argument("--variants", default=None,
                   help=f"comma-separated subset of: {', '.join(TORCH_VARIANTS)} and the registry's GPU formats")
    p.add_argument("--batch-sizes", default="1,32,256", help="batch 1 = latency, larger = throughput (default 1,32,256)")
    p.add_argument("--data", default=None, help="data root (default $FISHOPT_DATA, then the checkpoint's)")
    p.add_argument("--quick", action="store_true", help="fewer images and rounds")
    p.add_argument("--max-drop", type=float, default=1.0, help="accuracy budget in top-1 points")
    p.add_argument("--overwrite", action="store_true", help="write into a non-empty --out")
    p.add_argument("--device", default="cuda", choices=["cuda", "cpu"], help="cpu only to check this script without a GPU")
    return p.parse_args(argv)


def run(args: argparse.Namespace) -> dict:
    """Benchmark the GPU variants and write the report; returns the results dict."""
    import torch

    from fishopt.benchmarks import harness, report
    from fishopt.benchmarks.accuracy import accuracy_block, run_logits
    from fishopt.benchmarks.fingerprint import LoadSampler, fingerprint
    from fishopt.benchmarks.timing import PLANS, set_threads
    from fishopt.benchmarks.variants import Loaded, mark
    from fishopt.io import ensure_new_dir
    from fishopt.training.checkpoint import load_checkpoint

    batch_sizes = [int(b) for b in args.batch_sizes.split(",")]
    wanted = set(args.variants.split(",")) if args.variants else None
    ckpt = load_checkpoint(args.checkpoint)
    out = ensure_new_dir(args.out, args.overwrite)
    threads = set_threads(None)
    torch.backends.cudnn.benchmark = True
    test = harness.load_test_set(ckpt, args.data, harness.QUICK_IMAGES if args.quick else None)
    sampler = LoadSampler().start()
    ref = harness.reference_report(ckpt, test)  # the FP32 reference is the checkpoint on the CPU
    prepared = [torch_variant(n, ckpt, test, batch_sizes, args.device) for n in TORCH_VARIANTS if not wanted or n in wanted]
    if args.device == "cuda":
        prepared += registry_gpu_variants(ckpt, out / "artifacts", threads, test.root, wanted)
    rows, loaded = [], []
    for row, fmt, runtime in prepared:
        rows.append(row)
        if runtime is None:
            continue
        try:
            logits = run_logits(runtime, test.images, ckpt.meta, row["raw_input"])
            row["accuracy"] = accuracy_block(logits, test.labels, list(ckpt.meta["class_names"]), *ref)
            loaded.append(Loaded(fmt, row, runtime))
        except Exception as exc:  # a variant that cannot run the test set is a failed row
            mark(row, "failed", f"{type(exc).__name__}: {exc}", "accuracy")
    harness.measure(loaded, test, ckpt.meta, batch_sizes, PLANS["quick" if args.quick else "full"], progress=True)
    fp = fingerprint(threads, test.split_hash)
    fp["background_load"] = sampler.stop()
    harness.derive(rows, harness.macs_per_image(ckpt), fp["peak"], batch_sizes)
    settings = {"checkpoint": str(ckpt.path), "model": ckpt.meta["model"]["name"], "macs_per_image": harness.macs_per_image(ckpt),
                "data_root": str(test.root), "n_test": len(test.files), "n_test_total": test.total,
                "batch_sizes": sorted(set(batch_sizes)),
                "threads": threads, "quick": args.quick, "max_drop": args.max_drop, "baseline": "torch-eager-fp32",
                "plans": {k: vars(v) for k, v in PLANS["quick" if args.quick else "full"].items()}, "device": args.device,
                "leaky_split": bool(ckpt.meta["split"].get("leaky"))}
    results = report.assemble(fp, settings, ref[0], rows)
    report.write_all(results, out)
    return results


def main(argv: list[str] | None = None) -> int:
    """Entry point; returns the exit status."""
    args = parse_args(argv)
    import torch

    if args.device == "cuda" and not torch.cuda.is_available():
        print("gpu_benchmark: SKIPPED: no CUDA GPU here (torch.cuda.is_available() is False, torch "
              f"{torch.__version__}); run it on a CUDA machine with a CUDA build of torch. CPU rows: fishopt benchmark",
              file=sys.stderr)
        return 0
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    from fishopt.errors import FishoptError

    try:
        run(args)
    except FishoptError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(str(Path(args.out) / "REPORT.md"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
