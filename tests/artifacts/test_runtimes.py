"""Runtimes: one interface, loading from the artifact alone, runtime options, bad artifacts."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from fishopt.artifacts.registry import list_formats
from fishopt.artifacts.runtime import Runtime
from fishopt.errors import BackendUnavailableError, CheckpointError, ConfigError


def _artifact(name: str, checkpoint: Path, out: Path, **options) -> Path:
    from fishopt.artifacts.build import build

    return build(name, checkpoint, out, options=options, verify=False).artifact


def _reference(checkpoint: Path, x: np.ndarray) -> np.ndarray:
    import torch

    from fishopt.checkpoint import load_checkpoint

    with torch.no_grad():
        return load_checkpoint(checkpoint).model(torch.from_numpy(x)).numpy()


X = np.random.default_rng(0).normal(size=(3, 3, 32, 32)).astype(np.float32)


@pytest.mark.parametrize("fmt", list_formats(), ids=lambda f: f.name)
def test_runtime_classes_implement_the_interface(fmt) -> None:
    reason = fmt.unavailable_reason()
    if reason and "not installed" in reason and fmt.backend != "tensorrt":
        pytest.skip(f"{fmt.name}: {fmt.unavailable_reason()}")
    cls = fmt.load_runtime()
    assert issubclass(cls, Runtime) and callable(cls.load)


def test_torch_eager_channels_last(tiny_checkpoint: Path, tmp_path: Path) -> None:
    from fishopt.backends.torch.runtime import TorchEagerRuntime

    path = _artifact("torch-eager-fp32", tiny_checkpoint, tmp_path / "t")
    plain = TorchEagerRuntime.load(path, threads=1)
    fast = TorchEagerRuntime.load(path, threads=1, channels_last=True)
    assert plain.meta["format"] == "torch-eager-fp32" and not plain.raw_input
    np.testing.assert_allclose(fast(X), plain(X), atol=1e-5)
    np.testing.assert_allclose(plain(X), _reference(tiny_checkpoint, X), atol=1e-6)
    with pytest.raises(CheckpointError, match="not found"):
        TorchEagerRuntime.load(tmp_path / "missing.pt")


def test_onnxruntime_options_and_errors(tiny_checkpoint: Path, tmp_path: Path) -> None:
    pytest.importorskip("onnxruntime")
    pytest.importorskip("onnxscript")
    import onnx

    from fishopt.backends.onnx.runtime import OnnxRuntime

    path = _artifact("onnx-fp32", tiny_checkpoint, tmp_path / "o")
    for kwargs in ({}, {"spinning": True, "optimization": "basic"}):
        rt = OnnxRuntime.load(path, threads=1, **kwargs)
        np.testing.assert_allclose(rt(X), _reference(tiny_checkpoint, X), atol=1e-4)
    assert rt.input_name == "images" and rt.input_dtype == np.float32 and not rt.raw_input
    with pytest.raises(ConfigError, match="valid choices: all, basic"):
        OnnxRuntime.load(path, optimization="max")
    with pytest.raises(BackendUnavailableError, match="CUDAExecutionProvider"):
        import onnxruntime as ort

        if "CUDAExecutionProvider" in ort.get_available_providers():
            pytest.skip("CUDA provider present")
        OnnxRuntime.load(path, device="cuda")
    (tmp_path / "junk.onnx").write_bytes(b"junk")
    with pytest.raises(CheckpointError, match="cannot load"):
        OnnxRuntime.load(tmp_path / "junk.onnx")
    bare = onnx.load(str(path))
    del bare.metadata_props[:]
    onnx.save(bare, str(tmp_path / "bare.onnx"))
    with pytest.raises(CheckpointError, match="lacks fishopt metadata"):
        OnnxRuntime.load(tmp_path / "bare.onnx")


def test_onnxruntime_raw_input(tiny_checkpoint: Path, tmp_path: Path) -> None:
    pytest.importorskip("onnxruntime")
    pytest.importorskip("onnxscript")
    import torch

    from fishopt.backends.onnx.runtime import OnnxRuntime
    from fishopt.data.preprocess import eval_transform

    rt = OnnxRuntime.load(_artifact("onnx-fp32", tiny_checkpoint, tmp_path / "r", with_preprocessing=True))
    assert rt.raw_input and rt.input_dtype == np.uint8
    images = torch.randint(0, 256, (2, 3, 36, 48), dtype=torch.uint8)
    x = eval_transform(images, [32, 32], [0.5] * 3, [0.25] * 3).numpy()
    np.testing.assert_allclose(rt(images.permute(0, 2, 3, 1).numpy()), _reference(tiny_checkpoint, x), atol=1e-4)


def test_openvino_precision_hints(tiny_checkpoint: Path, tmp_path: Path) -> None:
    pytest.importorskip("openvino")
    from fishopt.backends.openvino.runtime import OpenVINORuntime

    fp32 = OpenVINORuntime.load(_artifact("openvino-fp32", tiny_checkpoint, tmp_path / "a"), threads=1)
    assert fp32.inference_precision == "f32" and fp32.meta["inference_precision"] == "f32"
    np.testing.assert_allclose(fp32(X), _reference(tiny_checkpoint, X), atol=1e-4)
    fp16_path = _artifact("openvino-fp16", tiny_checkpoint, tmp_path / "b")
    default = OpenVINORuntime.load(fp16_path, threads=1)
    assert default.meta["weights"] == "fp16" and default.meta["inference_precision"] is None
    assert default.inference_precision in ("bf16", "f32", "f16")  # the device's default, recorded
    forced = OpenVINORuntime.load(fp16_path, threads=1, precision_hint="f32")
    assert forced.inference_precision == "f32"
    with pytest.raises(ConfigError, match="valid choices: bf16, f16, f32"):
        OpenVINORuntime.load(fp16_path, precision_hint="int4")
    with pytest.raises(CheckpointError, match="not found"):
        OpenVINORuntime.load(tmp_path / "none.xml")


def test_torch_program_runtime_errors(tmp_path: Path) -> None:
    from fishopt.backends.torch.runtime import TorchProgramRuntime

    with pytest.raises(BackendUnavailableError, match="built for the CPU"):
        TorchProgramRuntime.load(tmp_path / "model.pt2", device="cuda")
    with pytest.raises(CheckpointError, match="not found; build it with 'fishopt compile' or 'fishopt quantize'"):
        TorchProgramRuntime.load(tmp_path / "model.pt2")
    (tmp_path / "model.pt2").write_bytes(b"not a zip")
    with pytest.raises(CheckpointError, match="model.pt2.json"):
        TorchProgramRuntime.load(tmp_path / "model.pt2")
