"""The TensorRT backend: engines built from the (sanitized, optionally Q/DQ) ONNX graph; needs a CUDA GPU.

Files: ``engine.py`` (TensorRT-ready ONNX, Q/DQ calibration, engine building), ``runtime.py``
(:class:`TensorRTRuntime`, ``check_tensorrt``).
"""

from __future__ import annotations

from fishopt.artifacts.config import EngineConfig, Int8EngineConfig
from fishopt.artifacts.registry import Format, register_format

_REQUIRES = ("tensorrt", "onnx", "onnxscript", "onnxruntime", "polygraphy", "onnx_graphsurgeon")
_RUNTIME = "fishopt.backends.tensorrt.runtime:TensorRTRuntime"
_BUILDER = "fishopt.backends.tensorrt.engine:build_engine"

register_format(
    Format(
        name="tensorrt-fp16",
        backend="tensorrt",
        precision="fp16",
        suffix=".engine",
        builder=_BUILDER,
        runtime=_RUNTIME,
        config=EngineConfig,
        needs_gpu=True,
        requires=_REQUIRES,
        extra="tensorrt",
        description="TensorRT engine (FP16) from the sanitized ONNX graph; needs a CUDA GPU.",
    )
)

register_format(
    Format(
        name="tensorrt-int8",
        backend="tensorrt",
        precision="int8",
        suffix=".engine",
        builder=_BUILDER,
        runtime=_RUNTIME,
        config=Int8EngineConfig,
        needs_gpu=True,
        requires=_REQUIRES,
        extra="tensorrt",
        description="TensorRT engine (INT8 with FP16 fallback) from a Q/DQ ONNX graph calibrated on the train split.",
    )
)
