from __future__ import annotations

from pathlib import Path

import pytest
import torch

from fishopt.errors import CheckpointError
from fishopt.training.checkpoint import check_compatible, load_checkpoint


def test_roundtrip_weights_only(tiny_checkpoint: Path) -> None:
    blob = torch.load(tiny_checkpoint, weights_only=True)
    assert blob["format"] == "fishopt-checkpoint"
    ckpt = load_checkpoint(tiny_checkpoint)
    assert ckpt.class_names == ["Alpha Fish", "Beta Fish", "Gamma Fish"]
    assert not ckpt.model.training
    assert ckpt.load_split().hash == ckpt.meta["split"]["hash"]


def test_missing_corrupt_foreign(tmp_path: Path) -> None:
    with pytest.raises(CheckpointError, match="not found"):
        load_checkpoint(tmp_path / "none.pt")
    (tmp_path / "bad.pt").write_bytes(b"garbage")
    with pytest.raises(CheckpointError, match="corrupt"):
        load_checkpoint(tmp_path / "bad.pt")
    torch.save({"a": 1}, tmp_path / "other.pt")
    with pytest.raises(CheckpointError, match="not a fishopt checkpoint"):
        load_checkpoint(tmp_path / "other.pt")


def test_weights_mismatch(tiny_checkpoint: Path) -> None:
    blob = torch.load(tiny_checkpoint, weights_only=True)
    blob["meta"]["model"]["cfg"]["width"] = 8
    torch.save(blob, tiny_checkpoint)
    with pytest.raises(CheckpointError, match="do not match its model config"):
        load_checkpoint(tiny_checkpoint)


def test_compatibility(tiny_checkpoint: Path) -> None:
    meta = load_checkpoint(tiny_checkpoint).meta
    check_compatible(meta, meta["class_names"], meta["input_size"])
    with pytest.raises(CheckpointError, match="classes"):
        check_compatible(meta, ["x", "y"])
    with pytest.raises(CheckpointError, match="input size"):
        check_compatible(meta, input_size=[64, 64])
