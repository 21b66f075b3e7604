"""INT8 with Intel Neural Compressor 3.x (PyTorch flavour, ``neural-compressor-pt``), accuracy-aware.

INC 3.x quantizes PT2E graphs: ``neural_compressor.torch.export.export`` first (dynamic batch), then
``autotune`` tries static INT8 configs (symmetric/asymmetric activations x KL/min-max observers), each
calibrated on TRAIN images and scored by top-1 on the VALIDATION split, and stops at the first whose drop
against FP32 is within ``max_drop`` points (INC's ``tolerable_loss`` is relative, so it is converted).
A checkpoint refit on train + val (the default recipe) has seen the validation images: the tuning then
runs as usual but says so (``val_in_training``), and the test-split parity gate is the real check.
The result is saved like the torchao PT2E artifact: an AOTInductor package, or an exported program.
"""

from __future__ import annotations

import copy
import logging
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from fishopt.artifacts.build import BuildOutput
from fishopt.artifacts.calibration import calibration_images
from fishopt.artifacts.config import IncInt8Config
from fishopt.backends.torch.export import batch_dim
from fishopt.backends.torch.pt2e import fold_weight_quantize, package_facts, save_program, write_program_meta
from fishopt.checkpoint import LoadedCheckpoint
from fishopt.errors import ParityError
from fishopt.logs import quiet
from fishopt.models.embeddings import WithEmbeddings

log = logging.getLogger(__name__)


def inc_version() -> str:
    """Installed ``neural-compressor-pt`` version."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("neural-compressor-pt")
    except PackageNotFoundError:
        return "unknown"


def top1(
    model: Callable[[torch.Tensor], torch.Tensor], batch: torch.Tensor, labels: torch.Tensor, batch_size: int = 64
) -> float:
    """Top-1 accuracy (0-1) of a callable on a preprocessed batch."""
    if len(labels) == 0:
        return 0.0

    def logits(x: torch.Tensor) -> torch.Tensor:
        out = model(x)
        return out[0] if isinstance(out, (tuple, list)) else out  # (logits, embeddings) of WithEmbeddings

    with torch.no_grad():
        preds = torch.cat([logits(batch[i : i + batch_size]).argmax(1) for i in range(0, len(batch), batch_size)])
    return float((preds == labels).float().mean())


def tune(
    model: torch.nn.Module,
    calib: torch.Tensor,
    val: torch.Tensor,
    val_labels: torch.Tensor,
    max_drop: float,
    max_trials: int = 4,
) -> tuple[torch.fx.GraphModule, dict[str, Any]]:
    """Accuracy-aware static INT8 with INC ``autotune``.

    Args:
        model: Float model (not changed).
        calib: Preprocessed TRAIN calibration batch.
        val: Preprocessed VALIDATION batch used to score each trial.
        val_labels: Its labels.
        max_drop: Accepted top-1 drop in points.
        max_trials: Most configs to try.

    Returns:
        The quantized graph and a report (FP32 and INT8 validation top-1, trials).

    Raises:
        ParityError: If no trial stays within ``max_drop``.
    """
    from neural_compressor.torch.export import export
    from neural_compressor.torch.quantization import TuningConfig, autotune
    from neural_compressor.torch.quantization.config import INT8StaticQuantConfig

    model = copy.deepcopy(model).eval()
    baseline = top1(model, val, val_labels)
    scores: list[float] = []

    def run_fn(graph: Callable[[torch.Tensor], torch.Tensor]) -> None:
        with torch.no_grad():
            for i in range(0, len(calib), 32):
                graph(calib[i : i + 32])

    def eval_fn(graph: Callable[[torch.Tensor], torch.Tensor]) -> float:
        scores.append(top1(graph, val, val_labels))
        return scores[-1]

    example = calib[:2] if len(calib) >= 2 else calib.repeat(2, 1, 1, 1)
    tolerable = (max_drop / 100.0) / max(baseline, 1e-6)
    configs = [INT8StaticQuantConfig(act_sym=[False, True], act_algo=["minmax", "kl"])]
    with quiet("neural_compressor"):
        graph = export(model, (example,), dynamic_shapes=batch_dim())
        tuned = autotune(
            graph,
            TuningConfig(config_set=configs, tolerable_loss=tolerable, max_trials=max_trials),
            eval_fn=eval_fn,
            run_fn=run_fn,
            example_inputs=(example,),
        )
    trials = scores[1:]  # the first score is INC's own FP32 baseline
    best = max(trials) if trials else 0.0
    report = {
        "val_top1_fp32": round(100 * baseline, 2),
        "val_top1_int8": round(100 * best, 2),
        "val_images": len(val_labels),
        "trials": len(trials),
        "tolerable_loss_relative": round(tolerable, 5),
    }
    if tuned is None or 100 * (baseline - best) > max_drop + 1e-9:
        raise ParityError(
            f"INC tuning found no INT8 config within --max-drop {max_drop} points on the validation split "
            f"(FP32 {report['val_top1_fp32']}%, best INT8 {report['val_top1_int8']}% after {len(trials)} trials); "
            "raise --max-drop or --calib-size, or use another backend"
        )
    return tuned, report


def val_in_training(meta: dict[str, Any]) -> bool:
    """True when a checkpoint was refit on the validation split too (``trainer.refit``)."""
    return "val" in (meta.get("refit") or {}).get("sides", [])


def build_inc_int8(ckpt: LoadedCheckpoint, workdir: Path, meta: dict[str, Any], config: IncInt8Config) -> BuildOutput:
    """Builder of ``inc-int8``: INC autotune on the validation part, saved like ``torch-int8`` (``model.pt2``)."""
    start = time.perf_counter()
    calib = calibration_images(ckpt, config.calib_size, config.seed)
    batch = calib.model_input(ckpt.meta)
    val = ckpt.split_images("val")
    tuned, report = tune(WithEmbeddings(ckpt.model), batch, val.model_input(ckpt.meta), val.labels, config.max_drop)
    if val_in_training(ckpt.meta):
        report["val_in_training"] = True
        log.warning(
            "this checkpoint was refit on train + val, so INC scored its trials on images the model was "
            "trained on: the validation drop (%s -> %s%%) understates the INT8 drop on new photos; the "
            "parity gate on test images still applies",
            report["val_top1_fp32"],
            report["val_top1_int8"],
        )
    path, saved_as = save_program(fold_weight_quantize(tuned), batch, Path(workdir) / "model.pt2", config.package)
    facts = package_facts(
        saved_as,
        start,
        quantized="Conv2d and Linear weights and activations (static, per-channel weights, INC-tuned)",
        calibration={"split": "train", "images": len(calib), "seed": config.seed},
        tuning={"split": "val", **report},
        inc_version=inc_version(),
    )
    return write_program_meta(path, meta, facts)
