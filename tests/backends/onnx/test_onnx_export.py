"""ONNX export details: dynamic/static batch, opset, checker, preprocessing inside the graph, sanitizing."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("onnxruntime")
pytest.importorskip("onnxscript")


def _session(path: Path):
    import onnxruntime as ort

    return ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])


def test_dynamic_batch_opset_and_single_file(built) -> None:
    import onnx

    result = built("onnx-fp32")
    files = {f["path"] for f in result.manifest["files"]}
    assert files == {"model.onnx"}, "weights must be inside the one .onnx file (external_data=False)"
    model = onnx.load(str(result.artifact))
    onnx.checker.check_model(model, full_check=True)
    dims = model.graph.input[0].type.tensor_type.shape.dim
    assert dims[0].dim_param and [d.dim_value for d in dims[1:]] == [3, 32, 32]
    assert result.manifest["metadata"]["opset"] >= 18 and result.manifest["metadata"]["dynamic_batch"] is True
    sess = _session(result.artifact)
    for n in (1, 5):
        assert sess.run(None, {"images": np.zeros((n, 3, 32, 32), np.float32)})[0].shape == (n, 3)


def test_no_debug_metadata_or_source_paths(built) -> None:
    """The exporter's per-node stack traces (with this machine's paths) are stripped; fishopt's metadata stays."""
    import onnx

    result = built("onnx-fp32")
    model = onnx.load(str(result.artifact))
    assert not [n.name for n in model.graph.node if n.metadata_props]
    assert b"stack_trace" not in result.artifact.read_bytes() and b"fishopt/models" not in result.artifact.read_bytes()
    assert "class_names" in {p.key for p in model.metadata_props}


def test_static_batch_and_sanitize(built) -> None:
    pytest.importorskip("polygraphy")
    pytest.importorskip("onnx_graphsurgeon")
    import onnx

    result = built("onnx-fp32", static_batch=True, batch_size=4, sanitize=True)
    model = onnx.load(str(result.artifact))
    assert [d.dim_value for d in model.graph.input[0].type.tensor_type.shape.dim] == [4, 3, 32, 32]
    assert result.manifest["metadata"]["sanitized"] is True and result.manifest["metadata"]["batch_size"] == 4
    assert not [n for n in model.graph.node if n.op_type in ("Shape", "Constant")]


def test_with_preprocessing_takes_raw_uint8(built) -> None:
    result = built("onnx-fp32", with_preprocessing=True)
    meta = result.manifest["metadata"]
    assert meta["raw_input"] is True and meta["raw_size"] == [36, 48] and result.manifest["parity"]["rule"] == "exact"
    inp = _session(result.artifact).get_inputs()[0]
    assert inp.type == "tensor(uint8)" and inp.shape[1:] == [36, 48, 3]


def test_preprocessing_matches_python_on_real_images(fish_checkpoint: Path, tmp_path: Path) -> None:
    """The raw-input graph at the load size reproduces the Python evaluation transform on real photos."""
    from fishopt.artifacts.build import build
    from fishopt.checkpoint import load_checkpoint
    from fishopt.data.preprocess import eval_transform

    result = build(
        "onnx-fp32", fish_checkpoint, tmp_path / "raw", options={"with_preprocessing": True}, parity_images=32
    )
    ckpt = load_checkpoint(fish_checkpoint)
    images = ckpt.split_images("test", limit=32).images
    python = (
        ckpt.model(eval_transform(images, ckpt.meta["input_size"], ckpt.meta["mean"], ckpt.meta["std"]))
        .detach()
        .numpy()
    )
    graph = _session(result.artifact).run(None, {"images": images.permute(0, 2, 3, 1).numpy()})[0]
    assert (graph.argmax(1) == python.argmax(1)).all()
    assert np.abs(graph - python).max() < 1e-4


def _raw_graph(checkpoint: Path, out: Path, raw_size: list[int]):
    """An ONNX FP32 graph taking raw uint8 frames at ``raw_size``, built through the parity gate (16 images)."""
    from fishopt.artifacts.build import build

    return build(
        "onnx-fp32", checkpoint, out, parity_images=16, options={"with_preprocessing": True, "raw_size": raw_size}
    )


def test_preprocessing_with_resize_on_real_photos(fish_checkpoint: Path, tmp_path: Path) -> None:
    """Photos at their stored size (168x224) resized inside the graph (antialiased bilinear) vs decode+fit_to."""
    from fishopt.checkpoint import load_checkpoint
    from fishopt.data.preprocess import eval_transform

    result = _raw_graph(fish_checkpoint, tmp_path / "raw", [168, 224])
    assert result.manifest["parity"]["rule"] == "agreement" and result.manifest["metadata"]["raw_size"] == [168, 224]
    ckpt = load_checkpoint(fish_checkpoint)
    small = ckpt.split_images("test", limit=16).images
    full = ckpt.split_images("test", limit=16, size=[168, 224]).images
    python = (
        ckpt.model(eval_transform(small, ckpt.meta["input_size"], ckpt.meta["mean"], ckpt.meta["std"])).detach().numpy()
    )
    graph = _session(result.artifact).run(None, {"images": full.permute(0, 2, 3, 1).numpy()})[0]
    assert (graph.argmax(1) == python.argmax(1)).mean() >= 0.9
    assert np.abs(graph - python).max() < 0.05  # uint8 rounding after the resize may differ by one level


def test_raw_frames_of_another_aspect_are_judged_on_the_same_frames(fish_checkpoint: Path, tmp_path: Path) -> None:
    """A 16:9 raw size frames the 4:3 photos differently (cropped one way to the raw size, the other way by the
    graph's fit): the gate compares the graph with fishopt's own preprocessing of the same raw frames, so a
    correct graph passes with float-rounding differences only."""
    from fishopt.checkpoint import load_checkpoint

    result = _raw_graph(fish_checkpoint, tmp_path / "wide", [180, 320])
    parity = result.manifest["parity"]
    assert parity["top1_agreement"] == 1.0 and parity["max_abs_diff"] < 1e-3
    assert parity["accuracy"] == parity["reference_accuracy"]
    from fishopt.artifacts.parity import raw_reference_logits

    ckpt = load_checkpoint(fish_checkpoint)
    wide = ckpt.split_images("test", limit=16, size=[180, 320]).images
    graph = _session(result.artifact).run(None, {"images": wide.permute(0, 2, 3, 1).numpy()})[0]
    assert np.abs(graph - raw_reference_logits(ckpt, wide)).max() < 1e-3


def test_raw_size_must_cover_input(tiny_checkpoint: Path, tmp_path: Path) -> None:
    from fishopt.artifacts.build import build
    from fishopt.errors import ConfigError

    with pytest.raises(ConfigError, match="smaller than the model input 32x32"):
        build("onnx-fp32", tiny_checkpoint, tmp_path / "o", options={"with_preprocessing": True, "raw_size": [16, 16]})
    assert not (tmp_path / "o").exists()


def test_fp16_graph_keeps_float32_io(built) -> None:
    import onnx

    model = onnx.load(str(built("onnx-fp16").artifact))
    assert model.graph.input[0].type.tensor_type.elem_type == onnx.TensorProto.FLOAT
    assert model.graph.output[0].type.tensor_type.elem_type == onnx.TensorProto.FLOAT
    assert any(t.data_type == onnx.TensorProto.FLOAT16 for t in model.graph.initializer)
