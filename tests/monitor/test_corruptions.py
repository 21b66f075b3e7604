"""The corruption runner on tiny images."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from fishopt.errors import ConfigError
from fishopt.monitor.corruptions import (
    EXTRA,
    FAMILIES,
    IMAGENET_C,
    Corruptor,
    corrupt_images,
    family_of,
    resolve_corruptions,
    resolve_severities,
)

pytest.importorskip("corrupt_tta")


@pytest.fixture(scope="module")
def images() -> torch.Tensor:
    rng = np.random.default_rng(0)
    base = np.linspace(0, 255, 24 * 32).reshape(24, 32)
    imgs = np.stack([np.stack([base, base.T[:24, :24].repeat(2, 1)[:, :32], 255 - base]) for _ in range(5)])
    return torch.from_numpy((imgs + rng.normal(0, 10, imgs.shape)).clip(0, 255).astype(np.uint8))


def test_the_fifteen_imagenet_c_corruptions_in_four_families() -> None:
    assert len(IMAGENET_C) == 15 and set(FAMILIES) == {"noise", "blur", "weather", "digital"}
    assert family_of("fog") == "weather" and family_of("spatter") == "extra"
    assert resolve_corruptions(None) == IMAGENET_C
    assert resolve_corruptions(["blur", "fog", "defocus_blur"]) == (
        "defocus_blur",
        "glass_blur",
        "motion_blur",
        "zoom_blur",
        "fog",
    )
    assert resolve_corruptions(["extra"]) == EXTRA
    with pytest.raises(ConfigError, match="unknown corruption 'smudge'; valid choices: .*gaussian_noise"):
        resolve_corruptions(["smudge"])
    assert resolve_severities([3, 1, 3]) == (3, 1)
    with pytest.raises(ConfigError, match="unknown severity 6"):
        resolve_severities([6])


@pytest.mark.parametrize("name", IMAGENET_C + EXTRA)
def test_every_corruption_runs_on_tiny_images(images: torch.Tensor, name: str) -> None:
    out = corrupt_images(images[:2], name, 5)
    assert out.dtype == torch.uint8 and out.shape == images[:2].shape
    if name != "spatter":  # spatter may leave a small image untouched
        assert (out.int() - images[:2].int()).abs().float().mean() > 0.5


@pytest.mark.parametrize("name", IMAGENET_C + EXTRA)
def test_every_corruption_is_reproducible(images: torch.Tensor, name: str) -> None:
    assert torch.equal(corrupt_images(images[:2], name, 3, seed=5), corrupt_images(images[:2], name, 3, seed=5))


def test_seeded_per_image_independent_of_workers_and_global_state(images: torch.Tensor) -> None:
    np.random.seed(123)
    before = np.random.get_state()[1].copy()
    a = corrupt_images(images, "gaussian_noise", 3, seed=1)
    assert np.array_equal(np.random.get_state()[1], before)  # the caller's global state is restored
    assert torch.equal(a, corrupt_images(images, "gaussian_noise", 3, seed=1))
    assert not torch.equal(a, corrupt_images(images, "gaussian_noise", 3, seed=2))
    with Corruptor(images, seed=1, workers=2) as corruptor:
        assert torch.equal(corruptor("gaussian_noise", 3), a)
        assert torch.equal(corruptor("shot_noise", 2), corrupt_images(images, "shot_noise", 2, seed=1))


def test_severity_orders_the_damage(images: torch.Tensor) -> None:
    dist = [(corrupt_images(images, "gaussian_noise", s).int() - images.int()).abs().float().mean() for s in (1, 3, 5)]
    assert dist[0] < dist[1] < dist[2]
