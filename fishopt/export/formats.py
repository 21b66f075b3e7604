"""The built-in artifact formats: every ``register_format`` call lives here.

Options (all default off; a set option the format does not list is a :class:`ConfigError`):

- ``static_batch``: fix the batch dimension (to ``batch_size``, default 1) instead of a dynamic one.
- ``batch_size``: the static batch size (with ``static_batch``).
- ``with_preprocessing``: the graph takes raw uint8 RGB images (N, H, W, 3) at ``raw_size`` and runs
  :class:`fishopt.data.preprocess.Preprocess` itself.
- ``raw_size``: (H, W) of the raw images (default: the checkpoint's ``load_size``; another size adds
  an antialiased resize to the graph).
- ``opset``: ONNX opset (default: the exporter's, 20 in torch 2.13).
- ``sanitize``: constant-fold and clean the ONNX graph with polygraphy (TensorRT-ready ONNX).
- ``mode``: torch.compile mode, ``default`` or ``max-autotune``.
- ``calib_images``: calibration images from the train split (INT8 formats).

Parity tolerances (see :mod:`fishopt.export.parity`): FP32 formats need 100 % top-1 agreement and
max |logit diff| <= ``atol`` (1e-3 unless stated); FP16/BF16/INT8 formats need >= 98 % top-1 agreement
and accuracy within 1 point of the reference.
"""

from __future__ import annotations

from fishopt.export.registry import Format, register_format

_ONNX_REQUIRES = ("onnx", "onnxscript", "onnxruntime")
_SHAPE_OPTIONS = frozenset({"static_batch", "batch_size"})
_ONNX_OPTIONS = _SHAPE_OPTIONS | {"with_preprocessing", "raw_size", "opset", "sanitize"}
_OV_OPTIONS = _SHAPE_OPTIONS | {"with_preprocessing", "raw_size"}
_TRT_REQUIRES = ("tensorrt", "onnx", "onnxscript", "onnxruntime", "polygraphy", "onnx_graphsurgeon")

register_format(Format(
    name="torch-eager-fp32", kind="export", runtime="torch", precision="fp32", suffix=".pt",
    builder="fishopt.export.torch_eager:build_torch_eager",
    runtime_cls="fishopt.runtimes.torch_eager:TorchEagerRuntime",
    backend="torch", description="The reference: the checkpoint itself, run by PyTorch eager.",
    atol=1e-5,
))

register_format(Format(
    name="onnx-fp32", kind="export", runtime="onnxruntime", precision="fp32", suffix=".onnx",
    builder="fishopt.export.onnx:build_onnx", runtime_cls="fishopt.runtimes.onnxruntime:OnnxRuntime",
    requires=_ONNX_REQUIRES, extra="onnx", options=_ONNX_OPTIONS, backend="torch.onnx",
    description="ONNX (dynamo exporter, one self-contained file), run by ONNX Runtime.",
    atol=1e-3,
))

register_format(Format(
    name="onnx-fp16", kind="export", runtime="onnxruntime", precision="fp16", suffix=".onnx",
    builder="fishopt.export.onnx:build_onnx", runtime_cls="fishopt.runtimes.onnxruntime:OnnxRuntime",
    requires=_ONNX_REQUIRES, extra="onnx", options=_ONNX_OPTIONS, backend="torch.onnx",
    description="ONNX with FP16 weights and compute (float32 input and output), run by ONNX Runtime.",
))

register_format(Format(
    name="openvino-fp32", kind="export", runtime="openvino", precision="fp32", suffix=".xml",
    builder="fishopt.export.openvino:build_openvino", runtime_cls="fishopt.runtimes.openvino:OpenVINORuntime",
    requires=("openvino",), extra="openvino", options=_OV_OPTIONS, backend="openvino",
    description="OpenVINO IR, FP32 weights, INFERENCE_PRECISION_HINT=f32 (a true FP32 baseline).",
    atol=1e-3,
))

register_format(Format(
    name="openvino-fp16", kind="export", runtime="openvino", precision="fp16", suffix=".xml",
    builder="fishopt.export.openvino:build_openvino", runtime_cls="fishopt.runtimes.openvino:OpenVINORuntime",
    requires=("openvino",), extra="openvino", options=_OV_OPTIONS, backend="openvino",
    description="OpenVINO IR, FP16-compressed weights, the device's default inference precision "
    "(bf16 on CPUs with AVX-512 BF16/AMX, else f32; recorded in the manifest).",
))

register_format(Format(
    name="openvino-bf16", kind="export", runtime="openvino", precision="bf16", suffix=".xml",
    builder="fishopt.export.openvino:build_openvino", runtime_cls="fishopt.runtimes.openvino:OpenVINORuntime",
    requires=("openvino",), extra="openvino", options=_OV_OPTIONS, backend="openvino",
    description="OpenVINO IR, FP32 weights, INFERENCE_PRECISION_HINT=bf16 (falls back to f32 without BF16).",
))

register_format(Format(
    name="torch-compile-fp32", kind="compile", runtime="torch", precision="fp32", suffix=".pt2",
    builder="fishopt.optimize.compile:build_aoti", runtime_cls="fishopt.runtimes.torch_program:TorchProgramRuntime",
    options=_SHAPE_OPTIONS | {"mode"}, method="default", backend="inductor",
    description="torch.compile (Inductor, freezing) as an AOTInductor package; loads without recompiling.",
    atol=1e-3,
))

