"""Batch mixing (mixup, CutMix): labels and blend weights match the images, config errors are clear."""

from __future__ import annotations

import pytest
import torch

from fishopt.errors import ConfigError
from fishopt.training.mixing import MixConfig, mix_batch


def _batch(n: int = 6) -> tuple[torch.Tensor, torch.Tensor]:
    # image i is constant i, so every pixel says which image it came from
    x = torch.arange(n, dtype=torch.float32).view(n, 1, 1, 1).expand(n, 3, 8, 8).clone()
    return x, torch.arange(n)


def test_off_returns_the_batch_untouched():
    x, y = _batch()
    mixed, ya, yb, lam = mix_batch(x, y, MixConfig())
    assert mixed is x and ya is y and yb is y and lam == 1.0


def test_mixup_blends_each_image_with_its_partner():
    torch.manual_seed(0)
    x, y = _batch()
    mixed, ya, yb, lam = mix_batch(x, y, MixConfig(mixup=0.4))
    assert 0.0 < lam < 1.0 and torch.equal(ya, y)
    expected = lam * y.float() + (1 - lam) * yb.float()
    assert torch.allclose(mixed[:, 0, 0, 0], expected)
    assert sorted(yb.tolist()) == y.tolist()  # a permutation of the batch


def test_cutmix_lam_is_the_share_of_own_pixels():
    torch.manual_seed(3)
    x, y = _batch()
    for _ in range(10):
        mixed, ya, yb, lam = mix_batch(x, y, MixConfig(cutmix=1.0))
        own = (mixed[:, 0] == y.float().view(-1, 1, 1)).float().mean((1, 2))
        partner_differs = yb != ya
        assert torch.allclose(own[partner_differs], torch.full_like(own[partner_differs], lam))


def test_mix_prob_zero_never_mixes():
    x, y = _batch()
    assert mix_batch(x, y, MixConfig(mixup=0.2, prob=0.0))[3] == 1.0


@pytest.mark.parametrize("kwargs", [{"mixup": -0.1}, {"cutmix": -1.0}, {"prob": 1.5}])
def test_bad_config_is_refused(kwargs):
    with pytest.raises(ConfigError, match="trainer"):
        MixConfig(**kwargs)


def test_module_trains_on_the_mixed_loss():
    from fishopt.data.augment import AugmentConfig
    from fishopt.models import create_model
    from fishopt.training.module import FishClassifier

    torch.manual_seed(0)
    model = create_model("baseline", num_classes=3, width=4, hidden=8)
    cfg = {"lr": 1e-3, "weight_decay": 0.0, "label_smoothing": 0.0, "mixup": 0.4}
    module = FishClassifier(model, (32, 32), [0.5] * 3, [0.25] * 3, AugmentConfig(), cfg)
    assert module.mix.enabled
    x, y = torch.randn(4, 3, 32, 32), torch.tensor([0, 1, 2, 0])
    torch.manual_seed(1)
    loss = module.training_step((x, y), 0)
    torch.manual_seed(1)
    mixed, ya, yb, lam = mix_batch(x, y, module.mix)
    logits = model(mixed)
    ce = torch.nn.functional.cross_entropy
    assert torch.allclose(loss, lam * ce(logits, ya) + (1 - lam) * ce(logits, yb))
