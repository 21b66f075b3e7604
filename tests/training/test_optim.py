"""Optimizer choice (``trainer.optimizer``), weight-decay groups and the warmup + cosine schedule."""

from __future__ import annotations

import pytest
import torch

from fishopt.errors import ConfigError
from fishopt.models import create_model
from fishopt.training.optim import OPTIMIZERS, build_optimizer, check_optimizer_config, param_groups, warmup_cosine

BASE = {"lr": 0.01, "weight_decay": 0.05}


def _model() -> torch.nn.Module:
    return create_model("baseline", num_classes=3, width=4, hidden=8)


@pytest.mark.parametrize("name", OPTIMIZERS)
def test_each_optimizer_builds_and_steps(name: str) -> None:
    torch.manual_seed(0)
    model = _model()
    opt = build_optimizer(model, {**BASE, "optimizer": name})
    before = [p.detach().clone() for p in model.parameters()]
    loss = model(torch.randn(2, 3, 32, 32)).logsumexp(1).mean()
    loss.backward()
    opt.step()
    assert any(not torch.equal(a, b) for a, b in zip(before, model.parameters(), strict=True))


def test_sgd_uses_nesterov_momentum_and_adamw_is_the_default() -> None:
    sgd = build_optimizer(_model(), {**BASE, "optimizer": "sgd", "momentum": 0.8})
    assert isinstance(sgd, torch.optim.SGD)
    assert sgd.defaults["nesterov"] and sgd.defaults["momentum"] == 0.8
    assert isinstance(build_optimizer(_model(), BASE), torch.optim.AdamW)


def test_biases_and_norms_do_not_decay() -> None:
    model = _model()
    decay, no_decay = param_groups(model, 0.05)
    assert decay["weight_decay"] == 0.05 and no_decay["weight_decay"] == 0.0
    assert all(p.ndim > 1 for p in decay["params"]) and all(p.ndim <= 1 for p in no_decay["params"])
    assert len(decay["params"]) + len(no_decay["params"]) == len(list(model.parameters()))


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ({"optimizer": "adam"}, "choose one of: adamw, sgd"),
        ({"lr": 0.0}, "lr must be > 0"),
        ({"weight_decay": -1.0}, "weight_decay must be >= 0"),
        ({"momentum": 1.0}, r"momentum must be within \[0, 1\)"),
    ],
)
def test_bad_optimizer_settings(override: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        check_optimizer_config({**BASE, "optimizer": "sgd", **override})


def test_warmup_then_cosine_to_zero() -> None:
    f = warmup_cosine(total_steps=100, warmup_steps=10)
    assert f(0) == pytest.approx(1 / 11)
    assert f(9) == pytest.approx(10 / 11)
    assert f(10) == pytest.approx(1.0)
    assert f(55) == pytest.approx(0.5)
    assert f(100) == pytest.approx(0.0, abs=1e-12)
    assert all(f(s) >= f(s + 1) for s in range(10, 100))
