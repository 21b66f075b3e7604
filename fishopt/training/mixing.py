"""Batch mixing for training: mixup (Zhang et al. 2018) and CutMix (Yun et al. 2019).

Both blend two images of a batch and train on the same blend of their labels, a regulariser that asks
the model for calibrated, less brittle decisions. They run after the kornia augmentation, on the
normalized batch, and draw from torch's global generator (seeded by the run's seed).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from fishopt.errors import ConfigError


@dataclass(frozen=True)
class MixConfig:
    """Mixing strengths (0 turns a method off).

    Attributes:
        mixup: Beta(alpha, alpha) parameter of mixup's blend weight.
        cutmix: Beta(alpha, alpha) parameter of CutMix's pasted-box area.
        prob: Share of batches that are mixed at all.
    """

    mixup: float = 0.0
    cutmix: float = 0.0
    prob: float = 1.0

    def __post_init__(self) -> None:
        if self.mixup < 0 or self.cutmix < 0:
            raise ConfigError(
                f"trainer.mixup and trainer.cutmix must be >= 0 (0 = off), got {self.mixup}, {self.cutmix}"
            )
        if not 0.0 <= self.prob <= 1.0:
            raise ConfigError(f"trainer.mix_prob must be within [0, 1], got {self.prob}")

    @classmethod
    def from_trainer(cls, cfg: dict) -> MixConfig:
        """The mixing settings of a ``trainer`` config group (``mixup``, ``cutmix``, ``mix_prob``), validated."""
        return cls(
            mixup=float(cfg.get("mixup", 0.0)),
            cutmix=float(cfg.get("cutmix", 0.0)),
            prob=float(cfg.get("mix_prob", 1.0)),
        )

    @property
    def enabled(self) -> bool:
        """True when a batch can be mixed."""
        return self.prob > 0 and (self.mixup > 0 or self.cutmix > 0)


def _box(h: int, w: int, lam: float) -> tuple[int, int, int, int]:
    """A box of area share about ``1 - lam`` at a uniformly drawn centre, clipped to the image."""
    ratio = (1.0 - lam) ** 0.5
    bh, bw = int(h * ratio), int(w * ratio)
    cy, cx = int(torch.randint(h, ()).item()), int(torch.randint(w, ()).item())
    y0, y1 = max(cy - bh // 2, 0), min(cy + bh // 2, h)
    x0, x1 = max(cx - bw // 2, 0), min(cx + bw // 2, w)
    return y0, y1, x0, x1


def mix_batch(
    x: torch.Tensor, y: torch.Tensor, cfg: MixConfig
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, float]:
    """Mix a batch with a random permutation of itself.

    Args:
        x: Images (N, C, H, W).
        y: Class indices (N,).
        cfg: Mixing strengths.

    Returns:
        ``(mixed, y, y_partner, lam)``: train on ``lam * loss(y) + (1 - lam) * loss(y_partner)``.
        An unmixed batch comes back as ``(x, y, y, 1.0)``.
    """
    if not cfg.enabled or len(x) < 2 or torch.rand(()).item() >= cfg.prob:
        return x, y, y, 1.0
    use_cutmix = cfg.cutmix > 0 and (cfg.mixup == 0 or torch.rand(()).item() < 0.5)
    alpha = cfg.cutmix if use_cutmix else cfg.mixup
    lam = float(torch.distributions.Beta(alpha, alpha).sample())
    perm = torch.randperm(len(x), device=x.device)
    if use_cutmix:
        h, w = x.shape[-2:]
        y0, y1, x0, x1 = _box(h, w, lam)
        mixed = x.clone()
        mixed[..., y0:y1, x0:x1] = x[perm][..., y0:y1, x0:x1]
        lam = 1.0 - (y1 - y0) * (x1 - x0) / float(h * w)  # the pasted area after clipping
    else:
        mixed = lam * x + (1.0 - lam) * x[perm]
    return mixed, y, y[perm], lam
