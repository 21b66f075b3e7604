"""Measure the drift detector on real data: false alarms on clean held-out windows, power on corrupted windows,
and the cost of one check.

Run: ``python -m fishopt.monitor.measure --checkpoint runs/default/model.pt --out measure.json``.

Protocol. The model's outputs (softmax and penultimate embeddings, one forward pass) are computed once on
the test split (the only images the refit model never trained on) and once on every corruption and severity
of it. Each repetition splits the test units (clusters of near-duplicate photos) at random, per class:
``--reference`` of each class's units build a profile (PCA, bandwidth, calibration), the others are held out.
A clean window is ``--window`` held-out images with the test split's class frequencies (multinomial class
counts, images drawn within each class); a corrupted window is the same images under one corruption and
severity. The false-alarm rate is the share of clean windows flagged, the power the share of corrupted windows
flagged. Three detector configurations are measured: ``all`` (every test, with the embeddings and the input
statistics), ``embeddings`` (no input statistics: the detector before ``ks_image``) and ``ks_only`` (the softmax
tests only: artifacts without an embedding output, and no images). A second figure, the *label-shift* rate, splits the units without regard to class and
tests the held-out images as they come: their class mix then differs from the reference's by whole photo
clusters (41 clusters, Shrimp has one), a label shift the softmax tests are meant to see. The cost is the median
wall and CPU time of one check of a full window against the profile of the whole test split, with every
numerical library on one thread.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

import click
import numpy as np

from fishopt.io import atomic_write, atomic_write_json, file_sha256
from fishopt.monitor.drift import TESTS, DriftDetector
from fishopt.monitor.imagestats import center_crop, image_statistics
from fishopt.monitor.profile import DriftProfile
from fishopt.monitor.stats import ReferenceSplitter, draw_window, softmax


def _outputs(model: Any, images: Any, meta: dict) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Softmax outputs, penultimate embeddings and input statistics of uint8 images at the load size."""
    from fishopt.data.preprocess import eval_transform
    from fishopt.monitor.embeddings import penultimate_outputs

    logits, emb = penultimate_outputs(model, eval_transform(images, meta["input_size"], meta["mean"], meta["std"]))
    crop = center_crop(images.numpy(), meta["input_size"])
    img = np.concatenate([image_statistics(crop[i : i + 64]) for i in range(0, len(crop), 64)])
    return softmax(logits), emb, img


def _flags(report: Any) -> dict[str, bool]:
    return {"any": report.drift, **{name: t.drift for name, t in report.tests.items()}}


def _cost(
    profile: Any, probs: np.ndarray, emb: np.ndarray, img: np.ndarray, window: int, repeats: int
) -> dict[str, float]:
    from threadpoolctl import threadpool_limits

    with threadpool_limits(1):
        start, cpu = time.perf_counter(), time.process_time()
        det = DriftDetector(profile, window=window)
        calib = {"calibration_wall_s": time.perf_counter() - start, "calibration_cpu_s": time.process_time() - cpu}
        det.update(probs[:window], emb[:window], img[:window])
        walls, cpus = [], []
        for _ in range(repeats):
            start, cpu = time.perf_counter(), time.process_time()
            det.check()
            walls.append(time.perf_counter() - start)
            cpus.append(time.process_time() - cpu)
        start = time.perf_counter()
        for i in range(0, window, 8):
            det.update(probs[i : i + 8], emb[i : i + 8], img[i : i + 8])
        update = (time.perf_counter() - start) / (window / 8)
    return {
        "check_wall_s_median": float(np.median(walls)),
        "check_cpu_s_median": float(np.median(cpus)),
        "check_wall_s_max": float(np.max(walls)),
        "update_batch8_s": update,
        **calib,
    }


def _load_outputs(path: str | None, checkpoint: str, seed: int) -> dict[str, np.ndarray]:
    """Corrupted outputs saved by an earlier run with the same checkpoint (by SHA-256) and seed."""

    if not path or not Path(path).is_file():
        return {}
    with np.load(path, allow_pickle=False) as data:
        if str(data["checkpoint_sha256"]) != file_sha256(checkpoint) or int(data["seed"]) != seed:
            return {}
        return {k: data[k] for k in data.files if k not in ("checkpoint_sha256", "seed")}


def _save_outputs(path: str, checkpoint: str, seed: int, stored: dict[str, np.ndarray]) -> None:
    def write(tmp: Path) -> None:
        with tmp.open("wb") as handle:
            np.savez(handle, checkpoint_sha256=file_sha256(checkpoint), seed=seed, **stored)

    atomic_write(path, write)


