"""Parameter and multiply-accumulate (MAC) counts of a model."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn


def count_params(model: nn.Module) -> int:
    """Number of parameters."""
    return sum(p.numel() for p in model.parameters())


def count_macs(model: nn.Module, input_size: Sequence[int]) -> dict[str, int]:
    """Count MACs of one image through Conv2d and Linear layers.

    Args:
        model: The model (run in eval mode on zeros).
        input_size: (H, W) of the input.

    Returns:
        ``{"conv": n, "linear": n, "total": n}``.
    """
    counts = {"conv": 0, "linear": 0}

    def conv_hook(mod: nn.Conv2d, _inp: tuple[torch.Tensor, ...], out: torch.Tensor) -> None:
        k = mod.kernel_size[0] * mod.kernel_size[1] * (mod.in_channels // mod.groups)
        counts["conv"] += out.numel() // out.shape[0] * k

    def linear_hook(mod: nn.Linear, _inp: tuple[torch.Tensor, ...], out: torch.Tensor) -> None:
        counts["linear"] += mod.in_features * mod.out_features

    handles = []
    for m in model.modules():
        if isinstance(m, nn.Conv2d):
            handles.append(m.register_forward_hook(conv_hook))
        elif isinstance(m, nn.Linear):
            handles.append(m.register_forward_hook(linear_hook))
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            model(torch.zeros(1, 3, int(input_size[0]), int(input_size[1])))
    finally:
        for h in handles:
            h.remove()
        model.train(was_training)
    counts["total"] = counts["conv"] + counts["linear"]
    return counts
