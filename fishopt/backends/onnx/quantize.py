"""INT8 with ONNX Runtime: static QDQ (calibrated) and dynamic (MatMul/Gemm only).

Both start from the FP32 ONNX graph of :func:`fishopt.backends.onnx.export.build_onnx` (dynamic batch).
TensorRT's Q/DQ graphs (:mod:`fishopt.backends.tensorrt.engine`) reuse :func:`quantize_onnx_static`.

- Static: ``quant_pre_process`` (shape inference + graph optimization) -> ``quantize_static`` with the
  QDQ format, per-channel int8 weights, uint8 activations, MinMax calibration over TRAIN images.
- Dynamic: ``quantize_dynamic`` restricted to ``MatMul``/``Gemm``. With the defaults ONNX Runtime would
  also turn every Conv into ``ConvInteger``, which runs about 8x slower on x86 CPUs; restricted, only the
  dense layers are quantized (a small share of a CNN's MACs).
"""

from __future__ import annotations

import logging
import shutil
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from fishopt.artifacts.build import BuildOutput
from fishopt.artifacts.calibration import calibration_images
from fishopt.artifacts.config import NoOptions, OnnxConfig, OrtInt8Config
from fishopt.backends.onnx.export import build_onnx
from fishopt.backends.onnx.graph import save_onnx
from fishopt.backends.torch.pt2e import dynamic_coverage
from fishopt.checkpoint import LoadedCheckpoint

if TYPE_CHECKING:
    from onnxruntime.quantization import CalibrationDataReader

log = logging.getLogger(__name__)

DYNAMIC_OPS = ["MatMul", "Gemm"]


def _reader(input_name: str, batch: np.ndarray, batch_size: int = 32) -> CalibrationDataReader:
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
            calibrate_method={"minmax": CalibrationMethod.MinMax, "entropy": CalibrationMethod.Entropy}[
                calibrate_method
            ],
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


def count_ops(path: Path) -> dict[str, int]:
    """Count op types of a quantized graph that run in INT8 (QDQ pairs, integer ops) and that stay float."""
    import onnx

    graph = onnx.load(str(path), load_external_data=False).graph
    counts: dict[str, int] = {}
    for node in graph.node:
        counts[node.op_type] = counts.get(node.op_type, 0) + 1
    return counts


def _fp32_onnx(ckpt: LoadedCheckpoint, workdir: Path, meta: dict[str, Any]) -> Path:
    """Export the FP32 ONNX graph (dynamic batch) with the shared exporter into a scratch folder."""
    scratch = workdir / ".fp32"
    scratch.mkdir(parents=True, exist_ok=True)
    return build_onnx(ckpt, scratch, {**meta, "precision": "fp32", "format": "onnx-fp32"}, OnnxConfig()).path


def _save_quantized(path: Path, meta: dict[str, Any], quantization: dict[str, Any]) -> BuildOutput:
    """Re-embed fishopt metadata (the quantizer does not keep ``metadata_props``) with what was quantized."""
    import onnx

    facts = {"raw_input": False, "quantization": quantization, "dynamic_batch": True, "batch_size": None}
    save_onnx(onnx.load(str(path)), path, {**meta, **facts}, check=False)
    return BuildOutput(path, facts)


def build_onnx_int8(ckpt: LoadedCheckpoint, workdir: Path, meta: dict[str, Any], config: OrtInt8Config) -> BuildOutput:
    """Builder of ``onnxruntime-int8``: static QDQ INT8 of the FP32 ONNX graph, calibrated on train images."""
    start = time.perf_counter()
    calib = calibration_images(ckpt, config.calib_size, config.seed)
    fp32 = _fp32_onnx(ckpt, workdir, meta)
    out = quantize_onnx_static(fp32, workdir / "model.onnx", calib.model_input(ckpt.meta).numpy(), config.per_channel)
    shutil.rmtree(fp32.parent, ignore_errors=True)
    ops = count_ops(out)
    return _save_quantized(
        out,
        meta,
        {
            "quantized": f"Conv and MatMul/Gemm weights and activations (QDQ, {ops.get('QuantizeLinear', 0)} "
            f"QuantizeLinear nodes, {'per-channel' if config.per_channel else 'per-tensor'} weights)",
            "calibration": {"split": "train", "images": len(calib), "seed": config.seed},
            "quantize_seconds": round(time.perf_counter() - start, 2),
        },
    )


def build_onnx_int8_dynamic(
    ckpt: LoadedCheckpoint, workdir: Path, meta: dict[str, Any], config: NoOptions
) -> BuildOutput:
    """Builder of ``onnxruntime-int8-dynamic``: dynamic INT8 of the MatMul/Gemm nodes only."""
    start = time.perf_counter()
    fp32 = _fp32_onnx(ckpt, workdir, meta)
    out = quantize_onnx_dynamic(fp32, workdir / "model.onnx")
    shutil.rmtree(fp32.parent, ignore_errors=True)
    coverage = dynamic_coverage(ckpt.model, ckpt.meta["input_size"])
    return _save_quantized(
        out,
        meta,
        {
            **coverage,
            "quantized": coverage["quantized"].replace("Linear layers", "MatMul/Gemm (Linear) nodes"),
            "quantize_seconds": round(time.perf_counter() - start, 2),
        },
    )
