from __future__ import annotations

from pathlib import Path

import pytest
import torch

from fishopt.errors import CheckpointError
from fishopt.checkpoint import check_compatible, load_checkpoint


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


def test_side_images_is_a_seeded_stratified_sample_of_one_side(fish_checkpoint):
    from collections import Counter

    from fishopt.checkpoint import load_checkpoint

    ckpt = load_checkpoint(fish_checkpoint)
    split = ckpt.load_split()
    side = ckpt.split_images("test", limit=18)
    assert len(side.paths) == len(side.files) == len(side.images) == len(side.labels) == 18
    assert set(side.paths) <= set(split.paths("test"))
    assert [ckpt.class_names[i] for i in side.labels.tolist()] == [split.labels[p] for p in side.paths]
    assert max(Counter(side.labels.tolist()).values()) - min(Counter(side.labels.tolist()).values()) <= 1
    assert side.paths == ckpt.split_images("test", limit=18).paths  # seeded
    assert tuple(side.images.shape[2:]) == tuple(ckpt.meta["load_size"])
    small = ckpt.split_images("test", limit=4, size=(24, 32))
    assert small.images.dtype.is_floating_point is False and tuple(small.images.shape[1:]) == (3, 24, 32)
    assert len(ckpt.split_images("val").paths) == len(split.paths("val"))
