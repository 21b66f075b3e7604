"""Shared fixtures: the real fish data beside the checkout, tiny synthetic datasets, tiny checkpoints."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from helpers import CLASSES, make_synthetic_dataset, make_tiny_checkpoint, train_tiny, write_image  # noqa: F401

REPO = Path(__file__).resolve().parents[1]
# The data root the test run was given. It is taken out of the environment for the whole run: checkpoints
# record their own data root, and a global FISHOPT_DATA (set by the Makefile and CI) must not override the
# synthetic data of the tiny checkpoints. Tests that need the real data use the ``fish_root`` fixture.
ENV_DATA = os.environ.pop("FISHOPT_DATA", None)


def _fish_root() -> Path | None:
    for candidate in (ENV_DATA, REPO.parent / "shared" / "data" / "fish"):
        if candidate and (Path(candidate) / "Fish_Dataset").is_dir():
            return Path(candidate)
    return None


@pytest.fixture(scope="session")
def fish_root() -> Path:
    """The real fish data subset (../shared/data/fish or $FISHOPT_DATA); skips when absent."""
    root = _fish_root()
    if root is None:
        pytest.skip("fish data not found: set FISHOPT_DATA or place it at ../shared/data/fish")
    return root


@pytest.fixture(autouse=True, scope="session")
def _cache_dir(tmp_path_factory: pytest.TempPathFactory) -> None:
    """Keep the decode cache out of the home folder unless FISHOPT_CACHE is set."""
    if not os.environ.get("FISHOPT_CACHE"):
        os.environ["FISHOPT_CACHE"] = str(tmp_path_factory.mktemp("fishopt-cache"))


@pytest.fixture
def synthetic_root(tmp_path: Path) -> Path:
    """A tiny synthetic dataset in the Kaggle layout with groups.csv."""
    return make_synthetic_dataset(tmp_path / "fish")


@pytest.fixture
def tiny_checkpoint(tmp_path: Path, synthetic_root: Path) -> Path:
    """A tiny checkpoint on the synthetic dataset."""
    return make_tiny_checkpoint(tmp_path / "run", synthetic_root)


@pytest.fixture(scope="session")
def fish_checkpoint(tmp_path_factory: pytest.TempPathFactory, fish_root: Path) -> Path:
    """A tiny (untrained) checkpoint whose split file covers the real fish data."""
    return make_tiny_checkpoint(tmp_path_factory.mktemp("fish-run"), fish_root, width=8)


@pytest.fixture(scope="session")
def trained_tiny(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny checkpoint on synthetic data, briefly trained so its top-1 margins are clear (shared by the session).

    An untrained model's near-tied logits would flip under any rounding, so FP16/INT8 parity tests would test noise.
    """
    root = make_synthetic_dataset(tmp_path_factory.mktemp("tiny-data") / "fish", per_group=4)
    return train_tiny(make_tiny_checkpoint(tmp_path_factory.mktemp("tiny-run"), root))


@pytest.fixture(scope="session")
def built(trained_tiny: Path, tmp_path_factory: pytest.TempPathFactory):
    """``built(format_name, **options) -> BuildResult``, built once per session and options."""
    from fishopt.artifacts.build import build

    cache: dict = {}

    def get(name: str, **options):
        key = (name, tuple(sorted((k, str(v)) for k, v in options.items())))
        if key not in cache:
            out = tmp_path_factory.mktemp("artifact") / name
            cache[key] = build(name, trained_tiny, out, options=options, parity_images=64)
        return cache[key]

    return get
