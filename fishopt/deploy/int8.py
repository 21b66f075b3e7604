"""INT8 of the bundle's raw-input graph: static QDQ, calibrated on raw TRAIN images.

The ``onnxruntime-int8`` format quantizes the float-input graph (no ``with_preprocessing``) with asymmetric
uint8 activations; TensorRT's explicit quantization needs symmetric int8 (zero point 0). So a bundle quantizes
its own raw-input FP32 graph with ONNX Runtime's ``quantize_static``:

- ``tensorrt=True`` (Jetson): symmetric int8 activations and weights, per-channel weights, Conv/Gemm/MatMul
  only (TensorRT's recommended Q/DQ placement; the preprocessing stays float);
- ``tensorrt=False`` (CPU): uint8 activations, int8 per-channel weights (ONNX Runtime's fast x86/arm path).

Calibration images are the checkpoint's stratified TRAIN images (:mod:`fishopt.optimize.calibration`), fed
raw (uint8 NHWC at the load size) exactly as the device will feed them.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

QUANTIZED_OPS = ["Conv", "Gemm", "MatMul"]
DEFAULT_CALIB_IMAGES = 128


class _RawReader:
    """``CalibrationDataReader`` over uint8 NHWC images, 16 per batch."""

    def __init__(self, name: str, images: np.ndarray, batch: int = 16) -> None:
        self._it = iter([{name: images[i : i + batch]} for i in range(0, len(images), batch)])

    def get_next(self) -> dict[str, np.ndarray] | None:
        return next(self._it, None)

    def rewind(self) -> None:  # pragma: no cover - only for calibration methods that read twice
        raise NotImplementedError


def calibration_images(ckpt, count: int = DEFAULT_CALIB_IMAGES, seed: int = 0) -> np.ndarray:
    """Stratified TRAIN-split images of the checkpoint as uint8 (N, H, W, 3) at its load size."""
    from fishopt.optimize.calibration import calibration_set

    calib = calibration_set(ckpt, count, seed)
    return np.ascontiguousarray(calib.images.permute(0, 2, 3, 1).numpy())


def quantize_raw(fp32: Path, out: Path, images: np.ndarray, *, tensorrt: bool) -> Path:
    """Static QDQ INT8 of a raw-input FP32 ONNX file (see the module docstring for the two flavours).

    Args:
        fp32: The FP32 raw-input graph (one self-contained file).
        out: Destination ``.onnx``.
        images: Calibration images, uint8 (N, H, W, 3).
        tensorrt: Symmetric int8 activations for TensorRT (else uint8 for ONNX Runtime on the CPU).

    Returns:
        ``out``.
    """
    import onnx
    from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quantize_static

    name = onnx.load(str(fp32), load_external_data=False).graph.input[0].name
    quantize_static(
        str(fp32),
        str(out),
        _RawReader(name, images),
        quant_format=QuantFormat.QDQ,
        op_types_to_quantize=QUANTIZED_OPS,
        per_channel=True,
        activation_type=QuantType.QInt8 if tensorrt else QuantType.QUInt8,
        weight_type=QuantType.QInt8,
        calibrate_method=CalibrationMethod.MinMax,
        extra_options={"ActivationSymmetric": tensorrt, "WeightSymmetric": True},
    )
    return out
