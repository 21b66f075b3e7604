"""TensorRT: the TensorRT-ready ONNX graph runs anywhere; engines need CUDA + TensorRT (skipped here)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

from fishopt.errors import BackendUnavailableError


def test_sanitize_keeps_outputs_and_metadata(built) -> None:
    pytest.importorskip("polygraphy")
    pytest.importorskip("onnx_graphsurgeon")
    import numpy as np
    import onnx
    import onnxruntime as ort

    from fishopt.artifacts.metadata import read_onnx_metadata
    from fishopt.backends.onnx.graph import sanitize_onnx

    path = built("onnx-fp32").artifact
    model = onnx.load(str(path))
    clean = sanitize_onnx(model)
    onnx.checker.check_model(clean)
    assert read_onnx_metadata(clean) == read_onnx_metadata(model)
    x = np.random.default_rng(0).normal(size=(3, 3, 32, 32)).astype(np.float32)
    a = ort.InferenceSession(model.SerializeToString()).run(None, {"images": x})[0]
    b = ort.InferenceSession(clean.SerializeToString()).run(None, {"images": x})[0]
    assert np.abs(a - b).max() < 1e-5


def test_engine_build_without_tensorrt_names_what_is_missing(tiny_checkpoint: Path, tmp_path: Path) -> None:
    import torch

    from fishopt.artifacts.config import EngineConfig
    from fishopt.backends.tensorrt.engine import build_engine, check_tensorrt

    if importlib.util.find_spec("tensorrt") is not None and torch.cuda.is_available():
        pytest.skip("TensorRT and a GPU are present")
    with pytest.raises(BackendUnavailableError, match="TensorRT is not usable on this machine: missing") as info:
        check_tensorrt()
    if importlib.util.find_spec("tensorrt") is None:
        assert "tensorrt module" in str(info.value)
    if not torch.cuda.is_available():
        assert "CUDA GPU" in str(info.value)
    with pytest.raises(BackendUnavailableError):
        build_engine(None, tmp_path, {"precision": "fp16"}, EngineConfig())


def test_runtime_without_tensorrt(tmp_path: Path) -> None:
    import torch

    from fishopt.backends.tensorrt.runtime import TensorRTRuntime

    if importlib.util.find_spec("tensorrt") is not None and torch.cuda.is_available():
        pytest.skip("TensorRT and a GPU are present")
    with pytest.raises(BackendUnavailableError, match="missing"):
        TensorRTRuntime.load(tmp_path / "model.engine")


@pytest.mark.gpu
@pytest.mark.tensorrt
@pytest.mark.parametrize("name", ["tensorrt-fp16", "tensorrt-int8"])
def test_engine_roundtrip(name: str, trained_tiny: Path, tmp_path: Path) -> None:
    """Build an engine (static batch), load it again, run parity (needs CUDA + TensorRT)."""

    from fishopt.artifacts.build import build
    from fishopt.artifacts.registry import get_format

    if reason := get_format(name).unavailable_reason():
        pytest.skip(f"{name}: {reason}")

    result = build(
        name, trained_tiny, tmp_path / "trt", options={"static_batch": True, "batch_size": 4}, parity_images=64
    )
    assert result.parity.passed and (tmp_path / "trt" / "model.engine").is_file()
    assert (tmp_path / "trt" / "model.onnx").is_file()


def test_engine_inputs_prepared_on_cpu(trained_tiny: Path, tmp_path: Path) -> None:
    """The graphs the engines are built from: sanitized FP16, and FP32 with symmetric INT8 Q/DQ nodes."""
    pytest.importorskip("polygraphy")
    pytest.importorskip("onnx_graphsurgeon")
    import numpy as np
    import onnx
    import onnxruntime as ort

    from fishopt.artifacts.parity import compare
    from fishopt.backends.tensorrt.engine import qdq_onnx, trt_ready_onnx
    from fishopt.checkpoint import load_checkpoint

    ckpt = load_checkpoint(trained_tiny)
    fp16 = trt_ready_onnx(ckpt, tmp_path / "fp16.onnx", precision="fp16", static_batch=True, batch_size=4)
    model = onnx.load(str(fp16))
    assert [d.dim_value for d in model.graph.input[0].type.tensor_type.shape.dim] == [4, 3, 32, 32]
    assert any(t.data_type == onnx.TensorProto.FLOAT16 for t in model.graph.initializer)
    fp32 = trt_ready_onnx(ckpt, tmp_path / "fp32.onnx", precision="int8", static_batch=False, batch_size=2)
    qdq = qdq_onnx(ckpt, fp32, tmp_path / "qdq.onnx", calib_size=16)
    ops = {n.op_type for n in onnx.load(str(qdq)).graph.node}
    assert {"QuantizeLinear", "DequantizeLinear"} <= ops

    from fishopt.data.preprocess import eval_transform

    _part = ckpt.split_images("test", limit=32)
    images, labels = _part.images, _part.labels
    x = eval_transform(images, ckpt.meta["input_size"], ckpt.meta["mean"], ckpt.meta["std"]).numpy()
    out = ort.InferenceSession(str(qdq)).run(None, {"images": x})[0]
    report = compare(ckpt.logits(images), out, np.asarray(labels), precision="int8", rule="agreement", atol=None)
    assert report.passed, report.summary()
