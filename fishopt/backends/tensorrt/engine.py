"""TensorRT: TensorRT-ready ONNX (constant-folded, sanitized) and engine building.

Engines are built with the TensorRT ONNX parser as *strongly typed* networks, the only kind TensorRT 11
(pinned by torch-tensorrt 2.13) builds; precision comes from the graph, not from builder flags:

- ``tensorrt-fp16``: the FP16 ONNX graph of :func:`fishopt.backends.onnx.export.wrap_for_export` (float32 in and out).
- ``tensorrt-int8``: the FP32 graph with Q/DQ nodes (ONNX Runtime ``quantize_static``: symmetric, per-channel
  INT8, calibrated on ``calib_size`` train-split images) = TensorRT's explicit quantization.

Building needs a CUDA GPU and the ``tensorrt`` module; without them :func:`build_engine` raises
:class:`BackendUnavailableError` naming what is missing (the module, the GPU, or both).
:func:`fishopt.backends.onnx.graph.sanitize_onnx` needs only polygraphy and onnx-graphsurgeon and runs anywhere.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fishopt.artifacts.build import BuildOutput
from fishopt.artifacts.calibration import calibration_images
from fishopt.artifacts.config import DEFAULT_CALIB_SIZE, EngineConfig, Int8EngineConfig
from fishopt.artifacts.metadata import write_sidecar
from fishopt.backends.onnx.export import export_onnx, wrap_for_export
from fishopt.backends.onnx.graph import sanitize_onnx
from fishopt.backends.onnx.quantize import quantize_onnx_static
from fishopt.backends.tensorrt.runtime import check_tensorrt
from fishopt.checkpoint import LoadedCheckpoint
from fishopt.errors import BackendUnavailableError

WORKSPACE_BYTES = 1 << 30
DEFAULT_MAX_BATCH = 64


def trt_ready_onnx(ckpt: LoadedCheckpoint, path: Path, *, precision: str, static_batch: bool, batch_size: int) -> Path:
    """Export the TensorRT-ready ONNX graph (sanitized; FP16 for ``fp16``, FP32 otherwise) to ``path``."""
    import onnx

    module, example, _ = wrap_for_export(
        ckpt, precision="fp16" if precision == "fp16" else "fp32", batch_size=batch_size
    )
    model = sanitize_onnx(export_onnx(module, example, path, static_batch=static_batch))
    onnx.save(model, str(path))
    return path


def qdq_onnx(ckpt: LoadedCheckpoint, fp32_path: Path, out_path: Path, calib_size: int) -> Path:
    """Insert symmetric per-channel INT8 Q/DQ nodes (TensorRT explicit quantization), calibrated (entropy) on
    train images stratified per class (:func:`fishopt.artifacts.calibration.calibration_images`)."""
    calib = calibration_images(ckpt, calib_size).model_input(ckpt.meta).numpy()
    return quantize_onnx_static(
        fp32_path, out_path, calib, per_channel=True, symmetric=True, pre_process=False, calibrate_method="entropy"
    )


def engine_from_onnx(
    onnx_path: Path,
    engine_path: Path,
    input_shape: tuple[int, ...],
    *,
    static_batch: bool,
    max_batch: int = DEFAULT_MAX_BATCH,
) -> Path:
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


def build_engine(
    ckpt: LoadedCheckpoint, workdir: Path, meta: dict[str, Any], config: EngineConfig | Int8EngineConfig
) -> BuildOutput:
    """Builder of ``tensorrt-fp16`` / ``tensorrt-int8``.

    Writes ``model.onnx`` (the TensorRT-ready graph the engine was built from), ``model.engine`` and
    ``model.engine.json`` (metadata).

    Raises:
        BackendUnavailableError: No ``tensorrt`` module or no CUDA GPU (names which), or TensorRT failed.
    """
    check_tensorrt()
    import tensorrt as trt

    workdir = Path(workdir)
    precision = meta["precision"]
    batch = config.example_batch
    onnx_path = trt_ready_onnx(
        ckpt, workdir / "model.onnx", precision=precision, static_batch=config.static_batch, batch_size=batch
    )
    if precision == "int8":
        fp32_path = onnx_path.with_name("model.fp32.onnx")
        onnx_path.replace(fp32_path)
        qdq_onnx(ckpt, fp32_path, onnx_path, getattr(config, "calib_size", DEFAULT_CALIB_SIZE))
        fp32_path.unlink()
    engine = engine_from_onnx(
        onnx_path, workdir / "model.engine", (batch, 3, *ckpt.meta["input_size"]), static_batch=config.static_batch
    )
    facts = {
        "raw_input": False,
        **config.shape_meta(),
        "max_batch": batch if config.static_batch else DEFAULT_MAX_BATCH,
        "tensorrt_version": trt.__version__,
    }
    write_sidecar(engine, {**meta, **facts})
    return BuildOutput(engine, facts)
