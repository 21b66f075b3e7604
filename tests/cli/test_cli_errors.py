"""Every command: ``--help`` works, and its most common bad input is exit code 2 with one line on stderr
naming the problem, no traceback and no output written (issue 12)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from fishopt.cli import COMMANDS, main

SUBCOMMANDS = {"data": ("download", "groups", "audit")}


def _all_commands() -> list[tuple[str, ...]]:
    out: list[tuple[str, ...]] = []
    for name in sorted(COMMANDS):
        out.append((name,))
        out += [(name, sub) for sub in SUBCOMMANDS.get(name, ())]
    return out


def test_the_list_covers_every_command() -> None:
    from fishopt.cli.data import data

    assert set(SUBCOMMANDS["data"]) == set(data.commands)
    assert {c[0] for c in BAD_INPUTS} | {"data"} == set(COMMANDS)
    assert {c[1] for c in BAD_INPUTS if c[0] == "data"} == set(SUBCOMMANDS["data"])


@pytest.mark.parametrize("command", _all_commands(), ids=" ".join)
def test_help(command: tuple[str, ...]) -> None:
    result = CliRunner().invoke(main, [*command, "--help"])
    assert result.exit_code == 0, result.output
    assert "Usage:" in result.output and "Traceback" not in result.output


# command -> (arguments after the command, a fragment of the expected message). {ckpt}: a valid tiny checkpoint,
# {missing}: a path that does not exist, {file}: an existing regular file, {dir}: an existing non-empty folder.
BAD_INPUTS: dict[tuple[str, ...], tuple[list[str], str]] = {
    ("data", "download"): (["{dir}", "--url", "http://127.0.0.1:9/fish.zip"], "exists already"),
    ("data", "groups"): (["{missing}"], "does not exist or is not a folder"),
    ("data", "audit"): (["{missing}"], "does not exist or is not a folder"),
    ("train",): (["trainer.max_epochs=abc"], "trainer.max_epochs='abc' is not valid: expected an integer"),
    ("evaluate",): (["{missing}/model.pt"], "not found; train one with 'fishopt train'"),
    ("export",): (["{missing}/model.pt", "--onnx", "--out", "{missing}/onnx"], "not found"),
    ("compile",): (["{missing}/model.pt", "--out", "{missing}/aoti"], "not found"),
    ("quantize",): (["{missing}/model.pt", "--backend", "onnxruntime", "--out", "{missing}/q"], "not found"),
    ("benchmark",): (["--checkpoint", "{missing}/model.pt", "--no-malloc-tuning", "--out", "{missing}/b"], "not found"),
    ("deploy",): (["{ckpt}", "--target", "cpu", "--out", "{file}/bundle"], "cannot write to"),
    ("serve",): (["{missing}"], "not found; pass a folder written by 'fishopt export"),
    ("serve-bench",): (["--url", "http://127.0.0.1:9", "--concurrency", "1"], "pass at least one --image"),
    ("drift",): (["{missing}", "{dir}"], "artifact folder"),
    ("robustness",): (["{file}"], "is not a fishopt checkpoint"),
}


@pytest.mark.parametrize("command", sorted(BAD_INPUTS), ids=" ".join)
def test_common_bad_input_is_one_line_and_exit_2(command, tiny_checkpoint: Path, tmp_path: Path) -> None:
    args, fragment = BAD_INPUTS[command]
    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    full = tmp_path / "full"
    full.mkdir()
    (full / "x").write_text("x")
    values = {
        "ckpt": str(tiny_checkpoint),
        "missing": str(tmp_path / "missing"),
        "file": str(blocker),
        "dir": str(full),
    }
    before = sorted(p.name for p in tmp_path.iterdir())
    result = CliRunner().invoke(main, [*command, *(a.format(**values) for a in args)])
    assert result.exit_code == 2, result.output
    assert isinstance(result.exception, SystemExit), "no exception escapes"
    assert "Traceback" not in result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and fragment in lines[0], result.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == before, "nothing written"


def test_the_installed_entry_point_prints_one_line_too(tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "fishopt", "evaluate", str(tmp_path / "none.pt")],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert proc.stderr.strip().splitlines() == [
        f"error: checkpoint {str(tmp_path / 'none.pt')!r} not found; "
        "train one with 'fishopt train' (model.pt in the run folder)"
    ]


def test_malicious_resume_and_random_checkpoint_are_one_line(tmp_path: Path) -> None:
    """Items 12 and 15 at the command line: refused as one message, never torch's weights_only advice."""
    import os
    import pickle

    import torch

    class Evil:
        def __reduce__(self):
            return (os.system, ("echo pwned",))

    evil = tmp_path / "last.ckpt"
    torch.save({"state_dict": {}, "epoch": 0, "loops": {}, "x": Evil()}, evil, pickle_module=pickle)
    random_pt = tmp_path / "model.pt"
    random_pt.write_bytes(os.urandom(2048))
    for args, fragment in (
        (["train", "--resume", str(evil)], "never loads those (they could run code)"),
        (["evaluate", str(random_pt)], "is not a fishopt checkpoint: not a torch archive"),
    ):
        result = CliRunner().invoke(main, args)
        assert result.exit_code == 2 and isinstance(result.exception, SystemExit), result.output
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and fragment in lines[0] and "weights_only" not in lines[0], result.stderr
