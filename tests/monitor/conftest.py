"""Fixtures of the monitor tests: a small trained model on a synthetic dataset of near-duplicate photo units with
a faint class signal (so corruptions cost accuracy), its PyTorch artifact with a drift profile, and helpers to
write image folders."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest
from helpers import make_tiny_checkpoint, train_tiny
from monitor_helpers import make_unit_dataset


@dataclass
class MonitorRun:
    root: Path
    checkpoint: Path
    artifact: Path
    test_files: list[Path]


@pytest.fixture(scope="session")
def monitor_run(tmp_path_factory: pytest.TempPathFactory) -> MonitorRun:
    """A trained tiny checkpoint on :func:`make_unit_dataset` (360 images, 180 units; ~54 test images in ~27
    units), and its ``torch-eager-fp32`` artifact with a drift profile."""
    import torch

    from fishopt.artifacts.build import build
    from fishopt.checkpoint import load_checkpoint
    from fishopt.monitor.profile import make_artifact_profile

    base = tmp_path_factory.mktemp("monitor")
    root = make_unit_dataset(base / "fish")
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # a tiny model: one thread is faster, and much faster on a busy machine
    try:
        ckpt = train_tiny(make_tiny_checkpoint(base / "run", root), steps=20)
    finally:
        torch.set_num_threads(threads)
    artifact = build("torch-eager-fp32", ckpt, base / "torch", verify=False).out_dir
    make_artifact_profile(artifact)
    split = load_checkpoint(ckpt).load_split()
    return MonitorRun(root=root, checkpoint=ckpt, artifact=artifact, test_files=[root / p for p in split.paths("test")])
