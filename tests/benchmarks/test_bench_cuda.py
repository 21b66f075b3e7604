"""The CUDA rows are registry variants: without a GPU they are skipped rows with the reason; with one they run."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from fishopt.benchmarks import harness
from fishopt.benchmarks.variants import BASELINE


def test_cuda_rows_skip_without_a_gpu(tiny_checkpoint: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from fishopt.artifacts import registry

    monkeypatch.setattr(registry, "cuda_available", lambda: False)
    out = tmp_path / "cuda"
    results = harness.run_benchmark(
        tiny_checkpoint,
        out_dir=out,
        quick=True,
        progress=False,
        batch_sizes=(1, 4),
        device="cuda",
        threads=1,
        input_sizes=["native"],
    )
    rows = {r["variant"]: r for r in results["rows"]}
    assert rows[BASELINE]["status"] == "ok" and rows[BASELINE]["device"] == "cpu"
    cuda = [r for r in rows.values() if r["device"] == "cuda"]
    assert cuda and all(r["status"] == "skipped" and "CUDA GPU" in r["reason"] for r in cuda)
    assert (out / "REPORT.md").is_file()


@pytest.mark.gpu
def test_cuda_rows_run_on_a_gpu(trained_tiny: Path, tmp_path: Path) -> None:
    import torch

    if not torch.cuda.is_available():
        pytest.skip("needs a CUDA GPU")
    variants = ["torch-eager-fp32-cuda", "torch-eager-fp16-cuda", "torch-compile-fp16-cudagraphs-cuda"]
    results = harness.run_benchmark(
        trained_tiny, variants, out_dir=tmp_path / "gpu", quick=True, progress=False, batch_sizes=(1, 8), device="cuda"
    )
    rows = {r["variant"]: r for r in results["rows"]}
    for name in variants:
        assert rows[name]["status"] == "ok" and rows[name]["device"] == "cuda", rows[name]["reason"]
        assert rows[name]["accuracy"]["agreement"] >= 0.98
    assert results["recommendations"]["gpu-latency"]["variant"] in variants
    assert json.loads((tmp_path / "gpu" / "results.json").read_text())["settings"]["device"] == "cuda"
