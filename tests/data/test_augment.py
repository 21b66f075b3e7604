"""Training augmentation: shapes, seeding, and what each option does to a batch."""

from __future__ import annotations

import pytest
import torch

from fishopt.data.augment import AugmentConfig, build_train_augment, build_two_view_augment, view_region
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


def test_view_region_maps_the_students_crop_onto_the_larger_load() -> None:
    assert view_region((112, 112), (120, 160), (168, 224)) == (157, 157)  # the default CNN and the Lite0 teacher
    assert view_region((32, 32), (36, 48), (36, 48)) == (32, 32)


def test_two_views_are_one_augmentation_resized_to_each_side() -> None:
    """Without randomness: each view is the region's antialiased resize, normalized its side's way."""
    t_mean, t_std = [0.5] * 3, [0.5] * 3
    hires = torch.randint(0, 256, (2, 3, 54, 72), dtype=torch.uint8, generator=torch.Generator().manual_seed(2))
    student, teacher = build_two_view_augment(NONE, (48, 48), ((32, 32), MEAN, STD), ((40, 40), t_mean, t_std))(hires)
    region = hires.float()[:, :, 3:51, 12:60] / 255.0

    def expect(size: int, mean: list[float], std: list[float]) -> torch.Tensor:
        x = torch.nn.functional.interpolate(region, (size, size), mode="bilinear", align_corners=False, antialias=True)
        return (x - torch.tensor(mean).view(1, 3, 1, 1)) / torch.tensor(std).view(1, 3, 1, 1)

    torch.testing.assert_close(student, expect(32, MEAN, STD), atol=1e-5, rtol=0)
    torch.testing.assert_close(teacher, expect(40, t_mean, t_std), atol=1e-5, rtol=0)


def test_two_views_share_the_random_augmentation() -> None:
    """A random flip or rotation hits both views alike: the teacher's view, resized down, is the student's."""
    aug = build_two_view_augment(
        AugmentConfig(p_color=0.0), (48, 48), ((24, 24), [0.0] * 3, [1.0] * 3), ((48, 48), [0.0] * 3, [1.0] * 3)
    )
    hires = torch.randint(0, 256, (4, 3, 54, 72), dtype=torch.uint8, generator=torch.Generator().manual_seed(3))
    torch.manual_seed(0)
    student, teacher = aug(hires)
    down = torch.nn.functional.interpolate(teacher, (24, 24), mode="bilinear", align_corners=False, antialias=True)
    torch.testing.assert_close(student, down, atol=1e-5, rtol=0)


def test_two_views_refuse_erasing() -> None:
    with pytest.raises(ValueError, match="erase"):
        build_two_view_augment(AugmentConfig(erase=0.5), (48, 48), ((32, 32), MEAN, STD), ((40, 40), MEAN, STD))
