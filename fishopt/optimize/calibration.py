"""Calibration and tuning data for post-training quantization.

Calibration images come from the TRAIN side of the checkpoint's split only (never val or test), drawn
per class in equal shares (stratified), seeded, so the same checkpoint, size and seed always give the
same images. Accuracy-aware tuning (``--max-drop``) evaluates on the VALIDATION side; reported
accuracy uses the TEST side.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
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
    from fishopt.data.preprocess import eval_transform

    meta: dict[str, Any] = ckpt.meta
    sp = ckpt.load_split()
    available = len(sp.paths(split))
    _check_size(available if size is None else size, available, len(meta["class_names"]), split)
    side = ckpt.side_images(split, limit=size, seed=seed, data=data, cache=cache, split=sp)
    _warn_coverage(side.paths, sp.labels, meta["class_names"], split)
    batch = eval_transform(side.images, meta["input_size"], meta["mean"], meta["std"])
    return CalibrationSet(images=side.images, batch=batch, labels=side.labels, paths=side.paths, split=split)


def _warn_coverage(paths: list[str], labels: dict[str, str], class_names: list[str], split: str) -> None:
    seen = {labels[p] for p in paths}
    missing = [c for c in class_names if c not in seen]
    if missing:
        log.warning("%s images cover %d of %d classes (missing: %s); raise --calib-size",
                    split, len(seen), len(class_names), ", ".join(missing))


def calibration_set(ckpt, size: int = DEFAULT_CALIB_SIZE, seed: int = 0, data=None, cache=None) -> CalibrationSet:
    """Calibration images: ``size`` TRAIN images stratified per class (see :func:`split_images`)."""
    return split_images(ckpt, "train", size=size, seed=seed, data=data, cache=cache)
