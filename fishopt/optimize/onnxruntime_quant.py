"""INT8 with ONNX Runtime: static QDQ (calibrated) and dynamic (MatMul/Gemm only).

Both start from the FP32 ONNX graph of :func:`fishopt.export.onnx.build_onnx` (dynamic batch).

- Static: ``quant_pre_process`` (shape inference + graph optimization) -> ``quantize_static`` with the
  QDQ format, per-channel int8 weights, uint8 activations, MinMax calibration over TRAIN images.
- Dynamic: ``quantize_dynamic`` restricted to ``MatMul``/``Gemm``. With the defaults ONNX Runtime would
  also turn every Conv into ``ConvInteger``, which runs about 8x slower on x86 CPUs; restricted, only the
  dense layers are quantized (a small share of a CNN's MACs).
"""

from __future__ import annotations

import logging
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from fishopt.optimize.recipes import QuantRecipe

log = logging.getLogger(__name__)

DYNAMIC_OPS = ["MatMul", "Gemm"]


def _reader(input_name: str, batch: np.ndarray, batch_size: int = 32):
    """A ``CalibrationDataReader`` over a batch (float32 model input, or uint8 images for raw-input graphs)."""
    from onnxruntime.quantization import CalibrationDataReader

    class _BatchReader(CalibrationDataReader):
        def __init__(self) -> None:
            self._batches = iter([batch[i : i + batch_size] for i in range(0, len(batch), batch_size)])

        def get_next(self) -> dict[str, np.ndarray] | None:
            chunk = next(self._batches, None)
            return None if chunk is None else {input_name: np.ascontiguousarray(chunk)}

    return _BatchReader()


def _input_name(path: Path) -> str:
    import onnx

    return onnx.load(str(path), load_external_data=False).graph.input[0].name


def quantize_onnx_static(
    fp32: Path,
    out: Path,
    calib: np.ndarray,
    per_channel: bool = True,
    *,
    symmetric: bool = False,
    op_types: list[str] | None = None,
    pre_process: bool = True,
    calibrate_method: str = "minmax",
) -> Path:
    """Static QDQ INT8 of an FP32 ONNX file.

    Args:
        fp32: The FP32 ONNX model (one self-contained file).
        out: Destination ``.onnx``.
        calib: Calibration inputs as the graph takes them: float32 (N, 3, H, W), or uint8 (N, H, W, 3) for
            a graph with preprocessing inside.
        per_channel: Per-channel weight scales.
        symmetric: Symmetric int8 activations (zero point 0), the form TensorRT's explicit quantization
            needs; default: uint8 activations, ONNX Runtime's fast x86 path.
        op_types: Restrict quantization to these op types (default: all ONNX Runtime supports).
        pre_process: Run ``quant_pre_process`` (shape inference and graph optimization) first.
        calibrate_method: ``minmax`` or ``entropy`` (activation ranges from the histogram's KL optimum).

    Returns:
        ``out``.
    """
    from onnxruntime.quantization import (
        CalibrationMethod,
        QuantFormat,
        QuantType,
        quantize_static,
    )
    from onnxruntime.quantization.shape_inference import quant_pre_process

    with tempfile.TemporaryDirectory(dir=out.parent) as tmp:
        source = fp32
        if pre_process:
            source = Path(tmp) / "prepped.onnx"
            quant_pre_process(str(fp32), str(source))
        quantize_static(
            str(source),
            str(out),
            _reader(_input_name(source), calib),
            quant_format=QuantFormat.QDQ,
            op_types_to_quantize=op_types,
            per_channel=per_channel,
            activation_type=QuantType.QInt8 if symmetric else QuantType.QUInt8,
            weight_type=QuantType.QInt8,
            calibrate_method={"minmax": CalibrationMethod.MinMax, "entropy": CalibrationMethod.Entropy}[calibrate_method],
            extra_options={"ActivationSymmetric": symmetric, "WeightSymmetric": True},
        )
    drop_int32_zero_points(out)
    return out


def drop_int32_zero_points(path: Path) -> int:
    """Remove the zero points of int32 ``DequantizeLinear`` inputs (the quantized biases), in place.

    The ONNX spec requires an int32 zero point to be 0 and makes the input optional, but the quantizer
    writes one int32 per output channel: about 2 kB, 1.6 % of this model's INT8 file. ONNX Runtime fuses
    the graph the same way without them (QLinearConv, QGemm) and the outputs are bit-identical.

    Returns:
        The number of zero points removed.
    """
    import onnx
    from onnx import numpy_helper

    model = onnx.load(str(path))
    graph = model.graph
    inits = {t.name: t for t in graph.initializer}
    removed = 0
    for node in graph.node:
        if node.op_type != "DequantizeLinear" or len(node.input) != 3:
            continue
        x, zp = inits.get(node.input[0]), inits.get(node.input[2])
        if x is not None and zp is not None and x.data_type == onnx.TensorProto.INT32:
            if numpy_helper.to_array(zp).any():  # not spec-conformant; keep what the quantizer wrote
                continue
            node.input.pop()
            removed += 1
    used = {name for node in graph.node for name in node.input}
    kept = [t for t in graph.initializer if t.name in used]
    del graph.initializer[:]
    graph.initializer.extend(kept)
    onnx.save(model, str(path))
    return removed


