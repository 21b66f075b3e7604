"""Helpers of the monitor tests (import as ``from monitor_helpers import ...``)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from helpers import CLASSES


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
