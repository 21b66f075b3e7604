"""A registered model with its penultimate embedding as a second output, for graph exports.

Every registered model splits into ``forward_features`` (the penultimate embedding) and ``forward_head``
(see :mod:`fishopt.models.registry`). :class:`WithEmbeddings` returns both from one forward pass, so an exported
graph carries the embedding as a second output: the drift monitor's MMD test reads it in the same inference that
produces the logits, and nothing runs the model twice.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from fishopt.errors import ConfigError


def has_embeddings(model: nn.Module) -> bool:
    """Whether ``model`` splits into ``forward_features`` and ``forward_head`` (every registered model does)."""
    return callable(getattr(model, "forward_features", None)) and callable(getattr(model, "forward_head", None))


class WithEmbeddings(nn.Module):
    """``x -> (logits, embeddings)``: the wrapped model's ``forward_head(forward_features(x))`` and the features.

    The logits are those of ``model(x)`` (same operations in the same order).

    Args:
        model: A registered fishopt model (or any module with ``forward_features`` and ``forward_head``).

    Raises:
        ConfigError: If the model lacks ``forward_features``/``forward_head``.
    """

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        if not has_embeddings(model):
            raise ConfigError(
                f"{type(model).__name__} has no forward_features/forward_head, so its embeddings cannot be a graph "
                "output; register the model with fishopt.models.register_model (which requires both)"
            )
        self.model = model

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:  # noqa: D102 - nn.Module API
        model: Any = self.model
        features = model.forward_features(x)
        return model.forward_head(features), features.flatten(1)
