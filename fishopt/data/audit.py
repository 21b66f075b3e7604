"""Audit a dataset's photo groups and how much a split leaks copies of one photo across sides."""

from __future__ import annotations

import statistics
from collections import Counter

from fishopt.data.discovery import FishDataset
from fishopt.data.groups import GroupEntry, unit_of
from fishopt.data.split import Split, leak_report, make_split
from fishopt.errors import DataError, SplitError


def audit(dataset: FishDataset, entries: dict[str, GroupEntry], split: Split | None = None) -> dict:
    """Summarize the groups of a dataset and, optionally, the copies a split leaks.

    Args:
        dataset: The images.
        entries: Image path -> group entry (from ``groups.csv`` or :func:`fishopt.data.photos.find_groups`).
        split: If given, count its test images with a copy (same group) in train.

    Returns:
        ``images``, ``classes``, ``photos`` (groups), ``clusters``, ``copies_per_photo``
        (``min``/``median``/``max``), ``per_class`` (class -> images/photos/clusters) and, with a
        split, ``split`` (``group_by``, ``leaky``, ``test_images``, ``test_with_copy_in_train``,
        ``leak_fraction``).

    Raises:
        DataError: If an image of the dataset has no entry.
    """
    missing = [s.path for s in dataset.samples if s.path not in entries]
    if missing:
        raise DataError(
            f"{len(missing)} image(s) have no group, e.g. {missing[0]!r}; regenerate the groups with "
            "'fishopt data groups DATA_ROOT'"
        )
    sizes = Counter(entries[s.path].group for s in dataset.samples)
    per_class = {
        label: {
            "images": sum(1 for s in dataset.samples if s.label == label),
            "photos": len({entries[s.path].group for s in dataset.samples if s.label == label}),
            "clusters": len({entries[s.path].cluster for s in dataset.samples if s.label == label}),
        }
        for label in dataset.class_names
    }
    report: dict = {
        "images": len(dataset.samples),
        "classes": len(dataset.class_names),
        "photos": len(sizes),
        "clusters": len({entries[s.path].cluster for s in dataset.samples}),
        "copies_per_photo": _spread(list(sizes.values())),
        "per_class": per_class,
    }
    if split is not None:
        report["split"] = split_leaks(split, entries)
    return report


def _spread(values: list[int]) -> dict[str, float]:
    if not values:
        return {"min": 0, "median": 0, "max": 0}
    return {"min": min(values), "median": statistics.median(values), "max": max(values)}


def split_leaks(split: Split, entries: dict[str, GroupEntry]) -> dict:
    """Return how many test images of ``split`` have a copy (same group) in train."""
    leaks = leak_report(split, {p: e.group for p, e in entries.items()})
    total = leaks["test_images"]
    return {
        "group_by": split.group_by,
        "leaky": split.leaky,
        **leaks,
        "leak_fraction": leaks["test_with_copy_in_train"] / total if total else 0.0,
    }


def file_split_leaks(dataset: FishDataset, entries: dict[str, GroupEntry], seed: int = 0) -> dict:
    """Show the trap: a random split by FILE puts copies of almost every test photo in train.

    Returns:
        :func:`split_leaks` of ``make_split(dataset, None, seed=seed)``.
    """
    return split_leaks(make_split(dataset, None, seed=seed), entries)


def compare_splits(dataset: FishDataset, entries: dict[str, GroupEntry], seed: int = 0) -> dict[str, dict]:
    """Return :func:`split_leaks` for a split by file, by group and by cluster (same seed).

    A unit that cannot split the data (a class with fewer than three clusters) gets ``{"error": message}``.
    """

    out = {"file": file_split_leaks(dataset, entries, seed)}
    for by in ("group", "cluster"):
        try:
            split = make_split(dataset, unit_of(entries, by), group_by=by, seed=seed)
        except SplitError as exc:
            out[by] = {"group_by": by, "error": str(exc)}
            continue
        out[by] = split_leaks(split, entries)
    return out
