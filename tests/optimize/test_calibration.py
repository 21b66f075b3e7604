"""Calibration data: TRAIN split only, stratified per class, seeded; errors and warnings on small sets."""

from __future__ import annotations

import logging

import pytest
import torch

from fishopt.errors import DataError
from fishopt.optimize.calibration import calibration_set, split_images


def test_calibration_comes_from_train_only(fish_checkpoint):
    from fishopt.training.checkpoint import load_checkpoint

    ckpt = load_checkpoint(fish_checkpoint)
    split = ckpt.load_split()
    calib = calibration_set(ckpt, size=27, seed=3)
    assert calib.split == "train" and len(calib) == 27
    assert set(calib.paths) <= set(split.paths("train"))
    assert not set(calib.paths) & (set(split.paths("val")) | set(split.paths("test")))
    assert calib.images.dtype == torch.uint8 and list(calib.images.shape[-2:]) == ckpt.meta["load_size"]
    assert list(calib.batch.shape[-2:]) == ckpt.meta["input_size"] and calib.batch.dtype.is_floating_point
    assert set(calib.labels.tolist()) == set(range(len(ckpt.meta["class_names"])))  # every class covered
    assert calibration_set(ckpt, size=27, seed=3).paths == calib.paths


def test_calibration_smaller_than_classes_is_an_error(fish_checkpoint):
    from fishopt.training.checkpoint import load_checkpoint

    ckpt = load_checkpoint(fish_checkpoint)
    with pytest.raises(DataError, match="at least one image per class.*--calib-size"):
        calibration_set(ckpt, size=len(ckpt.meta["class_names"]) - 1)


def test_missing_calibration_data_is_an_error(fish_checkpoint, tmp_path, monkeypatch):
    from fishopt.training.checkpoint import load_checkpoint

    ckpt = load_checkpoint(fish_checkpoint)
    monkeypatch.setenv("FISHOPT_DATA", str(tmp_path / "nowhere"))
    with pytest.raises(DataError):
        calibration_set(ckpt, size=32)


def test_missing_train_side_is_an_error(fish_checkpoint, monkeypatch):
    from fishopt.data.split import Split
    from fishopt.training.checkpoint import load_checkpoint

    ckpt = load_checkpoint(fish_checkpoint)
    monkeypatch.setattr(Split, "paths", lambda self, side: [])
    with pytest.raises(DataError, match="no train images"):
        calibration_set(ckpt, size=32)


def test_warns_when_a_class_is_not_covered(fish_checkpoint, monkeypatch, caplog):
    from fishopt.data.split import Split
    from fishopt.training.checkpoint import load_checkpoint

    ckpt = load_checkpoint(fish_checkpoint)
    dropped = ckpt.meta["class_names"][0]
    original = Split.paths
    monkeypatch.setattr(Split, "paths", lambda self, side: [p for p in original(self, side) if self.labels[p] != dropped])
    with caplog.at_level(logging.WARNING, logger="fishopt.optimize.calibration"):
        calib = split_images(ckpt, "val", size=20)
    assert dropped in caplog.text and "cover" in caplog.text
    assert len(calib) == 20
