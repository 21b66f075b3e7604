"""Shared fixtures: the real fish data beside the checkout, tiny synthetic datasets, tiny checkpoints."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]
CLASSES = ("Alpha Fish", "Beta Fish", "Gamma Fish")


def _fish_root() -> Path | None:
    for candidate in (os.environ.get("FISHOPT_DATA"), REPO.parent / "shared" / "data" / "fish"):
        if candidate and (Path(candidate) / "Fish_Dataset").is_dir():
            return Path(candidate)
    return None


@pytest.fixture(scope="session")
def fish_root() -> Path:
    """The real fish data subset (../shared/data/fish or $FISHOPT_DATA); skips when absent."""
    root = _fish_root()
    if root is None:
        pytest.skip("fish data not found: set FISHOPT_DATA or place it at ../shared/data/fish")
    return root


@pytest.fixture(autouse=True, scope="session")
def _cache_dir(tmp_path_factory: pytest.TempPathFactory) -> None:
    """Keep the decode cache out of the home folder unless FISHOPT_CACHE is set."""
    if not os.environ.get("FISHOPT_CACHE"):
        os.environ["FISHOPT_CACHE"] = str(tmp_path_factory.mktemp("fishopt-cache"))


def write_image(path: Path, rng: np.random.Generator, size: tuple[int, int] = (40, 52), color: int | None = None) -> Path:
    """Write a small random RGB image (JPEG or PNG by suffix)."""
    from PIL import Image

    path.parent.mkdir(parents=True, exist_ok=True)
    arr = rng.integers(0, 255, (*size, 3), dtype=np.uint8)
    if color is not None:
        arr[..., color % 3] = 255
    Image.fromarray(arr).save(path)
    return path


def make_synthetic_dataset(root: Path, per_group: int = 3, groups: int = 4, layout: str = "kaggle", seed: int = 0) -> Path:
    """Create a tiny dataset with a groups.csv: 3 classes x ``groups`` photos x ``per_group`` copies."""
    rng = np.random.default_rng(seed)
    rows = ["path,class,group,cluster"]
    for ci, name in enumerate(CLASSES):
        folder = root / "Fish_Dataset" / name / name if layout == "kaggle" else root / name
        n = 0
        for g in range(groups):
            for _ in range(per_group):
                n += 1
                p = write_image(folder / f"{n:05d}.{'png' if n % 2 else 'JPG'}", rng, color=ci)
                rows.append(f"{p.relative_to(root).as_posix()},{name},{name}/g{g:03d},{name}/c{g:03d}")
    (root / "groups.csv").write_text("\n".join(rows) + "\n")
    return root


@pytest.fixture
def synthetic_root(tmp_path: Path) -> Path:
    """A tiny synthetic dataset in the Kaggle layout with groups.csv."""
    return make_synthetic_dataset(tmp_path / "fish")


def make_tiny_checkpoint(out_dir: Path, data_root: Path, per_class: int = 8, width: int = 4, seed: int = 0) -> Path:
    """Write a tiny (untrained, deterministic) checkpoint with a real split file for ``data_root``.

    The model is ``baseline`` with small widths; the split is by cluster (or group) from groups.csv.
    """
    import torch

    from fishopt import __version__
    from fishopt.data import find_dataset
    from fishopt.data.groups import read_groups, unit_of
    from fishopt.data.split import make_split, save_split
    from fishopt.models import create_model
    from fishopt.training.checkpoint import save_checkpoint

    torch.manual_seed(seed)
    ds = find_dataset(data_root)
    split = make_split(ds, unit_of(read_groups(data_root / "groups.csv", ds), "cluster"), seed=seed)
    out_dir.mkdir(parents=True, exist_ok=True)
    split_hash = save_split(split, out_dir / "split.json")
    cfg = {"num_classes": len(ds.class_names), "width": width, "hidden": 16, "head_pool": 2}
    model = create_model("baseline", **cfg).eval()
    meta = {
        "class_names": list(ds.class_names),
        "input_size": [32, 32],
        "load_size": [36, 48],
        "mean": [0.5, 0.5, 0.5],
        "std": [0.25, 0.25, 0.25],
        "model": {"name": "baseline", "cfg": cfg},
        "split": {"file": "split.json", "hash": split_hash, "group_by": "cluster", "leaky": False},
        "data_root": str(data_root),
        "recipe": "fp32",
        "metrics": {},
        "fishopt_version": __version__,
        "torch_version": str(torch.__version__),
    }
    return save_checkpoint(out_dir / "model.pt", model, meta)


@pytest.fixture
def tiny_checkpoint(tmp_path: Path, synthetic_root: Path) -> Path:
    """A tiny checkpoint on the synthetic dataset."""
    return make_tiny_checkpoint(tmp_path / "run", synthetic_root)


@pytest.fixture(scope="session")
def fish_checkpoint(tmp_path_factory: pytest.TempPathFactory, fish_root: Path) -> Path:
    """A tiny (untrained) checkpoint whose split file covers the real fish data."""
    return make_tiny_checkpoint(tmp_path_factory.mktemp("fish-run"), fish_root, width=8)
