"""Fixtures for the deploy tests: a briefly trained tiny checkpoint, bundles built once per session, and a
clean virtual environment with only numpy, Pillow and onnxruntime (the device's software).

The tiny model is trained a few dozen full-batch steps on the synthetic train split so its top-1 margins are
clear: an INT8 bundle can then pass its accuracy gate, and top-1 agreement tests test the pipeline, not noise.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def deploy_checkpoint(trained_tiny: Path) -> Path:
    """The session's briefly trained tiny checkpoint (see tests/conftest.py)."""
    return trained_tiny


@pytest.fixture(scope="session")
def bundle_of(deploy_checkpoint: Path, tmp_path_factory: pytest.TempPathFactory):
    """``bundle_of(target, precision) -> BundleResult``, built once per session; tests copy before changing it."""
    from fishopt.deploy.bundle import build_bundle

    cache: dict = {}

    def get(target: str, precision: str | None = None):
        key = (target, precision)
        if key not in cache:
            out = tmp_path_factory.mktemp("bundles") / f"{target}-{precision or 'default'}"
            cache[key] = build_bundle(
                deploy_checkpoint, out, target=target, precision=precision, archive=True, max_drop=5.0, calib_images=24
            )
        return cache[key]

    return get


@pytest.fixture
def bundle_copy(bundle_of, tmp_path: Path):
    """``bundle_copy(target, precision) -> Path``: a private copy of a session bundle, free to tamper with."""

    def get(target: str = "cpu", precision: str | None = None) -> Path:
        dest = tmp_path / f"copy-{target}-{precision or 'default'}"
        shutil.copytree(bundle_of(target, precision).out_dir, dest)
        return dest

    return get


@pytest.fixture(scope="session")
def clean_python(request: pytest.FixtureRequest) -> Path:
    """Python of a clean venv with only numpy, Pillow and onnxruntime (cached in the pytest cache folder).

    Created with ``python -m venv`` + ``pip install numpy pillow onnxruntime`` (PyPI or the configured index);
    skips when that is not possible (offline without a wheel cache).
    """
    folder = Path(request.config.cache.mkdir("fishopt-deploy-clean-venv"))
    python = folder / "bin" / "python"
    marker = folder / ".ready"
    if not marker.exists():
        shutil.rmtree(folder, ignore_errors=True)
        try:
            subprocess.run([sys.executable, "-m", "venv", str(folder)], check=True, capture_output=True, timeout=300)
            subprocess.run(
                [str(python), "-m", "pip", "install", "-q", "numpy", "pillow", "onnxruntime"],
                check=True,
                capture_output=True,
                timeout=600,
            )
        except (subprocess.CalledProcessError, subprocess.TimeoutExpired, OSError) as exc:
            pytest.skip(f"cannot create a clean venv with numpy, pillow, onnxruntime: {exc}")
        marker.write_text("ok\n")
    return python
