"""infer.py's image path: the numpy resize matches fishopt's, odd image modes become RGB, bad files are named."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest

TEMPLATES = Path(__file__).resolve().parents[2] / "fishopt" / "deploy" / "templates"


@pytest.fixture(scope="module")
def infer():
    spec = importlib.util.spec_from_file_location("bundle_infer", TEMPLATES / "infer.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize(
    "src,dst",
    [
        ((40, 52), (36, 48)),
        ((168, 224), (36, 48)),
        ((30, 30), (36, 48)),
        ((445, 590), (120, 160)),
        ((50, 40), (32, 32)),
    ],
)
def test_fit_to_matches_fishopt(infer, src: tuple[int, int], dst: tuple[int, int]) -> None:
    import torch

    from fishopt.data.preprocess import fit_to

    image = np.random.default_rng(sum(src)).integers(0, 256, (*src, 3), dtype=np.uint8)
    ref = fit_to(torch.from_numpy(image).permute(2, 0, 1), dst).permute(1, 2, 0).numpy().astype(int)
    got = infer.fit_to(image, dst).astype(int)
    assert got.shape == (*dst, 3)
    diff = np.abs(ref - got)
    assert diff.max() <= 1 and (diff > 0).mean() < 1e-3  # float summation order only: rare 1-level rounding


def test_same_size_is_untouched(infer) -> None:
    image = np.random.default_rng(0).integers(0, 256, (36, 48, 3), dtype=np.uint8)
    assert infer.fit_to(image, (36, 48)) is image


@pytest.mark.parametrize("mode", ["L", "RGBA", "P", "LA"])
def test_odd_modes_are_converted_to_rgb(infer, tmp_path: Path, mode: str) -> None:
    from PIL import Image

    path = tmp_path / f"x-{mode}.png"
    Image.new("RGB", (20, 10), (200, 40, 90)).convert(mode).save(path)
    out = infer.decode(path)
    assert out.shape == (10, 20, 3) and out.dtype == np.uint8


def test_non_image_names_the_file(infer, tmp_path: Path) -> None:
    bad = tmp_path / "notes.jpg"
    bad.write_text("not an image")
    with pytest.raises(infer.ImageError, match="notes.jpg: not a readable image"):
        infer.decode(bad)


def test_folders_expand_to_images_only(infer, tmp_path: Path) -> None:
    (tmp_path / "a").mkdir()
    for name in ("a/1.JPG", "a/2.png", "a/readme.txt", "3.jpeg"):
        (tmp_path / name).write_bytes(b"")
    found = infer.list_images([str(tmp_path)])
    assert [p.name for p in found] == ["3.jpeg", "1.JPG", "2.png"]
    with pytest.raises(infer.ImageError, match="no such file"):
        infer.list_images([str(tmp_path / "missing")])
