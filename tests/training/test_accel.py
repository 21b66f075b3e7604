"""OpenVINO inside training: a frozen network's forward (or forward_features) compiled for the CPU."""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest
import torch

from fishopt.errors import ConfigError
from fishopt.models import create_model, model_info
from fishopt.training.accel import openvino_cpu


def _model():
    return create_model("baseline", **model_info("baseline").tiny, num_classes=3).eval()


@pytest.mark.skipif(importlib.util.find_spec("openvino") is None, reason="openvino not installed")
def test_f32_agrees_with_torch_and_features_are_the_embedding() -> None:
    model = _model()
    x = torch.randn(5, 3, 32, 32)
    with torch.no_grad():
        logits, feats = model(x).numpy(), model.forward_features(x).numpy()
    np.testing.assert_allclose(openvino_cpu(model, (32, 32))(x.numpy()), logits, atol=1e-4)
    np.testing.assert_allclose(openvino_cpu(model, (32, 32), features=True)(x.numpy()), feats, atol=1e-4)
    bf16 = openvino_cpu(model, (32, 32), precision="bf16")(x.numpy())
    assert bf16.shape == logits.shape and np.isfinite(bf16).all()


def test_without_openvino_it_is_none_or_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "openvino" else real(name, *a))
    assert openvino_cpu(_model(), (32, 32)) is None
    with pytest.raises(ConfigError, match=r"pip install 'fishopt\[openvino\]'"):
        openvino_cpu(_model(), (32, 32), required=True)
    with pytest.raises(ConfigError, match="valid choices: f32, bf16"):
        openvino_cpu(_model(), (32, 32), precision="int4")
