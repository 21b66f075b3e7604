"""Classification metrics: top-1, macro-F1, per-class recall, confusion matrix, and honest intervals.

The images of this data set are flips and rotations of a few hundred photos: a photo's copies are one unit of
evidence, not twenty. :func:`bootstrap_ci` resamples those units (photo clusters), so the interval says how
much the accuracy could move with another draw of photos.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

#: Bootstrap resamples of :func:`bootstrap_ci`.
RESAMPLES = 2000


def confusion_matrix(preds: torch.Tensor, targets: torch.Tensor, num_classes: int) -> torch.Tensor:
    """Return the (true, predicted) count matrix."""
    idx = targets.long() * num_classes + preds.long()
    return torch.bincount(idx, minlength=num_classes * num_classes).reshape(num_classes, num_classes)


def classification_report(preds: torch.Tensor, targets: torch.Tensor, class_names: Sequence[str]) -> dict:
    """Compute the metrics fishopt reports.

    Args:
        preds: Predicted class ids (N,).
        targets: True class ids (N,).
        class_names: Names, index = class id.

    Returns:
        ``{"n", "top1", "macro_f1", "per_class": {name: recall}, "confusion": [[...]]}``; ``top1`` and
        ``per_class`` in [0, 1]. Classes without images get recall ``None`` and are left out of macro-F1.
    """
    k = len(class_names)
    cm = confusion_matrix(preds, targets, k).double()
    tp = cm.diag()
    support = cm.sum(1)
    predicted = cm.sum(0)
    recall = torch.where(support > 0, tp / support.clamp(min=1), torch.nan)
    precision = torch.where(predicted > 0, tp / predicted.clamp(min=1), torch.zeros_like(tp))
    f1 = torch.where(precision + recall > 0, 2 * precision * recall / (precision + recall), torch.zeros_like(tp))
    present = support > 0
    n = int(targets.numel())
    return {
        "n": n,
        "top1": float(tp.sum() / max(n, 1)),
        "macro_f1": float(f1[present].mean()) if bool(present.any()) else 0.0,
        "per_class": {
            name: (None if torch.isnan(recall[i]) else round(float(recall[i]), 6)) for i, name in enumerate(class_names)
        },
        "confusion": cm.long().tolist(),
    }


def unit_report(
    preds: torch.Tensor, targets: torch.Tensor, units: Sequence[str], class_names: Sequence[str], by: str
) -> dict:
    """Accuracy per split unit (source photo or cluster of photos), the independent samples of a split.

    The images of one photo are flips and rotations of it, so they are mostly all right or all wrong
    together: a test split of N units measures accuracy on new photos in steps of about 1/N, and a
    few hard photos decide the image-level number. This report shows them.

    Args:
        preds: Predicted class ids (N,).
        targets: True class ids (N,).
        units: The unit of each image (same order).
        class_names: Names, index = class id.
        by: What a unit is (``cluster``, ``group``), recorded.

    Returns:
        ``{"by", "n", "all_correct", "majority_correct", "failing": [...]}``: the number of units, how many
        have every image right, how many have more than half right, and each unit with an error (worst
        first) as ``{"unit", "class", "n", "top1", "predicted": {name: count of wrong predictions}}``.
    """
    per_unit: dict[str, list[int]] = {}
    for i, unit in enumerate(units):
        per_unit.setdefault(unit, []).append(i)
    failing: list[dict[str, Any]] = []
    all_ok, majority = 0, 0
    for unit, idx in per_unit.items():
        p, t = preds[idx], targets[idx]
        right = int((p == t).sum())
        all_ok += right == len(idx)
        majority += 2 * right > len(idx)
        if right < len(idx):
            wrong = torch.bincount(p[p != t].long(), minlength=len(class_names))
            failing.append(
                {
                    "unit": unit,
                    "class": class_names[int(t[0])],
                    "n": len(idx),
                    "top1": round(right / len(idx), 6),
                    "predicted": {class_names[c]: int(k) for c, k in enumerate(wrong.tolist()) if k},
                }
            )
    failing.sort(key=lambda u: (u["top1"], -u["n"]))
    return {"by": by, "n": len(per_unit), "all_correct": all_ok, "majority_correct": majority, "failing": failing}


def bootstrap_ci(
    correct: Sequence[bool] | np.ndarray | torch.Tensor,
    units: Sequence[str] | None,
    level: float = 0.95,
    resamples: int = RESAMPLES,
    seed: int = 0,
) -> dict:
    """Percentile bootstrap interval of top-1 accuracy that resamples units (photo clusters), not images.

    Args:
        correct: Whether each image was classified right.
        units: The unit (photo cluster) of each image; ``None`` resamples images (only when no unit is known:
            copies of one photo then count as independent and the interval is too narrow; ``by`` says so).
        level: Coverage of the interval.
        resamples: Bootstrap resamples.
        seed: Seed of the resampling.

    Returns:
        ``{"low", "high", "level", "by", "units", "resamples"}`` (accuracies in [0, 1]).
    """
    right = np.asarray(correct, dtype=np.float64).reshape(-1)
    keys = list(units) if units is not None else [str(i) for i in range(len(right))]
    names, inverse = np.unique(np.asarray(keys, dtype=object).astype(str), return_inverse=True)
    hits = np.bincount(inverse, weights=right, minlength=len(names))
    counts = np.bincount(inverse, minlength=len(names)).astype(np.float64)
    if len(names) == 0:
        return {
            "low": None,
            "high": None,
            "level": level,
            "by": "cluster" if units is not None else "image",
            "units": 0,
            "resamples": resamples,
        }
    rng = np.random.default_rng(seed)
    draws = rng.integers(0, len(names), size=(resamples, len(names)))
    acc = hits[draws].sum(1) / counts[draws].sum(1)
    tail = (1.0 - level) / 2.0
    low, high = np.quantile(acc, [tail, 1.0 - tail])
    return {
        "low": round(float(low), 6),
        "high": round(float(high), 6),
        "level": level,
        "by": "unit" if units is not None else "image",
        "units": int(len(names)),
        "resamples": resamples,
    }
