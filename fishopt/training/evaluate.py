"""Evaluate a model or checkpoint on the test split or on every image of a folder."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from torch import nn

from fishopt.checkpoint import LoadedCheckpoint, as_checkpoint, predict
from fishopt.data.cache import load_images
from fishopt.data.groups import GROUPS_FILE, read_groups, unit_of
from fishopt.training.metrics import bootstrap_ci, classification_report, unit_report


def evaluate_tensors(
    model: nn.Module,
    images: torch.Tensor,
    labels: torch.Tensor,
    meta: dict[str, Any],
    units: Sequence[str] | None = None,
    unit_by: str = "cluster",
) -> dict:
    """Metrics of a model on uint8 images with integer labels.

    Args:
        model: The network.
        images: uint8 images (N, 3, H, W) at the load size.
        labels: Class ids (N,).
        meta: Checkpoint metadata (input size, mean/std, class names).
        units: The split unit of each image; adds a ``units`` entry (see :func:`unit_report`).
        unit_by: What a unit is (``cluster``, ``group``, ``file``).

    Returns:
        The report of :func:`classification_report` (plus ``units`` when given).
    """
    preds = predict(model, images, meta).argmax(1)
    report = classification_report(preds, labels, meta["class_names"])
    ci = bootstrap_ci((preds == labels).numpy(), units)
    report["top1_ci95"] = {**ci, "by": unit_by if units is not None else "image"}
    if units is not None:
        report["units"] = unit_report(preds, labels, units, meta["class_names"], unit_by)
    return report


def evaluate_checkpoint(
    checkpoint: LoadedCheckpoint | str | Path,
    data: str | Path | None = None,
    split: str = "test",
    cache: str | Path | None = None,
) -> dict:
    """Evaluate a checkpoint.

    Args:
        checkpoint: ``model.pt`` written by ``fishopt train``.
        data: Data root; default: ``$FISHOPT_DATA``, then the checkpoint's recorded root.
        split: ``test`` (the checkpoint's split file), ``val``, ``train``, or ``all`` (every image under
            ``data``, labelled by its folder, using the checkpoint's class map).
        cache: Decode cache folder.

    Returns:
        The report of :func:`classification_report` plus ``split``, ``leaky`` and ``data_root``; for ``all``,
        ``ignored_folders`` (class folders the checkpoint does not know -> image count, left out); for a
        side of the split, ``units``: accuracy per split unit (see :func:`fishopt.training.metrics.unit_report`).
    """
    ckpt = as_checkpoint(checkpoint)
    meta = ckpt.meta
    if split == "all":
        dataset = ckpt.dataset(data)
        if dataset.ignored:
            logging.getLogger(__name__).warning(
                "%s holds class folder(s) the %d-class checkpoint does not know, left out of this evaluation: %s",
                dataset.root,
                len(meta["class_names"]),
                ", ".join(f"{k} ({v} images)" for k, v in dataset.ignored.items()),
            )
        images = load_images(
            [dataset.root / s.path for s in dataset.samples], meta["load_size"], cache=cache, progress=True
        )
        labels = torch.tensor([meta["class_names"].index(s.label) for s in dataset.samples])
        groups = dataset.root / GROUPS_FILE
        units = None
        if groups.is_file():  # photo clusters of an external set: the interval resamples them, not images
            clusters = unit_of(read_groups(groups, dataset), "cluster")
            units = [clusters[s.path] for s in dataset.samples]
        report = evaluate_tensors(ckpt.model, images, labels, meta, units, "cluster")
        report.update(
            {"split": split, "leaky": False, "data_root": str(dataset.root), "ignored_folders": dict(dataset.ignored)}
        )
        return report
    sp = ckpt.split
    part = ckpt.split_images(split, data=data, cache=cache, progress=True)
    report = evaluate_tensors(
        ckpt.model, part.images, part.labels, meta, [sp.units[p] for p in part.paths], sp.group_by
    )
    report.update({"split": split, "leaky": sp.leaky, "data_root": str(part.root)})
    return report
