"""Train/val/test splits by source photo, stratified per class, seeded, written to a file.

A split assigns whole units (clusters or groups of near-duplicate images) to one side, so no copy
of a photo is on two sides. The split file is JSON with the assignment of every image and a hash of
it; every later step (calibration, evaluation, export, benchmark) reads it instead of re-splitting.
"""

from __future__ import annotations

import json
import random
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

from fishopt.data.discovery import FishDataset
from fishopt.errors import SplitError
from fishopt.io import atomic_write_json, text_sha256

SPLITS = ("train", "val", "test")
FORMAT = "fishopt-split"
LEAKY_NOTE = "LEAKY: split by file, copies of one photo are on several sides; accuracy is inflated"


@dataclass(frozen=True)
class Split:
    """An assignment of every image to ``train``, ``val`` or ``test``.

    Attributes:
        assignment: Image path (relative to the data root) -> split name.
        labels: Image path -> class name.
        class_names: Sorted class names.
        group_by: ``cluster``, ``group`` or ``file`` (leaky).
        seed: The seed it was made with.
        fractions: Target image fractions for train, val, test.
        units: Image path -> the unit it was split by (for leak checks).
    """

    assignment: dict[str, str]
    labels: dict[str, str]
    class_names: tuple[str, ...]
    group_by: str
    seed: int
    fractions: tuple[float, float, float]
    units: dict[str, str] = field(repr=False)

    @property
    def leaky(self) -> bool:
        """True when the split is by file, so copies of a photo may be on several sides."""
        return self.group_by == "file"

    @property
    def hash(self) -> str:
        """SHA-256 of the canonical assignment (paths, classes, sides)."""
        canon = "\n".join(f"{p}\t{self.labels[p]}\t{s}" for p, s in sorted(self.assignment.items()))
        return text_sha256(canon)

    def paths(self, split: str) -> list[str]:
        """Return the sorted image paths of one side.

        Raises:
            SplitError: If ``split`` is not train, val or test.
        """
        if split not in SPLITS:
            raise SplitError(f"unknown split {split!r}; valid choices: {', '.join(SPLITS)}")
        return sorted(p for p, s in self.assignment.items() if s == split)

    def counts(self) -> dict[str, dict[str, int]]:
        """Return split -> class -> number of images."""
        out: dict[str, dict[str, int]] = {s: dict.fromkeys(self.class_names, 0) for s in SPLITS}
        for path, side in self.assignment.items():
            out[side][self.labels[path]] += 1
        return out

    def to_json(self) -> dict:
        """Return the JSON-ready form written by :func:`save_split`."""
        return {
            "format": FORMAT,
            "version": 1,
            "hash": self.hash,
            "group_by": self.group_by,
            "leaky": self.leaky,
            "note": LEAKY_NOTE if self.leaky else "split by source photo: no unit is on two sides",
            "seed": self.seed,
            "fractions": list(self.fractions),
            "class_names": list(self.class_names),
            "items": [
                {"path": p, "class": self.labels[p], "unit": self.units[p], "split": self.assignment[p]}
                for p in sorted(self.assignment)
            ],
        }


def _check_fractions(fractions: tuple[float, float, float]) -> None:
    if len(fractions) != 3 or any(f <= 0 for f in fractions) or abs(sum(fractions) - 1.0) > 1e-6:
        raise SplitError(
            f"split fractions must be three positive numbers summing to 1 (train, val, test); got {fractions}"
        )


def _assign_class(units: dict[str, int], fractions: tuple[float, float, float], rng: random.Random) -> dict[str, str]:
    """Assign the units of one class to sides, largest first, each to the side furthest below its target.

    Ties among equal-sized units are broken by a seeded shuffle. When only as many units are left as
    sides that are still empty, they go to the empty sides, so every side gets the class when it has
    at least three units.
    """
    names = list(units)
    rng.shuffle(names)
    names.sort(key=lambda u: -units[u])
    total = sum(units.values())
    filled = dict.fromkeys(SPLITS, 0)
    out: dict[str, str] = {}
    for i, unit in enumerate(names):
        empty = [s for s in SPLITS if filled[s] == 0]
        remaining = len(names) - i
        candidates = empty if 0 < len(empty) >= remaining else list(SPLITS)
        side = max(candidates, key=lambda s: fractions[SPLITS.index(s)] * total - filled[s])
        out[unit] = side
        filled[side] += units[unit]
    return out


