"""Classification metrics: top-1, macro-F1, per-class recall, confusion matrix."""

from __future__ import annotations

from collections.abc import Sequence

import torch


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
