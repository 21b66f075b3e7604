"""Lightning DataModule: find the data, split it by source photo, decode once, serve uint8 batches."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import pytorch_lightning as pl
import torch
from torch.utils.data import DataLoader, TensorDataset

from fishopt.data.cache import cache_dir, load_images
from fishopt.data.discovery import FishDataset, find_dataset
from fishopt.data.groups import GROUPS_FILE, read_groups, unit_of, write_groups
from fishopt.data.photos import ALGORITHM_VERSION, find_groups
from fishopt.data.split import Split, load_split, make_split
from fishopt.errors import DataError
from fishopt.io import file_sha256, text_sha256

log = logging.getLogger(__name__)


def resolve_units(dataset: FishDataset, data_cfg: dict[str, Any]) -> dict[str, str] | None:
    """Return image path -> split unit from ``groups.csv``; ``None`` for an explicit leaky split.

    Without a groups file the groups are found from the images (:func:`fishopt.data.photos.find_groups`)
    and cached under ``cache_dir()/groups/<hash of the sorted (path, file hash) list and the
    algorithm version>.csv``.

    Raises:
        DataError: If an explicitly configured groups file is missing or the groups cannot be found.
    """

    if data_cfg.get("leaky_split"):
        log.warning("LEAKY split by file requested: every result of this run is inflated and marked leaky")
        return None
    by = data_cfg.get("group_by", "cluster")
    if data_cfg.get("groups_file") and not Path(data_cfg["groups_file"]).is_file():
        raise DataError(
            f"groups file {data_cfg['groups_file']!r} not found; fix data.groups_file, or unset it to find "
            "the groups from the images"
        )
    groups_file = Path(data_cfg.get("groups_file") or dataset.root / GROUPS_FILE)
    if groups_file.is_file():
        return unit_of(read_groups(groups_file, dataset), by)

    listing = "\n".join([ALGORITHM_VERSION] + [f"{s.path}\t{file_sha256(dataset.abspath(s))}" for s in dataset.samples])
    cached = cache_dir(data_cfg.get("cache_dir")) / "groups" / f"{text_sha256(listing)}.csv"
    if cached.is_file():
        log.info("no %s in %s: using the groups found earlier, cached at %s", GROUPS_FILE, dataset.root, cached)
        return unit_of(read_groups(cached, dataset), by)
    log.warning(
        "no %s in %s: finding the source photos from the images (once; cached at %s)", GROUPS_FILE, dataset.root, cached
    )
    entries = find_groups(dataset, cache=data_cfg.get("cache_dir"))
    write_groups(cached, dataset, entries)
    return unit_of(entries, by)


def build_split(dataset: FishDataset, data_cfg: dict[str, Any]) -> Split:
    """Load ``data_cfg.split_file`` or make a split from the groups."""
    if data_cfg.get("split_file"):
        split = load_split(data_cfg["split_file"])
        missing = sorted(set(split.assignment) - {s.path for s in dataset.samples})
        if missing:
            raise DataError(f"split file names {len(missing)} image(s) not under the data root, e.g. {missing[0]!r}")
        return split
    return make_split(
        dataset,
        resolve_units(dataset, data_cfg),
        group_by=data_cfg.get("group_by", "cluster"),
        fractions=tuple(data_cfg.get("fractions", (0.7, 0.15, 0.15))),
        seed=int(data_cfg.get("split_seed", 0)),
    )


def limit_paths(paths: list[str], labels: dict[str, str], per_class: int | None) -> list[str]:
    """Keep at most ``per_class`` paths of each class, spread evenly over the sorted list."""
    if not per_class:
        return paths
    by_class: dict[str, list[str]] = {}
    for p in paths:
        by_class.setdefault(labels[p], []).append(p)
    out: list[str] = []
    for items in by_class.values():
        step = max(1, len(items) // per_class)
        out.extend(items[::step][:per_class])
    return sorted(out)


class FishDataModule(pl.LightningDataModule):
    """Serves (uint8 image, label) batches at the load size; the module augments them on its device.

    Args:
        data_cfg: The ``data`` config group (see ``conf/data/fish.yaml``).
        seed: Seed of the training shuffle.

    Attributes:
        train_sides: The split sides the training loader serves: ``("train",)``, or ``("train", "val")``
            for the refit on every photo outside the test split.
        train_load_size: The (height, width) the training loader's images are decoded at, when not
            ``data.load_size`` (distillation with ``distill.teacher_view=native``: the teacher's load size).
            Validation and test always use ``data.load_size``.
    """

    def __init__(self, data_cfg: dict[str, Any], seed: int = 0) -> None:
        super().__init__()
        self.cfg = data_cfg
        self.seed = seed
        self.dataset = find_dataset(data_cfg.get("root"))
        self.split = build_split(self.dataset, data_cfg)
        self.tensors: dict[str, TensorDataset] = {}
        self.train_sides: tuple[str, ...] = ("train",)
        self.train_load_size: tuple[int, ...] | None = None

    @property
    def class_names(self) -> tuple[str, ...]:
        """Sorted class names."""
        return self.dataset.class_names

    def paths(self, side: str) -> list[str]:
        """Image paths of one side of the split (limited per class if configured)."""
        return limit_paths(self.split.paths(side), self.split.labels, self.cfg.get("limit_per_class"))

    def load(self, side: str, load_size: tuple[int, ...] | None = None) -> TensorDataset:
        """Decode (or read from the cache) one side of the split, at ``data.load_size`` unless ``load_size``."""

        size = tuple(int(v) for v in (load_size or self.cfg["load_size"]))
        key = side if size == tuple(int(v) for v in self.cfg["load_size"]) else f"{side}@{size[0]}x{size[1]}"
        if key not in self.tensors:
            paths = self.paths(side)
            images = load_images(
                [self.dataset.root / p for p in paths], list(size), cache=self.cfg.get("cache_dir"), progress=True
            )
            self.tensors[key] = TensorDataset(images, self._labels(paths))
        return self.tensors[key]

    def check_images(self) -> None:
        """Decode every image of every side of the split now (a training run calls this before it starts).

        Raises:
            DataError: Naming every image that cannot be read or decoded, of all sides at once.
        """

        sides = ("train", "val", "test")
        paths = {side: self.paths(side) for side in sides}
        files = [self.dataset.root / p for side in sides for p in paths[side]]
        images = load_images(files, self.cfg["load_size"], cache=self.cfg.get("cache_dir"), progress=True)
        start = 0
        for side in sides:
            n = len(paths[side])
            self.tensors[side] = TensorDataset(images[start : start + n], self._labels(paths[side]))
            start += n

    def _labels(self, paths: list[str]) -> torch.Tensor:
        return torch.tensor([self.class_names.index(self.split.labels[p]) for p in paths], dtype=torch.long)

    def setup(self, stage: str | None = None) -> None:  # noqa: D102 - Lightning hook
        for side in (*self.train_sides, "val") if stage in (None, "fit", "validate") else ("test",):
            self.load(side)

    def _loader(self, sides: tuple[str, ...], shuffle: bool, load_size: tuple[int, ...] | None = None) -> DataLoader:
        gen = torch.Generator().manual_seed(self.seed)
        if len(sides) == 1:
            ds = self.load(sides[0], load_size)
        else:
            ds = TensorDataset(*map(torch.cat, zip(*(self.load(s, load_size).tensors for s in sides), strict=True)))
        drop = shuffle and len(ds) > self.cfg["batch_size"]
        return DataLoader(ds, batch_size=self.cfg["batch_size"], shuffle=shuffle, generator=gen, drop_last=drop)

    def train_dataloader(self) -> DataLoader:  # noqa: D102
        return self._loader(self.train_sides, shuffle=True, load_size=self.train_load_size)

    def val_dataloader(self) -> DataLoader:  # noqa: D102
        return self._loader(("val",), shuffle=False)

    def test_dataloader(self) -> DataLoader:  # noqa: D102
        return self._loader(("test",), shuffle=False)
