"""``run_benchmark``: build every registered variant, measure accuracy and speed, write the report.

Order of work, all in one process: load the test split; score the FP32 reference (the checkpoint in
PyTorch eager); build and load each variant through the one build verb and score it (its memory peak
is taken here); then time all loaded variants interleaved in rounds: batch-1 model-only latency,
batch-1 end-to-end latency (JPEG decode + preprocess + infer) and throughput at each larger batch.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from fishopt.artifacts.parity import DEFAULT_IMAGES
from fishopt.artifacts.registry import Variant
from fishopt.benchmarks import report
from fishopt.benchmarks.accuracy import accuracy_block, report_of, run_logits
from fishopt.benchmarks.fingerprint import LoadSampler, fingerprint
from fishopt.benchmarks.stats import speedup, summarize
from fishopt.benchmarks.timing import (
    PLANS,
    MemoryProbe,
    achieved_gops,
    end_to_end_call,
    model_input,
    set_threads,
    time_interleaved,
)
from fishopt.benchmarks.variants import (
    BASELINE,
    Loaded,
    build_format,
    close_all,
    load_variant,
    mark,
    new_row,
    select_variants,
)
from fishopt.checkpoint import LoadedCheckpoint, SplitImages, as_checkpoint
from fishopt.errors import CheckpointError, ConfigError, SplitError
from fishopt.io import ensure_new_dir
from fishopt.models import count_macs

log = logging.getLogger(__name__)

#: Test images per run in ``quick`` mode (stratified per class).
QUICK_IMAGES = 180


def load_test_set(ckpt: LoadedCheckpoint, data: str | os.PathLike[str] | None = None, limit: int | None = None,
                  seed: int = 0) -> SplitImages:
    """The test part of a checkpoint's split (all of it, or ``limit`` images stratified per class).

    Raises:
        CheckpointError: If the checkpoint records no split.
        SplitError: If its split file is missing, altered, or has no test images.
        DataError: If the data root cannot be found.
    """
    meta = ckpt.meta
    if not isinstance(meta.get("split"), dict) or not meta["split"].get("file"):
        raise CheckpointError(f"checkpoint {str(ckpt.path)!r} records no split file; benchmark a model.pt written by 'fishopt train'")
    if not ckpt.split.paths("test"):
        raise SplitError(
            f"the split of {str(ckpt.path)!r} has no test images; accuracy is measured on the test part only. "
            "Retrain with a split that has one (fishopt train, default fractions 0.7/0.15/0.15)"
        )
    return ckpt.split_images("test", limit=limit, seed=seed, data=data, progress=True)


def reference_report(ckpt: LoadedCheckpoint, test: SplitImages) -> tuple[dict, np.ndarray]:
    """Metrics and predictions of the checkpoint itself (PyTorch eager FP32): the accuracy reference."""
    logits = ckpt.logits(test.images)
    return report_of(logits, test.labels, list(ckpt.meta["class_names"])), logits.argmax(1)


def macs_per_image(ckpt: Any) -> int | None:
    """MACs of one image: ``meta["macs"]`` (int or ``{"total": n}``), else counted on the model."""
    macs = ckpt.meta.get("macs")
    if isinstance(macs, dict):
        macs = macs.get("total")
    if isinstance(macs, (int, float)) and macs > 0:
        return int(macs)

    return int(count_macs(ckpt.model, ckpt.meta["input_size"])["total"])


def prepare_variants(variants: list[Variant], ckpt: LoadedCheckpoint, test: SplitImages, ref: tuple[dict, np.ndarray],
                     folder: Path, threads: int, progress: bool) -> tuple[list[dict], list[Loaded]]:
    """Build each format once, then load and score every variant; return all rows and the variants that loaded."""
    from tqdm import tqdm

    rows, loaded, built = [], [], {}
    names = list(ckpt.meta["class_names"])
    parity = ckpt.split_images("test", limit=DEFAULT_IMAGES, data=test.root)
    for variant in tqdm(variants, desc="build + accuracy", unit="variant", disable=not progress):
        fmt = variant.fmt
        if fmt.name not in built:
            built[fmt.name] = build_format(fmt, ckpt, folder / fmt.name, parity)
        made = built[fmt.name]
        row = new_row(variant)
        rows.append(row)
        row.update(build_seconds=made.build_seconds, size_bytes=made.size_bytes)
        if made.artifact is None:
            mark(row, made.status, made.reason or "", "build")
            continue
        row["artifact"] = str(made.artifact)
        with MemoryProbe() as mem:
            runtime = load_variant(variant, row, made.artifact, threads)
            if runtime is not None:
                try:
                    logits = run_logits(runtime, test.images, ckpt.meta, row["raw_input"])
                    row["accuracy"] = accuracy_block(logits, test.labels, names, *ref)
                except Exception as exc:  # a runtime that cannot run the test set is a failed row
                    mark(row, "failed", f"{type(exc).__name__}: {exc}", "accuracy")
                    runtime = None
        if runtime is not None:
            row["peak_mem_mb"] = mem.peak_extra_mb
            loaded.append(Loaded(variant, row, runtime))
    return rows, loaded


def _drop_failed(loaded: list[Loaded], errors: dict[str, str], stage: str) -> list[Loaded]:

    for item in loaded:
        if item.name in errors:
            mark(item.row, "failed", errors[item.name], stage)
    return [item for item in loaded if item.name not in errors]


def measure(
    loaded: list[Loaded], test: SplitImages, meta: dict, batch_sizes: Sequence[int], plans: dict, progress: bool
) -> list[Loaded]:
    """Time all loaded variants interleaved; fill ``latency`` and ``throughput``. Returns the survivors."""
    from tqdm import tqdm

    def run(label: str, calls: dict, plan) -> dict[str, list[float]]:
        with tqdm(total=plan.rounds, desc=label, unit="round", disable=not progress) as bar:
            times, errors = time_interleaved(calls, plan, on_round=lambda _r: bar.update())
        nonlocal loaded
        loaded = _drop_failed(loaded, errors, label)
        return times

    inputs = {i.name: model_input(test.images, meta, i.row["raw_input"], 1) for i in loaded}
    bs1 = run("latency bs1", {i.name: _bind(i.runtime, inputs[i.name]) for i in loaded}, plans["bs1"])
    files = test.files[:64]
    e2e_calls = {i.name: end_to_end_call(i.runtime, files, meta, i.row["raw_input"]) for i in loaded}
    e2e = run("end-to-end bs1", e2e_calls, plans["e2e"])
    for item in loaded:
        item.row["latency"] = {"bs1": {**summarize(bs1[item.name]), "e2e": summarize(e2e[item.name])}}
        item.row["throughput"] = {}
    for bs in sorted(set(batch_sizes)):
        if bs == 1:
            for item in loaded:
                item.row["throughput"]["1"] = _throughput(1, item.row["latency"]["bs1"])
            continue
        calls = {i.name: _bind(i.runtime, model_input(test.images, meta, i.row["raw_input"], bs)) for i in loaded}
        times = run(f"throughput bs{bs}", calls, plans["throughput"])
        for item in loaded:
            item.row["throughput"][str(bs)] = _throughput(bs, summarize(times[item.name]))
    return loaded


def _bind(runtime: Any, batch: np.ndarray):
    return lambda: runtime(batch)


def _throughput(bs: int, summary: dict) -> dict:
    ips = bs * 1000.0 / summary["p50_ms"] if summary["p50_ms"] else None
    return {"batch_size": bs, "images_per_s": None if ips is None else round(ips, 2), "p50_ms": summary["p50_ms"],
            "ci95_ms": summary["ci95_ms"], "cv": summary["cv"], "unstable": summary["unstable"]}


def derive(rows: list[dict], macs: int | None, peak: dict, batch_sizes: Sequence[int]) -> None:
    """Fill speedups against the baseline, achieved GOPS and the share of the CPU's peak."""

    big = str(max(batch_sizes))
    base = next((r for r in rows if r["variant"] == BASELINE and r["status"] == "ok"), None)
    for row in rows:
        if row["status"] != "ok" or not row["latency"]:
            continue
        tp = row["throughput"].get(big) or {}
        if base is not None:
            row["speedup_bs1"] = speedup(base["latency"]["bs1"]["p50_ms"], row["latency"]["bs1"]["p50_ms"])
            base_tp = (base["throughput"].get(big) or {}).get("p50_ms")
            row["speedup_throughput"] = speedup(base_tp, tp.get("p50_ms"))
        row["gops"] = achieved_gops(macs, tp.get("images_per_s"))
        peak_gops = (peak.get(row["precision"]) or peak.get("fp32") or {}).get("gops")
        if row["device"] == "cpu" and row["gops"] and peak_gops:
            row["peak_share"] = round(row["gops"] / peak_gops, 4)


