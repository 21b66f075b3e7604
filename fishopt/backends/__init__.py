"""Backends: one package per runtime family, each registering its formats and variants in its ``__init__``.

- :mod:`fishopt.backends.torch`: the eager reference, ``torch.compile`` (AOTInductor), PT2E and INC INT8;
- :mod:`fishopt.backends.onnx`: ONNX export and ONNX Runtime (FP32, FP16, static/dynamic INT8);
- :mod:`fishopt.backends.openvino`: OpenVINO IR (FP32, FP16, BF16) and NNCF INT8;
- :mod:`fishopt.backends.tensorrt`: TensorRT engines (CUDA).

Imports flow one way: ``tensorrt -> onnx -> torch``, ``openvino -> onnx, torch``; every backend builds on
:mod:`fishopt.artifacts`. A ``__init__`` imports nothing heavy: builders and runtimes are registered as
``"module:attribute"`` strings (see :mod:`fishopt.artifacts.registry`).
"""
