"""The parity gate: an artifact must agree with its reference checkpoint before it is written.

Used by every command that makes an artifact (export, compile, quantize) and by the deploy bundle, through
:func:`fishopt.artifacts.build.build`. The reference model (PyTorch eager, FP32) and the artifact run on the
same K real test-split images (default 256, stratified per class, seed 0;
:meth:`fishopt.checkpoint.LoadedCheckpoint.split_images`). The thresholds are the constants below; every
help text and document refers to :func:`rule_text` instead of restating them:

- FP32 artifacts: max |logit diff| <= the format's ``atol`` (``Format.atol``, default 1e-3) and 100 % top-1
  agreement;
- FP16, BF16 and INT8 artifacts, and raw-input graphs that resize inside (their uint8 rounding after an
  antialiased resize is not bit-exact): top-1 agreement >= 98 % and accuracy within 1 point of the
  reference's on those images.

A raw-input graph that resizes is fed the test images at its ``raw_size`` and judged against the reference on
the same raw images through :class:`fishopt.data.preprocess.Preprocess`, the arithmetic the graph implements
(:func:`raw_reference_logits`). A raw size of another aspect ratio than the photos frames them differently (the
fit to the raw size crops one way, the graph's fit to the load size the other way): that changes what the model
sees, not whether the graph computes what fishopt would.

A failure raises :class:`ParityError` with the figures.
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from fishopt.artifacts.runtime import run_batches
from fishopt.checkpoint import LoadedCheckpoint, as_checkpoint
from fishopt.data.preprocess import Preprocess, eval_transform
from fishopt.errors import ConfigError, ParityError

log = logging.getLogger(__name__)
DEFAULT_ATOL = 1e-3
MIN_AGREEMENT = 0.98
MAX_ACCURACY_DROP = 0.01
DEFAULT_IMAGES = 256
BATCH = 32


@dataclass
class ParityReport:
    """Figures of one parity check.

    Attributes:
        format: Artifact format (from its metadata).
        precision: Precision the rule was chosen for.
        rule: ``exact`` (max |logit diff| <= atol, 100 % agreement) or ``agreement`` (>= 98 %, accuracy
            within 1 point).
        n: Images compared.
        max_abs_diff: Max |logit diff| over all images and classes.
        mean_abs_diff: Mean |logit diff|.
        top1_agreement: Fraction of images with the same top-1 class.
        reference_accuracy: Top-1 accuracy of the reference on these images.
        accuracy: Top-1 accuracy of the artifact.
        atol: Tolerance used by the ``exact`` rule.
        passed: Whether the gate passed.
    """

    format: str | None
    precision: str
    rule: str
    n: int
    max_abs_diff: float
    mean_abs_diff: float
    top1_agreement: float
    reference_accuracy: float
    accuracy: float
    atol: float | None
    passed: bool

    def to_dict(self) -> dict[str, Any]:
        """Plain dict (for the manifest)."""
        return asdict(self)

    def summary(self) -> str:
        """One line with the figures."""
        return (
            f"{self.format or 'artifact'} ({self.precision}, rule {self.rule}) on {self.n} test images: "
            f"max |logit diff| {self.max_abs_diff:.3g} (mean {self.mean_abs_diff:.3g}), top-1 agreement "
            f"{self.top1_agreement:.2%}, accuracy {self.accuracy:.2%} vs reference {self.reference_accuracy:.2%}"
        )


def runtime_logits(
    runtime: Any, images: torch.Tensor, meta: dict[str, Any], raw_images: torch.Tensor | None = None
) -> np.ndarray:
    """Logits of a :class:`fishopt.artifacts.runtime.Runtime` on uint8 images at the load size.

    Raw-input artifacts get NHWC uint8 images (``raw_images`` if their ``raw_size`` differs from the
    load size); the others get the evaluation transform. Static-batch artifacts get batches of their size.

    Raises:
        ConfigError: If a raw-input artifact needs images at another size and ``raw_images`` is missing.
    """
    if runtime.raw_input:
        raw_size = list(runtime.meta.get("raw_size") or meta["load_size"])
        source = images if raw_size == list(meta["load_size"]) else raw_images
        if source is None or list(source.shape[-2:]) != raw_size:
            raise ConfigError(
                f"this artifact takes raw {raw_size[0]}x{raw_size[1]} images; pass raw_images at that size"
            )
        inputs = source.permute(0, 2, 3, 1).contiguous().numpy()
    else:
        inputs = eval_transform(images, meta["input_size"], meta["mean"], meta["std"]).numpy()
    return run_batches(runtime, inputs, BATCH, num_classes=len(meta["class_names"]))


def raw_reference_logits(
    reference_checkpoint: LoadedCheckpoint | str | Path, raw_images: torch.Tensor, batch_size: int = BATCH
) -> np.ndarray:
    """The reference's logits (float32 numpy) on uint8 (N, 3, H, W) images at a raw-input graph's ``raw_size``.

    The images go through :class:`fishopt.data.preprocess.Preprocess` (fit to the load size, center crop,
    normalize: what a ``with_preprocessing`` graph exports), then the checkpoint's model, in batches.
    """
    ckpt = as_checkpoint(reference_checkpoint)
    meta = ckpt.meta
    return ckpt.logits(
        raw_images, batch_size, Preprocess(meta["load_size"], meta["input_size"], meta["mean"], meta["std"])
    )


def rule_text(precision: str) -> str:
    """The parity rule of a precision in words (for help texts, messages and reports)."""
    if precision == "fp32":
        return f"max |logit diff| <= the format's atol (default {DEFAULT_ATOL:g}) and 100 % top-1 agreement"
    return (
        f"top-1 agreement >= {MIN_AGREEMENT:.0%} and accuracy within {MAX_ACCURACY_DROP * 100:g} point of the reference"
    )


def resized_raw_size(meta: dict[str, Any], raw_input: bool, raw_size: Any) -> list[int] | None:
    """A raw-input graph's ``raw_size`` when it differs from the checkpoint's load size (the graph resizes and is
    judged on images at that size), else ``None``."""
    if raw_input and raw_size and list(raw_size) != list(meta["load_size"]):
        return [int(v) for v in raw_size]
    return None


def _resizes(runtime: Any, meta: dict[str, Any]) -> bool:
    return resized_raw_size(meta, runtime.raw_input, runtime.meta.get("raw_size")) is not None


def compare(
    ref: np.ndarray,
    out: np.ndarray,
    labels: np.ndarray,
    *,
    precision: str,
    rule: str,
    atol: float | None,
    fmt: str | None = None,
) -> ParityReport:
    """Judge artifact logits ``out`` against reference logits ``ref`` (see the module docstring).

    Raises:
        ParityError: If the shapes differ.
        ConfigError: If ``rule`` is ``exact`` and ``atol`` is ``None``.
    """
    if ref.shape != out.shape:
        raise ParityError(f"{fmt or 'artifact'} returned logits of shape {out.shape}, the reference {ref.shape}")
    diff = np.abs(ref.astype(np.float64) - out.astype(np.float64))
    ref_top, out_top = ref.argmax(1), out.argmax(1)
    n = len(ref)
    agreement = float((ref_top == out_top).mean()) if n else 1.0
    ref_acc = float((ref_top == labels).mean()) if n else 0.0
    acc = float((out_top == labels).mean()) if n else 0.0
    max_diff = float(diff.max()) if diff.size else 0.0
    if not np.isfinite(out).all():
        max_diff = float("inf")
    if rule == "exact":
        if atol is None:
            raise ConfigError("the exact parity rule needs an atol (max |logit diff|); pass atol")
        passed = max_diff <= float(atol) and agreement == 1.0
    else:
        passed = agreement >= MIN_AGREEMENT and acc >= ref_acc - MAX_ACCURACY_DROP and np.isfinite(max_diff)
    return ParityReport(
        format=fmt,
        precision=precision,
        rule=rule,
        n=n,
        max_abs_diff=max_diff,
        mean_abs_diff=float(diff.mean()) if diff.size else 0.0,
        top1_agreement=agreement,
        reference_accuracy=ref_acc,
        accuracy=acc,
        atol=atol if rule == "exact" else None,
        passed=bool(passed),
    )


def check_parity(
    reference_checkpoint: LoadedCheckpoint | str | Path,
    runtime: Any,
    images_uint8: torch.Tensor,
    labels: Any,
    *,
    precision: str,
    atol: float | None = None,
    raw_images: torch.Tensor | None = None,
    reference: np.ndarray | None = None,
    raise_on_fail: bool = True,
) -> ParityReport:
    """Run the reference checkpoint and an artifact on the same images and judge the difference.

    Args:
        reference_checkpoint: ``model.pt`` path or a loaded checkpoint.
        runtime: The loaded artifact (:class:`fishopt.artifacts.runtime.Runtime`).
        images_uint8: uint8 (N, 3, H, W) test images at the checkpoint's load size.
        labels: Their class indices.
        precision: The artifact's precision (``fp32``: exact rule; others: agreement rule).
        atol: Max |logit diff| for the exact rule (default :data:`DEFAULT_ATOL`).
        raw_images: The same images at the artifact's ``raw_size``, for raw-input graphs that resize.
        reference: The reference's logits on the images the artifact is fed, when computed already (before a
            build): on ``images_uint8``, or for a raw-input graph that resizes on ``raw_images``
            (:func:`raw_reference_logits`).
        raise_on_fail: Raise :class:`ParityError` when the gate fails (else just report).

    Raises:
        ParityError: If the artifact fails the gate (with the figures).
    """
    ckpt = as_checkpoint(reference_checkpoint)
    meta = ckpt.meta
    resizes = _resizes(runtime, meta)
    rule = "exact" if precision == "fp32" and not resizes else "agreement"
    ref = reference
    if ref is None:
        ref = (
            raw_reference_logits(ckpt, raw_images)
            if resizes and raw_images is not None
            else ckpt.logits(images_uint8, BATCH)
        )
    out = runtime_logits(runtime, images_uint8, meta, raw_images)
    labels = np.asarray(labels, dtype=np.int64)
    report = compare(
        ref,
        out,
        labels,
        precision=precision,
        rule=rule,
        atol=atol if atol is not None else DEFAULT_ATOL,
        fmt=runtime.meta.get("format"),
    )
    log.info("parity: %s -> %s", report.summary(), "pass" if report.passed else "FAIL")
    if raise_on_fail and not report.passed:
        need = (
            f"max |logit diff| <= {report.atol:g} and 100 % top-1 agreement" if rule == "exact" else rule_text("int8")
        )
        raise ParityError(
            f"parity check failed: {report.summary()}; needed {need}. Nothing was written; "
            "check the export options, or pass --no-verify to keep an unverified artifact"
        )
    return report
