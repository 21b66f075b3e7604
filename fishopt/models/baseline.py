"""The baseline fish CNN: three conv blocks (conv, BatchNorm, ReLU, pool), flatten, one hidden dense layer, classifier."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from fishopt.errors import ConfigError
from fishopt.models.registry import register_model

POOLS = ("max", "avg", "none")


@dataclass(frozen=True)
class BaselineConfig:
    """Config of :class:`BaselineCNN`.

    Attributes:
        num_classes: Output classes.
        width: Base width; the conv layers get ``width, 2*width, 4*width`` channels unless ``widths`` is set.
        widths: Output channels of the three conv layers (overrides ``width``).
        kernels: Kernel sizes of the three conv layers.
        strides: Strides of the three conv layers.
        pool: Pooling after each conv block: ``max``, ``avg`` or ``none``.
        head_pool: Spatial size (k x k) of the adaptive average pool before flattening.
        hidden: Width of the dense hidden layer.
        dropout: Dropout before the hidden layer and before the classifier.
    """

    num_classes: int = 9
    width: int = 32
    widths: tuple[int, int, int] | None = None
    kernels: tuple[int, int, int] = (5, 3, 3)
    strides: tuple[int, int, int] = (2, 1, 1)
    pool: str = "max"
    head_pool: int = 1
    hidden: int = 256
    dropout: float = 0.3

    def __post_init__(self) -> None:
        if self.widths is None:
            object.__setattr__(self, "widths", (self.width, 2 * self.width, 4 * self.width))
        for key in ("widths", "kernels", "strides"):
            value = getattr(self, key)
            if len(value) != 3 or any(int(v) < 1 for v in value):
                raise ConfigError(f"model.{key} must be three positive integers, got {list(value)}")
            object.__setattr__(self, key, tuple(int(v) for v in value))
        if self.pool not in POOLS:
            raise ConfigError(f"model.pool must be one of {', '.join(POOLS)}, got {self.pool!r}")
        if not 0.0 <= self.dropout < 1.0:
            raise ConfigError(f"model.dropout must be in [0, 1), got {self.dropout}")
        if self.head_pool < 1 or self.hidden < 1 or self.num_classes < 2:
            raise ConfigError("model.head_pool and model.hidden must be >= 1 and model.num_classes >= 2")


def _block(cin: int, cout: int, kernel: int, stride: int, pool: str) -> nn.Sequential:
    layers: list[nn.Module] = [
        nn.Conv2d(cin, cout, kernel, stride=stride, padding=kernel // 2, bias=False),
        nn.BatchNorm2d(cout),
        nn.ReLU(inplace=True),
    ]
    if pool == "max":
        layers.append(nn.MaxPool2d(2))
    elif pool == "avg":
        layers.append(nn.AvgPool2d(2))
    return nn.Sequential(*layers)


class BaselineCNN(nn.Module):
    """Three conv blocks, adaptive pooling, flatten, a dense hidden layer and the classifier."""

    def __init__(self, cfg: BaselineConfig) -> None:
        super().__init__()
        widths = cfg.widths
        if widths is None:  # BaselineConfig.__post_init__ always sets it
            raise RuntimeError("BaselineConfig.widths was not set")
        chans = (3, *widths)
        self.features = nn.Sequential(
            *(_block(chans[i], chans[i + 1], cfg.kernels[i], cfg.strides[i], cfg.pool) for i in range(3))
        )
        self.pool = nn.AdaptiveAvgPool2d(cfg.head_pool)
        self.head = nn.Sequential(
            nn.Flatten(),
            nn.Dropout(cfg.dropout),
            nn.Linear(widths[2] * cfg.head_pool**2, cfg.hidden),
            nn.ReLU(inplace=True),
            nn.Dropout(cfg.dropout),
            nn.Linear(cfg.hidden, cfg.num_classes),
        )

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """The penultimate embedding: the dense hidden layer's activations (N, hidden)."""
        return self.head[:4](self.pool(self.features(x)))

    def forward_head(self, features: torch.Tensor) -> torch.Tensor:
        """Logits from :meth:`forward_features`'s embedding (dropout, then the classifier)."""
        return self.head[4:](features)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # noqa: D102 - nn.Module API
        return self.forward_head(self.forward_features(x))


@register_model(
    "baseline",
    BaselineConfig,
    input_size=(112, 112),
    load_size=(120, 160),
    tiny={"width": 4, "hidden": 8},
    description="The seed's 3-conv CNN (the default deployable model).",
)
def baseline(cfg: BaselineConfig) -> nn.Module:
    """The default fish classifier (see :class:`BaselineConfig`)."""
    return BaselineCNN(cfg)