def make_split(
    dataset: FishDataset,
    units: dict[str, str] | None,
    *,
    group_by: str = "cluster",
    fractions: tuple[float, float, float] = (0.7, 0.15, 0.15),
    seed: int = 0,
) -> Split:
    """Split a dataset by unit, stratified per class.

    Args:
        dataset: The images.
        units: Image path -> unit (cluster or group). ``None`` splits by file: a leaky split,
            only for comparison with published numbers.
        group_by: Name of the unit, recorded in the split (``cluster``, ``group``; ``file`` when
            ``units`` is None).
        fractions: Target image fractions of train, val and test.
        seed: Seed for tie-breaking; the same seed gives the same split.

    Returns:
        The split.

    Raises:
        SplitError: If fractions are invalid or a class has fewer than three units.
    """
    _check_fractions(fractions)
    if units is None:
        group_by = "file"
        units = {s.path: s.path for s in dataset.samples}
    per_class: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for s in dataset.samples:
        per_class[s.label][f"{s.label}\x00{units[s.path]}"] += 1
    rng = random.Random(seed)
    side_of_unit: dict[str, str] = {}
    for label in dataset.class_names:
        class_units = per_class[label]
        if len(class_units) < len(SPLITS):
            raise SplitError(
                f"class {label!r} has only {len(class_units)} {group_by}(s); a split needs at least 3 so "
                f"every side gets the class. Add photos, or use --group-by group for a finer split"
            )
        side_of_unit.update(_assign_class(dict(class_units), fractions, rng))
    assignment = {s.path: side_of_unit[f"{s.label}\x00{units[s.path]}"] for s in dataset.samples}
    return Split(
        assignment=assignment,
        labels={s.path: s.label for s in dataset.samples},
        class_names=dataset.class_names,
        group_by=group_by,
        seed=seed,
        fractions=(fractions[0], fractions[1], fractions[2]),
        units={s.path: units[s.path] for s in dataset.samples},
    )


def save_split(split: Split, path: str | Path) -> str:
    """Write a split file atomically; return its hash."""
    atomic_write_json(path, split.to_json())
    return split.hash


def load_split(path: str | Path, expected_hash: str | None = None) -> Split:
    """Read a split file written by :func:`save_split`.

    Args:
        path: The JSON file.
        expected_hash: If given, the hash the split must have (e.g. from a checkpoint).

    Raises:
        SplitError: If the file is missing, not a split file, or its hash does not match.
    """
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise SplitError(
            f"split file {str(path)!r} not found; 'fishopt train' writes it beside model.pt (keep a run folder's "
            "files together), and a training's data.split_file=PATH must name an existing split.json"
        ) from exc
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise SplitError(
            f"split file {str(path)!r} is not valid JSON ({exc}); regenerate it with 'fishopt train'"
        ) from exc
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise SplitError(f"{str(path)!r} is not a fishopt split file (no 'format': '{FORMAT}')")
    items = data["items"]
    split = Split(
        assignment={i["path"]: i["split"] for i in items},
        labels={i["path"]: i["class"] for i in items},
        class_names=tuple(data["class_names"]),
        group_by=data["group_by"],
        seed=int(data["seed"]),
        fractions=tuple(data["fractions"]),
        units={i["path"]: i["unit"] for i in items},
    )
    if split.hash != data["hash"]:
        raise SplitError(f"split file {str(path)!r} was edited: its content no longer matches its hash; regenerate it")
    if expected_hash is not None and split.hash != expected_hash:
        raise SplitError(
            f"split file {str(path)!r} has hash {split.hash[:12]}, the checkpoint expects {expected_hash[:12]}; "
            "use the split file saved with the checkpoint"
        )
    return split


def stratified_sample(paths: list[str], labels: dict[str, str], size: int, seed: int) -> list[str]:
    """Pick up to ``size`` paths with (nearly) equal counts per class, seeded.

    Classes are filled round-robin from a seeded shuffle of each class, so a class with few images gives
    all it has and the rest of the budget goes to the others.

    Args:
        paths: Candidate image paths.
        labels: Path -> class name.
        size: How many to pick.
        seed: Seed of the shuffle.

    Returns:
        The picked paths, sorted.
    """
    rng = random.Random(seed)
    per_class: dict[str, list[str]] = defaultdict(list)
    for p in sorted(paths):
        per_class[labels[p]].append(p)
    queues = []
    for name in sorted(per_class):
        items = per_class[name]
        rng.shuffle(items)
        queues.append(items)
    picked: list[str] = []
    depth = 0
    while len(picked) < size and any(depth < len(q) for q in queues):
        for q in queues:
            if depth < len(q) and len(picked) < size:
                picked.append(q[depth])
        depth += 1
    return sorted(picked)


def leak_report(split: Split, groups: dict[str, str]) -> dict[str, int]:
    """Count test images whose source photo (``groups``: path -> group) also has a copy in train.

    Returns:
        ``{"test_images": n, "test_with_copy_in_train": k}``.
    """
    train_groups = {groups[p] for p in split.paths("train") if p in groups}
    test = [p for p in split.paths("test") if p in groups]
    return {"test_images": len(test), "test_with_copy_in_train": sum(groups[p] in train_groups for p in test)}