def quantize_onnx_dynamic(fp32: Path, out: Path) -> Path:
    """Dynamic INT8 of the MatMul/Gemm nodes of an FP32 ONNX file (convolutions stay FP32)."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    quantize_dynamic(str(fp32), str(out), op_types_to_quantize=DYNAMIC_OPS, weight_type=QuantType.QInt8)
    return out


def count_quantized(path: Path) -> dict[str, int]:
    """Count op types of a quantized graph that run in INT8 (QDQ pairs, integer ops) and that stay float."""
    import onnx

    graph = onnx.load(str(path), load_external_data=False).graph
    counts: dict[str, int] = {}
    for node in graph.node:
        counts[node.op_type] = counts.get(node.op_type, 0) + 1
    return counts


def _finish(path: Path, meta: dict[str, Any]) -> Path:
    """Re-embed fishopt metadata (the quantizer does not keep ``metadata_props``)."""
    import onnx

    from fishopt.export.metadata import write_onnx_metadata

    model = onnx.load(str(path))
    write_onnx_metadata(model, meta)
    onnx.save(model, str(path))
    return path


def _fp32_onnx(ckpt, workdir: Path, meta: dict[str, Any]) -> Path:
    """Export the FP32 ONNX graph with the shared exporter into a scratch folder."""
    from fishopt.export.onnx import build_onnx

    scratch = workdir / ".fp32"
    scratch.mkdir(parents=True, exist_ok=True)
    return build_onnx(ckpt, scratch, meta={**meta, "precision": "fp32", "format": "onnx-fp32"})


def build_static(ckpt, workdir: Path, *, meta: dict[str, Any], **options: Any) -> Path:
    """Builder of ``onnxruntime-int8`` (see :class:`fishopt.export.registry.Format`)."""
    from fishopt.optimize.calibration import calibration_set
    from fishopt.optimize.recipes import recipe_from_options

    recipe: QuantRecipe = recipe_from_options("onnxruntime-int8", options)
    start = time.perf_counter()
    calib = calibration_set(ckpt, recipe.calib_size, recipe.seed)
    fp32 = _fp32_onnx(ckpt, workdir, meta)
    out = quantize_onnx_static(fp32, workdir / "model.onnx", calib.batch.numpy(), recipe.per_channel)
    _cleanup(fp32.parent)
    ops = count_quantized(out)
    facts = {
        "quantized": f"Conv and MatMul/Gemm weights and activations (QDQ, {ops.get('QuantizeLinear', 0)} "
        f"QuantizeLinear nodes, {'per-channel' if recipe.per_channel else 'per-tensor'} weights)",
        "calibration": {"split": "train", "images": len(calib), "seed": recipe.seed},
        "quantize_seconds": round(time.perf_counter() - start, 2),
    }
    return _finish(out, _meta(meta, recipe, facts))


def build_dynamic(ckpt, workdir: Path, *, meta: dict[str, Any], **options: Any) -> Path:
    """Builder of ``onnxruntime-int8-dynamic`` (MatMul/Gemm only)."""
    from fishopt.optimize.recipes import recipe_from_options
    from fishopt.optimize.torch_pt2e import dynamic_coverage

    recipe: QuantRecipe = recipe_from_options("onnxruntime-int8-dynamic", options)
    start = time.perf_counter()
    fp32 = _fp32_onnx(ckpt, workdir, meta)
    out = quantize_onnx_dynamic(fp32, workdir / "model.onnx")
    _cleanup(fp32.parent)
    coverage = dynamic_coverage(ckpt.model, ckpt.meta["input_size"])
    facts = {**coverage, "quantized": coverage["quantized"].replace("Linear layers", "MatMul/Gemm (Linear) nodes"),
             "quantize_seconds": round(time.perf_counter() - start, 2)}
    return _finish(out, _meta(meta, recipe, facts))


def _meta(meta: dict[str, Any], recipe: QuantRecipe, facts: dict[str, Any]) -> dict[str, Any]:
    """Add the recipe and what was quantized to ``meta`` (in place: the build verb reports it) and return it."""
    meta.update(recipe=recipe.to_dict(), quantization=facts)
    return meta


def _cleanup(folder: Path) -> None:
    import shutil

    shutil.rmtree(folder, ignore_errors=True)
