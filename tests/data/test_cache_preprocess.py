from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from helpers import write_image

from fishopt.data.cache import load_images
from fishopt.data.normalize import eval_transform_array
from fishopt.data.preprocess import (
    Preprocess,
    center_crop,
    channel_stats,
    decode_image,
    eval_transform,
    fit_to,
)
from fishopt.errors import ConfigError, DataError


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


# -- issue 12: huge images, unreadable files, every bad file at once, corrupt cache entries --------------------------


def _png_header_only(path: Path, width: int, height: int) -> Path:
    """A PNG that claims width x height (no pixel data): what a decompression bomb looks like to a reader."""
    import struct
    import zlib

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 64)))
    return path


def test_decompression_bomb_names_the_file_the_limit_and_the_way_out(tmp_path, monkeypatch) -> None:
    bomb = _png_header_only(tmp_path / "bomb.png", 20000, 20000)
    with pytest.raises(
        DataError,
        match=r"bomb.png' is 20000x20000 = 400,000,000 pixels, above the limit of "
        r"178,956,970 .* FISHOPT_MAX_IMAGE_PIXELS=400000000 \(or 0 for no limit\)",
    ):
        decode_image(bomb)
    small = write_image(tmp_path / "small.png", np.random.default_rng(0), size=(20, 30))
    monkeypatch.setenv("FISHOPT_MAX_IMAGE_PIXELS", "100")
    with pytest.raises(DataError, match="above the limit of 100"):
        decode_image(small)
    monkeypatch.setenv("FISHOPT_MAX_IMAGE_PIXELS", "0")  # allowed deliberately
    assert decode_image(small).shape == (3, 20, 30)
    monkeypatch.setenv("FISHOPT_MAX_IMAGE_PIXELS", "lots")
    with pytest.raises(ConfigError, match="not a pixel count"):
        decode_image(small)


def test_every_bad_image_is_named_at_once(tmp_path, monkeypatch) -> None:
    import builtins

    rng = np.random.default_rng(0)
    good = [write_image(tmp_path / f"g{i}.jpg", rng) for i in range(3)]
    truncated = tmp_path / "truncated.jpg"
    truncated.write_bytes(good[0].read_bytes()[:300])
    text = tmp_path / "text.png"
    text.write_text("not an image")
    locked = write_image(tmp_path / "locked.jpg", rng)
    locked.chmod(0)
    real_open = builtins.open

    def refusing_open(file, *args, **kwargs):  # root reads anything: refuse as for any other user
        if str(file) == str(locked):
            raise PermissionError(13, "Permission denied", str(file))
        return real_open(file, *args, **kwargs)

    monkeypatch.setattr(builtins, "open", refusing_open)
    bomb = _png_header_only(tmp_path / "bomb.png", 20000, 20000)
    with pytest.raises(DataError) as info:
        load_images([*good, truncated, text, locked, bomb], (24, 32), cache=tmp_path / "cache", workers=1)
    message = str(info.value)
    assert message.startswith("4 of 7 image(s) cannot be used")
    for name in ("truncated.jpg", "text.png", "locked.jpg' (Permission denied)", "bomb.png"):
        assert name in message


def test_corrupt_cache_entry_is_dropped_and_decoded_again(tmp_path, caplog) -> None:
    rng = np.random.default_rng(0)
    paths = [write_image(tmp_path / f"g{i}.png", rng) for i in range(2)]
    cache = tmp_path / "cache"
    first = load_images(paths, (24, 32), cache=cache, workers=1)
    entries = sorted(cache.rglob("*.npy"))
    assert len(entries) == 2
    entries[0].write_bytes(entries[0].read_bytes()[:40])  # truncated: "EOF: reading array header"
    np.save(entries[1].open("wb"), np.zeros((3, 5, 5), np.uint8))  # wrong shape
    with caplog.at_level("WARNING"):
        again = load_images(paths, (24, 32), cache=cache, workers=1)
    assert torch.equal(first, again)
    assert caplog.text.count("is corrupt") == 2 and "decoding the image again" in caplog.text
    assert all(np.load(e).shape == (3, 24, 32) for e in entries)


def test_extreme_aspect_ratio_is_refused_not_resized_into_gigabytes(tmp_path) -> None:
    from PIL import Image

    Image.new("RGB", (20000, 1)).save(tmp_path / "strip.png")
    with pytest.raises(DataError, match="strip.png' \\(20000x1 pixels: too narrow or too flat"):
        load_images([tmp_path / "strip.png"], (120, 160), cache=tmp_path / "cache", workers=1)


@pytest.mark.parametrize("load,crop", [((120, 160), (112, 112)), ((9, 8), (9, 8)), ((31, 40), (16, 21))])
def test_eval_transform_array_is_eval_transform_bit_for_bit(load, crop) -> None:
    image = np.random.default_rng(sum(load)).integers(0, 256, (3, *load), dtype=np.uint8)
    mean, std = [0.41, 0.43, 0.39], [0.27, 0.25, 0.29]
    expected = eval_transform(torch.from_numpy(image)[None], crop, mean, std)[0].numpy()
    got = eval_transform_array(image, crop, mean, std)
    assert got.dtype == np.float32 and got.shape == (3, *crop) and np.array_equal(got, expected)


def test_eval_transform_array_refuses_a_larger_crop() -> None:
    with pytest.raises(DataError, match="must not exceed"):
        eval_transform_array(np.zeros((3, 10, 10), np.uint8), (12, 10), [0.5] * 3, [0.2] * 3)
