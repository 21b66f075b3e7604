"""``fishopt drift`` and ``fishopt robustness`` on the command line: exit codes, messages, outputs."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from monitor_helpers import copy_images

from fishopt.cli import main


def run(*args: str):
    return CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)


def test_help_lists_examples() -> None:
    for command in ("drift", "robustness"):
        result = run(command, "--help")
        assert result.exit_code == 0 and "Examples:" in result.output
    assert "0 no drift detected, 1 drift detected, 2 bad input" in run("drift", "--help").output


def test_no_drift_exits_0_drift_exits_1(monitor_run, tmp_path: Path) -> None:
    same = copy_images(monitor_run.test_files, tmp_path / "same")
    out = tmp_path / "report.json"
    result = run("drift", monitor_run.artifact, same, "--json", out)
    assert result.exit_code == 0, result.output
    assert "no drift detected" in result.output
    report = json.loads(out.read_text())
    assert report["drift"] is False and report["n"] == len(monitor_run.test_files)
    assert set(report["tests"]) == {"ks_softmax", "ks_entropy", "mean_entropy", "mmd", "ks_image"}
    for test in report["tests"].values():
        assert isinstance(test["statistic"], float) and 0.0 <= test["p_value"] <= 1.0
    assert out.with_suffix(".png").read_bytes()[:4] == b"\x89PNG"

    dark = copy_images(monitor_run.test_files, tmp_path / "dark", lambda a: (a // 4).astype(np.uint8))
    plot = tmp_path / "plot.png"
    result = run("drift", monitor_run.artifact, dark, "--json", tmp_path / "dark.json", "--plot", plot)
    assert result.exit_code == 1, result.output
    assert "DRIFT DETECTED" in result.output and plot.is_file()
    assert json.loads((tmp_path / "dark.json").read_text())["drift"] is True


def test_window_samples_large_folders(monitor_run, tmp_path: Path) -> None:
    result = run("drift", monitor_run.artifact, monitor_run.root, "--window", "25", "--json", tmp_path / "r.json")
    assert result.exit_code in (0, 1), result.output
    report = json.loads((tmp_path / "r.json").read_text())
    assert report["n"] == 25 and report["found"] == 360 and "a sample of 25 of 360" in result.output


def test_bad_input_exits_2_with_a_clear_message(monitor_run, tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    (empty / "sub").mkdir(parents=True)
    (empty / "sub" / "notes.txt").write_text("no images here")
    result = run("drift", monitor_run.artifact, empty)
    assert result.exit_code == 2 and "no images (.jpg, .jpeg, .png) found under" in result.output

    bare = shutil.copytree(monitor_run.artifact, tmp_path / "bare")
    for name in ("drift_profile.json", "drift_profile.npz"):
        (bare / name).unlink()
    result = run("drift", bare, copy_images(monitor_run.test_files, tmp_path / "imgs"))
    assert result.exit_code == 2
    assert "has no drift profile" in result.output and f"fishopt drift {bare} --make-profile" in result.output

    result = run("drift", tmp_path / "imgs", tmp_path / "imgs")
    assert result.exit_code == 2 and "is not an artifact folder" in result.output
    few = copy_images(monitor_run.test_files[:5], tmp_path / "few")
    result = run("drift", monitor_run.artifact, few)
    assert result.exit_code == 2 and "needs at least 20" in result.output
    result = run("drift", monitor_run.artifact)
    assert result.exit_code == 2 and "give the FOLDER" in result.output


def test_make_profile_then_check(monitor_run, tmp_path: Path) -> None:
    bare = shutil.copytree(monitor_run.artifact, tmp_path / "bare")
    for name in ("drift_profile.json", "drift_profile.npz"):
        (bare / name).unlink()
    result = run("drift", bare, "--make-profile")
    assert result.exit_code == 0, result.output
    assert "with embeddings (MMD enabled)" in result.output and (bare / "drift_profile.json").is_file()
    result = run("drift", bare, "--make-profile", "--checkpoint", tmp_path / "missing.pt")
    assert result.exit_code == 2 and "pass --checkpoint" in result.output


def test_onnx_profile_reads_the_embeddings_output(monitor_run, tmp_path: Path) -> None:
    """ONNX graphs carry the penultimate embeddings as a second output: their profile and checks run the MMD."""
    pytest.importorskip("onnxruntime")
    pytest.importorskip("onnxscript")
    from fishopt.artifacts.build import build

    art = build("onnx-fp32", monitor_run.checkpoint, tmp_path / "onnx", verify=False).out_dir
    result = run("drift", art, "--make-profile")
    assert result.exit_code == 0 and "with embeddings (MMD enabled)" in result.output, result.output
    result = run("drift", art, copy_images(monitor_run.test_files, tmp_path / "same"), "--json", tmp_path / "r.json")
    assert result.exit_code == 0, result.output
    report = json.loads((tmp_path / "r.json").read_text())
    assert set(report["tests"]) == {"ks_softmax", "ks_entropy", "mean_entropy", "mmd", "ks_image"}
    assert not report["skipped"]


def test_profile_without_embeddings_skips_mmd(monitor_run, tmp_path: Path) -> None:
    """An artifact built before programs carried the embeddings (metadata without ``outputs``): a profile without
    embeddings, and the MMD is skipped."""
    from fishopt.artifacts.build import build

    art = build("torch-int8-dynamic", monitor_run.checkpoint, tmp_path / "pt2", verify=False).out_dir
    sidecar = art / "model.pt2.json"
    meta = json.loads(sidecar.read_text())
    del meta["outputs"]
    sidecar.write_text(json.dumps(meta))
    assert run("drift", art, "--make-profile").exit_code == 0
    result = run("drift", art, copy_images(monitor_run.test_files, tmp_path / "same"), "--json", tmp_path / "r.json")
    assert result.exit_code == 0, result.output
    report = json.loads((tmp_path / "r.json").read_text())
    assert set(report["tests"]) == {"ks_softmax", "ks_entropy", "mean_entropy", "ks_image"}
    assert "no embeddings" in report["skipped"]["mmd"]
    assert "mmd: skipped" in result.output


def test_robustness_cli(monitor_run, tmp_path: Path) -> None:
    pytest.importorskip("corrupt_tta")
    out = tmp_path / "rob.json"
    result = run(
        "robustness",
        monitor_run.artifact,
        "--corruptions",
        "contrast,fog",
        "--severities",
        "2,4",
        "--workers",
        "1",
        "--json",
        out,
    )
    assert result.exit_code == 0, result.output
    res = json.loads(out.read_text())
    assert set(res) >= {"clean", "corruptions", "mce", "relative_mce", "less_robust", "fp32"}
    assert set(res["corruptions"]["fog"]) == {"2", "4"} and out.with_suffix(".png").is_file()
    assert "mCE vs FP32" in result.output
    result = run("robustness", monitor_run.checkpoint, "--severities", "0")
    assert result.exit_code == 2 and "unknown severity 0" in result.output
    result = run("robustness", monitor_run.checkpoint, "--severities", "x")
    assert result.exit_code == 2 and "comma list of integers" in result.output
    result = run("robustness", monitor_run.checkpoint, "--corruptions", "rain")
    assert result.exit_code == 2 and "unknown corruption 'rain'; valid choices:" in result.output
