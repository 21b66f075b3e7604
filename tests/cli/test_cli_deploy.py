"""``fishopt deploy``: argument errors list the valid choices; a tiny bundle builds, archives and verifies."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from fishopt.cli import main


@pytest.fixture(autouse=True)
def _no_data_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("FISHOPT_DATA", raising=False)


def _run(*args: str):
    return CliRunner().invoke(main, ["deploy", *args], catch_exceptions=False)


def test_help_lists_options() -> None:
    result = _run("--help")
    assert result.exit_code == 0
    for opt in (
        "--target",
        "--precision",
        "--out",
        "--archive",
        "--overwrite",
        "--data",
        "--calib-images",
        "--max-drop",
        "--keep-opset",
        "jetson",
        "cpu",
    ):
        assert opt in result.output


def test_unknown_target_lists_valid_ones(tmp_path: Path) -> None:
    result = _run(str(tmp_path / "model.pt"), "--target", "tpu", "--out", str(tmp_path / "b"))
    assert result.exit_code == 2 and "'cpu', 'jetson'" in result.output


def test_unknown_precision_lists_valid_ones(tmp_path: Path) -> None:
    result = _run(str(tmp_path / "model.pt"), "--target", "cpu", "--precision", "int4", "--out", str(tmp_path / "b"))
    assert result.exit_code == 2 and "'fp32', 'fp16', 'int8'" in result.output


def test_precision_the_target_lacks_lists_its_valid_ones(tiny_checkpoint: Path, tmp_path: Path) -> None:
    result = CliRunner().invoke(
        main, ["deploy", str(tiny_checkpoint), "--target", "cpu", "--precision", "fp16", "--out", str(tmp_path / "b")]
    )
    assert result.exit_code == 2 and "valid precisions: fp32, int8" in result.output
    assert not (tmp_path / "b").exists()


def test_existing_bundle_folder_is_refused(tiny_checkpoint: Path, tmp_path: Path) -> None:
    out = tmp_path / "b"
    out.mkdir()
    (out / "old.txt").write_text("keep me")
    result = CliRunner().invoke(main, ["deploy", str(tiny_checkpoint), "--target", "cpu", "--out", str(out)])
    assert result.exit_code == 2 and "--overwrite" in result.output
    assert (out / "old.txt").read_text() == "keep me"


def test_missing_checkpoint_says_train_one(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        main, ["deploy", str(tmp_path / "none.pt"), "--target", "cpu", "--out", str(tmp_path / "b")]
    )
    assert result.exit_code == 2 and "fishopt train" in result.output


def test_builds_a_cpu_bundle_with_archive(tiny_checkpoint: Path, tmp_path: Path) -> None:
    out = tmp_path / "bundle"
    result = _run(str(tiny_checkpoint), "--target", "cpu", "--out", str(out), "--archive")
    assert result.exit_code == 0, result.output
    assert "verify.py here: PASS" in result.output and "test split: top-1" in result.output
    assert (tmp_path / "bundle.tar.gz").is_file()
    bundle = json.loads((out / "bundle.json").read_text())
    assert bundle["target"] == "cpu" and bundle["precision"] == "fp32"
