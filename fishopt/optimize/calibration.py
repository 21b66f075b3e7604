"""Calibration and tuning data for post-training quantization.

Calibration images come from the TRAIN side of the checkpoint's split only (never val or test), drawn
per class in equal shares (stratified), seeded, so the same checkpoint, size and seed always give the
same images. Accuracy-aware tuning (``--max-drop``) evaluates on the VALIDATION side; reported
accuracy uses the TEST side.
"""

from __future__ import annotations

import logging
import os
import random
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from fishopt.errors import DataError
from fishopt.optimize.recipes import DEFAULT_CALIB_SIZE

log = logging.getLogger(__name__)



@dataclass
class CalibrationSet:
    """Images for calibration or evaluation.

    Attributes:
        images: uint8 images (N, 3, H, W) at the checkpoint's ``load_size``.
        batch: The same images through the evaluation transform: float32 (N, 3, h, w) at ``input_size``.
        labels: Class ids (N,).
        paths: Image paths relative to the data root.
        split: Side of the split they come from (``train`` for calibration).
    """

    images: torch.Tensor
    batch: torch.Tensor
    labels: torch.Tensor
    paths: list[str]
    split: str

    def __len__(self) -> int:
        return len(self.paths)

    def batches(self, batch_size: int = 32):
        """Yield float32 batches of the preprocessed images."""
        for i in range(0, len(self.batch), batch_size):
            yield self.batch[i : i + batch_size]


def stratified_sample(paths: list[str], labels: dict[str, str], size: int, seed: int) -> list[str]:
    """Pick up to ``size`` paths with (nearly) equal counts per class, seeded.

    Classes are filled round-robin from a seeded shuffle of each class, so a class with few images gives
    all it has and the rest of the budget goes to the others.

    Args:
        paths: Candidate image paths.
        labels: Path -> class name.
        size: How many to pick.
        seed: Seed of the shuffle.

    Returns:
        The picked paths, sorted.
    """
    rng = random.Random(seed)
    per_class: dict[str, list[str]] = defaultdict(list)
    for p in sorted(paths):
        per_class[labels[p]].append(p)
    queues = []
    for name in sorted(per_class):
        items = per_class[name]
        rng.shuffle(items)
        queues.append(items)
    picked: list[str] = []
    depth = 0
    while len(picked) < size and any(depth < len(q) for q in queues):
        for q in queues:
            if depth < len(q) and len(picked) < size:
                picked.append(q[depth])
        depth += 1
    return sorted(picked)


def _data_root(ckpt, data: str | os.PathLike[str] | None) -> Path:
    return ckpt.dataset(data).root


def _check_size(size: int, available: int, classes: int, split: str) -> None:
    if available == 0:
        raise DataError(
            f"no {split} images for calibration in the checkpoint's split; "
            "check --data / FISHOPT_DATA points at the data the checkpoint was trained on"
        )
    if size < classes or available < classes:
        raise DataError(
            f"calibration needs at least one image per class ({classes} classes) but got "
            f"{min(size, available)}; raise --calib-size to {classes} or more (default {DEFAULT_CALIB_SIZE})"
        )


def split_images(
    ckpt,
    split: str = "train",
    size: int | None = None,
    seed: int = 0,
    data: str | os.PathLike[str] | None = None,
    cache: str | os.PathLike[str] | None = None,
) -> CalibrationSet:
    """Load images of one side of a checkpoint's split, stratified per class.

    Args:
        ckpt: A :class:`fishopt.training.checkpoint.LoadedCheckpoint`.
        split: ``train`` (calibration), ``val`` (tuning) or ``test`` (reporting).
        size: How many images (stratified per class); ``None`` for all of them.
        seed: Seed of the draw.
        data: Data root; default ``$FISHOPT_DATA``, then the checkpoint's recorded root.
        cache: Decode cache folder.

    Returns:
        The images, preprocessed batch and labels.

    Raises:
        DataError: If the split has no images there, or fewer than one per class are asked for.
    """
    from fishopt.data.cache import load_images
    from fishopt.data.preprocess import eval_transform

    meta: dict[str, Any] = ckpt.meta
    sp = ckpt.load_split()
    candidates = sp.paths(split)
    classes = len(meta["class_names"])
    if size is not None:
        _check_size(size, len(candidates), classes, split)
        paths = stratified_sample(candidates, sp.labels, size, seed)
    else:
        _check_size(len(candidates), len(candidates), classes, split)
        paths = candidates
    _warn_coverage(paths, sp.labels, meta["class_names"], split)
    root = _data_root(ckpt, data)
    images = load_images([root / p for p in paths], meta["load_size"], cache=cache)
    batch = eval_transform(images, meta["input_size"], meta["mean"], meta["std"])
    labels = torch.tensor([meta["class_names"].index(sp.labels[p]) for p in paths])
    return CalibrationSet(images=images, batch=batch, labels=labels, paths=paths, split=split)


def _warn_coverage(paths: list[str], labels: dict[str, str], class_names: list[str], split: str) -> None:
    seen = {labels[p] for p in paths}
    missing = [c for c in class_names if c not in seen]
    if missing:
        log.warning("%s images cover %d of %d classes (missing: %s); raise --calib-size",
                    split, len(seen), len(class_names), ", ".join(missing))


def calibration_set(ckpt, size: int = DEFAULT_CALIB_SIZE, seed: int = 0, data=None, cache=None) -> CalibrationSet:
    """Calibration images: ``size`` TRAIN images stratified per class (see :func:`split_images`)."""
    return split_images(ckpt, "train", size=size, seed=seed, data=data, cache=cache)
