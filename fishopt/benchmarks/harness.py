"""``run_benchmark``: build every registered variant, measure accuracy and speed, write the report.

Order of work: load the test split; score the FP32 reference (the checkpoint in PyTorch eager); build and load
each variant through the one build verb and score it in this process (its memory peak is taken here), then
free it. Re-encode the end-to-end inputs at each camera size (cached) and check that the fast decode path keeps
the reference's answers there. Measure this machine's GEMM peaks. Then start one worker process per variant
(:mod:`fishopt.benchmarks.workers`) and time them in interleaved rounds, one worker at a time: batch-1
model-only latency, batch-1 end-to-end latency per input size (JPEG bytes -> label, split into decode,
preprocess and model), today's pipeline on the baseline as the reference, and throughput per batch size; then
the per-operator profiles of the two fastest INT8 variants.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from fishopt.artifacts.parity import DEFAULT_IMAGES
from fishopt.artifacts.pipeline_check import choose_pipeline
from fishopt.artifacts.registry import Variant
from fishopt.benchmarks import report
from fishopt.benchmarks.accuracy import accuracy_block, report_of, run_logits
from fishopt.benchmarks.camera import DEFAULT_SIZES, NATIVE, camera_jpegs, parse_size
from fishopt.benchmarks.fingerprint import LoadSampler, fingerprint
from fishopt.benchmarks.recommend import recommend, recommended_int8
from fishopt.benchmarks.roofline import judge, measure_peaks, peak_for
from fishopt.benchmarks.stats import interleaved_rounds, speedup, summarize
from fishopt.benchmarks.timing import (
    BATCH_SIZES,
    PLANS,
    SETTLE_SECONDS,
    MemoryProbe,
    TimingPlan,
    achieved_gops,
    set_threads,
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
from fishopt.benchmarks.workers import Worker, WorkerError, WorkerSpec, close_workers, start_workers
from fishopt.checkpoint import LoadedCheckpoint, SplitImages, as_checkpoint
from fishopt.errors import CheckpointError, ConfigError, SplitError
from fishopt.io import ensure_new_dir, file_sha256
from fishopt.models import count_macs
from fishopt.training.metrics import bootstrap_ci

log = logging.getLogger(__name__)

#: Test images per run in ``quick`` mode (stratified per class).
QUICK_IMAGES = 180


def load_test_set(
    ckpt: LoadedCheckpoint, data: str | os.PathLike[str] | None = None, limit: int | None = None, seed: int = 0
) -> SplitImages:
    """The test part of a checkpoint's split (all of it, or ``limit`` images stratified per class).

    Raises:
        CheckpointError: If the checkpoint records no split.
        SplitError: If its split file is missing, altered, or has no test images.
        DataError: If the data root cannot be found.
    """
    meta = ckpt.meta
    if not isinstance(meta.get("split"), dict) or not meta["split"].get("file"):
        raise CheckpointError(
            f"checkpoint {str(ckpt.path)!r} records no split file; benchmark a model.pt written by 'fishopt train'"
        )
    if not ckpt.split.paths("test"):
        raise SplitError(
            f"the split of {str(ckpt.path)!r} has no test images; accuracy is measured on the test part only. "
            "Retrain with a split that has one (fishopt train, default fractions 0.7/0.15/0.15)"
        )
    return ckpt.split_images("test", limit=limit, seed=seed, data=data, progress=True)


def reference_report(ckpt: LoadedCheckpoint, test: SplitImages) -> tuple[dict, np.ndarray]:
    """Metrics and predictions of the checkpoint itself (PyTorch eager FP32): the accuracy reference.

    The report holds ``top1_ci95``, the bootstrap interval over the test side's photo clusters.
    """
    logits = ckpt.logits(test.images)
    report = report_of(logits, test.labels, list(ckpt.meta["class_names"]))
    preds = logits.argmax(1)
    report["top1_ci95"] = bootstrap_ci(preds == np.asarray(test.labels), [ckpt.split.units[p] for p in test.paths])
    return report, preds


def macs_per_image(ckpt: Any) -> int | None:
    """MACs of one image: ``meta["macs"]`` (int or ``{"total": n}``), else counted on the model."""
    macs = ckpt.meta.get("macs")
    if isinstance(macs, dict):
        macs = macs.get("total")
    if isinstance(macs, (int, float)) and macs > 0:
        return int(macs)

    return int(count_macs(ckpt.model, ckpt.meta["input_size"])["total"])


def prepare_variants(
    variants: list[Variant],
    ckpt: LoadedCheckpoint,
    test: SplitImages,
    ref: tuple[dict, np.ndarray],
    folder: Path,
    threads: int,
    progress: bool,
) -> tuple[list[dict], list[Loaded]]:
    """Build each format once, then load and score every variant; return all rows and the variants that loaded."""
    from tqdm import tqdm

    rows, loaded, built = [], [], {}
    names = list(ckpt.meta["class_names"])
    units = [ckpt.split.units[p] for p in test.paths]
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
                    row["accuracy"] = accuracy_block(logits, test.labels, names, *ref, units=units)
                except Exception as exc:  # a runtime that cannot run the test set is a failed row
                    mark(row, "failed", f"{type(exc).__name__}: {exc}", "accuracy")
                    runtime = None
        if runtime is not None:
            row["peak_mem_mb"] = mem.peak_extra_mb
            loaded.append(Loaded(variant, row, runtime))
    return rows, loaded


#: JPEG files per input size that the end-to-end rows cycle through.
E2E_FILES = {"full": 64, "quick": 32}
#: Profiled batch-1 calls per variant (the report's appendix).
PROFILE_CALLS = {"full": 300, "quick": 100}


def _mark_failed(rows: dict[str, dict], errors: dict[str, str], stage: str) -> None:
    for name, error in errors.items():
        if name in rows and rows[name]["status"] == "ok":
            mark(rows[name], "failed", error, stage)


def worker_specs(loaded: list[Loaded], test: SplitImages, meta: dict, threads: int) -> list[WorkerSpec]:
    """One :class:`WorkerSpec` per loaded variant (its artifact, settings, threads and 64 test images)."""
    images = test.images[:64].numpy()
    keep = {k: meta[k] for k in ("input_size", "load_size", "mean", "std")}
    return [
        WorkerSpec(
            name=i.name,
            runtime=i.variant.fmt.runtime,
            path=i.row["artifact"],
            settings=dict(i.variant.settings),
            device=i.variant.device,
            threads=threads,
            meta=keep,
            images=images,
        )
        for i in loaded
    ]


def e2e_inputs(
    ckpt: LoadedCheckpoint,
    test: SplitImages,
    sizes: Sequence[str],
    n_files: int,
    progress: bool,
    agreement_set: SplitImages | None = None,
) -> dict[str, dict]:
    """Per input size: the JPEG files the end-to-end rows cycle through, and the pipeline whose answers agree.

    The verdict is measured on ``agreement_set`` (default ``test``): the whole test split, also in quick runs, since
    one image of a 180-image subset is already 0.56 points of agreement.
    """
    from tqdm import tqdm

    agreement_set = agreement_set or test
    out = {}
    for label in tqdm(sizes, desc="camera-size inputs", unit="size", disable=not progress):
        every = camera_jpegs(agreement_set.files, label)
        pipeline, checks = choose_pipeline(ckpt, every, agreement_set.labels, ckpt.meta["load_size"])
        files = camera_jpegs(test.files[:n_files], label)
        out[label] = {
            "files": [str(f) for f in files],
            "n_files": len(files),
            "mean_kb": round(float(np.mean([Path(f).stat().st_size for f in files])) / 1e3, 1),
            "agreement": checks[-1],
            "checks": checks,
            "pipeline": pipeline,
        }
    return out


def measure(
    workers: dict[str, Worker],
    rows: dict[str, dict],
    inputs: dict[str, dict],
    batch_sizes: Sequence[int],
    plans: dict,
    progress: bool,
    settle: float = SETTLE_SECONDS,
) -> dict:
    """Time every worker in interleaved rounds; fill each row's ``latency``, ``e2e`` and ``throughput``.

    Returns:
        ``{"today": {size: e2e block}}``: today's pipeline (full decode + torch resize) on the baseline's worker.
    """
    from tqdm import tqdm

    def run(label: str, jobs: dict[str, tuple[str, dict]], plan: TimingPlan) -> dict[str, dict[str, list[float]]]:
        live = {k: v for k, v in jobs.items() if v[0] in workers}
        with tqdm(total=plan.rounds, desc=label, unit="round", disable=not progress) as bar:
            times, errors = time_jobs(
                workers, live, plan.warmup, plan.rounds, plan.calls, settle=settle, on_round=lambda _r: bar.update()
            )
        failed = {live[k][0]: v for k, v in errors.items()}
        _mark_failed(rows, failed, label)
        for name in failed:
            workers.pop(name).close()
        return times

    names = list(workers)
    bs1 = run("latency bs1", {n: (n, {"kind": "model", "batch": 1}) for n in names}, plans["bs1"])
    for name in list(workers):
        rows[name]["latency"] = {"bs1": summarize(bs1[name]["total"])}
        rows[name]["throughput"] = {"1": _throughput(1, rows[name]["latency"]["bs1"])}
        rows[name]["e2e"] = {}
    today: dict[str, dict] = {}
    for label, spec in inputs.items():
        for name in workers:
            workers[name].request("jpegs", label, spec["files"])
        jobs = {n: (n, {"kind": "e2e", "key": label, "pipeline": spec["pipeline"]}) for n in workers}
        if BASELINE in workers:
            jobs["today"] = (BASELINE, {"kind": "today", "key": label})
        times = run(f"end-to-end {label}", jobs, plans["e2e"])
        for job, stages in times.items():
            block = _e2e_block(stages, spec["pipeline"] if job != "today" else "today")
            if job == "today":
                today[label] = block
            elif job in rows:
                rows[job]["e2e"][label] = block
    for name in workers:
        native = rows[name]["e2e"].get(NATIVE) or next(iter(rows[name]["e2e"].values()), None)
        rows[name]["latency"]["bs1"]["e2e"] = native["total"] if native else None
    for bs in sorted(set(batch_sizes) - {1}):
        jobs = {n: (n, {"kind": "model", "batch": bs}) for n in workers}
        times = run(f"throughput bs{bs}", jobs, plans["throughput"])
        for name, stages in times.items():
            rows[name]["throughput"][str(bs)] = _throughput(bs, summarize(stages["total"]))
    return {"today": today}


def _e2e_block(stages: dict[str, list[float]], pipeline: str) -> dict:
    split = {k: round(summarize(v)["p50_ms"], 4) for k, v in stages.items() if k != "total"}
    return {"pipeline": pipeline, "total": summarize(stages["total"]), "stages_p50_ms": split}


def time_jobs(
    workers: dict[str, Worker],
    jobs: dict[str, tuple[str, dict]],
    warmup: int,
    rounds: int,
    calls: int,
    settle: float = 0.0,
    on_round: Callable[[int], None] | None = None,
) -> tuple[dict[str, dict[str, list[float]]], dict[str, str]]:
    """:func:`fishopt.benchmarks.workers.time_rounds` for jobs labelled by name, several per worker allowed."""

    errors: dict[str, str] = {}
    times: dict[str, dict[str, list[float]]] = {k: {} for k in jobs}
    for key, (name, job) in jobs.items():
        try:
            workers[name].time(job, 0, warmup)
        except WorkerError as exc:
            errors[key] = str(exc)
    for r, order in enumerate(interleaved_rounds([k for k in jobs if k not in errors], rounds)):
        for key in order:
            if key in errors:
                continue
            name, job = jobs[key]
            try:
                for stage, values in workers[name].time(job, calls).items():
                    times[key].setdefault(stage, []).extend(values)
            except WorkerError as exc:
                errors[key] = str(exc)
            if settle:
                time.sleep(settle)
        if on_round is not None:
            on_round(r)
    return {k: t for k, t in times.items() if k not in errors}, errors


def _throughput(bs: int, summary: dict) -> dict:
    ips = bs * 1000.0 / summary["p50_ms"] if summary["p50_ms"] else None
    return {
        "batch_size": bs,
        "images_per_s": None if ips is None else round(ips, 2),
        "p50_ms": summary["p50_ms"],
        "ci95_ms": summary["ci95_ms"],
        "cv": summary["cv"],
        "unstable": summary["unstable"],
    }


def worker_info(workers: dict[str, Worker], rows: dict[str, dict]) -> None:
    """Each row's compute precision and the settings its worker applied per batch size (recorded per row)."""

    for name, worker in workers.items():
        try:
            info = worker.request("info")
        except WorkerError as exc:
            log.warning("%s: no runtime info (%s)", name, exc)
            continue
        rows[name]["compute_precision"] = info["compute_precision"]["precision"]
        rows[name]["compute_precision_source"] = info["compute_precision"]["source"]
        rows[name]["timing_settings"] = {
            "per_batch": info["applied"],
            "env": info["env"],
            "torch_imported": info["torch_imported"],
            "process": "one worker per variant",
        }


