"""Optimizers a training run can pick (``trainer.optimizer``) and the warmup + cosine schedule.

AdamW is the default. SGD with Nesterov momentum is the classic alternative for small CNNs: it often
generalizes better than adaptive methods on small image datasets (Wilson et al. 2017), at the cost of a
larger, more sensitive learning rate (``trainer.lr=0.05`` is a usual start for SGD, ``0.003`` for AdamW).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import torch
from torch import nn

from fishopt.errors import ConfigError

OPTIMIZERS: tuple[str, ...] = ("adamw", "sgd")


def check_optimizer_config(cfg: dict[str, Any]) -> None:
    """Refuse an unknown optimizer or an out-of-range setting before any training starts.

    Args:
        cfg: The ``trainer`` config group (``optimizer``, ``lr``, ``weight_decay``, ``momentum``).

    Raises:
        ConfigError: With the valid choices or ranges.
    """
    name = str(cfg.get("optimizer", "adamw"))
    if name not in OPTIMIZERS:
        raise ConfigError(f"unknown trainer.optimizer {name!r}; choose one of: {', '.join(OPTIMIZERS)}")
    if not float(cfg["lr"]) > 0:
        raise ConfigError(f"trainer.lr must be > 0, got {cfg['lr']}")
    if float(cfg["weight_decay"]) < 0:
        raise ConfigError(f"trainer.weight_decay must be >= 0, got {cfg['weight_decay']}")
    if not 0.0 <= float(cfg.get("momentum", 0.9)) < 1.0:
        raise ConfigError(f"trainer.momentum must be within [0, 1), got {cfg.get('momentum')}")


def param_groups(model: nn.Module, weight_decay: float, backbone_lr: float = 1.0) -> list[dict[str, Any]]:
    """Parameter groups: weights decay, biases and normalization parameters (1-D tensors) do not; with
    ``backbone_lr`` below 1, the backbone (every trainable parameter outside the model's ``head_prefixes``) learns
    at that fraction of the learning rate (``lr_scale``; fine-tuning a pretrained network). Frozen parameters are
    left out."""
    heads = tuple(getattr(model, "head_prefixes", ()))
    groups: dict[tuple[bool, bool], list[nn.Parameter]] = {}
    for name, p in model.named_parameters():
        if not p.requires_grad:
            continue
        backbone = backbone_lr != 1.0 and bool(heads) and not name.startswith(heads)
        groups.setdefault((p.ndim > 1, backbone), []).append(p)
    return [
        {"params": params, "weight_decay": weight_decay if decay else 0.0, "lr_scale": backbone_lr if backbone else 1.0}
        for (decay, backbone), params in sorted(groups.items(), key=lambda kv: (not kv[0][0], kv[0][1]))
    ]


def build_optimizer(model: nn.Module, cfg: dict[str, Any]) -> torch.optim.Optimizer:
    """The optimizer named by ``cfg["optimizer"]`` over ``model``'s trainable parameters.

    Args:
        model: The network.
        cfg: The ``trainer`` config group (``backbone_lr``: the backbone's learning-rate fraction, default 1).

    Returns:
        AdamW (decoupled weight decay) or SGD with Nesterov momentum (``cfg["momentum"]``, default 0.9); each
        group's learning rate is ``lr * lr_scale``.
    """
    check_optimizer_config(cfg)
    lr = float(cfg["lr"])
    groups = param_groups(model, float(cfg["weight_decay"]), float(cfg.get("backbone_lr") or 1.0))
    for group in groups:
        group["lr"] = lr * group["lr_scale"]
    if cfg.get("optimizer", "adamw") == "sgd":
        momentum = float(cfg.get("momentum", 0.9))
        return torch.optim.SGD(groups, lr=lr, momentum=momentum, nesterov=momentum > 0)
    return torch.optim.AdamW(groups, lr=lr)


def warmup_cosine(total_steps: int, warmup_steps: int) -> Callable[[int], float]:
    """Learning-rate factor: linear warmup over ``warmup_steps``, then a cosine decay to 0 at ``total_steps``."""

    def factor(step: int) -> float:
        if step < warmup_steps:
            return (step + 1) / (warmup_steps + 1)
        progress = (step - warmup_steps) / max(1, total_steps - warmup_steps)
        return 0.5 * (1.0 + math.cos(math.pi * min(1.0, progress)))

    return factor


__all__ = ("OPTIMIZERS", "build_optimizer", "check_optimizer_config", "param_groups", "warmup_cosine")
