#!/usr/bin/env python
"""Prepare what ``benchmarks/gpu_check.sh`` needs on a GPU machine that cannot reach the network.

Copies into one folder (default ``.gpu/``, git-ignored, never committed):

- the checkpoints' run folders (``model.pt`` + ``split.json``), as ``runs/<name>/``;
- the TEST images of the first checkpoint's split (``--all-images``: every image, optionally re-encoded at a
  smaller load size with ``--size`` to fit the transfer limit), in the Kaggle layout, with the matching rows of
  ``groups.csv`` (test accuracy, and training runs on the GPU machine);

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
    p.add_argument(
        "--all-images",
        action="store_true",
        help="carry every image (for training runs there), not only the first checkpoint's test images",
    )
    p.add_argument(
        "--size",
        default=None,
        help="HxW: re-encode each image at this load size (decode + fit, then JPEG at --quality) so all "
        "images fit the transfer limit; the split (file names, classes, groups) is unchanged",
    )
    p.add_argument("--quality", type=int, default=90, help="JPEG quality with --size")
    p.add_argument("--half", action="store_true", help="store the checkpoints' weights as float16 (half the size)")
    args = p.parse_args(argv)

    from fishopt.checkpoint import load_checkpoint

    out = Path(args.out)
    if out.exists():
        shutil.rmtree(out)
    for i, path in enumerate(args.checkpoints):
        ckpt = load_checkpoint(path)
        run = out / "runs" / ckpt.path.parent.name
        run.mkdir(parents=True)
        if args.half:
            import torch

            blob = torch.load(ckpt.path, map_location="cpu", weights_only=True)
            blob["state_dict"] = {k: v.half() if v.is_floating_point() else v for k, v in blob["state_dict"].items()}
            torch.save(blob, run / "model.pt")
        else:
            shutil.copy2(ckpt.path, run / "model.pt")
        shutil.copy2(ckpt.split_path(), run / ckpt.meta["split"]["file"])
        if i == 0:
            split = ckpt.load_split()
            test = set(split.assignment) if args.all_images else set(split.paths("test"))
    data = Path(args.data)
    dest = out / "data" / "fish"
    size = [int(v) for v in args.size.lower().split("x")] if args.size else None
    for rel in sorted(test):
        (dest / rel).parent.mkdir(parents=True, exist_ok=True)
        if size is None:
            shutil.copy2(data / rel, dest / rel)
            continue
        from PIL import Image

        from fishopt.data.preprocess import decode_image, fit_to

        pixels = fit_to(decode_image(data / rel), size).permute(1, 2, 0).numpy()
        Image.fromarray(pixels).save(dest / rel, "JPEG", quality=args.quality)
    with (
        (data / "groups.csv").open(newline="", encoding="utf-8") as src,
        (dest / "groups.csv").open("w", newline="", encoding="utf-8") as dst,
    ):
        reader = csv.DictReader(src)
        writer = csv.DictWriter(dst, fieldnames=reader.fieldnames)
        writer.writeheader()
        writer.writerows(row for row in reader if row["path"] in test)
    total = sum(f.stat().st_size for f in out.rglob("*") if f.is_file())
    print(f"{out}: {len(args.checkpoints)} run(s), {len(test)} images, {total / 2**20:.1f} MiB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