def profiles(workers: dict[str, Worker], rows: dict[str, dict], calls: int, top: int = 2) -> dict[str, dict]:
    """Per-operator profiles of the ``top`` fastest INT8 CPU variants at batch 1."""

    int8 = sorted(
        (
            r
            for r in rows.values()
            if r["status"] == "ok"
            and r["precision"] == "int8"
            and r["device"] == "cpu"
            and r.get("latency")
            and r["variant"] in workers
        ),
        key=lambda r: r["latency"]["bs1"]["p50_ms"],
    )
    out = {}
    for row in int8[:top]:
        try:
            out[row["variant"]] = workers[row["variant"]].request("profile", calls)
        except WorkerError as exc:
            log.warning("profile of %s failed: %s", row["variant"], exc)
    return out


def derive(rows: list[dict], macs: int | None, peaks: dict, batch_sizes: Sequence[int], threads: int) -> None:
    """Fill speedups against the baseline, achieved GOPS, the share of the measured peak, and the best batch size."""

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
        best = max(row["throughput"].values(), key=lambda t: t.get("images_per_s") or 0.0)
        per_core = round(best["images_per_s"] / threads, 2) if best["images_per_s"] else None
        row["throughput_best"] = {
            "batch_size": best["batch_size"],
            "images_per_s": best["images_per_s"],
            "images_per_s_per_core": per_core,
        }
        row["gops"] = achieved_gops(macs, best["images_per_s"])
        precision = row.get("compute_precision") or row["precision"]
        if row["device"] == "cpu":
            row["peak_gops"] = peak_for(peaks, precision)
            row["peak_share"] = judge(row["gops"], precision, peaks)


