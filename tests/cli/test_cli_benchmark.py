"""``fishopt benchmark``: argument errors, malloc re-exec, a tiny quick run."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from click.testing import CliRunner

from fishopt.cli import main


def _run(*args: str):
    return CliRunner().invoke(main, ["benchmark", *args], catch_exceptions=False)


def test_help_lists_options() -> None:
    result = _run("--help")
    assert result.exit_code == 0
    for opt in (
        "--checkpoint",
        "--variants",
        "--batch-sizes",
        "--threads",
        "--out",
        "--overwrite",
        "--quick",
        "--max-drop",
        "--data",
    ):
        assert opt in result.output


def test_unknown_variant_lists_valid_ones(tiny_checkpoint: Path, tmp_path: Path) -> None:
    result = _run("--checkpoint", str(tiny_checkpoint), "--variants", "onnx-fp32,bogus", "--out", str(tmp_path / "o"))
    assert result.exit_code == 2
    assert "bogus" in result.output and "torch-eager-fp32" in result.output and "valid choices" in result.output


def test_missing_default_checkpoint_says_make_train(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    result = _run("--no-malloc-tuning")
    assert result.exit_code == 2
    assert "runs/default/model.pt" in result.output and "make train" in result.output


def test_existing_output_dir_is_refused(tiny_checkpoint: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    (out / "old.txt").write_text("x")
    result = _run("--checkpoint", str(tiny_checkpoint), "--out", str(out), "--no-malloc-tuning")
    assert result.exit_code == 2 and "--overwrite" in result.output


def test_bad_batch_sizes() -> None:
    result = _run("--batch-sizes", "1,x")
    assert result.exit_code == 2 and "comma-separated" in result.output


def test_malloc_reexec(tiny_checkpoint: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from fishopt.cli import benchmark as cli

    for key in ("MALLOC_MMAP_THRESHOLD_", "MALLOC_TRIM_THRESHOLD_", "FISHOPT_MALLOC_REEXEC"):
        monkeypatch.delenv(key, raising=False)
    seen = {}

    class Exec(Exception):
        pass

    def fake_exec(file, argv, env):
        seen.update(file=file, argv=argv, env=env)
        raise Exec

    monkeypatch.setattr(os, "execvpe", fake_exec)
    with pytest.raises(Exec):
        _run(
            "--checkpoint",
            str(tiny_checkpoint),
            "--out",
            str(tmp_path / "o"),
            "--quick",
            "--variants",
            "onnx-fp32",
            "--batch-sizes",
            "1,16",
            "--threads",
            "1",
        )
    assert (
        seen["env"]["MALLOC_MMAP_THRESHOLD_"] == "2147483647" and seen["env"]["MALLOC_TRIM_THRESHOLD_"] == "2147483647"
    )
    argv = seen["argv"]
    assert argv[argv.index("benchmark") + 1 :] == [
        "--checkpoint",
        str(tiny_checkpoint),
        "--variants",
        "onnx-fp32",
        "--threads",
        "1",
        "--out",
        str(tmp_path / "o"),
        "--batch-sizes",
        "1,16",
        "--max-drop",
        "1.0",
        "--quick",
    ]
    # already tuned: no re-exec
    monkeypatch.setenv("MALLOC_MMAP_THRESHOLD_", "2147483647")
    monkeypatch.setenv("MALLOC_TRIM_THRESHOLD_", "2147483647")
    cli.ensure_malloc_tuning({"batch_sizes": (1,), "max_drop": 1.0})


def test_quick_run_writes_report(tiny_checkpoint: Path, tmp_path: Path) -> None:
    out = tmp_path / "bench"
    result = _run(
        "--checkpoint",
        str(tiny_checkpoint),
        "--variants",
        "torch-eager-fp32",
        "--quick",
        "--out",
        str(out),
        "--batch-sizes",
        "1,4",
        "--threads",
        "1",
        "--no-malloc-tuning",
    )
    assert result.exit_code == 0, result.output
    assert (out / "REPORT.md").is_file() and (out / "results.json").is_file()
    assert "NOT tuned" in (out / "REPORT.md").read_text() or os.environ.get("MALLOC_MMAP_THRESHOLD_")
    assert str(out / "REPORT.md") in result.output


def test_list_variants() -> None:
    result = _run("--list")
    assert result.exit_code == 0 and "torch-eager-fp32" in result.output


def test_checkpoint_without_test_split(tiny_checkpoint: Path, tmp_path: Path) -> None:
    import dataclasses

    import torch

    from fishopt.data.split import load_split, save_split

    split_file = tiny_checkpoint.parent / "split.json"
    split = load_split(split_file)
    no_test = dataclasses.replace(
        split, assignment={p: ("val" if s == "test" else s) for p, s in split.assignment.items()}
    )
    blob = torch.load(tiny_checkpoint, weights_only=True)
    blob["meta"]["split"]["hash"] = save_split(no_test, split_file)
    torch.save(blob, tiny_checkpoint)
    result = _run("--checkpoint", str(tiny_checkpoint), "--out", str(tmp_path / "o"), "--no-malloc-tuning", "--quick")
    assert result.exit_code == 2 and "no test images" in result.output


def test_quick_help_says_what_quick_does() -> None:
    """Issue 12, item 17: the help states the quick mode's test images and rounds (true to the harness)."""
    from fishopt.benchmarks.harness import QUICK_IMAGES
    from fishopt.benchmarks.timing import PLANS

    text = " ".join(CliRunner().invoke(main, ["benchmark", "--help"]).output.split())
    options = text.split("Options:")[1]
    start = options.index("--quick", options.index("--overwrite"))  # the option itself, not a mention in another help
    quick = options[start:].split("--max-drop")[0]
    assert "minutes" not in quick
    assert f"{QUICK_IMAGES} test images" in quick
    full, fast = PLANS["full"], PLANS["quick"]
    assert f"{fast['bs1'].rounds} timing rounds instead of {full['bs1'].rounds}" in quick
    assert f"end to end {fast['e2e'].rounds} instead of {full['e2e'].rounds}" in quick
    assert f"large batches {fast['throughput'].rounds} instead of {full['throughput'].rounds}" in quick


