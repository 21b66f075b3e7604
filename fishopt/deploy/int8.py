"""INT8 of the bundle's raw-input graph: static QDQ, calibrated on raw TRAIN images.

The ``onnxruntime-int8`` format quantizes the float-input graph (no ``with_preprocessing``) with asymmetric
uint8 activations; TensorRT's explicit quantization needs symmetric int8 (zero point 0). So a bundle quantizes
its own raw-input FP32 graph with the same :func:`fishopt.backends.onnx.quantize.quantize_onnx_static`:

- ``tensorrt=True`` (Jetson): symmetric int8 activations and weights, per-channel weights, Conv/Gemm/MatMul
  only (TensorRT's recommended Q/DQ placement; the preprocessing stays float);
- ``tensorrt=False`` (CPU): uint8 activations, int8 per-channel weights (ONNX Runtime's fast x86/arm path).

Calibration images are the checkpoint's stratified TRAIN images (:mod:`fishopt.artifacts.calibration`), fed
raw (uint8 NHWC at the load size) exactly as the device will feed them.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from fishopt.backends.onnx.quantize import quantize_onnx_static

QUANTIZED_OPS = ["Conv", "Gemm", "MatMul"]
DEFAULT_CALIB_IMAGES = 128


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
    quantize_onnx_static(
        fp32, out, images, per_channel=True, symmetric=tensorrt, op_types=QUANTIZED_OPS, pre_process=False
    )
    return out
