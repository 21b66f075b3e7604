"""Fixtures of the monitor tests: a small trained model on a synthetic dataset of near-duplicate photo units with
a faint class signal (so corruptions cost accuracy), its PyTorch artifact with a drift profile, and helpers to
write image folders."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from helpers import CLASSES, make_tiny_checkpoint, train_tiny


@dataclass
class MonitorRun:
    root: Path
    checkpoint: Path
    artifact: Path
    test_files: list[Path]


def make_unit_dataset(root: Path, units: int = 60, per_unit: int = 2, signal: float = 40.0, seed: int = 0) -> Path:
    """A Kaggle-layout dataset with groups.csv: per class ``units`` photos, each saved ``per_unit`` times with
    small changes (near-duplicates, like the fish data's augmented copies). A class shows as a brighter channel,
    ``signal`` levels above noise of std 45."""
    from PIL import Image

    rng = np.random.default_rng(seed)
    rows = ["path,class,group,cluster"]
    for ci, name in enumerate(CLASSES):
        folder = root / "Fish_Dataset" / name / name
        folder.mkdir(parents=True, exist_ok=True)
        for u in range(units):
            base = rng.normal(110, 45, (40, 52, 3))
            base[..., ci] += signal
            for k in range(per_unit):
                arr = np.clip(base + rng.normal(0, 6, base.shape), 0, 255).astype(np.uint8)
                path = folder / f"{u:03d}_{k}.png"
                Image.fromarray(arr).save(path)
                rows.append(f"{path.relative_to(root).as_posix()},{name},{name}/g{u:03d},{name}/c{u:03d}")
    (root / "groups.csv").write_text("\n".join(rows) + "\n")
    return root


@pytest.fixture(scope="session")
def monitor_run(tmp_path_factory: pytest.TempPathFactory) -> MonitorRun:
    """A trained tiny checkpoint on :func:`make_unit_dataset` (360 images, 180 units; ~54 test images in ~27
    units), and its ``torch-eager-fp32`` artifact with a drift profile."""
    import torch

    from fishopt.export.api import build
    from fishopt.monitor.profile import make_artifact_profile
    from fishopt.training.checkpoint import load_checkpoint

    base = tmp_path_factory.mktemp("monitor")
    root = make_unit_dataset(base / "fish")
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # a tiny model: one thread is faster, and much faster on a busy machine
    try:
        ckpt = train_tiny(make_tiny_checkpoint(base / "run", root), steps=20)
    finally:
        torch.set_num_threads(threads)
    artifact = build("torch-eager-fp32", ckpt, base / "torch", verify=False).out_dir
    make_artifact_profile(artifact)
    split = load_checkpoint(ckpt).load_split()
    return MonitorRun(root=root, checkpoint=ckpt, artifact=artifact, test_files=[root / p for p in split.paths("test")])


def copy_images(files: list[Path], dest: Path, transform=None) -> Path:
    """Copy images into ``dest`` (nested folders), optionally through ``transform(uint8 HWC) -> uint8 HWC``."""
    from PIL import Image

    for i, src in enumerate(files):
        out = dest / f"sub{i % 3}" / f"{i:04d}.png"
        out.parent.mkdir(parents=True, exist_ok=True)
        with Image.open(src) as img:
            arr = np.asarray(img.convert("RGB"))
        Image.fromarray(transform(arr) if transform else arr).save(out)
    return dest
