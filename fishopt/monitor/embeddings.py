"""Penultimate-layer embeddings of a torch model, read with a forward hook.

ONNX and OpenVINO artifacts carry the embeddings as a second graph output; for PyTorch eager models this computes
them: the input of the model's last ``nn.Linear`` (for fishopt's baseline CNN, the 256-d output of the hidden
dense layer after its ReLU; dropout is the identity in eval mode), taken in the same forward pass as the
logits.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from fishopt.errors import ConfigError


def last_linear(model: nn.Module) -> nn.Linear:
    """The model's last ``nn.Linear`` in module order (the classifier of fishopt's models).

    Raises:
        ConfigError: If the model has no ``nn.Linear``.
    """
    linears = [m for m in model.modules() if isinstance(m, nn.Linear)]
    if not linears:
        raise ConfigError(
            f"{type(model).__name__} has no nn.Linear layer, so its penultimate embeddings cannot be read; "
            "export the embeddings as a second model output instead"
        )
    return linears[-1]


@torch.no_grad()
def penultimate_outputs(model: nn.Module, x: torch.Tensor, batch_size: int = 256) -> tuple[np.ndarray, np.ndarray]:
    """Logits and penultimate embeddings of a batch, in one forward pass per chunk.

    Args:
        model: A torch classifier whose last ``nn.Linear`` is the classifier (put in eval mode here).
        x: Model input, normalized float32 (N, 3, H, W).
        batch_size: Images per forward pass.

    Returns:
        ``(logits (N, C), embeddings (N, D))`` as float32 numpy arrays.
    """
    model.eval()
    layer = last_linear(model)
    seen: list[torch.Tensor] = []
    handle = layer.register_forward_pre_hook(lambda _module, args: seen.append(args[0].detach().flatten(1)))
    logits = []
    try:
        for i in range(0, len(x), batch_size):
            logits.append(model(x[i : i + batch_size]).float().cpu())
    finally:
        handle.remove()
    if not logits:
        return np.zeros((0, layer.out_features), np.float32), np.zeros((0, layer.in_features), np.float32)
    return torch.cat(logits).numpy(), torch.cat(seen).float().cpu().numpy()
