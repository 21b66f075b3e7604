from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from fishopt.cli import main

TINY = [
    "trainer.max_epochs=1",
    "trainer.progress_bar=false",
    "data.limit_per_class=6",
    "data.load_size=[36,48]",
    "data.input_size=[32,32]",
    "data.batch_size=16",
    "model.width=4",
    "model.hidden=8",
]


def test_help_lists_commands() -> None:
    result = CliRunner().invoke(main, ["--help"])
    assert result.exit_code == 0
    for cmd in ("train", "evaluate", "data"):
        assert cmd in result.output


def test_train_print_config() -> None:
    result = CliRunner().invoke(main, ["train", "--print-config", "model.width=48"])
    assert result.exit_code == 0 and "width: 48" in result.output


def test_train_bad_override_exit_code() -> None:
    result = CliRunner().invoke(main, ["train", "trainer.bogus=1"])
    assert result.exit_code == 2 and "unknown key trainer.bogus; valid keys of trainer" in result.output


def test_train_then_evaluate(fish_root: Path, tmp_path: Path) -> None:
    runner = CliRunner()
    res = runner.invoke(main, ["train", "--data", str(fish_root), *TINY, f"out_dir={tmp_path}", "run_name=r"])
    assert res.exit_code == 0, res.output
    ckpt = Path(res.stdout.strip().splitlines()[-1])
    assert ckpt.name == "model.pt" and ckpt.is_file()
    out = tmp_path / "eval.json"
    png = tmp_path / "cm.png"
    res = runner.invoke(main, ["evaluate", str(ckpt), "--json", str(out), "--confusion", str(png)])
    assert res.exit_code == 0, res.output
    report = json.loads(out.read_text())
    from fishopt.checkpoint import load_checkpoint

    assert set(report) >= {"top1", "macro_f1", "per_class", "n"}
    split = load_checkpoint(ckpt).load_split()
    assert report["n"] == len(split.paths("test"))
    units = report["units"]
    assert units["by"] == "cluster"
    assert units["n"] == len({split.units[p] for p in split.paths("test")})
    assert sum(u["n"] for u in units["failing"]) <= report["n"]
    assert f"by cluster: {units['n']} units" in res.output
    assert png.read_bytes()[:4] == b"\x89PNG"


def test_evaluate_all_on_external_folder(fish_root: Path, tiny_checkpoint: Path, synthetic_root: Path) -> None:
    res = CliRunner().invoke(main, ["evaluate", str(tiny_checkpoint), "--split", "all", "--data", str(synthetic_root)])
    assert res.exit_code == 0, res.output
    assert "n=36" in res.output


def test_evaluate_class_mismatch(fish_root: Path, tiny_checkpoint: Path) -> None:
    res = CliRunner().invoke(main, ["evaluate", str(tiny_checkpoint), "--split", "all", "--data", str(fish_root)])
    assert res.exit_code == 2 and "missing" in res.output


def test_evaluate_missing_checkpoint(tmp_path: Path) -> None:
    res = CliRunner().invoke(main, ["evaluate", str(tmp_path / "none.pt")])
    assert res.exit_code == 2 and "not found" in res.output


def test_installed_console_script() -> None:
    exe = shutil.which("fishopt") or str(Path(sys.executable).parent / "fishopt")
    if not Path(exe).exists():
        pytest.skip("fishopt console script not installed (pip install -e .)")
    proc = subprocess.run([exe, "--version"], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0 and "fishopt" in proc.stdout


def test_evaluate_all_names_the_class_folders_it_leaves_out(
    tiny_checkpoint: Path, synthetic_root: Path, tmp_path: Path, caplog
) -> None:
    """Issue 12, item 18: data with a class the checkpoint does not know is evaluated loudly, not silently."""
    import numpy as np
    from helpers import write_image

    extra = synthetic_root / "Fish_Dataset" / "Delta Fish" / "Delta Fish"
    for i in range(5):
        write_image(extra / f"{i}.png", np.random.default_rng(i))
    out = tmp_path / "eval.json"
    with caplog.at_level("WARNING"):
        res = CliRunner().invoke(
            main,
            ["evaluate", str(tiny_checkpoint), "--split", "all", "--data", str(synthetic_root), "--json", str(out)],
        )
    assert res.exit_code == 0, res.output
    printed = " ".join(res.output.split())  # rich wraps long lines
    assert "n=36" in printed and "NOT EVALUATED" in printed and "Delta Fish (5 images)" in printed
    assert "the 3-class checkpoint does not know" in caplog.text
    assert json.loads(out.read_text())["ignored_folders"] == {"Delta Fish": 5}
