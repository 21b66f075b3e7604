"""Fixtures for the server tests: tiny artifacts built from the trained tiny checkpoint, and a running server."""

from __future__ import annotations

from pathlib import Path

import pytest
from serve_helpers import running_server

pytest.importorskip("fastapi")
pytest.importorskip("uvicorn")
pytest.importorskip("prometheus_client")
pytest.importorskip("onnxruntime")


@pytest.fixture(scope="session")
def onnx_artifact(trained_tiny: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``onnx-fp32`` of the trained tiny checkpoint: normalized float32 NCHW input, dynamic batch."""
    from fishopt.artifacts.build import build

    return build("onnx-fp32", trained_tiny, tmp_path_factory.mktemp("serve-art") / "onnx", parity_images=16).out_dir


@pytest.fixture(scope="session")
def raw_artifact(trained_tiny: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``onnx-fp32`` with preprocessing and a static batch of 4: raw uint8 NHWC input (pads and chunks)."""
    from fishopt.artifacts.build import build

    out = tmp_path_factory.mktemp("serve-art") / "onnx-raw"
    return build(
        "onnx-fp32",
        trained_tiny,
        out,
        parity_images=16,
        options={"with_preprocessing": True, "static_batch": True, "batch_size": 4},
    ).out_dir


@pytest.fixture(scope="session")
def tiny_images(trained_tiny: Path) -> list[Path]:
    """A few images of the tiny checkpoint's synthetic dataset (one JPEG and one PNG at least)."""
    from fishopt.checkpoint import load_checkpoint

    root = Path(load_checkpoint(trained_tiny).meta["data_root"])
    files = sorted(p for p in root.rglob("*") if p.suffix.lower() in (".jpg", ".png"))
    return files[:6]


@pytest.fixture(scope="module")
def onnx_server(onnx_artifact: Path):
    """A server on the ``onnx-fp32`` tiny artifact, shared by a test module."""
    with running_server(onnx_artifact, max_batch=8, max_delay_ms=2.0) as running:
        yield running