def _student_of(teacher: Path, out_dir: Path, sha256: str | None = None) -> Path:
    """A tiny checkpoint on the teacher's split that records ``teacher`` as the one it was distilled from."""
    from fishopt.checkpoint import load_checkpoint, save_checkpoint
    from fishopt.io import file_sha256

    ckpt = load_checkpoint(teacher)
    meta = {**ckpt.meta, "distill": {"teacher": {"path": str(teacher), "sha256": sha256 or file_sha256(teacher)}}}
    out_dir.mkdir()
    (out_dir / "split.json").write_bytes((teacher.parent / "split.json").read_bytes())
    return save_checkpoint(out_dir / "model.pt", ckpt.model, meta)


def test_with_teacher_benchmarks_both_models_into_one_report(tiny_checkpoint: Path, tmp_path: Path) -> None:
    """Issue 14: one run, one row per model x variant, recommendations per model and across models."""
    student = _student_of(tiny_checkpoint, tmp_path / "student")
    out = tmp_path / "bench"
    args = ["--checkpoint", str(student), "--with-teacher", "--variants", "torch-eager-fp32,onnx-fp32", "--quick"]
    args += ["--out", str(out), "--batch-sizes", "1,4", "--threads", "1", "--no-malloc-tuning", "--no-profile"]
    result = _run(*args, "--latency-budget-ms", "1000", "--input-sizes", "native")
    assert result.exit_code == 0, result.output
    merged = json.loads((out / "results.json").read_text())
    assert [r["checkpoint"] for r in merged["settings"]["merged_runs"]] == [str(student), str(tiny_checkpoint)]
    assert len(merged["rows"]) == 4 and {r["run"] for r in merged["rows"]} == {0, 1}
    assert all("top1_ci95" in r["accuracy"] for r in merged["rows"])
    assert set(merged["across_models"]) == {
        "cpu-fastest-accurate",
        "cpu-throughput-accurate",
        "cpu-most-accurate-under-1000ms",
    }
    assert any(key.startswith("baseline cpu-latency") for key in merged["recommendations"])
    assert (out / "baseline" / "results.json").is_file() and (out / "baseline-1" / "results.json").is_file()
    report_md = (out / "REPORT.md").read_text()
    assert "Across models" in report_md and "## Robustness (quick), baseline" in report_md
    robust = merged["robustness_by_model"]["baseline"]
    assert robust.get("skipped") or set(robust["variants"]) <= {"onnx-fp32"}


@pytest.mark.parametrize(
    ("case", "fragment"),
    [("not-distilled", "was not distilled"), ("teacher-changed", "changed since"), ("teacher-gone", "is missing")],
)
def test_with_teacher_refuses_what_it_cannot_use(
    tiny_checkpoint: Path, tmp_path: Path, case: str, fragment: str
) -> None:
    if case == "not-distilled":
        student = tiny_checkpoint
    else:
        teacher = tmp_path / "teacher" / "model.pt"
        teacher.parent.mkdir()
        teacher.write_bytes(tiny_checkpoint.read_bytes())
        (teacher.parent / "split.json").write_bytes((tiny_checkpoint.parent / "split.json").read_bytes())
        student = _student_of(teacher, tmp_path / "student", sha256="0" * 64 if case == "teacher-changed" else None)
        if case == "teacher-gone":
            teacher.unlink()
    out = tmp_path / "bench"
    result = _run("--checkpoint", str(student), "--with-teacher", "--out", str(out), "--no-malloc-tuning")
    assert result.exit_code == 2 and fragment in result.output, result.output
    assert not out.exists()


def test_the_same_checkpoint_twice_is_refused(tiny_checkpoint: Path, tmp_path: Path) -> None:
    result = _run("--checkpoint", str(tiny_checkpoint), "--checkpoint", str(tiny_checkpoint), "--no-malloc-tuning")
    assert result.exit_code == 2 and "given twice" in result.output
