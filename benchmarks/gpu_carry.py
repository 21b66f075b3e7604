#!/usr/bin/env python
"""Prepare what ``benchmarks/gpu_check.sh`` needs on a GPU machine that cannot reach the network.

Copies into one folder (default ``.gpu/``, git-ignored, never committed):

- the checkpoints' run folders (``model.pt`` + ``split.json``), as ``runs/<name>/``;
- the TEST images of the first checkpoint's split, in the Kaggle layout, with the matching rows of
  ``groups.csv`` (enough to measure test accuracy and to run a short CUDA training on these images);

The data set itself stays outside the repository; this folder only travels with the device run.

    python benchmarks/gpu_carry.py runs/default/model.pt [runs/teacher/model.pt] --data ../shared/data/fish
"""

from __future__ import annotations

import argparse
import csv
import shutil
import sys
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    """Copy the run folders and the test images; print the folder."""
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("checkpoints", nargs="+", help="model.pt files; the first one's split picks the test images")
    p.add_argument("--data", required=True, help="the data root the checkpoints were trained on")
    p.add_argument("--out", default=".gpu", help="destination folder (default .gpu)")
    args = p.parse_args(argv)

    from fishopt.checkpoint import load_checkpoint

    out = Path(args.out)
    if out.exists():
        shutil.rmtree(out)
    for i, path in enumerate(args.checkpoints):
        ckpt = load_checkpoint(path)
        run = out / "runs" / ckpt.path.parent.name
        run.mkdir(parents=True)
        shutil.copy2(ckpt.path, run / "model.pt")
        shutil.copy2(ckpt.split_path(), run / ckpt.meta["split"]["file"])
        if i == 0:
            test = set(ckpt.load_split().paths("test"))
    data = Path(args.data)
    dest = out / "data" / "fish"
    for rel in sorted(test):
        (dest / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(data / rel, dest / rel)
    with (data / "groups.csv").open(newline="", encoding="utf-8") as src, \
            (dest / "groups.csv").open("w", newline="", encoding="utf-8") as dst:
        reader = csv.DictReader(src)
        writer = csv.DictWriter(dst, fieldnames=reader.fieldnames)
        writer.writeheader()
        writer.writerows(row for row in reader if row["path"] in test)
    size = sum(f.stat().st_size for f in out.rglob("*") if f.is_file())
    print(f"{out}: {len(args.checkpoints)} run(s), {len(test)} test images, {size / 2**20:.1f} MiB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
