"""ONNX Runtime INT8: static QDQ and dynamic MatMul/Gemm-only, each round-tripped through a fresh process."""

from __future__ import annotations

import importlib.util

import pytest

from fishopt.errors import MissingDependencyError, OutputError

pytestmark = pytest.mark.skipif(importlib.util.find_spec("onnxruntime") is None, reason="onnxruntime not installed")


def _op_types(path) -> set[str]:
    import onnx

    return {n.op_type for n in onnx.load(str(path)).graph.node}


def test_static_qdq_round_trip(fish_checkpoint, tmp_path):
    from quant_helpers import check_round_trip

    info = check_round_trip("onnxruntime-int8", fish_checkpoint, tmp_path / "ort", tmp_path, calib_size=18)
    ops = _op_types(tmp_path / "ort" / "model.onnx")
    assert {"QuantizeLinear", "DequantizeLinear", "Conv"} <= ops
    quant = info["meta"]["quantization"]
    assert quant["calibration"] == {"split": "train", "images": 18, "seed": 0}
    assert info["meta"]["recipe"]["per_channel"] is True
    assert not (tmp_path / "ort" / ".fp32").exists()
    import onnx

    graph = onnx.load(str(tmp_path / "ort" / "model.onnx")).graph  # int32 (bias) zero points dropped
    assert not [t.name for t in graph.initializer if t.data_type == onnx.TensorProto.INT32 and "zero_point" in t.name]
    biases = [n for n in graph.node if n.op_type == "DequantizeLinear" and n.input[0].endswith("bias_quantized")]
    assert biases and all(len(n.input) == 2 for n in biases)


def test_dynamic_quantizes_matmul_only(fish_checkpoint, tmp_path):
    from quant_helpers import check_round_trip

    info = check_round_trip("onnxruntime-int8-dynamic", fish_checkpoint, tmp_path / "dyn", tmp_path)
    ops = _op_types(tmp_path / "dyn" / "model.onnx")
    assert "ConvInteger" not in ops and "Conv" in ops  # ConvInteger would be ~8x slower
    assert "MatMulInteger" in ops or "DynamicQuantizeLinear" in ops
    assert "Linear" in info["meta"]["quantization"]["quantized"]
    assert 0 < info["meta"]["quantization"]["linear_mac_share"] < 100


def test_missing_onnxruntime_names_the_extra(fish_checkpoint, tmp_path, monkeypatch):
    from fishopt.artifacts.build import build

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "onnxruntime" else real(name, *a))
    with pytest.raises(MissingDependencyError, match=r"fishopt\[onnx\]"):
        build("onnxruntime-int8", fish_checkpoint, tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_existing_output_folder_is_refused(fish_checkpoint, tmp_path):
    from fishopt.artifacts.build import build

    out = tmp_path / "taken"
    out.mkdir()
    (out / "keep.txt").write_text("x")
    with pytest.raises(OutputError, match="--overwrite"):
        build("onnxruntime-int8", fish_checkpoint, out, options={"calib_size": 18})
    assert (out / "keep.txt").read_text() == "x"


def test_failing_parity_writes_nothing(fish_checkpoint, tmp_path, monkeypatch):
    from fishopt.artifacts import parity
    from fishopt.artifacts.build import build
    from fishopt.errors import ParityError

    monkeypatch.setattr(parity, "MIN_AGREEMENT", 1.01)  # no artifact can pass: the gate must stop the write
    with pytest.raises(ParityError, match="top-1 agreement"):
        build("onnxruntime-int8-dynamic", fish_checkpoint, tmp_path / "out")
    assert not (tmp_path / "out").exists()
    assert not list(tmp_path.glob(".out.build-*"))


def test_drop_int32_zero_points_keeps_non_conformant_ones(tmp_path):
    import numpy as np
    import onnx
    from onnx import helper, numpy_helper

    from fishopt.backends.onnx.quantize import drop_int32_zero_points

    def dq(name: str, zp: int) -> tuple[onnx.NodeProto, list[onnx.TensorProto]]:
        inits = [
            numpy_helper.from_array(np.array([5, 7], np.int32), f"{name}_q"),
            numpy_helper.from_array(np.array([0.5, 0.25], np.float32), f"{name}_s"),
            numpy_helper.from_array(np.array([zp, zp], np.int32), f"{name}_zp"),
        ]
        return helper.make_node("DequantizeLinear", [f"{name}_q", f"{name}_s", f"{name}_zp"], [name], axis=0), inits

    (a, ia), (b, ib) = dq("a", 0), dq("b", 3)
    add = helper.make_node("Add", ["a", "b"], ["y"])
    graph = helper.make_graph(
        [a, b, add], "g", [], [helper.make_tensor_value_info("y", onnx.TensorProto.FLOAT, [2])], initializer=ia + ib
    )
    path = tmp_path / "m.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 21)]), str(path))
    assert drop_int32_zero_points(path) == 1
    model = onnx.load(str(path))
    assert [len(n.input) for n in model.graph.node[:2]] == [2, 3]
    assert {t.name for t in model.graph.initializer} == {"a_q", "a_s", "b_q", "b_s", "b_zp"}

    import onnxruntime as ort

    out = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"]).run(None, {})[0]
    np.testing.assert_allclose(out, [0.5 * 5 + 0.5 * 2, 0.25 * 7 + 0.25 * 4])
