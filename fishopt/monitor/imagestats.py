"""Per-image input statistics for the drift monitor: what the pixels look like, independent of the model.

The softmax and embedding tests see a shift only as far as the model reacts to it. Corruptions a model shrugs off
(a slight blur, pixelation, an elastic warp) still change the images, and the next shift of the same kind may not be
shrugged off. A handful of cheap statistics of each image, computed on what the model sees (the center crop at its
input size, RGB in [0, 255]), make a fifth test: ``ks_image``, a Kolmogorov-Smirnov test per statistic,
Bonferroni-corrected, calibrated like the others.

The statistics (numpy only, about 0.1 ms per 112x112 image):

- ``brightness``: mean luma (BT.601);
- ``contrast``: standard deviation of luma;
- ``colorfulness``: Hasler and Suesstrunk's colourfulness metric (2003);
- ``gradient``: mean absolute horizontal plus vertical luma difference;
- ``sharpness``: mean absolute 4-neighbour Laplacian of luma, divided by ``gradient`` (fine detail relative to edges:
  falls under blur, rises under noise);
- ``blockiness``: mean absolute luma difference across 8-pixel boundaries over that within blocks (JPEG blocks,
  pixelation).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from fishopt.errors import DataError

IMAGE_STATS = ("brightness", "contrast", "colorfulness", "gradient", "sharpness", "blockiness")
_EPS = 1e-6


def image_statistics(images: np.ndarray) -> np.ndarray:
    """The :data:`IMAGE_STATS` of a batch of RGB images.

    Args:
        images: (N, 3, H, W) uint8 or float in [0, 255], at least 10x10.

    Returns:
        (N, len(IMAGE_STATS)) float32.

    Raises:
        DataError: For a wrong shape.
    """
    x = np.asarray(images)
    if x.ndim != 4 or x.shape[1] != 3 or min(x.shape[2:]) < 10:
        raise DataError(f"image statistics need RGB images (N, 3, H, W) of at least 10x10, got shape {x.shape}")
    x = x.astype(np.float32, copy=False)
    r, g, b = x[:, 0], x[:, 1], x[:, 2]
    luma = 0.299 * r + 0.587 * g + 0.114 * b
    n = len(x)
    rg = (r - g).reshape(n, -1)
    yb = (0.5 * (r + g) - b).reshape(n, -1)
    colorful = np.hypot(rg.std(1), yb.std(1)) + 0.3 * np.hypot(rg.mean(1), yb.mean(1))
    dx = np.abs(luma[:, :, 1:] - luma[:, :, :-1])
    dy = np.abs(luma[:, 1:, :] - luma[:, :-1, :])
    dx_sum, dy_sum = dx.sum((1, 2)), dy.sum((1, 2))
    gradient = dx_sum / dx[0].size + dy_sum / dy[0].size
    centre = luma[:, 1:-1, 1:-1]
    lap = np.abs(4 * centre - luma[:, :-2, 1:-1] - luma[:, 2:, 1:-1] - luma[:, 1:-1, :-2] - luma[:, 1:-1, 2:])
    # differences across 8-pixel block boundaries (between columns 7|8, 15|16, ...) against all the others
    across_x, across_y = dx[:, :, 7::8], dy[:, 7::8, :]
    n_across = across_x[0].size + across_y[0].size
    across = across_x.sum((1, 2)) + across_y.sum((1, 2))
    within = (dx_sum + dy_sum - across) / (dx[0].size + dy[0].size - n_across)
    out = np.stack(
        [
            luma.mean((1, 2)),
            luma.std((1, 2)),
            colorful,
            gradient,
            lap.mean((1, 2)) / (gradient + _EPS),
            across / max(n_across, 1) / (within + _EPS),
        ],
        axis=1,
    )
    return out.astype(np.float32)


def model_input_images(batch: np.ndarray, meta: dict[str, Any], raw_input: bool) -> np.ndarray | None:
    """The images a batch of model inputs shows, as float (N, 3, h, w) in [0, 255] at the model's input size.

    Normalized inputs are un-normalized with the checkpoint's mean and std (and rounded, as the uint8 image they
    came from); raw uint8 NHWC inputs at the load size are center-cropped like the in-graph preprocessing. Raw
    inputs at another size (a camera-size graph) give ``None``: their statistics would not be comparable.

    Args:
        batch: Model inputs: float32 (N, 3, h, w) normalized, or uint8 (N, H, W, 3) for raw-input models.
        meta: Artifact metadata (``input_size``, ``load_size``, ``mean``, ``std``).
        raw_input: Whether ``batch`` is raw uint8 NHWC.
    """
    h, w = (int(v) for v in meta["input_size"])
    if raw_input:
        if batch.ndim != 4 or tuple(batch.shape[1:3]) != tuple(int(v) for v in meta["load_size"]):
            return None
        top, left = (batch.shape[1] - h) // 2, (batch.shape[2] - w) // 2
        return np.ascontiguousarray(batch[:, top : top + h, left : left + w].transpose(0, 3, 1, 2), dtype=np.float32)
    mean = np.asarray(meta["mean"], np.float32).reshape(1, 3, 1, 1) * 255.0
    std = np.asarray(meta["std"], np.float32).reshape(1, 3, 1, 1) * 255.0
    return np.clip(np.rint(batch * std + mean), 0.0, 255.0)


def center_crop(images: np.ndarray, size: tuple[int, int] | list[int]) -> np.ndarray:
    """Center crop of uint8 images (N, 3, H, W) to ``size`` (h, w), as the evaluation transform crops."""
    h, w = (int(v) for v in size)
    top, left = (images.shape[2] - h) // 2, (images.shape[3] - w) // 2
    return images[:, :, top : top + h, left : left + w]