def run_benchmark(
    checkpoint: LoadedCheckpoint | str | os.PathLike[str],
    variants: Sequence[str] | None = None,
    batch_sizes: Sequence[int] | None = None,
    threads: int | None = None,
    out_dir: str | os.PathLike[str] = "benchmarks/results",
    quick: bool = False,
    max_drop: float = 1.0,
    data: str | os.PathLike[str] | None = None,
    overwrite: bool = False,
    progress: bool = True,
    device: str = "cpu",
    input_sizes: Sequence[str] | None = None,
    profile: bool = True,
    robustness: bool = True,
) -> dict:
    """Benchmark every registered variant (or ``variants``) of a checkpoint and write the report.

    Args:
        checkpoint: ``model.pt`` written by ``fishopt train`` (any registered model family: sizes, classes and
            MACs come from its metadata).
        variants: Registry names; ``None`` for all. The FP32 eager baseline is always included.
        batch_sizes: Batch 1 gives latency; larger ones give throughput (default: 1, 8, 32, 128; quick: 1, 32).
        threads: Threads for torch and every runtime (default: the CPUs this process may use).
        out_dir: Output folder (results.json, results.csv, REPORT.md, pareto.png, e2e_split.png, artifacts/).
        quick: Fewer test images and rounds (a few minutes).
        max_drop: Accuracy budget in top-1 points for the recommendation.
        data: Data root (default ``$FISHOPT_DATA``, then the checkpoint's recorded root).
        overwrite: Allow a non-empty ``out_dir``.
        progress: Show progress bars.
        device: Without ``variants``: benchmark the variants of this device (``cpu`` or ``cuda``); the FP32
            eager baseline on the CPU is always included.
        input_sizes: End-to-end input sizes: ``native`` (the data's own files) and/or ``WxH`` camera sizes
            (test images re-encoded once, cached). Default: native, 1920x1080 and 590x445.
        profile: Profile the two fastest INT8 variants per operator at batch 1 (the report's appendix).
        robustness: Run the quick robustness check on the recommended variants (:func:`robustness_check`).

    Returns:
        The results dict written to ``results.json``.

    Raises:
        ConfigError: Unknown variant names, bad batch sizes or input sizes.
        OutputError: ``out_dir`` is not empty and ``overwrite`` is False.
        CheckpointError, SplitError, DataError: The checkpoint, its split or the data cannot be used.
    """
    mode = "quick" if quick else "full"
    batch_sizes = tuple(batch_sizes) if batch_sizes else BATCH_SIZES[mode]
    if any(int(b) < 1 for b in batch_sizes):
        raise ConfigError(f"batch sizes must be positive integers, got {list(batch_sizes)}; e.g. --batch-sizes 1,32")
    batch_sizes = tuple(sorted({int(b) for b in batch_sizes} | {1}))
    sizes = list(dict.fromkeys(parse_size(s) for s in (input_sizes or DEFAULT_SIZES)))
    started = time.perf_counter()
    selected = select_variants(list(variants) if variants else None, device)
    ckpt = as_checkpoint(checkpoint)
    out = ensure_new_dir(out_dir, overwrite)
    threads = set_threads(threads)
    test = load_test_set(ckpt, data, QUICK_IMAGES if quick else None)
    sampler = LoadSampler().start()
    ref = reference_report(ckpt, test)
    rows, loaded = prepare_variants(selected, ckpt, test, ref, out / "artifacts", threads, progress)
    close_all(loaded)  # timing happens in worker processes; nothing of these runtimes stays alive here
    for item in loaded:
        item.runtime = None
    whole = test if len(test.files) == len(ckpt.split.paths("test")) else load_test_set(ckpt, test.root)
    inputs = e2e_inputs(ckpt, test, sizes, E2E_FILES[mode], progress, agreement_set=whole)
    peaks = measure_peaks(threads)
    plans = PLANS[mode]
    by_name = {r["variant"]: r for r in rows}
    workers, errors = start_workers(worker_specs(loaded, test, ckpt.meta, threads))
    _mark_failed(by_name, errors, "worker start")
    try:
        extra = measure(workers, by_name, inputs, batch_sizes, plans, progress)
        worker_info(workers, by_name)
        extra["profiles"] = profiles(workers, by_name, PROFILE_CALLS[mode]) if profile else {}
    finally:
        close_workers(workers)
    load = sampler.stop()
    fp = fingerprint(threads, ckpt.split.hash, peaks=peaks)
    fp["background_load"] = load
    macs = macs_per_image(ckpt)
    derive(rows, macs, peaks, batch_sizes, threads)
    model = ckpt.meta.get("model", {}).get("name")
    for row in rows:
        row["model"] = model
    settings = {
        "checkpoint": str(ckpt.path),
        "model": model,
        "device": device,
        "macs_per_image": macs,
        "data_root": str(test.root),
        "n_test": len(test.files),
        "n_test_total": len(ckpt.split.paths("test")),
        "batch_sizes": list(batch_sizes),
        "input_sizes": sizes,
        "threads": threads,
        "quick": quick,
        "max_drop": max_drop,
        "baseline": BASELINE,
        "plans": {k: vars(v) for k, v in plans.items()},
        "settle_seconds": SETTLE_SECONDS,
        "method": "one worker process per variant (spawn), rounds interleaved across workers, one worker at a time",
        "leaky_split": bool(ckpt.meta["split"].get("leaky")),
        "elapsed_seconds": round(time.perf_counter() - started, 1),
        "load_size": list(ckpt.meta["load_size"]),
        "input_size": list(ckpt.meta["input_size"]),
    }
    camera = {k: {kk: vv for kk, vv in v.items() if kk != "files"} for k, v in inputs.items()}
    robust = robustness_check(ckpt, rows, max_drop, batch_sizes, threads, test.root) if robustness else None
    results = report.assemble(
        fp,
        settings,
        ref[0],
        rows,
        e2e_today=extra["today"],
        camera=camera,
        profiles=extra["profiles"],
        robustness=robust,
    )
    report.write_all(results, out)
    return results


