"""``torch.export`` of a model for a (N, 3, H, W) input: the graph every torch-based artifact starts from."""

from __future__ import annotations

from typing import Any

import torch

from fishopt.artifacts.config import MAX_BATCH


def batch_dim() -> tuple[dict[int, Any]]:
    """``dynamic_shapes`` of a one-input model whose batch dimension is dynamic (1..``MAX_BATCH``)."""
    return ({0: torch.export.Dim("batch", min=1, max=MAX_BATCH)},)


def export_program(
    model: torch.nn.Module, example: torch.Tensor, *, static_batch: bool = False
) -> torch.export.ExportedProgram:
    """``torch.export`` ``model`` (or a quantized graph) for inputs like ``example``.

    Args:
        model: The module in eval mode.
        example: Example input; with a dynamic batch it needs at least two images (one is repeated) so the
            batch dimension is not specialised to 1; with ``static_batch`` its batch size is the fixed one.
        static_batch: Fix the batch dimension instead of making it dynamic.
    """
    if not static_batch and len(example) < 2:
        example = example.repeat(2, *([1] * (example.dim() - 1)))
    with torch.no_grad():
        return torch.export.export(model, (example,), dynamic_shapes=None if static_batch else batch_dim())


def example_input(input_size: tuple[int, int] | list[int], batch: int) -> torch.Tensor:
    """A random normalized float32 (batch, 3, H, W) example input."""
    return torch.randn(batch, 3, *input_size)
