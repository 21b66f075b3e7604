"""Accuracy under ImageNet-C corruptions, and robustness relative to the FP32 reference.

Every model of a run sees the same corrupted images (one seeded corruption per image, corruption and
severity; :mod:`fishopt.monitor.corruptions`), so differences between an artifact and its FP32 checkpoint
are paired. Scores (Hendrycks and Dietterich, ICLR 2019), with ``E`` the top-1 error, ``f`` the model and
``ref`` the FP32 checkpoint it was built from:

- corruption error ``CE_c = sum_s E(f, c, s) / sum_s E(ref, c, s)`` and ``mce`` its mean over corruptions
  (1.0 for the reference itself; > 1: more errors under corruption than FP32);
- relative ``CE_c = sum_s (E(f, c, s) - E(f, clean)) / sum_s (E(ref, c, s) - E(ref, clean))`` and
  ``relative_mce``: the degradation beyond the model's own clean error, the number that says whether a
  variant (INT8) is *less robust* than FP32. ``less_robust`` is true when the lower end of its 95 %
  bootstrap interval is above 1 (on the test split the bootstrap resamples photo clusters, not images: the
  images of a cluster are flips and rotations of one photo and err together).
- ``mean_error``: the plain mean top-1 error over all corruptions and severities (no normalization).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from fishopt.checkpoint import LoadedCheckpoint, as_checkpoint, check_compatible, load_checkpoint
from fishopt.data.split import stratified_sample
from fishopt.errors import ConfigError
from fishopt.monitor.corruptions import QUICK, Corruptor, resolve_corruptions, resolve_severities

log = logging.getLogger(__name__)

#: uint8 images (N, 3, H, W) at the checkpoint's load size -> logits (N, C).
Predictor = Callable[[torch.Tensor], np.ndarray]
N_BOOTSTRAP = 1000


@dataclass
class Grid:
    """Per-image correctness of one model on clean and corrupted images.

    Attributes:
        clean: (N,) bool.
        corrupted: (corruption, severity) -> (N,) bool.
    """

    clean: np.ndarray
    corrupted: dict[tuple[str, int], np.ndarray]

    def top1(self, corruption: str, severity: int) -> float:
        """Top-1 under one corruption and severity."""
        return float(self.corrupted[(corruption, severity)].mean())


def evaluate_grid(
    predictors: Mapping[str, Predictor],
    images: torch.Tensor,
    labels: Any,
    corruptions: Sequence[str],
    severities: Sequence[int],
    *,
    seed: int = 0,
    workers: int | None = None,
    progress: bool = False,
) -> dict[str, Grid]:
    """Run every model on the clean images and on each corruption and severity of them.

    Args:
        predictors: Name -> callable uint8 images (N, 3, H, W) -> logits.
        images: uint8 images (N, 3, H, W) at the load size.
        labels: Class ids (N,).
        corruptions: Corruption names (see :func:`fishopt.monitor.corruptions.resolve_corruptions`).
        severities: Severities 1-5.
        seed: Seed of the corruptions.
        workers: Corruption processes (default: CPU count).
        progress: Show a progress bar.

    Returns:
        Name -> :class:`Grid`.
    """
    labels = np.asarray(labels)

    def correct(predict: Predictor, batch: torch.Tensor) -> np.ndarray:
        return np.asarray(predict(batch)).argmax(axis=1) == labels

    grids = {name: Grid(clean=correct(p, images), corrupted={}) for name, p in predictors.items()}
    plan = [(c, s) for c in corruptions for s in severities]
    steps: Any = plan
    if progress:
        from tqdm import tqdm

        steps = tqdm(plan, desc="corruptions", unit="grid cell")
    with Corruptor(images, seed=seed, workers=workers) as corruptor:
        for c, s in steps:
            batch = corruptor(c, s)
            for name, predict in predictors.items():
                grids[name].corrupted[(c, s)] = correct(predict, batch)
            log.debug("%s severity %d: %s", c, s, {n: round(g.top1(c, s), 4) for n, g in grids.items()})
    return grids


def _nanmean(x: np.ndarray) -> np.ndarray:
    """Mean over the last axis ignoring NaN (NaN where every value is NaN), without warnings."""
    finite = np.isfinite(x)
    count = finite.sum(-1)
    total = np.where(finite, x, 0.0).sum(-1)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(count > 0, total / np.maximum(count, 1), np.nan)


def _scores(acc: np.ndarray, ref_acc: np.ndarray, n_corr: int, n_sev: int) -> dict[str, np.ndarray]:
    """CE, mCE, relative CE and relative mCE from accuracies (..., 1 + C*S) (clean first) of a model and the
    reference."""
    e_clean, e = 1.0 - acc[..., 0], 1.0 - acc[..., 1:]
    r_clean, r = 1.0 - ref_acc[..., 0], 1.0 - ref_acc[..., 1:]
    shape = e.shape[:-1] + (n_corr, n_sev)
    e, r = e.reshape(shape), r.reshape(shape)
    den = r.sum(-1)
    rel_den = (r - r_clean[..., None, None]).sum(-1)
    with np.errstate(divide="ignore", invalid="ignore"):
        ce = np.where(den > 0, e.sum(-1) / den, np.nan)
        rel = np.where(rel_den > 0, (e - e_clean[..., None, None]).sum(-1) / rel_den, np.nan)
    return {"ce": ce, "mce": _nanmean(ce), "relative_ce": rel, "relative_mce": _nanmean(rel)}


def _matrix(grid: Grid, corruptions: Sequence[str], severities: Sequence[int]) -> np.ndarray:
    cols = [grid.clean] + [grid.corrupted[(c, s)] for c in corruptions for s in severities]
    return np.stack(cols, axis=1).astype(np.float64)


def _num(x: Any) -> float | None:
    x = float(x)
    return round(x, 6) if np.isfinite(x) else None


def bootstrap_weights(n: int, units: Sequence[str] | None, n_bootstrap: int, seed: int) -> np.ndarray:
    """(B, n) weights of bootstrap resamples, each row summing to 1: images resampled, or with ``units`` whole
    units (near-duplicate photos move together, so the intervals are not too narrow)."""
    rng = np.random.default_rng(seed)
    if units is None:
        return rng.multinomial(n, np.full(n, 1.0 / n), size=n_bootstrap) / n
    _, code = np.unique(np.asarray(units), return_inverse=True)
    k = int(code.max()) + 1
    w = rng.multinomial(k, np.full(k, 1.0 / k), size=n_bootstrap)[:, code].astype(np.float64)
    total = w.sum(axis=1, keepdims=True)
    return np.divide(w, total, out=np.full_like(w, 1.0 / n), where=total > 0)


def summarize(
    grid: Grid,
    corruptions: Sequence[str],
    severities: Sequence[int],
    reference: Grid | None = None,
    *,
    units: Sequence[str] | None = None,
    n_bootstrap: int = N_BOOTSTRAP,
    seed: int = 0,
) -> dict[str, Any]:
    """Accuracy per corruption and severity, and the scores against the reference (see the module doc).

    Args:
        grid: The model's correctness.
        corruptions: Corruption names, in order.
        severities: Severities, in order.
        reference: The FP32 reference's correctness on the same images (``None``: the model is the reference).
        units: The split unit (photo cluster) of each image: the intervals resample units, not images.
        n_bootstrap: Resamples for the 95 % intervals.
        seed: Seed of the resampling.

    Returns:
        ``{"n", "clean", "corruptions": {name: {severity: top1}}, "mean_corrupted_top1", "mean_error", "mce",
        "relative_mce", "ce": {name: CE}, "relative_ce", "ci95": {"mce", "relative_mce"}, "less_robust"}``;
        undefined scores (the reference never errs on a corruption) are ``None``.
    """
    ref = reference or grid
    m, mr = _matrix(grid, corruptions, severities), _matrix(ref, corruptions, severities)
    n, n_c, n_s = len(m), len(corruptions), len(severities)
    point = _scores(m.mean(0), mr.mean(0), n_c, n_s)
    boot = None
    if n:  # one (paired) resampling for the model and the reference: same seed, same weights as drawn twice
        weights = bootstrap_weights(n, units, n_bootstrap, seed)
        boot = _scores(weights @ m, weights @ mr, n_c, n_s)

    def ci(key: str) -> list[float | None]:
        if boot is None or reference is None:
            v = _num(point[key])
            return [v, v]
        vals = boot[key][np.isfinite(boot[key])]
        return [_num(np.quantile(vals, 0.025)), _num(np.quantile(vals, 0.975))] if vals.size else [None, None]

    rel_ci = ci("relative_mce")
    corrupted = m[:, 1:]
    return {
        "n": int(n),
        "clean": _num(m[:, 0].mean()) if n else None,
        "corruptions": {c: {str(s): _num(grid.top1(c, s)) for s in severities} for c in corruptions},
        "mean_corrupted_top1": _num(corrupted.mean()) if n else None,
        "mean_error": _num(1.0 - corrupted.mean()) if n else None,
        "mce": _num(point["mce"]),
        "relative_mce": _num(point["relative_mce"]),
        "ce": {c: _num(v) for c, v in zip(corruptions, point["ce"], strict=True)},
        "relative_ce": {c: _num(v) for c, v in zip(corruptions, point["relative_ce"], strict=True)},
        "ci95": {"mce": ci("mce"), "relative_mce": rel_ci},
        "less_robust": bool(reference is not None and rel_ci[0] is not None and rel_ci[0] > 1.0),
    }


# ------------------------------------------------------------------------------------------- loading
@dataclass
class Target:
    """A model to test, and the FP32 checkpoint it is compared with.

    Attributes:
        name: Its label in reports (the format, or ``checkpoint``).
        precision: Its precision.
        path: The checkpoint file or artifact folder.
        predict: uint8 images at the load size -> logits.
        reference: The FP32 reference checkpoint (loaded).
        is_reference: Whether the target is that checkpoint itself.
        close: Frees the target's runtime.
    """

    name: str
    precision: str
    path: Path
    predict: Predictor
    reference: Any
    is_reference: bool
    close: Callable[[], None]


def checkpoint_predictor(ckpt: Any) -> Predictor:
    """A :data:`Predictor` of a loaded checkpoint (its evaluation transform, eager PyTorch)."""
    from fishopt.training.evaluate import predict

    return lambda images: predict(ckpt.model, images, ckpt.meta).float().numpy()


def load_target(target: str | Path, reference: str | Path | None = None, threads: int | None = None) -> Target:
    """Load a checkpoint (``model.pt``) or an artifact folder, and its FP32 reference checkpoint.

    Args:
        target: A checkpoint file or an artifact folder.
        reference: The FP32 checkpoint to compare with (default: the checkpoint itself, or the one the artifact
            was built from, checked by SHA-256).
        threads: Runtime threads for artifacts (and torch's intra-op threads).

    Raises:
        CheckpointError: Missing or damaged checkpoint or artifact, or a reference that is not the source.
        ConfigError: A raw-input artifact whose raw size differs from the load size (the corruptions are
            applied at the load size).
    """

    path = Path(target)
    if threads:
        torch.set_num_threads(int(threads))
    if path.is_dir():
        from fishopt.monitor.artifacts import load_artifact, source_checkpoint

        model = load_artifact(path, threads=threads)
        try:
            ref = load_checkpoint(source_checkpoint(model, reference))
            check_compatible(ref.meta, model.meta.get("class_names"), model.meta.get("input_size"), what="the artifact")
            if list(model.image_size) != list(ref.meta["load_size"]):
                raise ConfigError(
                    f"artifact {str(path)!r} takes raw images at {model.image_size}, not the load size "
                    f"{ref.meta['load_size']} the corruptions are applied at; test an artifact without "
                    "--raw-size (or with --raw-size equal to the load size)"
                )
        except Exception:
            model.close()
            raise
        return Target(
            name=model.name,
            precision=model.precision,
            path=path,
            predict=model.predictor(),
            reference=ref,
            is_reference=False,
            close=model.close,
        )
    ckpt = load_checkpoint(path)
    ref = load_checkpoint(reference) if reference else ckpt
    if reference:
        check_compatible(ref.meta, ckpt.meta["class_names"], ckpt.meta["input_size"], what="the checkpoint")
    return Target(
        name="checkpoint",
        precision="fp32",
        path=path,
        predict=checkpoint_predictor(ckpt),
        reference=ref,
        is_reference=reference is None or Path(reference).resolve() == path.resolve(),
        close=lambda: None,
    )


def evaluation_images(
    ckpt: Any,
    data: str | Path | None = None,
    limit: int | None = None,
    seed: int = 0,
    cache: str | Path | None = None,
    progress: bool = False,
) -> tuple[torch.Tensor, np.ndarray, list[str] | None, str]:
    """uint8 images and labels to test on: the checkpoint's test split, or with ``data`` every image of that folder.

    Args:
        ckpt: The reference checkpoint (loaded).
        data: A folder in the Kaggle layout (labels from the class folders), like ``fishopt evaluate --split all``.
        limit: At most this many images (stratified per class, seeded).
        seed: Seed of the stratified draw.
        cache: Decode cache folder.
        progress: Progress bar while decoding.

    Returns:
        ``(images (N, 3, H, W) at the load size, labels (N,), split unit of each image (``None`` with ``data``),
        description)``.
    """
    from fishopt.data.cache import load_images

    if data is None:
        split = ckpt.split
        side = ckpt.split_images("test", limit=limit, seed=seed, cache=cache, progress=progress)
        units = [split.units[p] for p in side.paths]
        return side.images, side.labels.numpy(), units, f"test split ({ckpt.meta['split']['group_by']})"
    dataset = ckpt.dataset(data)
    labels = {s.path: s.label for s in dataset.samples}
    paths = sorted(labels)
    if limit is not None and limit < len(paths):
        paths = stratified_sample(paths, labels, limit, seed)
    images = load_images([dataset.root / p for p in paths], ckpt.meta["load_size"], cache=cache, progress=progress)
    ids = np.array([ckpt.class_names.index(labels[p]) for p in paths], dtype=np.int64)
    return images, ids, None, f"all images of {dataset.root}"


def run_robustness(
    target: str | Path,
    *,
    reference: str | Path | None = None,
    data: str | Path | None = None,
    corruptions: Sequence[str] | None = None,
    severities: Sequence[int] | None = None,
    limit: int | None = None,
    seed: int = 0,
    workers: int | None = None,
    threads: int | None = None,
    cache: str | Path | None = None,
    progress: bool = False,
) -> dict[str, Any]:
    """Accuracy of a checkpoint or artifact under ImageNet-C corruptions, and its scores against FP32.

    Args:
        target: A checkpoint (``model.pt``) or an artifact folder.
        reference: The FP32 checkpoint (default: the target itself, or the artifact's source checkpoint).
        data: Test on every image of this folder (Kaggle layout) instead of the test split.
        corruptions: Names, families, ``all`` or ``quick`` (default: the 15 ImageNet-C corruptions).
        severities: 1-5 (default: all five).
        limit: At most this many images (stratified per class).
        seed: Seed of the corruptions and the image draw.
        workers: Corruption processes (default: CPU count).
        threads: Runtime threads.
        cache: Decode cache folder.
        progress: Progress bars.

    Returns:
        The summary of :func:`summarize` plus ``model``, ``format``, ``precision``, ``reference``, ``data``,
        ``corruption_list``, ``severities``, ``seed``, ``seconds``, and (for a target other than the
        reference) ``fp32``: the reference's own accuracy grid on the same images.
    """
    corruptions = resolve_corruptions(corruptions)
    severities = resolve_severities(severities)
    if limit is not None and limit < 1:
        raise ConfigError(f"limit must be a positive number of images, got {limit}")
    start = time.perf_counter()
    tgt = load_target(target, reference, threads)
    try:
        images, labels, units, where = evaluation_images(tgt.reference, data, limit, seed, cache, progress)
        predictors = {"target": tgt.predict}
        if not tgt.is_reference:
            predictors["fp32"] = checkpoint_predictor(tgt.reference)
        grids = evaluate_grid(
            predictors, images, labels, corruptions, severities, seed=seed, workers=workers, progress=progress
        )
    finally:
        tgt.close()
    ref_grid = grids.get("fp32")
    out = {
        "model": str(tgt.path),
        "format": tgt.name,
        "precision": tgt.precision,
        "reference": str(tgt.reference.path),
        "data": where,
        "corruption_list": list(corruptions),
        "severities": list(severities),
        "seed": seed,
    }
    out.update(summarize(grids["target"], corruptions, severities, ref_grid, units=units, seed=seed))
    if ref_grid is not None:
        fp32 = summarize(ref_grid, corruptions, severities, units=units, seed=seed)
        out["fp32"] = {k: fp32[k] for k in ("clean", "corruptions", "mean_corrupted_top1", "mean_error")}
    out["seconds"] = round(time.perf_counter() - start, 2)
    return out


def quick_robustness(
    checkpoint: LoadedCheckpoint | str | Path,
    variants: Mapping[str, Predictor | str | Path] | None = None,
    *,
    corruptions: Sequence[str] = QUICK,
    severity: int = 3,
    limit: int | None = 300,
    seed: int = 0,
    data: str | Path | None = None,
    workers: int | None = None,
    threads: int | None = None,
    cache: str | Path | None = None,
) -> dict[str, Any]:
    """The benchmark's quick robustness check: a few corruptions at one severity, for several variants at once.

    Every variant and the FP32 checkpoint see the same corrupted test images.

    Args:
        checkpoint: The FP32 checkpoint the variants were built from (loaded, or its ``model.pt``).
        variants: Name -> a :data:`Predictor` (e.g. :func:`fishopt.monitor.artifacts.runtime_predictor` of a
            runtime the benchmark loaded) or an artifact folder.
        corruptions: Corruptions (default :data:`fishopt.monitor.corruptions.QUICK`: one or two per family).
        severity: The severity (default 3).
        limit: Test images (stratified; ``None``: all).
        seed: Seed of the corruptions and the image draw.
        data: Data root for the test split.
        workers: Corruption processes.
        threads: Runtime threads for artifact folders.
        cache: Decode cache folder.

    Returns:
        ``{"settings": {...}, "fp32": summary, "variants": {name: summary}}``, summaries as in :func:`summarize`
        (``corrupted_top1`` is ``mean_corrupted_top1``).
    """
    corruptions = resolve_corruptions(corruptions)
    severities = resolve_severities([severity])
    ckpt = as_checkpoint(checkpoint)
    predictors: dict[str, Predictor] = {"fp32": checkpoint_predictor(ckpt)}
    closers: list[Callable[[], None]] = []
    try:
        for name, variant in (variants or {}).items():
            if callable(variant):
                predictors[name] = variant
            else:
                tgt = load_target(variant, ckpt.path, threads)
                closers.append(tgt.close)
                predictors[name] = tgt.predict
        split = ckpt.split
        side = ckpt.split_images("test", limit=limit, seed=seed, data=data, cache=cache)
        units = [split.units[p] for p in side.paths]
        grids = evaluate_grid(
            predictors, side.images, side.labels.numpy(), corruptions, severities, seed=seed, workers=workers
        )
    finally:
        for close in closers:
            close()
    ref = grids.pop("fp32")
    return {
        "settings": {"corruptions": list(corruptions), "severity": int(severity), "n": len(side.labels), "seed": seed},
        "fp32": summarize(ref, corruptions, severities, units=units, seed=seed),
        "variants": {
            name: summarize(g, corruptions, severities, ref, units=units, seed=seed) for name, g in grids.items()
        },
    }
