"""The one verb ``build``: option validation, availability, output folders, the parity gate, the manifest."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest

from fishopt.artifacts.build import build
from fishopt.errors import (
    BackendUnavailableError,
    CheckpointError,
    ConfigError,
    MissingDependencyError,
    OutputError,
    ParityError,
)


def test_unknown_format_lists_valid(tiny_checkpoint: Path, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="valid choices:.*onnx-fp32.*openvino-fp32"):
        build("onnx-fp64", tiny_checkpoint, tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_unsupported_option_lists_supported(tiny_checkpoint: Path, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not support option.*with_preprocessing; it supports: none"):
        build("torch-eager-fp32", tiny_checkpoint, tmp_path / "out", options={"with_preprocessing": True})
    with pytest.raises(ConfigError, match="does not support option.*mode; it supports: batch_size"):
        build("onnx-fp32", tiny_checkpoint, tmp_path / "out", options={"mode": "max-autotune"})
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("options", [{"batch_size": 0}, {"raw_size": [32]}, {"raw_size": "big"}, {"opset": -1}])
def test_bad_option_values(tiny_checkpoint: Path, tmp_path: Path, options: dict) -> None:
    with pytest.raises(ConfigError):
        build("onnx-fp32", tiny_checkpoint, tmp_path / "out", options=options)


def test_missing_dependency_names_extra(tiny_checkpoint: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "openvino" else real(name, *a))
    with pytest.raises(MissingDependencyError, match=r"openvino.*pip install 'fishopt\[openvino\]'"):
        build("openvino-fp32", tiny_checkpoint, tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_gpu_format_without_gpu(tiny_checkpoint: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import torch

    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: real("numpy") if name == "tensorrt" else real(name, *a)
    )
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(BackendUnavailableError, match="needs a CUDA GPU"):
        build("tensorrt-fp16", tiny_checkpoint, tmp_path / "out")


def test_corrupt_checkpoint(tmp_path: Path) -> None:
    bad = tmp_path / "model.pt"
    bad.write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointError, match="corrupt"):
        build("onnx-fp32", bad, tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_mismatched_checkpoint(tiny_checkpoint: Path, tmp_path: Path) -> None:
    import torch

    blob = torch.load(tiny_checkpoint, weights_only=True)
    blob["meta"]["model"]["cfg"]["hidden"] = 8  # weights no longer fit the config
    bad = tiny_checkpoint.parent / "mismatched.pt"
    torch.save(blob, bad)
    with pytest.raises(CheckpointError, match="do not match"):
        build("onnx-fp32", bad, tmp_path / "out")


def test_existing_output_dir(tiny_checkpoint: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    with pytest.raises(OutputError, match="--overwrite"):
        build("torch-eager-fp32", tiny_checkpoint, out)
    assert (out / "keep.txt").read_text() == "mine"
    result = build("torch-eager-fp32", tiny_checkpoint, out, overwrite=True)
    assert not (out / "keep.txt").exists() and result.artifact == out / "model.pt"


def test_refuses_output_dir_holding_the_checkpoint(
    tiny_checkpoint: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with pytest.raises(OutputError, match="contains the checkpoint"):
        build("torch-eager-fp32", tiny_checkpoint, tiny_checkpoint.parent, overwrite=True)
    with pytest.raises(OutputError, match="contains the checkpoint"):
        build("torch-eager-fp32", tiny_checkpoint, tiny_checkpoint.parent.parent, overwrite=True)
    monkeypatch.chdir(tmp_path / "fish")
    with pytest.raises(OutputError, match="current folder"):
        build("torch-eager-fp32", tiny_checkpoint, ".", overwrite=True)
    assert tiny_checkpoint.is_file() and (tmp_path / "fish" / "groups.csv").is_file()


def test_failing_parity_writes_nothing(tiny_checkpoint: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from fishopt.backends.torch.runtime import TorchEagerRuntime

    real_call = TorchEagerRuntime.__call__
    monkeypatch.setattr(TorchEagerRuntime, "__call__", lambda self, batch: real_call(self, batch) + np.float32(0.01))
    out = tmp_path / "out"
    with pytest.raises(ParityError, match=r"max \|logit diff\| 0\.01.*needed max \|logit diff\| <= 1e-05"):
        build("torch-eager-fp32", tiny_checkpoint, out)
    assert not out.exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".out")], "temporary build folder left behind"


def test_failing_parity_keeps_existing_output(
    tiny_checkpoint: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from fishopt.backends.torch.runtime import TorchEagerRuntime

    out = tmp_path / "out"
    out.mkdir()
    (out / "old.txt").write_text("old")
    monkeypatch.setattr(
        TorchEagerRuntime,
        "__call__",
        lambda self, batch: np.random.default_rng(0).normal(size=(len(batch), 3)).astype(np.float32),
    )
    with pytest.raises(ParityError, match="agreement"):
        build("torch-eager-fp32", tiny_checkpoint, out, overwrite=True)
    assert (out / "old.txt").read_text() == "old"


def test_no_verify_recorded(tiny_checkpoint: Path, tmp_path: Path) -> None:
    result = build("torch-eager-fp32", tiny_checkpoint, tmp_path / "out", verify=False)
    manifest = json.loads((tmp_path / "out" / "manifest.json").read_text())
    assert manifest["verified"] is False and manifest["parity"] is None and result.parity is None
    assert {f["path"] for f in manifest["files"]} == {"model.pt", "model.pt.json"}


def test_manifest_content(tiny_checkpoint: Path, tmp_path: Path) -> None:
    result = build("torch-eager-fp32", tiny_checkpoint, tmp_path / "out", parity_images=5)
    m = result.manifest
    assert m["verified"] is True and m["parity"]["n"] == 5 and m["parity"]["rule"] == "exact"
    assert m["metadata"]["source_checkpoint_sha256"] == m["files"][0]["sha256"]  # model.pt is a copy
    assert m["versions"]["torch"] and m["versions"]["fishopt"] and m["build_seconds"] >= 0
    assert m["total_bytes"] == sum(f["bytes"] for f in m["files"])


def test_artifact_metadata_mismatch_writes_nothing(
    tiny_checkpoint: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from fishopt.backends.torch.runtime import TorchEagerRuntime

    real_load = TorchEagerRuntime.load.__func__

    def load(cls, path, **kwargs):
        runtime = real_load(cls, path, **kwargs)
        runtime.meta = {**runtime.meta, "class_names": ["x", "y", "z"]}
        return runtime

    monkeypatch.setattr(TorchEagerRuntime, "load", classmethod(load))
    out = tmp_path / "out"
    with pytest.raises(CheckpointError, match="do not match the artifact's classes"):
        build("torch-eager-fp32", tiny_checkpoint, out)
    assert not out.exists()
