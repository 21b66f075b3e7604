"""Fixtures for the export tests: a tiny checkpoint trained on synthetic data, and a cache of built artifacts.

The tiny model is trained for a few dozen full-batch Adam steps on the synthetic train split (each class has
one saturated colour channel), so its top-1 margins are clear and lower-precision artifacts (FP16, BF16,
INT8) can pass the agreement rule of the parity gate. An untrained model's near-tied logits would flip
under any rounding and the gate would test noise.
"""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

import pytest


def _root_conftest():
    """The root tests/conftest.py helpers (imported by path: both conftests would be named ``conftest``)."""
    spec = importlib.util.spec_from_file_location("_fishopt_root_conftest", Path(__file__).parents[1] / "conftest.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def train_tiny(checkpoint: Path, steps: int = 60) -> Path:
    """Train a tiny checkpoint in place on its train split (full batch)."""
    import torch

    from fishopt.data.preprocess import eval_transform
    from fishopt.export.parity import load_split_images
    from fishopt.training.checkpoint import load_checkpoint, save_checkpoint

    torch.manual_seed(0)
    ckpt = load_checkpoint(checkpoint)
    images, labels = load_split_images(ckpt, "train", None)
    x = eval_transform(images, ckpt.meta["input_size"], ckpt.meta["mean"], ckpt.meta["std"])
    model = ckpt.model.train()
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    for _ in range(steps):
        loss = torch.nn.functional.cross_entropy(model(x), labels)
        opt.zero_grad()
        loss.backward()
        opt.step()
    return save_checkpoint(checkpoint, model.eval(), ckpt.meta)


@pytest.fixture(autouse=True)
def _no_data_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """The tiny checkpoints record their synthetic data root; a global FISHOPT_DATA must not override it."""
    monkeypatch.delenv("FISHOPT_DATA", raising=False)


@pytest.fixture(scope="session")
def trained_tiny(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny checkpoint (synthetic data, briefly trained) shared by the session."""
    saved = os.environ.pop("FISHOPT_DATA", None)
    try:
        helpers = _root_conftest()
        root = helpers.make_synthetic_dataset(tmp_path_factory.mktemp("tiny-data") / "fish", per_group=4)
        return train_tiny(helpers.make_tiny_checkpoint(tmp_path_factory.mktemp("tiny-run"), root))
    finally:
        if saved is not None:
            os.environ["FISHOPT_DATA"] = saved


@pytest.fixture(scope="session")
def built(trained_tiny: Path, tmp_path_factory: pytest.TempPathFactory):
    """``built(format_name, **options) -> BuildResult``, built once per session and options."""
    from fishopt.export.api import build

    cache: dict = {}

    def get(name: str, **options):
        key = (name, tuple(sorted((k, str(v)) for k, v in options.items())))
        if key not in cache:
            saved = os.environ.pop("FISHOPT_DATA", None)
            try:
                out = tmp_path_factory.mktemp("artifact") / name
                cache[key] = build(name, trained_tiny, out, options=options, parity_images=64)
            finally:
                if saved is not None:
                    os.environ["FISHOPT_DATA"] = saved
        return cache[key]

    return get
