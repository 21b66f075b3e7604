"""The fast mode of a frozen backbone: embeddings cached by content, the head selected on val and refit."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest
import torch
from helpers import write_image

from fishopt.models import create_model, model_info
from fishopt.training import embeddings as emb

pytestmark = pytest.mark.skipif(
    importlib.util.find_spec("efficientnet_lite_pytorch") is None, reason="the pretrained extra is not installed"
)
META = {"input_size": [32, 32], "load_size": [32, 32], "mean": [0.5] * 3, "std": [0.25] * 3}


def _model():
    cfg = {**model_info("efficientnet_lite0").tiny, "freeze_backbone": True}
    return create_model("efficientnet_lite0", num_classes=3, **cfg)


def test_embeddings_are_cached_by_content_and_corrupt_entries_recomputed(tmp_path: Path, monkeypatch) -> None:
    rng = np.random.default_rng(0)
    files = [write_image(tmp_path / f"{i}.png", rng, size=(32, 32)) for i in range(4)]
    images = torch.randint(0, 255, (4, 3, 32, 32), dtype=torch.uint8)
    model = _model()
    first = emb.cached_embeddings(model, files, images, META, cache=tmp_path / "c")
    assert first.shape == (4, 1, 1280)
    calls = []
    real = emb.embed
    monkeypatch.setattr(emb, "embed", lambda m, x, *a, **k: calls.append(len(x)) or real(m, x, *a, **k))
    torch.testing.assert_close(emb.cached_embeddings(model, files, images, META, cache=tmp_path / "c"), first)
    assert calls == []
    entry = next((tmp_path / "c" / "embeddings").rglob("*.npy"))
    entry.write_bytes(b"truncated")
    again = emb.cached_embeddings(model, files, images, META, cache=tmp_path / "c")
    assert calls == [1] and again.shape == first.shape


def test_digest_follows_the_backbone_not_the_head() -> None:
    model = _model()
    digest = emb.backbone_digest(model, META, "center")
    with torch.no_grad():
        model.net._fc.weight.add_(1.0)
    assert emb.backbone_digest(model, META, "center") == digest
    with torch.no_grad():
        model.net._conv_stem.weight.add_(1.0)
    assert emb.backbone_digest(model, META, "center") != digest
    assert emb.backbone_digest(model, META, "flips") != emb.backbone_digest(model, META, "center")


def test_flips_view_gives_four_embeddings_per_image() -> None:
    images = torch.randint(0, 255, (2, 3, 32, 32), dtype=torch.uint8)
    assert emb.embed(_model(), images, META, "flips").shape == (2, 4, 1280)


def test_head_selection_keeps_the_best_val_epoch_and_refit_trains_exactly_n_epochs() -> None:
    torch.manual_seed(0)
    centers = torch.randn(3, 1280) * 3
    y = torch.arange(60) % 3
    x = (centers[y] + torch.randn(60, 1280)).unsqueeze(1)
    cfg = {"max_epochs": 30, "lr": 0.01, "weight_decay": 0.0, "label_smoothing": 0.0, "warmup_epochs": 0, "patience": 5}
    head = emb.fresh_head(_model(), seed=0)
    fit = emb.fit_head(head, x, y, cfg, val_x=x, val_y=y, seed=0)
    assert fit.best_score == pytest.approx(1.0) and fit.best_epoch is not None
    with torch.no_grad():
        assert emb.balanced_accuracy(head.forward_head(x[:, 0]), y) == pytest.approx(fit.best_score)
    refit = emb.fit_head(emb.fresh_head(_model(), seed=0), x, y, cfg, epochs=4, seed=0)
    assert refit.epochs == 4 and refit.best_epoch is None
    a, b = emb.fresh_head(_model(), seed=3), emb.fresh_head(_model(), seed=3)
    torch.testing.assert_close(a.net._fc.weight, b.net._fc.weight)  # the refit starts where the selection run did