def teacher_of(ckpt: LoadedCheckpoint) -> Path:
    """The teacher checkpoint a distilled student records (``meta["distill"]["teacher"]["path"]``).

    Raises:
        CheckpointError: The checkpoint was not distilled, or its teacher's file is gone or was replaced.
    """
    teacher = (ckpt.meta.get("distill") or {}).get("teacher") or {}
    if not teacher.get("path"):
        raise CheckpointError(
            f"{str(ckpt.path)!r} was not distilled from a teacher, so --with-teacher has nothing to add; "
            "pass the second model with another --checkpoint"
        )
    path = Path(teacher["path"])
    if not path.is_file():
        raise CheckpointError(
            f"the teacher {str(path)!r} recorded in {str(ckpt.path)!r} is missing; pass it with --checkpoint "
            "(or retrain the teacher: fishopt train model=efficientnet_lite0)"
        )
    want = teacher.get("sha256")
    if want and file_sha256(path) != want:
        raise CheckpointError(
            f"the teacher {str(path)!r} changed since {str(ckpt.path)!r} was distilled from it (sha256 differs); "
            "pass the teacher you mean with --checkpoint"
        )
    return path


def run_benchmarks(
    checkpoints: Sequence[LoadedCheckpoint | str | os.PathLike[str]],
    out_dir: str | os.PathLike[str] = "benchmarks/results",
    overwrite: bool = False,
    latency_budget_ms: float | None = None,
    **settings: Any,
) -> dict:
    """Benchmark several checkpoints (e.g. the distilled default and its teacher) and merge them into one report.

    Each checkpoint gets a full :func:`run_benchmark` into ``out_dir/<model>`` (``<model>-<n>`` when two share a
    family), run one after the other; ``out_dir`` then holds the merged report: one row per model x variant,
    the per-model recommendations and the recommendations across models
    (:func:`fishopt.benchmarks.recommend.across_models`). A single checkpoint is the same as :func:`run_benchmark`.

    Args:
        checkpoints: ``model.pt`` files written by ``fishopt train``, all on one split.
        out_dir: Output folder of the merged report.
        overwrite: Allow a non-empty ``out_dir``.
        latency_budget_ms: Batch-1 p50 budget of the "most accurate under a budget" recommendation.
        **settings: Passed to :func:`run_benchmark` (variants, batch_sizes, threads, quick, max_drop, ...).

    Returns:
        The merged results dict written to ``out_dir/results.json``.

    Raises:
        ConfigError: No checkpoint, or checkpoints on different splits.
        OutputError: ``out_dir`` is not empty and ``overwrite`` is False.
    """
    if not checkpoints:
        raise ConfigError("no checkpoint to benchmark; pass --checkpoint runs/<name>/model.pt")
    loaded = [as_checkpoint(c) for c in checkpoints]
    if len(loaded) == 1:
        return run_benchmark(loaded[0], out_dir=out_dir, overwrite=overwrite, **settings)
    hashes = {c.split.hash for c in loaded}
    if len(hashes) > 1:
        raise ConfigError(
            "the checkpoints were trained on different splits, so their accuracies are not comparable: "
            + ", ".join(f"{c.path} ({c.split.hash[:12]})" for c in loaded)
            + "; train them on one split (data.split_file=<one run>/split.json)"
        )
    out = ensure_new_dir(out_dir, overwrite)
    names: list[str] = []
    for c in loaded:
        name = str(c.meta.get("model", {}).get("name") or "model")
        names.append(name if name not in names else f"{name}-{len(names)}")
    results = []
    for ckpt, name in zip(loaded, names, strict=True):
        log.info("benchmarking %s (%s) into %s", ckpt.path, name, out / name)
        results.append(run_benchmark(ckpt, out_dir=out / name, overwrite=True, **settings))
    merged = report.merge(results, latency_budget_ms=latency_budget_ms)
    report.write_all(merged, out)
    return merged


