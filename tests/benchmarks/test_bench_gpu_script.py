"""benchmarks/gpu_benchmark.py: skips cleanly without CUDA; its flow runs (on the CPU) on a tiny model."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "gpu_benchmark.py"


def _load():
    spec = importlib.util.spec_from_file_location("gpu_benchmark", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_skips_without_cuda(capsys: pytest.CaptureFixture[str]) -> None:
    import torch

    if torch.cuda.is_available():
        pytest.skip("CUDA present")
    assert _load().main(["--checkpoint", "nowhere.pt"]) == 0
    assert "SKIPPED: no CUDA GPU" in capsys.readouterr().err


def test_flow_on_cpu(tiny_checkpoint: Path, tmp_path: Path) -> None:
    out = tmp_path / "gpu"
    code = _load().main(["--device", "cpu", "--checkpoint", str(tiny_checkpoint), "--out", str(out), "--quick",
                         "--variants", "torch-eager-fp32,torch-eager-bf16", "--batch-sizes", "1,4"])
    assert code == 0
    results = json.loads((out / "results.json").read_text())
    assert [r["variant"] for r in results["rows"]] == ["torch-eager-fp32", "torch-eager-bf16"]
    assert all(r["status"] == "ok" for r in results["rows"]) and (out / "REPORT.md").is_file()


@pytest.mark.gpu
def test_gpu_quick(tiny_checkpoint: Path, tmp_path: Path) -> None:
    import torch

    if not torch.cuda.is_available():
        pytest.skip("needs a CUDA GPU")
    out = tmp_path / "gpu"
    variants = "torch-eager-fp32,torch-eager-fp16,torch-compile-fp16-reduce-overhead"
    assert _load().main(["--checkpoint", str(tiny_checkpoint), "--out", str(out), "--quick", "--batch-sizes", "1,8",
                         "--variants", variants]) == 0
    results = json.loads((out / "results.json").read_text())
    rows = {r["variant"]: r for r in results["rows"]}
    assert rows["torch-eager-fp32"]["status"] == "ok" and rows["torch-eager-fp32"]["device"] == "cuda"
    assert results["recommendations"]["gpu-latency"]["variant"]
