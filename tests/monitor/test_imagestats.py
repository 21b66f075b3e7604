"""Input statistics of images (the ``ks_image`` drift test): what each one responds to, and the model-input view."""

from __future__ import annotations

import numpy as np
import pytest

from fishopt.errors import DataError
from fishopt.monitor.imagestats import IMAGE_STATS, center_crop, image_statistics, model_input_images


def scene(seed: int = 0, size: int = 64) -> np.ndarray:
    """A textured RGB image (1, 3, size, size) in [0, 255] float: smooth shapes plus fine texture."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:size, 0:size] / size
    base = 120 + 60 * np.sin(6 * xx + 3 * yy)[None] * np.array([1.0, 0.6, 0.3])[:, None, None]
    return np.clip(base + 12 * rng.normal(size=(3, size, size)), 0, 255)[None]


def stat(images: np.ndarray, name: str) -> float:
    return float(image_statistics(images)[0, IMAGE_STATS.index(name)])


def box_blur(x: np.ndarray) -> np.ndarray:
    pad = np.pad(x, ((0, 0), (0, 0), (1, 1), (1, 1)), mode="edge")
    return sum(pad[:, :, i : i + x.shape[2], j : j + x.shape[3]] for i in range(3) for j in range(3)) / 9.0


def test_each_statistic_moves_with_what_it_measures() -> None:
    x = scene()
    out = image_statistics(np.concatenate([x, x]))
    assert out.shape == (2, len(IMAGE_STATS)) and out.dtype == np.float32
    assert stat(np.clip(x + 40, 0, 255), "brightness") == pytest.approx(stat(x, "brightness") + 40, abs=1.0)
    assert stat(0.5 * x + 64, "contrast") == pytest.approx(0.5 * stat(x, "contrast"), rel=0.01)
    gray = np.repeat(x.mean(1, keepdims=True), 3, axis=1)
    assert stat(gray, "colorfulness") < 1e-3 < stat(x, "colorfulness")
    assert stat(box_blur(x), "sharpness") < 0.8 * stat(x, "sharpness")  # blur removes fine detail
    assert stat(box_blur(x), "gradient") < stat(x, "gradient")
    # pixelation: 8x8 blocks make every difference sit on a block boundary
    blocks = np.repeat(np.repeat(x[:, :, ::8, ::8], 8, axis=2), 8, axis=3)
    assert stat(blocks, "blockiness") > 5 * stat(x, "blockiness")


def test_bad_shapes_are_refused() -> None:
    with pytest.raises(DataError, match=r"\(N, 3, H, W\)"):
        image_statistics(np.zeros((2, 8, 8, 3)))
    with pytest.raises(DataError, match="at least 10x10"):
        image_statistics(np.zeros((1, 3, 4, 4)))


def test_model_inputs_give_back_the_center_crop_the_model_sees() -> None:
    from fishopt.data.normalize import eval_transform_array

    rng = np.random.default_rng(1)
    images = rng.integers(0, 256, (2, 3, 24, 32), dtype=np.uint8)
    meta = {"input_size": [16, 16], "load_size": [24, 32], "mean": [0.4, 0.5, 0.6], "std": [0.2, 0.25, 0.3]}
    inputs = np.stack([eval_transform_array(im, meta["input_size"], meta["mean"], meta["std"]) for im in images])
    crop = center_crop(images, meta["input_size"])
    np.testing.assert_array_equal(model_input_images(inputs, meta, raw_input=False), crop.astype(np.float32))
    raw = np.ascontiguousarray(images.transpose(0, 2, 3, 1))
    np.testing.assert_array_equal(model_input_images(raw, meta, raw_input=True), crop.astype(np.float32))
    camera = np.zeros((1, 48, 64, 3), np.uint8)  # a raw graph at another size than the load size
    assert model_input_images(camera, meta, raw_input=True) is None