def _load_avg() -> list[float]:
    return [round(v, 2) for v in os.getloadavg()]


@click.command()
@click.option("--checkpoint", required=True, type=click.Path(exists=True, dir_okay=False))
@click.option("--out", required=True, type=click.Path(dir_okay=False), help="JSON with every number.")
@click.option("--data", default=None, type=click.Path(file_okay=False))
@click.option("--window", default=500, show_default=True)
@click.option(
    "--reference", "ref_fraction", default=0.45, show_default=True, help="Share of the test units in the profile."
)
@click.option("--reps", default=100, show_default=True, help="Clean windows (one split each).")
@click.option("--power-reps", default=10, show_default=True, help="Splits on which every corrupted window is tested.")
@click.option("--shift-reps", default=30, show_default=True, help="Class-blind splits (the label-shift rate).")
@click.option("--corruptions", default="all", show_default=True)
@click.option("--severities", default="3,4,5", show_default=True)
@click.option("--workers", default=None, type=int, help="Corruption processes.")
@click.option(
    "--outputs",
    default=None,
    type=click.Path(dir_okay=False),
    help="Keep the corrupted outputs in this .npz and reuse them on the next run (same checkpoint, seed).",
)
@click.option("--seed", default=0, show_default=True)
def main(
    checkpoint: str,
    out: str,
    data: str | None,
    window: int,
    ref_fraction: float,
    reps: int,
    power_reps: int,
    shift_reps: int,
    corruptions: str,
    severities: str,
    workers: int | None,
    outputs: str | None,
    seed: int,
) -> None:
    """Measure false alarms, power and check cost of the drift detector (see the module doc)."""
    import torch

    from fishopt.checkpoint import load_checkpoint
    from fishopt.monitor.corruptions import Corruptor, resolve_corruptions, resolve_severities

    torch.set_num_threads(max(1, min(2, os.cpu_count() or 1)))
    names = resolve_corruptions(corruptions.split(","))
    sevs = resolve_severities([int(s) for s in severities.split(",")])
    t0 = time.perf_counter()
    ckpt = load_checkpoint(checkpoint)
    split = ckpt.split
    side = ckpt.split_images("test", data=data, progress=True)
    units = np.array([split.units[p] for p in side.paths])
    labels = side.labels.numpy()
    probs, emb, img = _outputs(ckpt.model, side.images, ckpt.meta)
    click.echo(
        f"{len(probs)} test images in {len(set(units))} units, top-1 {np.mean(probs.argmax(1) == labels):.4f}; "
        f"load {_load_avg()}"
    )
    corrupted: dict[tuple[str, int], tuple[np.ndarray, np.ndarray, np.ndarray, float]] = {}
    t1 = time.perf_counter()
    stored = _load_outputs(outputs, checkpoint, seed)
    with Corruptor(side.images, seed=seed, workers=workers) as corruptor:
        for c in names:
            for s in sevs:
                key = f"{c}/{s}"
                if f"{key}/img" in stored:
                    p, e, i = stored[f"{key}/probs"], stored[f"{key}/emb"], stored[f"{key}/img"]
                else:
                    p, e, i = _outputs(ckpt.model, corruptor(c, s), ckpt.meta)
                    stored[f"{key}/probs"], stored[f"{key}/emb"], stored[f"{key}/img"] = p, e, i
                corrupted[(c, s)] = (p, e, i, float(np.mean(p.argmax(1) == labels)))
            click.echo(f"  {c}: top-1 " + ", ".join(f"s{s} {corrupted[(c, s)][3]:.3f}" for s in sevs))
    corrupt_seconds = time.perf_counter() - t1
    if outputs:
        _save_outputs(outputs, checkpoint, seed, stored)

    rng = np.random.default_rng(seed)
    by_class = ReferenceSplitter(units, labels, len(units))
    class_blind = ReferenceSplitter(units, None, len(units))
    freq = np.bincount(labels, minlength=len(ckpt.class_names)) / len(labels)
    modes = ("all", "embeddings", "ks_only")
    clean: dict[str, list[dict[str, bool]]] = {k: [] for k in modes}
    shifted: dict[str, list[dict[str, bool]]] = {k: [] for k in modes}
    power: dict[str, dict[str, list[bool]]] = {k: {} for k in modes}
    sizes = []

    def detectors(ref: np.ndarray, n: int, r: int) -> dict[str, DriftDetector]:
        common = {"units": units[ref], "labels": labels[ref]}
        full = DriftProfile.build(probs[ref], ckpt.class_names, emb[ref], seed=r, image_stats=img[ref], **common)
        outputs = DriftProfile.build(probs[ref], ckpt.class_names, emb[ref], seed=r, **common)
        bare = DriftProfile.build(probs[ref], ckpt.class_names, **common)
        return {
            "all": DriftDetector(full, window=n, seed=r),
            "embeddings": DriftDetector(outputs, window=n, seed=r),
            "ks_only": DriftDetector(bare, window=n, seed=r),
        }

    def feed(det: DriftDetector, key: str, p: np.ndarray, e: np.ndarray, i: np.ndarray) -> None:
        det.update(p, e if key != "ks_only" else None, i if key == "all" else None)

    for r in range(max(reps, power_reps, shift_reps)):
        if r < max(reps, power_reps):
            ref, held = by_class(ref_fraction, rng)
            win = draw_window(held, labels, freq, window, rng)
            sizes.append((len(ref), len(win), len(np.unique(win))))
            for key, det in detectors(ref, len(win), r).items():
                if r < reps:
                    feed(det, key, probs[win], emb[win], img[win])
                    clean[key].append(_flags(det.check()))
                if r < power_reps:
                    for (c, s), (p, e, i, _) in corrupted.items():
                        det.reset()
                        feed(det, key, p[win], e[win], i[win])
                        power[key].setdefault(f"{c}/{s}", []).append(det.check().drift)
        if r < shift_reps:
            ref, held = class_blind(ref_fraction, rng)
            win = np.sort(rng.choice(held, size=min(window, len(held)), replace=False))
            for key, det in detectors(ref, len(win), r).items():
                feed(det, key, probs[win], emb[win], img[win])
                shifted[key].append(_flags(det.check()))
        if (r + 1) % 10 == 0:
            click.echo(
                f"  repetition {r + 1}: false alarms so far "
                + ", ".join(f"{k} {np.mean([f['any'] for f in v]):.3f}" for k, v in clean.items() if v)
                + f"; load {_load_avg()}"
            )

    def rate(flags: list[dict[str, bool]], key: str) -> float | None:
        vals = [f[key] for f in flags if key in f]
        return float(np.mean(vals)) if vals else None

    result: dict[str, Any] = {
        "checkpoint": str(Path(checkpoint).resolve()),
        "n_test": len(probs),
        "units": len(set(units)),
        "window": window,
        "reference_fraction": ref_fraction,
        "mean_sizes": dict(
            zip(("reference", "window", "distinct_in_window"), np.mean(sizes, axis=0).round(1).tolist(), strict=True)
        ),
        "reps": reps,
        "power_reps": power_reps,
        "clean_top1": float(np.mean(probs.argmax(1) == labels)),
        "false_alarm_rate": {k: {t: rate(v, t) for t in ("any", *TESTS)} for k, v in clean.items()},
        "label_shift_rate": {k: {t: rate(v, t) for t in ("any", *TESTS)} for k, v in shifted.items()},
        "shift_reps": shift_reps,
        "power": {},
        "corrupted_top1": {f"{c}/{s}": v[3] for (c, s), v in corrupted.items()},
    }
    for key, cells in power.items():
        per_cell = {cell: float(np.mean(v)) for cell, v in cells.items()}
        by_sev = {str(s): float(np.mean([per_cell[f"{c}/{s}"] for c in names])) for s in sevs}
        result["power"][key] = {
            "overall": float(np.mean(list(per_cell.values()))),
            "by_severity": by_sev,
            "by_cell": per_cell,
        }
    full_profile = DriftProfile.build(probs, ckpt.class_names, emb, units=units, labels=labels, image_stats=img)
    some_probs, some_emb, some_img, _ = corrupted[(names[0], sevs[0])]
    result["cost"] = _cost(full_profile, some_probs, some_emb, some_img, window=min(window, len(probs)), repeats=20)
    result["cost"]["load_avg"] = _load_avg()
    result["seconds"] = {"total": round(time.perf_counter() - t0, 1), "corruptions": round(corrupt_seconds, 1)}
    atomic_write_json(out, result)
    click.echo(
        json.dumps(
            {k: result[k] for k in ("false_alarm_rate", "label_shift_rate", "mean_sizes", "cost", "seconds")}, indent=1
        )
    )
    click.echo(
        json.dumps({k: {"overall": v["overall"], "by_severity": v["by_severity"]} for k, v in result["power"].items()})
    )


if __name__ == "__main__":
    main()
