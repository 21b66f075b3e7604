from __future__ import annotations

import pytest
import torch
from torch import nn

from fishopt.errors import ConfigError
from fishopt.models import count_macs, count_params, create_model, list_models


def test_registry_lists_baseline_default() -> None:
    assert "baseline" in list_models()
    assert list_models("base*") == ["baseline"]
    assert list_models("nothing*") == []


@pytest.mark.parametrize("name", list_models())
def test_forward_shapes(name: str) -> None:
    from fishopt.models import model_info

    model = create_model(name, **model_info(name).tiny, num_classes=9).eval()
    x = torch.zeros(2, 3, 32, 32)
    assert model(x).shape == (2, 9)
    torch.testing.assert_close(model.forward_head(model.forward_features(x)), model(x))


def test_duplicate_registration_is_refused() -> None:
    from dataclasses import dataclass

    from fishopt.models.registry import register_model

    @dataclass(frozen=True)
    class Cfg:
        num_classes: int = 2

    with pytest.raises(ValueError, match="registered twice"):
        register_model("baseline", Cfg, input_size=(8, 8), load_size=(8, 8))(lambda cfg: None)


def test_baseline_structure() -> None:
    model = create_model("baseline")
    convs = [m for m in model.modules() if isinstance(m, nn.Conv2d)]
    bns = [m for m in model.modules() if isinstance(m, nn.BatchNorm2d)]
    linears = [m for m in model.modules() if isinstance(m, nn.Linear)]
    assert len(convs) == 3 and len(bns) == 3 and len(linears) == 2
    assert linears[-1].out_features == 9


def test_unknown_name_and_key() -> None:
    with pytest.raises(ConfigError, match="valid choices: baseline, efficientnet_lite0"):
        create_model("resnet9000")
    with pytest.raises(ConfigError, match="unknown config key.*colour"):
        create_model("baseline", colour="red")
    with pytest.raises(ConfigError, match="pool"):
        create_model("baseline", pool="median")
    with pytest.raises(ConfigError, match="three positive"):
        create_model("baseline", widths=(1, 2))


def test_counts() -> None:
    model = create_model(
        "baseline",
        widths=(2, 2, 2),
        kernels=(1, 1, 1),
        strides=(1, 1, 1),
        pool="none",
        head_pool=1,
        hidden=3,
        num_classes=2,
    )
    macs = count_macs(model, (4, 4))
    assert macs["conv"] == 16 * (3 * 2 + 2 * 2 + 2 * 2)
    assert macs["linear"] == 2 * 3 + 3 * 2
    assert count_params(model) == 3 * 2 + 2 * 2 + 2 * 2 + 3 * 4 + 2 * 3 + 3 + 3 * 2 + 2


@pytest.mark.parametrize("name", list_models())
def test_with_embeddings_returns_the_same_logits_and_the_features(name: str) -> None:
    from fishopt.models import model_info
    from fishopt.models.embeddings import WithEmbeddings

    model = create_model(name, **model_info(name).tiny, num_classes=9).eval()
    x = torch.randn(3, 3, 32, 32)
    with torch.no_grad():
        logits, emb = WithEmbeddings(model)(x)
        assert torch.equal(logits, model(x))
        assert torch.equal(emb, model.forward_features(x).flatten(1))
    assert emb.dim() == 2 and emb.shape[0] == 3


def test_with_embeddings_needs_the_split_forward() -> None:
    from fishopt.models.embeddings import WithEmbeddings, has_embeddings

    plain = nn.Sequential(nn.Flatten(), nn.Linear(12, 2))
    assert not has_embeddings(plain)
    with pytest.raises(ConfigError, match="forward_features"):
        WithEmbeddings(plain)
