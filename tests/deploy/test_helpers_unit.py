"""Small pieces of the bundle builder: destination checks, golden picks, ONNX helpers, template rendering."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from fishopt.errors import OutputError


def test_destination_checks(tmp_path: Path) -> None:
    from fishopt.deploy.bundle import archive_path, check_destination

    out = tmp_path / "b"
    check_destination(out, overwrite=False, archive=True)  # nothing there: fine
    out.mkdir()
    check_destination(out, overwrite=False, archive=False)  # an empty folder is fine
    archive_path(out).write_bytes(b"old")
    with pytest.raises(OutputError, match=r"b\.tar\.gz.*--overwrite"):
        check_destination(out, overwrite=False, archive=True)
    check_destination(out, overwrite=True, archive=True)
    (tmp_path / "f").write_text("x")
    with pytest.raises(OutputError, match="is a file"):
        check_destination(tmp_path / "f", overwrite=True, archive=False)


def test_golden_picks_clear_correct_images_per_class() -> None:
    from fishopt.deploy.golden import pick_golden

    logits = np.array([[2.0, 0.0], [5.0, 0.0], [0.0, 9.0], [0.0, 1.0], [3.0, 0.0]])
    labels = np.array([0, 0, 1, 1, 1])
    assert pick_golden(logits, labels) == [1, 2]  # class 1: index 4 is confident but wrong
    assert pick_golden(logits, labels, per_class=2) == [1, 0, 2, 3]


def _tiny_onnx(opset: int = 20):
    from onnx import TensorProto, helper

    node = helper.make_node("Cast", ["x"], ["logits"], to=TensorProto.FLOAT)
    graph = helper.make_graph(
        [node],
        "g",
        [helper.make_tensor_value_info("x", TensorProto.UINT8, ["n", 4, 4, 3])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["n", 4, 4, 3])],
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])


def test_keep_only_output_drops_the_embeddings_output() -> None:
    from onnx import TensorProto, helper

    from fishopt.deploy.model import keep_only_output
    from fishopt.errors import ParityError

    model = _tiny_onnx()
    model.graph.output.append(helper.make_tensor_value_info("x", TensorProto.UINT8, ["n", 4, 4, 3]))
    assert [o.name for o in keep_only_output(model, "logits").graph.output] == ["logits"]
    with pytest.raises(ParityError, match="no output 'scores'.*logits"):
        keep_only_output(model, "scores")


def test_add_probabilities_once() -> None:
    from fishopt.deploy.model import add_probabilities

    model = _tiny_onnx()
    assert add_probabilities(model, "logits") == "probs"
    assert add_probabilities(model, "logits") == "probs"
    assert [o.name for o in model.graph.output] == ["logits", "probs"]
    assert sum(n.op_type == "Softmax" for n in model.graph.node) == 1


def test_lower_opset_and_describe() -> None:
    from fishopt.deploy.model import describe, lower_opset, opset_of

    lowered = lower_opset(_tiny_onnx(20))
    assert opset_of(lowered) == 17 and lowered.ir_version == 8
    info = describe(lowered, "logits", "probs")
    assert info["input"] == {"name": "x", "shape": [-1, 4, 4, 3], "dtype": "uint8", "layout": "NHWC RGB"}
    assert opset_of(lower_opset(_tiny_onnx(16))) == 16  # already low enough: unchanged


def test_describe_refuses_float_input() -> None:
    from onnx import TensorProto, helper

    from fishopt.deploy.model import describe
    from fishopt.errors import ParityError

    graph = helper.make_graph(
        [helper.make_node("Identity", ["x"], ["logits"])],
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 4, 4])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, [1, 3, 4, 4])],
    )
    with pytest.raises(ParityError, match="with_preprocessing"):
        describe(helper.make_model(graph), "logits", "probs")


def test_render_refuses_missing_values() -> None:
    from fishopt.deploy.render import render

    assert render("a {{X}} b", {"X": 1}) == "a 1 b"
    with pytest.raises(KeyError, match="Y"):
        render("{{X}} {{Y}}", {"X": 1})


def test_lower_opset_handles_reduce_mean_axes_input() -> None:
    import onnxruntime as ort
    from onnx import TensorProto, helper, numpy_helper

    from fishopt.deploy.model import lower_opset, opset_of

    axes = numpy_helper.from_array(np.array([1, 2], dtype=np.int64), "axes")
    nodes = [
        helper.make_node("Cast", ["x"], ["f"], to=TensorProto.FLOAT),
        helper.make_node("ReduceMean", ["f", "axes"], ["logits"], keepdims=0, noop_with_empty_axes=0),
    ]
    graph = helper.make_graph(
        nodes,
        "g",
        [helper.make_tensor_value_info("x", TensorProto.UINT8, ["n", 4, 4, 3])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["n", 3])],
        [axes],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])
    lowered = lower_opset(model)
    assert opset_of(lowered) == 17
    x = np.random.default_rng(0).integers(0, 256, (2, 4, 4, 3), dtype=np.uint8)
    before = ort.InferenceSession(model.SerializeToString()).run(None, {"x": x})[0]
    after = ort.InferenceSession(lowered.SerializeToString()).run(None, {"x": x})[0]
    np.testing.assert_array_equal(before, after)
