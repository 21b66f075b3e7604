"""The OpenVINO backend: IR export (FP32 / FP16 weights / BF16), NNCF INT8, and the OpenVINO runtime.

Files: ``export.py`` (``ov.convert_model`` from the ``torch.export`` program, or from the ONNX graph for
raw-input graphs), ``quantize.py`` (NNCF post-training INT8), ``runtime.py`` (:class:`OpenVINORuntime`:
precision and performance hints, static reshape).
"""

from __future__ import annotations

from fishopt.artifacts.config import CalibratedConfig, GraphConfig
from fishopt.artifacts.registry import Format, register_format

_RUNTIME = "fishopt.backends.openvino.runtime:OpenVINORuntime"
_EXPORT = "fishopt.backends.openvino.export:build_openvino"

register_format(
    Format(
        name="openvino-fp32",
        backend="openvino",
        precision="fp32",
        suffix=".xml",
        builder=_EXPORT,
        runtime=_RUNTIME,
        config=GraphConfig,
        requires=("openvino",),
        extra="openvino",
        atol=1e-3,
        description="OpenVINO IR, FP32 weights, INFERENCE_PRECISION_HINT=f32 (a true FP32 baseline).",
    )
)

register_format(
    Format(
        name="openvino-fp16",
        backend="openvino",
        precision="fp16",
        suffix=".xml",
        builder=_EXPORT,
        runtime=_RUNTIME,
        config=GraphConfig,
        requires=("openvino",),
        extra="openvino",
        description="OpenVINO IR, FP16-compressed weights, the device's default inference precision "
        "(bf16 on CPUs with AVX-512 BF16/AMX, else f32; recorded in the manifest).",
    )
)

register_format(
    Format(
        name="openvino-bf16",
        backend="openvino",
        precision="bf16",
        suffix=".xml",
        builder=_EXPORT,
        runtime=_RUNTIME,
        config=GraphConfig,
        requires=("openvino",),
        extra="openvino",
        description="OpenVINO IR, FP32 weights, INFERENCE_PRECISION_HINT=bf16 (falls back to f32 without BF16).",
    )
)

register_format(
    Format(
        name="openvino-int8",
        backend="openvino",
        precision="int8",
        suffix=".xml",
        command="quantize",
        toolkit="openvino",
        method="static",
        builder="fishopt.backends.openvino.quantize:build_openvino_int8",
        runtime=_RUNTIME,
        config=CalibratedConfig,
        requires=("openvino", "nncf"),
        extra="openvino",
        description="Static INT8 of the OpenVINO IR with NNCF (nncf.quantize), weights saved uncompressed.",
    )
)
