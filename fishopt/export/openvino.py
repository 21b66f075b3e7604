"""OpenVINO IR export: ``ov.convert_model`` then ``ov.save_model``, metadata in ``rt_info``.

Precision is two separate things in OpenVINO, and both are recorded in the metadata:

- weights on disk: ``ov.save_model`` compresses them to FP16 unless ``compress_to_fp16=False``
  (``openvino-fp16`` compresses; ``openvino-fp32`` and ``openvino-bf16`` keep FP32);
- inference precision: CPUs with AVX-512 BF16 or AMX run in bf16 by default, so ``openvino-fp32`` stores
  ``inference_precision="f32"`` (a true FP32 baseline), ``openvino-bf16`` stores ``"bf16"`` and
  ``openvino-fp16`` stores ``None`` (the device default; the runtime reports what the device chose).

Plain graphs are converted from the ``torch.export`` program of the model; ``with_preprocessing`` graphs
from the ONNX export (OpenVINO's torch frontend cannot convert the uint8 preprocessing).
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

from fishopt.errors import require

INFERENCE_PRECISION = {"fp32": "f32", "bf16": "bf16", "fp16": None, "int8": None}


def _from_torch(ckpt, static_batch: bool, batch: int):
    """Convert through ``torch.export`` (OpenVINO's TorchScript path is deprecated in torch 2.13)."""
    import openvino as ov

    from fishopt.optimize.compile import export_program

    size = ckpt.meta["input_size"]
    program = export_program(copy.deepcopy(ckpt.model).eval(), size, static_batch=static_batch, batch_size=batch)
    model = ov.convert_model(program)
    model.reshape({model.inputs[0]: ov.PartialShape([batch if static_batch else -1, 3, *size])})
    return model


def _from_onnx(ckpt, workdir: Path, static_batch: bool, batch: int, raw_size: Any):
    import openvino as ov

    require("onnx", "onnx")
    from fishopt.export.onnx import export_module, export_onnx

    module, example, _ = export_module(ckpt, with_preprocessing=True, raw_size=raw_size, batch_size=batch)
    tmp = workdir / ".preprocess.onnx"
    export_onnx(module, example, tmp, static_batch=static_batch)
    try:
        return ov.convert_model(str(tmp))
    finally:
        tmp.unlink(missing_ok=True)


def convert_openvino(ckpt, workdir: Path, *, meta: dict[str, Any], static_batch: bool = False,
                     batch_size: int | None = None, with_preprocessing: bool = False, raw_size: Any = None):
    """Convert a checkpoint to an in-memory ``openvino.Model`` carrying fishopt metadata in ``rt_info``.

    Args:
        ckpt: The loaded checkpoint.
        workdir: Scratch folder (the ONNX route writes a temporary file there).
        meta: Artifact metadata; ``meta["precision"]`` decides the recorded weights and inference precision.
        static_batch: Fix the batch dimension to ``batch_size`` (default: dynamic).
        batch_size: The static batch size (default 1).
        with_preprocessing: Take raw uint8 NHWC images (resize, crop and normalize inside the graph).
        raw_size: The raw image (H, W) for ``with_preprocessing`` (default: the checkpoint's load size).

    Returns:
        The model and whether its weights should be saved as FP16.
    """
    import openvino as ov

    from fishopt.export.metadata import set_openvino_metadata
    from fishopt.export.onnx import resolve_raw_size

    batch = int(batch_size or 1) if static_batch else 2
    if with_preprocessing:
        model = _from_onnx(ckpt, Path(workdir), static_batch, batch, raw_size)
        extra = {"raw_input": True, "raw_size": resolve_raw_size(ckpt.meta, raw_size), "input_layout": "NHWC uint8 RGB"}
    else:
        model = _from_torch(ckpt, static_batch, batch)
        extra = {"raw_input": False, "input_layout": "NCHW float32 normalized"}
    precision = meta["precision"]
    compress = precision == "fp16"
    set_openvino_metadata(model, {
        **meta, **extra, "dynamic_batch": not static_batch, "batch_size": batch if static_batch else None,
        "weights": "fp16" if compress else "fp32", "inference_precision": INFERENCE_PRECISION.get(precision),
        "openvino_version": ov.get_version(),
    })
    return model, compress


def build_openvino(ckpt, workdir: Path, *, meta: dict[str, Any], static_batch: bool = False,
                   batch_size: int | None = None, with_preprocessing: bool = False, raw_size: Any = None) -> Path:
    """Builder of ``openvino-fp32`` / ``-fp16`` / ``-bf16`` (contract: :class:`fishopt.export.registry.Format`).

    Returns:
        ``workdir/model.xml`` (weights in ``model.bin`` beside it).
    """
    import openvino as ov

    model, compress = convert_openvino(ckpt, workdir, meta=meta, static_batch=static_batch, batch_size=batch_size,
                                       with_preprocessing=with_preprocessing, raw_size=raw_size)
    path = Path(workdir) / "model.xml"
    ov.save_model(model, str(path), compress_to_fp16=compress)
    return path
