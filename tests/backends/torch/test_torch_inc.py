"""Intel Neural Compressor 3.x: accuracy-aware static INT8 tuned on the validation split."""

from __future__ import annotations

import importlib.util
import zipfile

import pytest
import torch

pytestmark = pytest.mark.skipif(
    importlib.util.find_spec("neural_compressor") is None, reason="neural-compressor-pt not installed"
)


def test_tune_quantizes_with_dynamic_batch_and_int8_weights():
    from fishopt.backends.torch import inc
    from fishopt.backends.torch.pt2e import fold_weight_quantize, strip_unused
    from fishopt.models import create_model

    torch.manual_seed(0)
    model = create_model("baseline", num_classes=3, width=4, hidden=8).eval()
    x = torch.randn(16, 3, 32, 32)
    labels = model(x).argmax(1)
    graph, report = inc.tune(model, x, x, labels, max_drop=100.0, max_trials=1)
    assert report["trials"] == 1 and report["val_top1_fp32"] == 100.0
    assert graph(torch.randn(5, 3, 32, 32)).shape == (5, 3)
    strip_unused(fold_weight_quantize(graph))
    assert sum(t.dtype == torch.int8 for t in graph.state_dict().values()) == 5


@pytest.mark.slow
def test_inc_round_trip(fish_checkpoint, tmp_path):
    from quant_helpers import check_round_trip

    from fishopt.backends.torch.inc import inc_version
    from fishopt.checkpoint import load_checkpoint

    info = check_round_trip("inc-int8", fish_checkpoint, tmp_path / "inc", tmp_path, calib_size=18, package="exported")
    quant = info["meta"]["quantization"]
    assert quant["tuning"]["split"] == "val" and quant["tuning"]["trials"] >= 1
    assert quant["tuning"]["val_top1_fp32"] - quant["tuning"]["val_top1_int8"] <= 1.0
    assert quant["inc_version"] == inc_version() != "unknown"
    assert info["meta"]["recipe"]["max_drop"] == 1.0
    # INC converts with fold_quantize=False; fishopt folds, so the stored weights are int8, not FP32
    with zipfile.ZipFile(tmp_path / "inc" / "model.pt2") as zf:
        stored = sum(i.file_size for i in zf.infolist() if "/weights/weight_" in i.filename)
    fp32 = sum(t.numel() * 4 for t in load_checkpoint(fish_checkpoint).model.parameters())
    assert stored < fp32 / 2


def test_tuning_that_cannot_meet_max_drop_raises(monkeypatch):
    from fishopt.backends.torch import inc
    from fishopt.errors import ParityError
    from fishopt.models import create_model

    scores = iter([1.0] + [0.5] * 20)  # FP32 baseline, then every INT8 trial much worse
    monkeypatch.setattr(inc, "top1", lambda *a, **k: next(scores))
    model = create_model("baseline", num_classes=3, width=4, hidden=8).eval()
    x = torch.randn(8, 3, 32, 32)
    with pytest.raises(ParityError, match="--max-drop 0.5"):
        inc.tune(model, x, x, torch.zeros(8, dtype=torch.long), max_drop=0.5, max_trials=1)


@pytest.mark.parametrize(
    ("meta", "expected"),
    [
        ({"refit": {"sides": ["train", "val"], "epochs": 12}}, True),
        ({"refit": None}, False),
        ({}, False),
    ],
)
def test_val_in_training_reads_the_refit_block(meta, expected):
    from fishopt.backends.torch.inc import val_in_training

    assert val_in_training(meta) is expected
