"""``fishopt export`` and ``fishopt compile`` on the command line."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from fishopt.cli import main


@pytest.fixture(autouse=True)
def _no_data_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("FISHOPT_DATA", raising=False)


def run(*args: str):
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


def test_help_lists_examples() -> None:
    for command in ("export", "compile"):
        result = run(command, "--help")
        assert result.exit_code == 0 and "Examples:" in result.output and "--out" in result.output
    assert "--with-preprocessing" in run("export", "--help").output
    assert "max-autotune" in run("compile", "--help").output


def test_export_onnx_fp16(tiny_checkpoint: Path, tmp_path: Path) -> None:
    pytest.importorskip("onnxruntime")
    pytest.importorskip("onnxscript")
    out = tmp_path / "onnx16"
    result = run("export", str(tiny_checkpoint), "--onnx", "--fp16", "--out", str(out), "--parity-images", "8")
    assert result.exit_code == 0, result.output
    assert "parity: onnx-fp16" in result.output and "-> pass" in result.output
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["format"] == "onnx-fp16" and manifest["parity"]["n"] == 8


def test_export_torch_no_verify_static(tiny_checkpoint: Path, tmp_path: Path) -> None:
    result = run("export", str(tiny_checkpoint), "--torch", "--no-verify", "--out", str(tmp_path / "t"))
    assert result.exit_code == 0, result.output
    assert "not checked (--no-verify)" in result.output


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--tensorrt"], "--tensorrt has no fp32 format; it supports: --fp16 (tensorrt-fp16), --int8 (tensorrt-int8)"),
        (["--torch", "--fp16"], "--torch has no fp16 format; it supports: no precision flag (torch-eager-fp32)"),
        (["--torch", "--with-preprocessing"], "does not support option(s) with_preprocessing"),
        (["--format", "nope"], "unknown format 'nope'; valid choices:"),
        (["--onnx", "--format", "onnx-fp32"], "--format names the format completely"),
        ([], "choose a backend"),
        (["--onnx", "--openvino"], "choose one backend, got --onnx and --openvino"),
        (["--openvino", "--fp16", "--bf16"], "choose one precision, got --fp16 and --bf16"),
        (["--onnx", "--batch-size", "4"], "add --static-batch"),
        (["--onnx", "--raw-size", "64x64"], "add --with-preprocessing"),
    ],
)
def test_export_errors(tiny_checkpoint: Path, tmp_path: Path, args: list[str], message: str) -> None:
    result = CliRunner().invoke(main, ["export", str(tiny_checkpoint), *args, "--out", str(tmp_path / "x")])
    assert result.exit_code == 2, result.output
    assert message in result.output
    assert not (tmp_path / "x").exists()


def test_export_bad_raw_size(tiny_checkpoint: Path, tmp_path: Path) -> None:
    result = CliRunner().invoke(
        main,
        [
            "export",
            str(tiny_checkpoint),
            "--onnx",
            "--with-preprocessing",
            "--raw-size",
            "big",
            "--out",
            str(tmp_path / "x"),
        ],
    )
    assert result.exit_code == 2 and "expected HxW" in result.output


def test_export_existing_out(tiny_checkpoint: Path, tmp_path: Path) -> None:
    out = tmp_path / "x"
    out.mkdir()
    (out / "f").write_text("x")
    result = CliRunner().invoke(main, ["export", str(tiny_checkpoint), "--torch", "--out", str(out)])
    assert result.exit_code == 2 and "--overwrite" in result.output


def test_compile_bad_mode(tiny_checkpoint: Path, tmp_path: Path) -> None:
    result = CliRunner().invoke(main, ["compile", str(tiny_checkpoint), "--mode", "fast", "--out", str(tmp_path / "c")])
    assert result.exit_code == 2 and "max-autotune" in result.output


def test_int8_help_names_exactly_the_backends_that_have_an_int8_format() -> None:
    """Issue 12, item 16: the help of --int8 is true (the registry decides what --BACKEND --int8 builds)."""
    from fishopt.artifacts.registry import list_formats
    from fishopt.cli.export import BACKEND_PREFIX

    help_text = " ".join(CliRunner().invoke(main, ["export", "--help"]).output.split())
    int8_help = help_text.split("Options:")[1].split("--int8")[1].split("--format")[0]
    names = {f.name for f in list_formats()}
    for flag, prefix in BACKEND_PREFIX.items():
        assert (f"--{flag}" in int8_help) == (f"{prefix}-int8" in names), flag
    assert "fishopt quantize" in int8_help
