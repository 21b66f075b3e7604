"""The reference profile: built from an artifact, saved atomically into its folder, loaded back."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from fishopt.errors import CheckpointError, DataError
from fishopt.monitor.imagestats import IMAGE_STATS
from fishopt.monitor.profile import (
    HEADER_NAME,
    NPZ_NAME,
    DriftProfile,
    load_profile,
    make_artifact_profile,
    profile_exists,
    save_profile,
)
from fishopt.monitor.stats import softmax


def test_round_trip_with_an_artifact(monitor_run, tmp_path: Path) -> None:
    from fishopt.checkpoint import load_checkpoint
    from fishopt.monitor.artifacts import load_artifact

    prof = load_profile(monitor_run.artifact)
    header = json.loads((monitor_run.artifact / HEADER_NAME).read_text())
    split = load_checkpoint(monitor_run.checkpoint).load_split()
    assert prof.n == header["n"] == len(split.paths("test")) == len(monitor_run.test_files)
    assert header["info"]["side"] == "test" and header["info"]["artifact_format"] == "torch-eager-fp32"
    assert header["info"]["split_hash"] == split.hash
    assert header["units"] == len({split.units[p] for p in split.paths("test")})
    # the stored outputs are the artifact's own on the test images
    model = load_artifact(monitor_run.artifact)
    from fishopt.data.cache import load_images

    images = load_images(monitor_run.test_files, model.image_size)
    logits, emb = model.outputs(images)
    np.testing.assert_allclose(prof.probs, softmax(logits), atol=1e-6)
    np.testing.assert_allclose(prof.embeddings, emb, atol=1e-6)
    # and the input statistics of what it sees (the center crop at its input size)
    assert header["image_stats"] == list(IMAGE_STATS) and prof.has_image_stats
    np.testing.assert_allclose(prof.image_stats, model.input_statistics(images), rtol=1e-6)
    assert prof.embedding_dim == 16 and prof.pca_components.shape[1] == 16  # the tiny model's hidden layer
    assert prof.pca_fit.any() and (~prof.pca_fit).any()
    # a copy of the folder loads the same profile; saving again is byte-identical in content
    copy = shutil.copytree(monitor_run.artifact, tmp_path / "copy")
    again = load_profile(copy)
    for key in ("probs", "embeddings", "units", "labels", "pca_mean", "pca_components", "pca_fit", "image_stats"):
        np.testing.assert_array_equal(getattr(again, key), getattr(prof, key))
    assert again.bandwidth == prof.bandwidth and again.class_names == prof.class_names
    assert not list(copy.glob(".*.tmp"))  # no temporary files left behind


def test_damaged_or_missing_profiles_are_refused(monitor_run, tmp_path: Path) -> None:
    folder = shutil.copytree(monitor_run.artifact, tmp_path / "art")
    with pytest.raises(CheckpointError, match="made for another artifact file"):
        load_profile(folder, artifact_sha256="0" * 64)
    (folder / NPZ_NAME).write_bytes(b"garbage")
    with pytest.raises(CheckpointError, match="does not match its header; make one with: fishopt drift"):
        load_profile(folder)
    (folder / HEADER_NAME).unlink()
    assert not profile_exists(folder)
    with pytest.raises(CheckpointError, match=r"has no drift profile .* --make-profile"):
        load_profile(folder)


def test_profile_needs_the_artifacts_own_checkpoint(monitor_run, tmp_path: Path) -> None:
    from helpers import make_tiny_checkpoint

    folder = shutil.copytree(monitor_run.artifact, tmp_path / "art")
    other = make_tiny_checkpoint(tmp_path / "other", monitor_run.root, seed=3)
    with pytest.raises(CheckpointError, match="not the one artifact"):
        make_artifact_profile(folder, other)
    with pytest.raises(CheckpointError, match="pass --checkpoint"):
        make_artifact_profile(folder, tmp_path / "missing.pt")


def test_build_checks_its_input(tmp_path: Path) -> None:
    probs = softmax(np.random.default_rng(0).normal(size=(30, 3)))
    with pytest.raises(DataError, match="softmax probabilities"):
        DriftProfile.build(probs * 2, ["a", "b", "c"])
    with pytest.raises(DataError, match="at least 10"):
        DriftProfile.build(probs[:5], ["a", "b", "c"])
    with pytest.raises(DataError, match="units has 3 entries"):
        DriftProfile.build(probs, ["a", "b", "c"], units=["u"] * 3)
    prof = DriftProfile.build(probs, ["a", "b", "c"])  # no embeddings: a KS-only profile
    save_profile(prof, tmp_path)
    back = load_profile(tmp_path)
    assert not back.has_embeddings and back.pca_components is None and back.units is None
    np.testing.assert_array_equal(back.probs, prof.probs)


class FakeRuntime:
    """A runtime with a static batch of 4, with or without an embeddings output (``Runtime.outputs``)."""

    raw_input = False

    def __init__(self, second_output: bool) -> None:
        self.meta = {
            "class_names": ["a", "b"],
            "input_size": [4, 4],
            "load_size": [4, 4],
            "mean": [0.5] * 3,
            "std": [0.25] * 3,
            "dynamic_batch": False,
            "batch_size": 4,
        }
        self.second_output = second_output
        self.batches: list[int] = []

    def __call__(self, batch: np.ndarray) -> np.ndarray:
        return self.outputs(batch)[0]

    def outputs(self, batch: np.ndarray):
        self.batches.append(len(batch))
        logits = batch.mean(axis=(2, 3))[:, :2]
        return logits, (batch.reshape(len(batch), -1) if self.second_output else None)


@pytest.mark.parametrize("second_output", [True, False])
def test_artifact_outputs_pad_static_batches_and_pick_up_embeddings(second_output: bool) -> None:
    import torch

    from fishopt.monitor.artifacts import ArtifactModel

    runtime = FakeRuntime(second_output)
    model = ArtifactModel(folder=Path("."), manifest={"format": "fake"}, runtime=runtime)
    images = torch.randint(0, 255, (6, 3, 4, 4), dtype=torch.uint8)
    logits, emb = model.outputs(images)
    assert runtime.batches == [4, 4] and logits.shape == (6, 2)
    assert (emb is not None) is second_output
    if second_output:
        assert emb.shape == (6, 48)
