"""TensorRT: TensorRT-ready ONNX (constant-folded, sanitized) and engine building.

Engines are built with the TensorRT ONNX parser as *strongly typed* networks, the only kind TensorRT 11
(pinned by torch-tensorrt 2.13) builds; precision comes from the graph, not from builder flags:

- ``tensorrt-fp16``: the FP16 ONNX graph of :func:`fishopt.export.onnx.export_module` (float32 in and out).
- ``tensorrt-int8``: the FP32 graph with Q/DQ nodes (ONNX Runtime ``quantize_static``: symmetric, per-channel
  INT8, calibrated on ``calib_images`` train-split images) = TensorRT's explicit quantization.

Building needs a CUDA GPU and the ``tensorrt`` module; without them :func:`build_engine` raises
:class:`BackendUnavailableError` naming what is missing (the module, the GPU, or both).
:func:`sanitize_onnx` needs only polygraphy and onnx-graphsurgeon and runs anywhere.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fishopt.errors import BackendUnavailableError, require

WORKSPACE_BYTES = 1 << 30
DEFAULT_CALIB_IMAGES = 256
DEFAULT_MAX_BATCH = 64


def sanitize_onnx(model):
    """Constant-fold and clean an ``onnx.ModelProto`` (polygraphy + onnx-graphsurgeon); metadata is kept.

    Raises:
        MissingDependencyError: If polygraphy or onnx-graphsurgeon is not installed.
    """
    require("polygraphy", "tensorrt")
    require("onnx_graphsurgeon", "tensorrt")
    import onnx_graphsurgeon as gs
    from polygraphy.backend.onnx import fold_constants

    props = [(p.key, p.value) for p in model.metadata_props]
    folded = fold_constants(model, num_passes=3, fold_shapes=True, error_ok=False)
    graph = gs.import_onnx(folded)
    graph.cleanup().toposort()
    out = gs.export_onnx(graph)
    out.ir_version = model.ir_version
    del out.opset_import[:]
    out.opset_import.extend(model.opset_import)
    for key, value in props:
        prop = out.metadata_props.add()
        prop.key, prop.value = key, value
    return out


def tensorrt_unavailable_reason() -> str | None:
    """What is missing to build or run a TensorRT engine here (``None`` if nothing)."""
    import importlib.util

    import torch

    missing = []
    if importlib.util.find_spec("tensorrt") is None:
        missing.append("the tensorrt module (pip install 'fishopt[tensorrt]' on a CUDA machine)")
    if not torch.cuda.is_available():
        missing.append("a CUDA GPU (TensorRT engines are built and run on an NVIDIA GPU)")
    return "; ".join(missing) or None


def check_tensorrt() -> None:
    """Raise if TensorRT engines cannot be built or run here.

    Raises:
        BackendUnavailableError: Naming what is missing: the ``tensorrt`` module, a CUDA GPU, or both.
    """
    reason = tensorrt_unavailable_reason()
    if reason:
        raise BackendUnavailableError(f"TensorRT is not usable on this machine: missing {reason}")


def trt_ready_onnx(ckpt, path: Path, *, precision: str, static_batch: bool, batch_size: int) -> Path:
    """Export the TensorRT-ready ONNX graph (sanitized; FP16 for ``fp16``, FP32 otherwise) to ``path``."""
    from fishopt.export.onnx import export_module, export_onnx

    module, example, _ = export_module(ckpt, precision="fp16" if precision == "fp16" else "fp32", batch_size=batch_size)
    model = sanitize_onnx(export_onnx(module, example, path, static_batch=static_batch))
    import onnx

    onnx.save(model, str(path))
    return path


def qdq_onnx(ckpt, fp32_path: Path, out_path: Path, calib_images: int) -> Path:
    """Insert symmetric per-channel INT8 Q/DQ nodes (TensorRT explicit quantization), calibrated (entropy) on
    train images stratified per class (:func:`fishopt.optimize.calibration.calibration_set`)."""
    from fishopt.optimize.calibration import calibration_set
    from fishopt.optimize.onnxruntime_quant import quantize_onnx_static

    calib = calibration_set(ckpt, calib_images).batch.numpy()
    return quantize_onnx_static(fp32_path, out_path, calib, per_channel=True, symmetric=True, pre_process=False,
                                calibrate_method="entropy")


def engine_from_onnx(onnx_path: Path, engine_path: Path, input_shape: tuple[int, ...], *, static_batch: bool,
                     max_batch: int = DEFAULT_MAX_BATCH) -> Path:
    """Build a strongly typed TensorRT engine from an ONNX file with the TensorRT ONNX parser.

    Raises:
        BackendUnavailableError: If parsing or building fails (the parser's errors are in the message).
    """
    import tensorrt as trt

    logger = trt.Logger(trt.Logger.WARNING)
    builder = trt.Builder(logger)
    flags = 0
    if hasattr(trt.NetworkDefinitionCreationFlag, "STRONGLY_TYPED"):  # TensorRT 10; always on in 11
        flags |= 1 << int(trt.NetworkDefinitionCreationFlag.STRONGLY_TYPED)
    network = builder.create_network(flags)
    parser = trt.OnnxParser(network, logger)
    if not parser.parse(Path(onnx_path).read_bytes()):
        errors = "; ".join(str(parser.get_error(i)) for i in range(parser.num_errors))
        raise BackendUnavailableError(f"TensorRT could not parse {onnx_path.name}: {errors}")
    config = builder.create_builder_config()
    config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, WORKSPACE_BYTES)
    if not static_batch:
        profile = builder.create_optimization_profile()
        name = network.get_input(0).name
        rest = tuple(input_shape[1:])
        profile.set_shape(name, (1, *rest), (min(8, max_batch), *rest), (max_batch, *rest))
        config.add_optimization_profile(profile)
    serialized = builder.build_serialized_network(network, config)
    if serialized is None:
        raise BackendUnavailableError(f"TensorRT failed to build an engine from {onnx_path.name}; see its log above")
    engine_path.write_bytes(bytes(serialized))
    return engine_path


def build_engine(ckpt, workdir: Path, *, meta: dict[str, Any], static_batch: bool = False,
                 batch_size: int | None = None, calib_images: int | None = None) -> Path:
    """Builder of ``tensorrt-fp16`` / ``tensorrt-int8`` (contract: :class:`fishopt.export.registry.Format`).

    Writes ``model.onnx`` (the TensorRT-ready graph the engine was built from), ``model.engine`` and
    ``model.engine.json`` (metadata).

    Raises:
        BackendUnavailableError: No ``tensorrt`` module or no CUDA GPU (names which), or TensorRT failed.
    """
    check_tensorrt()
    from fishopt.export.metadata import write_sidecar

    workdir = Path(workdir)
    precision = meta["precision"]
    batch = int(batch_size or 1) if static_batch else 2
    onnx_path = trt_ready_onnx(ckpt, workdir / "model.onnx", precision=precision, static_batch=static_batch,
                               batch_size=batch)
    if precision == "int8":
        fp32_path = onnx_path.with_name("model.fp32.onnx")
        onnx_path.replace(fp32_path)
        qdq_onnx(ckpt, fp32_path, onnx_path, int(calib_images or DEFAULT_CALIB_IMAGES))
        fp32_path.unlink()
    shape = (batch, 3, *ckpt.meta["input_size"])
    engine = engine_from_onnx(onnx_path, workdir / "model.engine", shape, static_batch=static_batch)
    import tensorrt as trt

    write_sidecar(engine, {**meta, "raw_input": False, "dynamic_batch": not static_batch,
                           "max_batch": batch if static_batch else DEFAULT_MAX_BATCH, "tensorrt_version": trt.__version__})
    return engine
