"""Fixtures for the quantization tests: a tiny checkpoint briefly trained on real fish images.

INT8 parity needs a model with clear top-1 margins; an untrained model's near-tied logits flip under any
rounding, so the gate (>= 98 % agreement) would test noise. A few dozen Adam steps on train images fix that.
"""

from __future__ import annotations

from pathlib import Path

import pytest


def train_briefly(checkpoint: Path, dest_name: str = "trained.pt", steps: int = 80, images: int = 360) -> Path:
    """Train a tiny checkpoint for ``steps`` Adam steps on ``images`` train images; save it beside the original."""
    import torch

    from fishopt.optimize.calibration import load_split_images
    from fishopt.training.checkpoint import load_checkpoint, save_checkpoint

    torch.manual_seed(0)
    ckpt = load_checkpoint(checkpoint)
    data = load_split_images(ckpt, "train", size=images, seed=1)
    model = ckpt.model.train()
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    gen = torch.Generator().manual_seed(0)
    for _ in range(steps):
        idx = torch.randint(0, len(data), (64,), generator=gen)
        loss = torch.nn.functional.cross_entropy(model(data.batch[idx]), data.labels[idx])
        opt.zero_grad()
        loss.backward()
        opt.step()
    return save_checkpoint(checkpoint.parent / dest_name, model.eval(), ckpt.meta)


@pytest.fixture(scope="session")
def trained_checkpoint(fish_checkpoint: Path) -> Path:
    """``fish_checkpoint`` after a few seconds of training (decisive logits for INT8 parity)."""
    return train_briefly(fish_checkpoint)
