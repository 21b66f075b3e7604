"""OpenVINO INT8 with NNCF: build, fresh-process load, FakeQuantize nodes, int8 weights on disk."""

from __future__ import annotations

import importlib.util

import pytest

pytestmark = pytest.mark.skipif(
    importlib.util.find_spec("openvino") is None or importlib.util.find_spec("nncf") is None,
    reason="openvino/nncf not installed",
)


def test_nncf_round_trip(fish_checkpoint, tmp_path):
    import openvino as ov
    from quant_helpers import check_round_trip

    from fishopt.backends.openvino.quantize import count_fake_quantize

    info = check_round_trip("openvino-int8", fish_checkpoint, tmp_path / "ov", tmp_path, calib_size=18)
    model = ov.Core().read_model(str(tmp_path / "ov" / "model.xml"))
    assert count_fake_quantize(model) > 0
    consts = [op for op in model.get_ops() if op.get_type_name() == "Constant"]
    assert any(
        str(c.get_element_type()) in ("<Type: 'int8_t'>", "i8") or "i8" in str(c.get_element_type()) for c in consts
    )
    assert info["meta"]["quantization"]["calibration"]["images"] == 18
    assert not (tmp_path / "ov" / ".fp32").exists()


def test_missing_nncf_names_the_extra(fish_checkpoint, tmp_path, monkeypatch):
    from fishopt.artifacts.build import build
    from fishopt.errors import MissingDependencyError

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "nncf" else real(name, *a))
    with pytest.raises(MissingDependencyError, match=r"nncf.*fishopt\[openvino\]"):
        build("openvino-int8", fish_checkpoint, tmp_path / "out")
