from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from helpers import CLASSES, make_synthetic_dataset, write_image

from fishopt.data import find_dataset
from fishopt.errors import DataError


@pytest.mark.parametrize("layout", ["kaggle", "flat"])
def test_finds_classes_in_layouts(tmp_path: Path, layout: str) -> None:
    root = make_synthetic_dataset(tmp_path / "d", layout=layout)
    ds = find_dataset(root)
    assert ds.class_names == tuple(sorted(CLASSES))
    assert len(ds.samples) == 3 * 4 * 3
    assert all((root / s.path).is_file() for s in ds.samples)


def test_double_kaggle_layout_and_masks_ignored(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    base = tmp_path / "Fish_Dataset" / "Fish_Dataset"
    for name in ("B Fish", "A Fish"):
        write_image(base / name / name / "00001.PNG", rng)
        write_image(base / name / f"{name} GT" / "00001.png", rng)
        write_image(base / f"{name} GT" / "00001.png", rng)
    (base / "A Fish" / "A Fish" / "notes.txt").write_text("not an image")
    ds = find_dataset(tmp_path)
    assert ds.class_names == ("A Fish", "B Fish")
    assert [s.path for s in ds.samples] == [
        "Fish_Dataset/Fish_Dataset/A Fish/A Fish/00001.PNG",
        "Fish_Dataset/Fish_Dataset/B Fish/B Fish/00001.PNG",
    ]


def test_env_variable(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root = make_synthetic_dataset(tmp_path / "d")
    monkeypatch.setenv("FISHOPT_DATA", str(root))
    assert len(find_dataset().samples) == 36


def test_missing_root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("FISHOPT_DATA", raising=False)
    with pytest.raises(DataError, match="no data root"):
        find_dataset()
    with pytest.raises(DataError, match="does not exist"):
        find_dataset(tmp_path / "nope")


def test_empty_root(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="no class folders"):
        find_dataset(tmp_path)


def test_empty_class(tmp_path: Path) -> None:
    root = make_synthetic_dataset(tmp_path / "d", layout="flat")
    (root / "Empty Fish").mkdir()
    with pytest.raises(DataError, match="'Empty Fish' has no images"):
        find_dataset(root)


def test_missing_expected_class(tmp_path: Path) -> None:
    root = make_synthetic_dataset(tmp_path / "d")
    with pytest.raises(DataError, match="missing.*Zeta Fish"):
        find_dataset(root, expected_classes=(*CLASSES, "Zeta Fish"))


def test_shared_data(fish_root: Path) -> None:
    ds = find_dataset(fish_root)
    assert len(ds.class_names) == 9
    assert "Hourse Mackerel" in ds.class_names
    assert len(ds.samples) == 7304
