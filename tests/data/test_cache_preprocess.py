from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from helpers import write_image
from fishopt.data.cache import load_images
from fishopt.data.preprocess import Preprocess, center_crop, channel_stats, decode_image, eval_transform, fit_to
from fishopt.errors import DataError


def test_decode_modes(tmp_path: Path) -> None:
    from PIL import Image

    Image.new("L", (20, 10), 128).save(tmp_path / "g.png")
    Image.new("RGBA", (20, 10), (1, 2, 3, 4)).save(tmp_path / "a.png")
    assert decode_image(tmp_path / "g.png").shape == (3, 10, 20)
    assert decode_image(tmp_path / "a.png")[:, 0, 0].tolist() == [1, 2, 3]


def test_corrupt_and_non_image(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    good = write_image(tmp_path / "x.jpg", rng, size=(64, 64))
    (tmp_path / "t.jpg").write_bytes(good.read_bytes()[:200])
    (tmp_path / "n.png").write_text("hello")
    for name in ("t.jpg", "n.png"):
        with pytest.raises(DataError, match=name):
            decode_image(tmp_path / name)


def test_fit_to_any_size() -> None:
    for h, w in ((168, 224), (445, 590), (100, 100), (300, 120)):
        x = torch.randint(0, 255, (3, h, w), dtype=torch.uint8)
        y = fit_to(x, (120, 160))
        assert y.shape == (3, 120, 160) and y.dtype == torch.uint8


def test_center_crop_too_big() -> None:
    with pytest.raises(DataError, match="must not exceed"):
        center_crop(torch.zeros(1, 3, 10, 10), (12, 12))


def test_preprocess_module_matches_pipeline() -> None:
    raw = torch.randint(0, 255, (2, 3, 168, 224), dtype=torch.uint8)
    mean, std = [0.4, 0.5, 0.6], [0.2, 0.25, 0.3]
    expected = eval_transform(fit_to(raw, (120, 160)), (112, 112), mean, std)
    got = Preprocess((120, 160), (112, 112), mean, std)(raw)
    torch.testing.assert_close(got, expected)
    nhwc = Preprocess((120, 160), (112, 112), mean, std, channels_last_input=True)(raw.permute(0, 2, 3, 1))
    torch.testing.assert_close(nhwc, expected)


def test_channel_stats() -> None:
    x = torch.full((4, 3, 10, 10), 255, dtype=torch.uint8)
    mean, std = channel_stats(x, (8, 8))
    assert mean == [1.0, 1.0, 1.0] and std == [0.0, 0.0, 0.0]


def test_cache_reuses_decoded(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    rng = np.random.default_rng(0)
    paths = [write_image(tmp_path / f"{i}.png", rng, size=(30, 40)) for i in range(3)]
    first = load_images(paths, (12, 16), cache=tmp_path / "c", workers=1)
    assert first.shape == (3, 3, 12, 16)
    assert len(list((tmp_path / "c").rglob("*.npy"))) == 3

    def boom(_):
        raise AssertionError("decoded again")

    monkeypatch.setattr("fishopt.data.cache._decode_to_cache", boom)
    torch.testing.assert_close(load_images(paths, (12, 16), cache=tmp_path / "c"), first)


def test_normalize_keeps_the_device_of_its_input() -> None:
    """Normalization constants follow the images' device (training normalizes batches on the GPU)."""
    import torch

    from fishopt.data.preprocess import normalize

    images = torch.zeros(1, 3, 2, 2, dtype=torch.uint8, device="meta")
    out = normalize(images, [0.5] * 3, [0.25] * 3)
    assert out.device.type == "meta" and out.shape == (1, 3, 2, 2)
