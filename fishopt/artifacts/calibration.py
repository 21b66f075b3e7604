"""Calibration images for post-training quantization.

Calibration images come from the TRAIN part of the checkpoint's split only (never val or test), drawn per
class in equal shares (stratified), seeded, so the same checkpoint, size and seed always give the same
images. Accuracy-aware tuning (INC's ``max_drop``) evaluates on the VALIDATION part; reported accuracy
and the parity gate use the TEST part.
"""

from __future__ import annotations

import logging

from fishopt.artifacts.config import DEFAULT_CALIB_SIZE
from fishopt.checkpoint import LoadedCheckpoint, SplitImages
from fishopt.errors import DataError

log = logging.getLogger(__name__)


def calibration_images(
    ckpt: LoadedCheckpoint,
    size: int | None = DEFAULT_CALIB_SIZE,
    seed: int = 0,
    data: str | None = None,
    part: str = "train",
) -> SplitImages:
    """``size`` images of one part of the split (``train`` for calibration), stratified per class.

    Args:
        ckpt: The loaded checkpoint.
        size: How many images; ``None`` for all of them.
        seed: Seed of the draw.
        data: Data root (default ``$FISHOPT_DATA``, then the checkpoint's recorded root).
        part: ``train`` (calibration) or ``val`` (tuning).

    Returns:
        The images (:meth:`SplitImages.model_input` gives the float batch a quantizer calibrates on).

    Raises:
        DataError: If the part has no images there, or fewer than one per class are asked for.
    """
    classes = len(ckpt.class_names)
    available = len(ckpt.split.paths(part))
    if available == 0:
        raise DataError(
            f"no {part} images for calibration in the checkpoint's split; "
            "check --data / FISHOPT_DATA points at the data the checkpoint was trained on"
        )
    wanted = available if size is None else size
    if wanted < classes or available < classes:
        raise DataError(
            f"calibration needs at least one image per class ({classes} classes) but got "
            f"{min(wanted, available)}; raise --calib-size to {classes} or more (default {DEFAULT_CALIB_SIZE})"
        )
    images = ckpt.split_images(part, limit=size, seed=seed, data=data)
    seen = {ckpt.split.labels[p] for p in images.paths}
    missing = [c for c in ckpt.class_names if c not in seen]
    if missing:
        log.warning(
            "%s images cover %d of %d classes (missing: %s); raise --calib-size",
            part,
            len(seen),
            classes,
            ", ".join(missing),
        )
    return images
