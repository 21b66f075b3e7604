"""``fishopt quantize``: validation messages, a verified run, --no-verify, existing output, failing parity."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest
from click.testing import CliRunner

from fishopt.cli import main

needs_ort = pytest.mark.skipif(importlib.util.find_spec("onnxruntime") is None, reason="onnxruntime not installed")


def _run(*args: str):
    return CliRunner().invoke(main, ["quantize", *args])


def test_help_lists_the_valid_combinations():
    result = _run("--help")
    assert result.exit_code == 0
    for text in ("torch-int8-dynamic", "onnxruntime-int8", "openvino-int8", "inc-int8", "--max-drop", "--calib-size"):
        assert text in result.output


def test_quantize_is_a_registered_command():
    from fishopt.cli import COMMANDS

    assert COMMANDS["quantize"] == "fishopt.cli.quantize:quantize"


def test_unknown_backend_lists_the_valid_ones(tmp_path):
    result = _run("model.pt", "--backend", "tflite", "--out", str(tmp_path / "o"))
    assert result.exit_code == 2
    assert "tflite" in result.output and "onnxruntime" in result.output and "openvino" in result.output


def test_unknown_method_lists_the_valid_ones(tmp_path):
    result = _run("model.pt", "--method", "qat", "--out", str(tmp_path / "o"))
    assert result.exit_code == 2 and "static" in result.output and "dynamic" in result.output


def test_combination_that_does_not_exist_says_which_do(fish_checkpoint, tmp_path):
    result = _run(str(fish_checkpoint), "--method", "dynamic", "--backend", "openvino", "--out", str(tmp_path / "o"))
    assert result.exit_code == 2
    assert "no dynamic INT8 recipe for backend 'openvino'" in result.output
    assert "--method static --backend openvino" in result.output and "--method dynamic --backend torch" in result.output
    assert not (tmp_path / "o").exists()


def test_calibration_smaller_than_classes(fish_checkpoint, tmp_path):
    result = _run(str(fish_checkpoint), "--backend", "openvino", "--calib-size", "2", "--out", str(tmp_path / "o"))
    assert result.exit_code == 2 and "at least one image per class" in result.output
    assert not (tmp_path / "o").exists()


def test_calib_size_with_dynamic_is_refused(fish_checkpoint, tmp_path):
    result = _run(str(fish_checkpoint), "--method", "dynamic", "--calib-size", "64", "--out", str(tmp_path / "o"))
    assert result.exit_code == 2 and "--calib-size applies to --method static only" in result.output


def test_package_with_a_non_torch_backend_is_refused(fish_checkpoint, tmp_path):
    result = _run(str(fish_checkpoint), "--backend", "openvino", "--package", "exported", "--out", str(tmp_path / "o"))
    assert result.exit_code == 2 and "--package applies to --backend torch or inc only" in result.output


def test_missing_checkpoint(tmp_path):
    result = _run(str(tmp_path / "nope.pt"), "--out", str(tmp_path / "o"))
    assert result.exit_code == 2 and "not found" in result.output


@needs_ort
def test_verified_dynamic_run_reports_coverage_and_parity(fish_checkpoint, tmp_path):
    out = tmp_path / "dyn"
    result = _run(str(fish_checkpoint), "--method", "dynamic", "--backend", "onnxruntime", "--out", str(out))
    assert result.exit_code == 0, result.output
    assert "quantized: 2 MatMul/Gemm (Linear) nodes only" in result.output and "% of MACs" in result.output
    assert "parity: onnxruntime-int8-dynamic" in result.output and "-> pass" in result.output
    assert (out / "model.onnx").is_file() and (out / "manifest.json").is_file()

    again = _run(str(fish_checkpoint), "--method", "dynamic", "--backend", "onnxruntime", "--out", str(out))
    assert again.exit_code == 2 and "--overwrite" in again.output


@needs_ort
def test_no_verify_and_failing_parity(fish_checkpoint, tmp_path, monkeypatch):
    from fishopt.artifacts import parity

    args = [str(fish_checkpoint), "--backend", "onnxruntime", "--calib-size", "18"]
    result = _run(*args, "--out", str(tmp_path / "nv"), "--no-verify")
    assert result.exit_code == 0, result.output
    assert "parity: NOT checked (--no-verify)" in result.output and "calibration: 18 train images" in result.output
    assert "QDQ" in result.output and "MB on disk vs FP32 weights" in result.output

    monkeypatch.setattr(parity, "MIN_AGREEMENT", 1.01)
    failed = _run(*args, "--out", str(tmp_path / "fail"))
    assert failed.exit_code == 1 and "parity check failed" in failed.output  # 1: a failed check, not bad input
    assert not Path(tmp_path / "fail").exists()