register_format(Format(
    name="tensorrt-fp16", kind="export", runtime="tensorrt", precision="fp16", suffix=".engine",
    builder="fishopt.export.tensorrt:build_engine", runtime_cls="fishopt.runtimes.tensorrt:TensorRTRuntime",
    needs_gpu=True, requires=_TRT_REQUIRES, extra="tensorrt", options=_SHAPE_OPTIONS, backend="tensorrt",
    description="TensorRT engine (FP16) from the sanitized ONNX graph; needs a CUDA GPU.",
))

register_format(Format(
    name="tensorrt-int8", kind="export", runtime="tensorrt", precision="int8", suffix=".engine",
    builder="fishopt.export.tensorrt:build_engine", runtime_cls="fishopt.runtimes.tensorrt:TensorRTRuntime",
    needs_gpu=True, requires=_TRT_REQUIRES, extra="tensorrt", options=_SHAPE_OPTIONS | {"calib_images"},
    method="static", backend="tensorrt",
    description="TensorRT engine (INT8 with FP16 fallback) from a Q/DQ ONNX graph calibrated on the train split.",
))

# ---------------------------------------------------------------------------------------------------
# Quantization formats (kind="quantize"): the quantization engineer appends their register_format calls
# below this line (onnxruntime-int8 static/dynamic, openvino-int8, torch-pt2e-int8, torchao dynamic,
# inc-int8). Builders follow the contract in fishopt.export.registry.Format; ONNX and OpenVINO INT8
# artifacts can reuse fishopt.runtimes.onnxruntime:OnnxRuntime and fishopt.runtimes.openvino:OpenVINORuntime.
# ---------------------------------------------------------------------------------------------------

_QUANT_OPTIONS = frozenset({"calib_size", "calib_images", "seed", "max_drop"})
_TORCH_QUANT_OPTIONS = _QUANT_OPTIONS | {"package"}
_PROGRAM_RUNTIME = "fishopt.runtimes.torch_program:TorchProgramRuntime"

register_format(Format(
    name="torch-int8", kind="quantize", runtime="torch", precision="int8", suffix=".pt2",
    builder="fishopt.optimize.torch_pt2e:build_static", runtime_cls=_PROGRAM_RUNTIME,
    requires=("torchao",), extra="torchao", options=_TORCH_QUANT_OPTIONS, method="static", backend="torch",
    description="Static INT8 (torch.export + torchao PT2E X86InductorQuantizer) as an AOTInductor package.",
))

register_format(Format(
    name="torch-int8-dynamic", kind="quantize", runtime="torch", precision="int8", suffix=".pt2",
    builder="fishopt.optimize.torch_pt2e:build_dynamic", runtime_cls=_PROGRAM_RUNTIME,
    requires=("torchao",), extra="torchao", options=_TORCH_QUANT_OPTIONS - {"calib_size", "calib_images"},
    method="dynamic", backend="torch",
    description="Dynamic INT8 of the Linear layers only (torchao Int8DynamicActivationInt8Weight); convs stay FP32.",
))

register_format(Format(
    name="onnxruntime-int8", kind="quantize", runtime="onnxruntime", precision="int8", suffix=".onnx",
    builder="fishopt.optimize.onnxruntime_quant:build_static", runtime_cls="fishopt.runtimes.onnxruntime:OnnxRuntime",
    requires=_ONNX_REQUIRES, extra="onnx", options=_QUANT_OPTIONS | {"per_tensor"}, method="static",
    backend="onnxruntime",
    description="Static INT8 QDQ (quant_pre_process + quantize_static, per-channel weights), run by ONNX Runtime.",
))

register_format(Format(
    name="onnxruntime-int8-dynamic", kind="quantize", runtime="onnxruntime", precision="int8", suffix=".onnx",
    builder="fishopt.optimize.onnxruntime_quant:build_dynamic", runtime_cls="fishopt.runtimes.onnxruntime:OnnxRuntime",
    requires=_ONNX_REQUIRES, extra="onnx", options=frozenset({"seed", "max_drop"}), method="dynamic",
    backend="onnxruntime",
    description="Dynamic INT8 of MatMul/Gemm only (Conv stays FP32: ConvInteger would be ~8x slower).",
))

register_format(Format(
    name="openvino-int8", kind="quantize", runtime="openvino", precision="int8", suffix=".xml",
    builder="fishopt.optimize.openvino_quant:build_static", runtime_cls="fishopt.runtimes.openvino:OpenVINORuntime",
    requires=("openvino", "nncf"), extra="openvino", options=_QUANT_OPTIONS, method="static", backend="openvino",
    description="Static INT8 of the OpenVINO IR with NNCF (nncf.quantize), weights saved uncompressed.",
))

register_format(Format(
    name="inc-int8", kind="quantize", runtime="torch", precision="int8", suffix=".pt2",
    builder="fishopt.optimize.inc:build_static", runtime_cls=_PROGRAM_RUNTIME,
    requires=("neural_compressor", "torchao"), extra="inc", options=_TORCH_QUANT_OPTIONS, method="static",
    backend="inc",
    description="Static INT8 with Intel Neural Compressor 3.x autotune (within --max-drop on the val split).",
))
