"""The ONNX backend: export with torch's dynamo exporter, ONNX Runtime INT8, and the ONNX Runtime runtime.

Files: ``export.py`` (the exported module, ``torch.onnx.export``, the FP32/FP16 builder), ``graph.py``
(debug-info stripping, sanitizing, metadata + checker), ``quantize.py`` (ONNX Runtime static QDQ and dynamic
INT8), ``runtime.py`` (:class:`OnnxRuntime`: execution providers, spinning, optimization level).
"""

from __future__ import annotations

from fishopt.artifacts.config import NoOptions, OnnxConfig, OrtInt8Config
from fishopt.artifacts.registry import Format, Variant, register_format, register_variant

_REQUIRES = ("onnx", "onnxscript", "onnxruntime")
_RUNTIME = "fishopt.backends.onnx.runtime:OnnxRuntime"
_EXPORT = "fishopt.backends.onnx.export:build_onnx"

register_format(
    Format(
        name="onnx-fp32",
        backend="onnx",
        precision="fp32",
        suffix=".onnx",
        builder=_EXPORT,
        runtime=_RUNTIME,
        config=OnnxConfig,
        requires=_REQUIRES,
        extra="onnx",
        atol=1e-3,
        description="ONNX (dynamo exporter, one self-contained file), run by ONNX Runtime.",
    )
)

register_format(
    Format(
        name="onnx-fp16",
        backend="onnx",
        precision="fp16",
        suffix=".onnx",
        builder=_EXPORT,
        runtime=_RUNTIME,
        config=OnnxConfig,
        requires=_REQUIRES,
        extra="onnx",
        description="ONNX with FP16 weights and compute (float32 input and output), run by ONNX Runtime.",
    )
)

register_format(
    Format(
        name="onnxruntime-int8",
        backend="onnx",
        precision="int8",
        suffix=".onnx",
        command="quantize",
        toolkit="onnxruntime",
        method="static",
        builder="fishopt.backends.onnx.quantize:build_onnx_int8",
        runtime=_RUNTIME,
        config=OrtInt8Config,
        requires=_REQUIRES,
        extra="onnx",
        description="Static INT8 QDQ (quant_pre_process + quantize_static, per-channel weights), run by ONNX Runtime.",
    )
)

register_format(
    Format(
        name="onnxruntime-int8-dynamic",
        backend="onnx",
        precision="int8",
        suffix=".onnx",
        command="quantize",
        toolkit="onnxruntime",
        method="dynamic",
        builder="fishopt.backends.onnx.quantize:build_onnx_int8_dynamic",
        runtime=_RUNTIME,
        config=NoOptions,
        requires=_REQUIRES,
        extra="onnx",
        description="Dynamic INT8 of MatMul/Gemm only (Conv stays FP32: ConvInteger would be ~8x slower).",
    )
)

# Runtime variants: latency settings of ONNX Runtime's CPU provider, and its CUDA provider.
for _name in ("onnx-fp32", "onnxruntime-int8"):
    register_variant(
        Variant(
            name=f"{_name}-spin",
            format=_name,
            settings={"spinning": True},
            description="ONNX Runtime with spinning intra-op threads (lower batch-1 latency on an otherwise idle CPU).",
        )
    )
register_variant(
    Variant(
        name="onnx-fp32-cuda",
        format="onnx-fp32",
        settings={"provider": "cuda"},
        device="cuda",
        requires=("onnxruntime",),
        description="ONNX Runtime with the CUDA execution provider (needs onnxruntime-gpu).",
    )
)
