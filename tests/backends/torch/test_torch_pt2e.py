"""torch INT8: PT2E static (torchao X86InductorQuantizer) and torchao dynamic (Linear only), fresh-process loads."""

from __future__ import annotations

import importlib.util

import pytest
import torch

pytestmark = pytest.mark.skipif(importlib.util.find_spec("torchao") is None, reason="torchao not installed")


def test_static_pt2e_exported_round_trip(fish_checkpoint, tmp_path):
    from quant_helpers import check_round_trip

    info = check_round_trip(
        "torch-int8", fish_checkpoint, tmp_path / "pt2e", tmp_path, calib_size=18, package="exported"
    )
    assert info["kind"] == "exported" and info["meta"]["quantization"]["saved_as"] == "exported"
    assert info["meta"]["dynamic_batch"] is True
    import zipfile

    with zipfile.ZipFile(tmp_path / "pt2e" / "model.pt2") as zf:  # written deflated; the fresh process loaded it
        assert {i.compress_type for i in zf.infolist()} == {zipfile.ZIP_DEFLATED}


def test_static_graph_has_int8_weights_and_dynamic_batch():
    from fishopt.backends.torch.export import export_program
    from fishopt.backends.torch.pt2e import quantize_pt2e, strip_unused
    from fishopt.models import create_model

    torch.manual_seed(0)
    model = create_model("baseline", num_classes=3, width=4, hidden=8).eval()
    graph = quantize_pt2e(model, torch.randn(8, 3, 32, 32))
    strip_unused(graph)
    int8 = [t for t in graph.state_dict().values() if t.dtype == torch.int8]
    assert len(int8) == 5  # three convs, two linears
    assert not [t for t in graph.state_dict().values() if t.dtype == torch.float32 and t.dim() == 4]
    program = export_program(graph, torch.randn(2, 3, 32, 32))
    assert program.module()(torch.randn(5, 3, 32, 32)).shape == (5, 3)


def test_dynamic_covers_linear_only(fish_checkpoint, tmp_path):
    from quant_helpers import check_round_trip

    info = check_round_trip("torch-int8-dynamic", fish_checkpoint, tmp_path / "dyn", tmp_path, package="exported")
    quant = info["meta"]["quantization"]
    assert quant["quantized"].startswith("2 Linear layers only") and "Conv2d layers stay FP32" in quant["quantized"]
    macs = quant["macs"]
    assert quant["linear_mac_share"] == pytest.approx(100 * macs["linear"] / macs["total"], abs=0.01)


def test_dynamic_coverage_matches_count_macs():
    from fishopt.backends.torch.pt2e import dynamic_coverage
    from fishopt.models import count_macs, create_model

    model = create_model("baseline", num_classes=9)
    cov = dynamic_coverage(model, (112, 144))
    macs = count_macs(model, (112, 144))
    assert cov["macs"] == macs and 0 < cov["linear_mac_share"] < 5


def test_aoti_failure_falls_back_to_exported_program(tmp_path, monkeypatch, caplog):
    from fishopt.backends.torch import pt2e as torch_pt2e
    from fishopt.backends.torch.runtime import is_aoti_package
    from fishopt.models import create_model

    def broken(*args, **kwargs):
        raise RuntimeError("no C++ compiler")

    monkeypatch.setattr(torch_pt2e, "aoti_package", broken)
    model = create_model("baseline", num_classes=3, width=4, hidden=8).eval()
    path, saved_as = torch_pt2e.save_program(model, torch.randn(2, 3, 32, 32), tmp_path / "m.pt2", "aoti")
    assert saved_as == "exported" and not is_aoti_package(path)
    assert "AOTInductor packaging failed" in caplog.text and "no C++ compiler" in caplog.text


@pytest.mark.slow
def test_static_pt2e_aoti_package_round_trip(fish_checkpoint, tmp_path):
    from quant_helpers import check_round_trip

    info = check_round_trip("torch-int8", fish_checkpoint, tmp_path / "aoti", tmp_path, calib_size=18)
    assert info["kind"] == "aoti" and info["meta"]["quantization"]["saved_as"] == "aoti"
