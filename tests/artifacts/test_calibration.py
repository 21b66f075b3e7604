"""Calibration data: TRAIN split only, stratified per class, seeded; errors and warnings on small sets."""

from __future__ import annotations

import logging

import pytest
import torch

from fishopt.artifacts.calibration import calibration_images
from fishopt.errors import DataError


def test_calibration_comes_from_train_only(fish_checkpoint):
    from fishopt.checkpoint import load_checkpoint

    ckpt = load_checkpoint(fish_checkpoint)
    split = ckpt.load_split()
    calib = calibration_images(ckpt, size=27, seed=3)
    assert calib.part == "train" and len(calib) == 27
    assert set(calib.paths) <= set(split.paths("train"))
    assert not set(calib.paths) & (set(split.paths("val")) | set(split.paths("test")))
    assert calib.images.dtype == torch.uint8 and list(calib.images.shape[-2:]) == ckpt.meta["load_size"]
    batch = calib.model_input(ckpt.meta)
    assert list(batch.shape[-2:]) == ckpt.meta["input_size"] and batch.dtype.is_floating_point
    assert set(calib.labels.tolist()) == set(range(len(ckpt.meta["class_names"])))  # every class covered
    assert calibration_images(ckpt, size=27, seed=3).paths == calib.paths


def test_calibration_smaller_than_classes_is_an_error(fish_checkpoint):
    from fishopt.checkpoint import load_checkpoint

    ckpt = load_checkpoint(fish_checkpoint)
    with pytest.raises(DataError, match="at least one image per class.*--calib-size"):
        calibration_images(ckpt, size=len(ckpt.meta["class_names"]) - 1)


def test_missing_calibration_data_is_an_error(fish_checkpoint, tmp_path, monkeypatch):
    from fishopt.checkpoint import load_checkpoint

    ckpt = load_checkpoint(fish_checkpoint)
    monkeypatch.setenv("FISHOPT_DATA", str(tmp_path / "nowhere"))
    with pytest.raises(DataError):
        calibration_images(ckpt, size=32)


def test_missing_train_side_is_an_error(fish_checkpoint, monkeypatch):
    from fishopt.checkpoint import load_checkpoint
    from fishopt.data.split import Split

    ckpt = load_checkpoint(fish_checkpoint)
    monkeypatch.setattr(Split, "paths", lambda self, side: [])
    with pytest.raises(DataError, match="no train images"):
        calibration_images(ckpt, size=32)


def test_warns_when_a_class_is_not_covered(fish_checkpoint, monkeypatch, caplog):
    from fishopt.checkpoint import load_checkpoint
    from fishopt.data.split import Split

    ckpt = load_checkpoint(fish_checkpoint)
    dropped = ckpt.meta["class_names"][0]
    original = Split.paths
    monkeypatch.setattr(
        Split, "paths", lambda self, side: [p for p in original(self, side) if self.labels[p] != dropped]
    )
    with caplog.at_level(logging.WARNING, logger="fishopt.artifacts.calibration"):
        calib = calibration_images(ckpt, size=20, part="val")
    assert dropped in caplog.text and "cover" in caplog.text
    assert len(calib) == 20
