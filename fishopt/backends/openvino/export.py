"""OpenVINO IR export: ``ov.convert_model`` then ``ov.save_model``, metadata in ``rt_info``.

Precision is two separate things in OpenVINO, and both are recorded in the metadata:

- weights on disk: ``ov.save_model`` compresses them to FP16 unless ``compress_to_fp16=False``
  (``openvino-fp16`` compresses; ``openvino-fp32`` and ``openvino-bf16`` keep FP32);
- inference precision: CPUs with AVX-512 BF16 or AMX run in bf16 by default, so ``openvino-fp32`` stores
  ``inference_precision="f32"`` (a true FP32 baseline), ``openvino-bf16`` stores ``"bf16"`` and
  ``openvino-fp16`` stores ``None`` (the device default; the runtime reports what the device chose).

Plain graphs are converted from the ``torch.export`` program of the model; ``with_preprocessing`` graphs
from the ONNX export (OpenVINO's torch frontend cannot convert the uint8 preprocessing). Both have two outputs,
``logits`` and ``embeddings`` (the penultimate embedding, :class:`fishopt.models.embeddings.WithEmbeddings`),
named so, in that order; the metadata key ``outputs`` lists them.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

from fishopt.artifacts.build import BuildOutput
from fishopt.artifacts.config import GraphConfig
from fishopt.artifacts.metadata import set_openvino_metadata
from fishopt.artifacts.runtime import EMBEDDINGS_OUTPUT, LOGITS_OUTPUT
from fishopt.backends.onnx.export import export_onnx, resolve_raw_size, wrap_for_export
from fishopt.backends.torch.export import example_input, export_program
from fishopt.checkpoint import LoadedCheckpoint
from fishopt.errors import require
from fishopt.models.embeddings import WithEmbeddings

OUTPUTS = [LOGITS_OUTPUT, EMBEDDINGS_OUTPUT]

INFERENCE_PRECISION = {"fp32": "f32", "bf16": "bf16", "fp16": None, "int8": None}


def _from_torch(ckpt: LoadedCheckpoint, static_batch: bool, batch: int) -> Any:
    """Convert through ``torch.export`` (OpenVINO's TorchScript path is deprecated in torch 2.13)."""
    import openvino as ov

    size = ckpt.meta["input_size"]
    module = WithEmbeddings(copy.deepcopy(ckpt.model)).eval()
    program = export_program(module, example_input(size, batch), static_batch=static_batch)
    model = ov.convert_model(program)
    model.reshape({model.inputs[0]: ov.PartialShape([batch if static_batch else -1, 3, *size])})
    return name_outputs(model)


def name_outputs(model: Any) -> Any:
    """Name the converted model's outputs ``logits`` and ``embeddings`` (in order) and return it.

    Raises:
        RuntimeError: If the model does not have exactly those two outputs.
    """
    if len(model.outputs) != len(OUTPUTS):
        raise RuntimeError(f"expected {len(OUTPUTS)} outputs ({', '.join(OUTPUTS)}), got {len(model.outputs)}")
    for output, name in zip(model.outputs, OUTPUTS, strict=True):
        output.get_tensor().set_names({name})
    return model


def _from_onnx(ckpt: LoadedCheckpoint, workdir: Path, static_batch: bool, batch: int, raw_size: Any) -> Any:
    import openvino as ov

    require("onnx", "onnx")
    module, example, info = wrap_for_export(
        ckpt, with_preprocessing=True, raw_size=raw_size, batch_size=batch, embeddings=True
    )
    tmp = workdir / ".preprocess.onnx"
    export_onnx(module, example, tmp, static_batch=static_batch, output_names=info["outputs"])
    try:
        return name_outputs(ov.convert_model(str(tmp)))
    finally:
        tmp.unlink(missing_ok=True)


def convert_openvino(
    ckpt: LoadedCheckpoint, workdir: Path, meta: dict[str, Any], config: GraphConfig
) -> tuple[Any, dict[str, Any]]:
    """Convert a checkpoint to an in-memory ``openvino.Model`` carrying fishopt metadata in ``rt_info``.

    Args:
        ckpt: The loaded checkpoint.
        workdir: Scratch folder (the ONNX route writes a temporary file there).
        meta: Artifact metadata; ``meta["precision"]`` decides the recorded weights and inference precision.
        config: Batch dimension and raw-input options.

    Returns:
        The model and the facts embedded beside ``meta`` (``weights`` says whether to save FP16 weights).
    """
    import openvino as ov

    batch = config.example_batch
    if config.with_preprocessing:
        model = _from_onnx(ckpt, Path(workdir), config.static_batch, batch, config.raw_size)
        facts = {
            "raw_input": True,
            "raw_size": resolve_raw_size(ckpt.meta, config.raw_size),
            "input_layout": "NHWC uint8 RGB",
        }
    else:
        model = _from_torch(ckpt, config.static_batch, batch)
        facts = {"raw_input": False, "input_layout": "NCHW float32 normalized"}
    precision = meta["precision"]
    facts.update(
        config.shape_meta(),
        outputs=list(OUTPUTS),
        weights="fp16" if precision == "fp16" else "fp32",
        inference_precision=INFERENCE_PRECISION.get(precision),
        openvino_version=ov.get_version(),
    )
    set_openvino_metadata(model, {**meta, **facts})
    return model, facts


def build_openvino(ckpt: LoadedCheckpoint, workdir: Path, meta: dict[str, Any], config: GraphConfig) -> BuildOutput:
    """Builder of ``openvino-fp32`` / ``-fp16`` / ``-bf16``: ``workdir/model.xml`` (weights in ``model.bin``)."""
    import openvino as ov

    model, facts = convert_openvino(ckpt, workdir, meta, config)
    path = Path(workdir) / "model.xml"
    ov.save_model(model, str(path), compress_to_fp16=facts["weights"] == "fp16")
    return BuildOutput(path, facts)
