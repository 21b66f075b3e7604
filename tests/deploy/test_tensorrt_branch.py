"""infer.py's TensorRT branch, run against a stand-in ``tensorrt`` module backed by onnxruntime.

TensorRT cannot run here (no GPU, no wheels). This checks the branch's plumbing with the TensorRT 8.5-10.x
tensor API it uses (set_input_shape, get_tensor_shape, set_tensor_address, execute_async_v3) and its CUDA
copies, replaced by host memory: a typo or a wrong flow in the branch fails here; TensorRT itself is not tested.
"""

from __future__ import annotations

import ctypes
import importlib.util
import json
import sys
import types
from pathlib import Path

import numpy as np
import pytest


class FakeCuda:
    """Host memory in place of the CUDA runtime."""

    def __init__(self) -> None:
        self.stream = ctypes.c_void_p(1)
        self._keep: list[np.ndarray] = []

    def malloc(self, nbytes: int) -> ctypes.c_void_p:
        buf = np.zeros(max(nbytes, 1), dtype=np.uint8)
        self._keep.append(buf)
        return ctypes.c_void_p(buf.ctypes.data)

    def to_device(self, dst: ctypes.c_void_p, src: np.ndarray) -> None:
        ctypes.memmove(dst.value, src.ctypes.data, src.nbytes)

    def to_host(self, dst: np.ndarray, src: ctypes.c_void_p) -> None:
        ctypes.memmove(dst.ctypes.data, src.value, dst.nbytes)

    def sync(self) -> None:
        pass

    def free(self, ptr: ctypes.c_void_p) -> None:
        pass


def fake_tensorrt(model_path: Path, input_name: str, outputs: list[str], classes: int) -> types.ModuleType:
    """A ``tensorrt`` stand-in whose engine runs the ONNX model with onnxruntime."""
    import onnxruntime as ort

    session = ort.InferenceSession(str(model_path))

    class Context:
        def __init__(self) -> None:
            self.shape, self.addr = None, {}

        def set_input_shape(self, name: str, shape: tuple) -> bool:
            assert name == input_name
            self.shape = tuple(shape)
            return True

        def get_tensor_shape(self, name: str) -> tuple:
            assert name in outputs
            return (self.shape[0], classes)

        def set_tensor_address(self, name: str, address: int) -> bool:
            self.addr[name] = address
            return True

        def execute_async_v3(self, stream: int) -> bool:
            n = int(np.prod(self.shape))
            x = np.frombuffer((ctypes.c_uint8 * n).from_address(self.addr[input_name]), dtype=np.uint8)
            results = session.run(outputs, {input_name: x.reshape(self.shape).copy()})
            for name, value in zip(outputs, results, strict=True):
                value = np.ascontiguousarray(value, dtype=np.float32)
                ctypes.memmove(self.addr[name], value.ctypes.data, value.nbytes)
            return True

    class Engine:
        def get_tensor_dtype(self, name: str) -> str:
            return "float"

        def create_execution_context(self) -> Context:
            return Context()

    module = types.ModuleType("tensorrt")
    module.__version__ = "10.3.0.26"
    module.Logger = type("Logger", (), {"WARNING": 2, "__init__": lambda self, level: None})
    module.Runtime = type(
        "Runtime", (), {"__init__": lambda self, logger: None, "deserialize_cuda_engine": lambda self, blob: Engine()}
    )
    module.nptype = lambda dtype: np.float32
    return module


def test_tensorrt_branch_matches_the_golden_reference(bundle_copy, monkeypatch: pytest.MonkeyPatch) -> None:
    out = bundle_copy("jetson")
    bundle = json.loads((out / "bundle.json").read_text())
    (out / "model.engine").write_bytes(b"engine")
    (out / "engine.json").write_text(
        json.dumps(
            {"model_sha256": bundle["model"]["sha256"], "tensorrt": "10.3.0", "precision": "fp16", "max_batch": 32}
        )
    )
    spec = importlib.util.spec_from_file_location("bundle_infer_trt", out / "infer.py")
    infer = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(infer)
    outputs = [bundle["model"]["outputs"]["logits"], bundle["model"]["outputs"]["probs"]]
    trt = fake_tensorrt(out / "model.onnx", bundle["model"]["input"]["name"], outputs, len(bundle["class_names"]))
    monkeypatch.setitem(sys.modules, "tensorrt", trt)
    monkeypatch.setattr(infer, "_Cuda", FakeCuda)
    model = infer.open_model(bundle, "auto", root=out)
    assert model.name == "tensorrt" and model.precision == "fp16"
    golden = json.loads((out / "golden.json").read_text())
    paths = [out / g["file"] for g in golden["images"]]
    results = list(infer.classify(paths, model, bundle, batch=2))
    assert [r[1][0] for r in results] == [g["reference_label"] for g in golden["images"]]
    logits = np.stack([r[1][2] for r in results])
    np.testing.assert_allclose(logits, [g["artifact_logits"] for g in golden["images"]], atol=1e-5)
    model.close()