def robustness_check(
    ckpt: LoadedCheckpoint,
    rows: list[dict],
    max_drop: float,
    batch_sizes: Sequence[int],
    threads: int,
    data: str | os.PathLike[str] | None = None,
) -> dict:
    """The quick robustness check (a few ImageNet-C corruptions at severity 3, 300 test images) of the recommended
    CPU variant and of the fastest eligible INT8 variant, against the FP32 checkpoint on the same images.

    Returns:
        :func:`fishopt.monitor.robustness.quick_robustness`'s result, or ``{"skipped": reason}`` when no
        artifact qualifies or the ``monitor`` extra (and ``corrupt-tta``) is not installed.
    """
    recs = recommend(rows, max_drop, list(batch_sizes))
    picks = [
        (recs.get("cpu-latency") or {}).get("variant"),
        (recommended_int8(rows, recs, max_drop) or {}).get("variant"),
    ]
    by_name = {r["variant"]: r for r in rows}
    folders = {
        name: Path(by_name[name]["artifact"]).parent
        for name in dict.fromkeys(p for p in picks if p)
        if by_name[name].get("artifact") and name != BASELINE
    }
    if not folders:
        return {"skipped": "no recommended CPU artifact other than the FP32 reference"}
    try:
        from fishopt.monitor.robustness import quick_robustness

        return quick_robustness(
            ckpt.path, folders, data=None if data is None else Path(data), threads=threads, workers=1
        )
    except ImportError as exc:
        return {
            "skipped": f"{exc.name or exc} is not installed: pip install 'fishopt[monitor]' && "
            "pip install --no-deps corrupt-tta (see docs/monitoring.md)"
        }
