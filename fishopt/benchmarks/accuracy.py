"""Accuracy of a variant on the test split, and its change against the FP32 reference.

Deltas are in percentage points (negative = worse). A variant *collapses* when top-1 drops by more
than :data:`COLLAPSE_TOP1` points or any class loses more than :data:`COLLAPSE_CLASS` points of recall.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from fishopt.benchmarks.timing import model_input
from fishopt.training.metrics import bootstrap_ci, classification_report

#: Top-1 drop (points) above which a variant is flagged as collapsed.
COLLAPSE_TOP1 = 2.0
#: Per-class recall drop (points) above which a variant is flagged as collapsed.
COLLAPSE_CLASS = 10.0


def run_logits(
    runtime: Callable[[np.ndarray], np.ndarray],
    images: Any,
    meta: dict,
    raw_input: bool = False,
    batch_size: int = 32,
) -> np.ndarray:
    """Logits of a runtime on uint8 images at the load size.

    Args:
        runtime: A :class:`fishopt.artifacts.runtime.Runtime` (or any batch -> logits callable).
        images: uint8 tensor (N, 3, H, W) at the checkpoint's load size.
        meta: Checkpoint metadata (input_size, mean, std).
        raw_input: The runtime takes uint8 NHWC images.
        batch_size: Images per call.

    Returns:
        float32 logits (N, num_classes).
    """

    out = []
    for i in range(0, len(images), batch_size):
        chunk = images[i : i + batch_size]
        out.append(np.asarray(runtime(model_input(chunk, meta, raw_input, len(chunk))), dtype=np.float32))
    return np.concatenate(out) if out else np.zeros((0, len(meta["class_names"])), dtype=np.float32)


def report_of(logits: np.ndarray, labels: Any, class_names: list[str]) -> dict:
    """:func:`fishopt.training.metrics.classification_report` of logits against labels."""
    import torch

    preds = torch.from_numpy(np.asarray(logits)).argmax(1)
    return classification_report(preds, torch.as_tensor(labels), class_names)


def _points(value: float | None) -> float | None:
    return None if value is None else round(100.0 * value, 3)


def compare(report: dict, preds: np.ndarray, reference: dict, ref_preds: np.ndarray) -> dict:
    """Accuracy block of a benchmark row: metrics, deltas vs the reference, agreement, collapse.

    Args:
        report: This variant's classification report.
        preds: Its predicted class ids (N,).
        reference: The FP32 reference's classification report.
        ref_preds: The reference's predicted class ids (N,).

    Returns:
        ``{"n", "top1", "macro_f1", "per_class", "confusion", "agreement", "delta_top1",
        "delta_macro_f1", "delta_per_class", "worst_class", "collapse"}``; ``top1``/``macro_f1``
        and ``per_class`` in [0, 1], deltas in points.
    """
    delta_pc: dict[str, float | None] = {}
    for name, recall in report["per_class"].items():
        ref = reference["per_class"].get(name)
        delta_pc[name] = None if recall is None or ref is None else round(100.0 * (recall - ref), 3)
    known = {k: v for k, v in delta_pc.items() if v is not None}
    worst = min(known, key=known.__getitem__) if known else None
    delta_top1 = round(100.0 * (report["top1"] - reference["top1"]), 3)
    agreement = float(np.mean(np.asarray(preds) == np.asarray(ref_preds))) if len(preds) else None
    collapse = delta_top1 < -COLLAPSE_TOP1 or any(v < -COLLAPSE_CLASS for v in known.values())
    return {
        "n": report["n"],
        "top1": round(report["top1"], 6),
        "macro_f1": round(report["macro_f1"], 6),
        "per_class": report["per_class"],
        "confusion": report["confusion"],
        "agreement": None if agreement is None else round(agreement, 6),
        "delta_top1": delta_top1,
        "delta_macro_f1": round(100.0 * (report["macro_f1"] - reference["macro_f1"]), 3),
        "delta_per_class": delta_pc,
        "worst_class": worst,
        "collapse": bool(collapse),
    }


def accuracy_block(
    logits: np.ndarray,
    labels: Any,
    class_names: list[str],
    reference: dict,
    ref_preds: np.ndarray,
    units: Sequence[str] | None = None,
) -> dict:
    """Report of ``logits`` compared with the reference (see :func:`compare`).

    With ``units`` (the photo cluster of each image) the block also holds ``top1_ci95``: the 95 % bootstrap
    interval of top-1 that resamples clusters (:func:`fishopt.training.metrics.bootstrap_ci`).
    """
    preds = np.asarray(logits).argmax(1)
    block = compare(report_of(logits, labels, class_names), preds, reference, ref_preds)
    if units is not None:
        block["top1_ci95"] = bootstrap_ci(preds == np.asarray(labels), units)
    return block
