"""Metadata: the same keys in ONNX metadata_props, OpenVINO rt_info and the torch sidecar."""

from __future__ import annotations

from pathlib import Path

import pytest

from fishopt.artifacts import metadata as md
from fishopt.errors import CheckpointError


@pytest.fixture
def meta(tiny_checkpoint: Path) -> dict:
    from fishopt.checkpoint import load_checkpoint

    return md.artifact_metadata(load_checkpoint(tiny_checkpoint), "onnx-fp32", "fp32", raw_input=False)


def test_artifact_metadata_keys(meta: dict, tiny_checkpoint: Path) -> None:
    from fishopt.io import file_sha256

    assert set(md.REQUIRED_KEYS) <= set(meta)
    assert meta["class_names"] == ["Alpha Fish", "Beta Fish", "Gamma Fish"]
    assert meta["input_size"] == [32, 32] and meta["load_size"] == [36, 48]
    assert meta["source_checkpoint_sha256"] == file_sha256(tiny_checkpoint)
    assert md.check_metadata(meta, "x") is meta


def test_onnx_roundtrip(meta: dict, tmp_path: Path) -> None:
    onnx = pytest.importorskip("onnx")
    model = onnx.helper.make_model(onnx.helper.make_graph([], "g", [], []))
    md.write_onnx_metadata(model, meta)
    md.write_onnx_metadata(model, {"format": "onnx-fp16"})  # replaces, does not duplicate
    onnx.save(model, str(tmp_path / "m.onnx"))
    back = md.read_onnx_metadata(tmp_path / "m.onnx")
    assert back == {**meta, "format": "onnx-fp16"}
    assert [p.key for p in model.metadata_props].count("format") == 1


def test_openvino_roundtrip(meta: dict, tmp_path: Path) -> None:
    ov = pytest.importorskip("openvino")
    import numpy as np

    param = ov.opset13.parameter([1, 3], np.float32, name="x")
    model = ov.Model([ov.opset13.relu(param)], [param], "m")
    md.set_openvino_metadata(model, meta)
    ov.save_model(model, str(tmp_path / "m.xml"))
    assert md.get_openvino_metadata(ov.Core().read_model(str(tmp_path / "m.xml"))) == meta


def test_sidecar_roundtrip_and_errors(meta: dict, tmp_path: Path) -> None:
    artifact = tmp_path / "model.pt2"
    assert md.write_sidecar(artifact, meta) == tmp_path / "model.pt2.json"
    assert md.read_sidecar(artifact) == meta
    with pytest.raises(CheckpointError, match="not found"):
        md.read_sidecar(tmp_path / "other.pt2")
    (tmp_path / "bad.pt2.json").write_text("{")
    with pytest.raises(CheckpointError, match="not valid JSON"):
        md.read_sidecar(tmp_path / "bad.pt2")
    with pytest.raises(CheckpointError, match="lacks fishopt metadata"):
        md.check_metadata({"format": "x"}, artifact)
