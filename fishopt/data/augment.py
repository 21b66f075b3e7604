"""Batched, seeded kornia augmentation for training (runs on the training device)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn


@dataclass(frozen=True)
class AugmentConfig:
    """Training augmentation.

    Attributes:
        rotate: Maximum rotation in degrees, both directions (180 = any angle).
        hflip: Probability of a horizontal flip.
        vflip: Probability of a vertical flip.
        scale: Range of random zoom (1.0 = none), applied with the rotation.
        translate: Maximum shift as a fraction of the image size.
        brightness: Color jitter strength (0 disables color jitter with the three below).
        contrast: Color jitter strength.
        saturation: Color jitter strength.
        hue: Color jitter hue shift (fraction of the color wheel).
        p_color: Probability of color jitter.
        blur: Probability of a light Gaussian blur.
        grayscale: Probability of turning the image gray (pushes the model towards shape over color).
        erase: Probability of erasing a random rectangle (2-20 % of the image; pushes the model to use
            more than one part of the fish).
    """

    rotate: float = 180.0
    hflip: float = 0.5
    vflip: float = 0.5
    scale: tuple[float, float] = (0.9, 1.1)
    translate: float = 0.05
    brightness: float = 0.2
    contrast: float = 0.2
    saturation: float = 0.2
    hue: float = 0.0
    p_color: float = 0.8
    blur: float = 0.0
    grayscale: float = 0.0
    erase: float = 0.0


def _view_ops(cfg: AugmentConfig, crop: Sequence[int]) -> list[nn.Module]:
    """The augmentation up to, not including, normalization: affine, center crop to ``crop``, flips, color."""
    import kornia.augmentation as K

    ops: list[nn.Module] = []
    if cfg.rotate > 0 or cfg.scale != (1.0, 1.0) or cfg.translate > 0:
        ops.append(
            K.RandomAffine(
                degrees=cfg.rotate,
                translate=(cfg.translate, cfg.translate) if cfg.translate > 0 else None,
                scale=tuple(cfg.scale),
                padding_mode="reflection",
                p=1.0,
            )
        )
    ops.append(K.CenterCrop(tuple(int(v) for v in crop)))
    if cfg.hflip > 0:
        ops.append(K.RandomHorizontalFlip(p=cfg.hflip))
    if cfg.vflip > 0:
        ops.append(K.RandomVerticalFlip(p=cfg.vflip))
    if cfg.p_color > 0 and (cfg.brightness or cfg.contrast or cfg.saturation or cfg.hue):
        ops.append(K.ColorJitter(cfg.brightness, cfg.contrast, cfg.saturation, cfg.hue, p=cfg.p_color))
    if cfg.grayscale > 0:
        ops.append(K.RandomGrayscale(p=cfg.grayscale))
    if cfg.blur > 0:
        ops.append(K.RandomGaussianBlur((3, 3), (0.1, 1.0), p=cfg.blur))
    return ops


def build_train_augment(
    cfg: AugmentConfig, input_size: Sequence[int], mean: Sequence[float], std: Sequence[float]
) -> nn.Module:
    """Build the training pipeline: uint8 images at the load size -> augmented, normalized model input.

    Order: to [0, 1], random affine (rotation in any direction, zoom, shift), center crop to the
    input size (the crop focuses on the fish and hides the rotated corners), flips, color jitter,
    optional grayscale and blur, normalization, optional erasing (filled with the mean: 0 after
    normalization). Randomness comes from torch's generator: seed it for repeatable runs.
    """
    import kornia.augmentation as K

    ops = _view_ops(cfg, input_size)
    ops.append(K.Normalize(mean=torch.tensor(mean), std=torch.tensor(std)))
    if cfg.erase > 0:
        ops.append(K.RandomErasing(scale=(0.02, 0.2), ratio=(0.3, 3.3), value=0.0, p=cfg.erase))
    return _TrainAugment(nn.Sequential(*ops))


def view_region(input_size: Sequence[int], load_size: Sequence[int], hires_load_size: Sequence[int]) -> tuple[int, int]:
    """The center crop of a ``hires_load_size`` image that shows what ``input_size`` shows of ``load_size``."""
    return tuple(  # type: ignore[return-value]
        round(int(i) * int(h) / int(s)) for i, s, h in zip(input_size, load_size, hires_load_size, strict=True)
    )


def build_two_view_augment(
    cfg: AugmentConfig,
    region: Sequence[int],
    student: tuple[Sequence[int], Sequence[float], Sequence[float]],
    teacher: tuple[Sequence[int], Sequence[float], Sequence[float]],
) -> nn.Module:
    """One augmentation, two resolutions: uint8 images at a high load size -> (student view, teacher view).

    The augmentation of :func:`build_train_augment` (affine, center crop to ``region``, flips, color, grayscale,
    blur) runs once, on the high-resolution image; the cropped region is then resized (antialiased) to each
    side's input size and normalized each side's way. Both sides see the same augmented image, the teacher at
    its own resolution instead of an upsampled copy of the student's view.

    Args:
        cfg: The augmentation (``erase`` must be 0: an erased rectangle would have to be placed on both views).
        region: The crop of the high-resolution image (see :func:`view_region`).
        student: The student's (input size, mean, std).
        teacher: The teacher's (input size, mean, std).

    Raises:
        ValueError: ``cfg.erase`` > 0.
    """
    if cfg.erase > 0:
        raise ValueError("augment.erase must be 0 with two views (distill.teacher_view=native)")
    return _TwoViewAugment(nn.Sequential(*_view_ops(cfg, region)), student, teacher)


class _TrainAugment(nn.Module):
    def __init__(self, ops: nn.Module) -> None:
        super().__init__()
        self.ops = ops

    @torch.no_grad()
    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.ops(images.float() / 255.0)


class _TwoViewAugment(nn.Module):
    def __init__(
        self,
        ops: nn.Module,
        student: tuple[Sequence[int], Sequence[float], Sequence[float]],
        teacher: tuple[Sequence[int], Sequence[float], Sequence[float]],
    ) -> None:
        super().__init__()
        self.ops = ops
        self.sizes = [tuple(int(v) for v in side[0]) for side in (student, teacher)]
        for name, side in (("student", student), ("teacher", teacher)):
            self.register_buffer(f"{name}_mean", torch.tensor(side[1], dtype=torch.float32).view(1, 3, 1, 1))
            self.register_buffer(f"{name}_std", torch.tensor(side[2], dtype=torch.float32).view(1, 3, 1, 1))

    @torch.no_grad()
    def forward(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x = self.ops(images.float() / 255.0)
        views = []
        for size, mean, std in zip(
            self.sizes, (self.student_mean, self.teacher_mean), (self.student_std, self.teacher_std), strict=True
        ):
            v = (
                x
                if tuple(x.shape[-2:]) == size
                else F.interpolate(x, size, mode="bilinear", align_corners=False, antialias=True)
            )
            views.append((v - mean) / std)
        return views[0], views[1]
