"""Training augmentation: shapes, seeding, and what each option does to a batch."""

from __future__ import annotations

import torch

from fishopt.data.augment import AugmentConfig, build_train_augment
from fishopt.data.preprocess import eval_transform

MEAN, STD = [0.4, 0.5, 0.6], [0.2, 0.25, 0.3]
NONE = AugmentConfig(rotate=0.0, hflip=0.0, vflip=0.0, scale=(1.0, 1.0), translate=0.0, p_color=0.0)


def _batch(n: int = 4) -> torch.Tensor:
    return torch.randint(0, 256, (n, 3, 36, 48), dtype=torch.uint8, generator=torch.Generator().manual_seed(1))


def test_shape_and_seeded() -> None:
    aug = build_train_augment(AugmentConfig(grayscale=0.5, erase=0.5), (32, 32), MEAN, STD)
    torch.manual_seed(0)
    a = aug(_batch())
    torch.manual_seed(0)
    b = aug(_batch())
    assert a.shape == (4, 3, 32, 32) and a.dtype == torch.float32
    assert torch.equal(a, b), "the same seed must give the same augmented batch"


def test_no_augmentation_is_the_eval_transform() -> None:
    out = build_train_augment(NONE, (32, 32), MEAN, STD)(_batch())
    torch.testing.assert_close(out, eval_transform(_batch(), (32, 32), MEAN, STD), atol=1e-5, rtol=0)


def test_grayscale_makes_channels_equal() -> None:
    out = build_train_augment(AugmentConfig(**{**NONE.__dict__, "grayscale": 1.0}), (32, 32), MEAN, STD)(_batch())
    raw = out * torch.tensor(STD).view(1, 3, 1, 1) + torch.tensor(MEAN).view(1, 3, 1, 1)
    torch.testing.assert_close(raw[:, 0], raw[:, 1], atol=1e-5, rtol=0)
    torch.testing.assert_close(raw[:, 1], raw[:, 2], atol=1e-5, rtol=0)


def test_erasing_fills_a_rectangle_with_the_mean() -> None:
    torch.manual_seed(0)
    images = torch.full((8, 3, 36, 48), 255, dtype=torch.uint8)
    out = build_train_augment(AugmentConfig(**{**NONE.__dict__, "erase": 1.0}), (32, 32), MEAN, STD)(images)
    erased = (out == 0).all(dim=1)  # 0 after normalization = the channel mean
    share = erased.flatten(1).float().mean(1)
    assert bool((share >= 0.01).all()) and bool((share <= 0.25).all()), share