def run_benchmark(
    checkpoint: LoadedCheckpoint | str | os.PathLike[str],
    variants: Sequence[str] | None = None,
    batch_sizes: Sequence[int] = (1, 32),
    threads: int | None = None,
    out_dir: str | os.PathLike[str] = "benchmarks/results",
    quick: bool = False,
    max_drop: float = 1.0,
    data: str | os.PathLike[str] | None = None,
    overwrite: bool = False,
    progress: bool = True,
    device: str = "cpu",
) -> dict:
    """Benchmark every registered variant (or ``variants``) of a checkpoint and write the report.

    Args:
        checkpoint: ``model.pt`` written by ``fishopt train``.
        variants: Registry names; ``None`` for all. The FP32 eager baseline is always included.
        batch_sizes: Batch 1 gives latency; larger ones give throughput.
        threads: Threads for torch and every runtime (default: the CPUs this process may use).
        out_dir: Output folder (results.json, results.csv, REPORT.md, pareto.png, artifacts/).
        quick: Fewer test images and rounds (a few minutes).
        max_drop: Accuracy budget in top-1 points for the recommendation.
        data: Data root (default ``$FISHOPT_DATA``, then the checkpoint's recorded root).
        overwrite: Allow a non-empty ``out_dir``.
        progress: Show progress bars.
        device: Without ``variants``: benchmark the variants of this device (``cpu`` or ``cuda``); the FP32
            eager baseline on the CPU is always included.

    Returns:
        The results dict written to ``results.json``.

    Raises:
        ConfigError: Unknown variant names or bad batch sizes.
        OutputError: ``out_dir`` is not empty and ``overwrite`` is False.
        CheckpointError, SplitError, DataError: The checkpoint, its split or the data cannot be used.
    """

    if not batch_sizes or any(int(b) < 1 for b in batch_sizes):
        raise ConfigError(f"batch sizes must be positive integers, got {list(batch_sizes)}; e.g. --batch-sizes 1,32")
    started = time.perf_counter()
    selected = select_variants(list(variants) if variants else None, device)
    ckpt = as_checkpoint(checkpoint)
    out = ensure_new_dir(out_dir, overwrite)
    threads = set_threads(threads)
    test = load_test_set(ckpt, data, QUICK_IMAGES if quick else None)
    sampler = LoadSampler().start()
    ref = reference_report(ckpt, test)
    rows, loaded = prepare_variants(selected, ckpt, test, ref, out / "artifacts", threads, progress)
    plans = PLANS["quick" if quick else "full"]
    try:
        measure(loaded, test, ckpt.meta, batch_sizes, plans, progress)
    finally:
        close_all(loaded)
    load = sampler.stop()
    fp = fingerprint(threads, ckpt.split.hash)
    fp["background_load"] = load
    derive(rows, macs_per_image(ckpt), fp["peak"], batch_sizes)
    settings = {
        "checkpoint": str(ckpt.path), "model": ckpt.meta.get("model", {}).get("name"), "device": device, "macs_per_image": macs_per_image(ckpt),
        "data_root": str(test.root), "n_test": len(test.files), "n_test_total": len(ckpt.split.paths("test")), "batch_sizes": sorted(set(batch_sizes)),
        "threads": threads, "quick": quick, "max_drop": max_drop, "baseline": BASELINE,
        "plans": {k: vars(v) for k, v in plans.items()}, "leaky_split": bool(ckpt.meta["split"].get("leaky")),
        "elapsed_seconds": round(time.perf_counter() - started, 1),
    }
    results = report.assemble(fp, settings, ref[0], rows)
    report.write_all(results, out)
    return results
