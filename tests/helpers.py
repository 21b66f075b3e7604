"""Helpers shared by the tests: tiny synthetic datasets and tiny checkpoints (import as ``from helpers import ...``)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

CLASSES = ("Alpha Fish", "Beta Fish", "Gamma Fish")


def write_image(
    path: Path, rng: np.random.Generator, size: tuple[int, int] = (40, 52), color: int | None = None
) -> Path:
    """Write a small random RGB image (JPEG or PNG by suffix)."""
    from PIL import Image

    path.parent.mkdir(parents=True, exist_ok=True)
    arr = rng.integers(0, 255, (*size, 3), dtype=np.uint8)
    if color is not None:
        arr[..., color % 3] = 255
    Image.fromarray(arr).save(path)
    return path


def make_synthetic_dataset(
    root: Path, per_group: int = 3, groups: int = 4, layout: str = "kaggle", seed: int = 0
) -> Path:
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


def make_tiny_checkpoint(out_dir: Path, data_root: Path, per_class: int = 8, width: int = 4, seed: int = 0) -> Path:
    """Write a tiny (untrained, deterministic) checkpoint with a real split file for ``data_root``.

    The model is ``baseline`` with small widths; the split is by cluster (or group) from groups.csv.
    """
    import torch

    from fishopt import __version__
    from fishopt.checkpoint import save_checkpoint
    from fishopt.data import find_dataset
    from fishopt.data.groups import read_groups, unit_of
    from fishopt.data.split import make_split, save_split
    from fishopt.models import create_model

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


def train_tiny(checkpoint: Path, steps: int = 60) -> Path:
    """Train a tiny checkpoint in place on its train split (full batch)."""
    import torch

    from fishopt.checkpoint import load_checkpoint, save_checkpoint
    from fishopt.data.preprocess import eval_transform

    torch.manual_seed(0)
    ckpt = load_checkpoint(checkpoint)
    _part = ckpt.split_images("train", limit=None)
    images, labels = _part.images, _part.labels
    x = eval_transform(images, ckpt.meta["input_size"], ckpt.meta["mean"], ckpt.meta["std"])
    model = ckpt.model.train()
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    for _ in range(steps):
        loss = torch.nn.functional.cross_entropy(model(x), labels)
        opt.zero_grad()
        loss.backward()
        opt.step()
    return save_checkpoint(checkpoint, model.eval(), ckpt.meta)


def make_tiny_family_checkpoint(out_dir: Path, data_root: Path, model: str, seed: int = 0) -> Path:
    """A tiny checkpoint of a registered model family (its ``tiny`` config: random init, small, no weights),
    with the family's own normalization, on a real split of ``data_root``, briefly trained (:func:`train_tiny`)."""
    import torch

    from fishopt.checkpoint import load_checkpoint, save_checkpoint
    from fishopt.models import create_model, model_info

    base = load_checkpoint(make_tiny_checkpoint(out_dir, data_root, seed=seed))
    info = model_info(model)
    cfg = {**info.tiny, "num_classes": len(base.meta["class_names"])}
    torch.manual_seed(seed)
    net = create_model(model, **cfg).eval()
    size = list(cfg.get("image_size") or base.meta["input_size"])
    meta = {
        **base.meta,
        "model": {"name": model, "cfg": cfg},
        "input_size": size,
        "load_size": [size[0] + 4, size[1] + 16],
        "mean": list(info.mean) if info.mean else base.meta["mean"],
        "std": list(info.std) if info.std else base.meta["std"],
    }
    return train_tiny(save_checkpoint(out_dir / "model.pt", net, meta))
