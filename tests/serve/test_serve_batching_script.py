"""``benchmarks/serve_batching.py`` end to end on the tiny artifact: both servers, both clients, both request kinds."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


def test_serve_batching_script_measures_every_combination(
    onnx_artifact: Path, tiny_images: list[Path], tmp_path: Path
) -> None:
    out = tmp_path / "batching.json"
    jpeg = next(p for p in tiny_images if p.suffix.lower() == ".jpg")
    proc = subprocess.run(
        [
            sys.executable,
            str(REPO / "benchmarks" / "serve_batching.py"),
            str(onnx_artifact),
            "--image",
            str(jpeg),
            "--threads",
            "1",
            "--concurrency",
            "4",
            "--seconds",
            "0.3",
            "--rounds",
            "1",
            "--out",
            str(out),
        ],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads(out.read_text())
    assert set(result["summary"]) == {"socket/jpeg", "socket/tensor", "aiohttp/jpeg", "aiohttp/tensor"}
    assert len(result["runs"]) == 8  # 2 servers x 2 clients x 2 kinds
    for key, runs in result["runs"].items():
        (run,) = runs
        assert run["requests"] > 0, key
        assert run["p99_ms"] >= run["p50_ms"] > 0, key
        assert run["client_cpu_ms_per_request"] > 0, key
        if key.startswith("unbatched/"):
            assert run["batch_mean"] == pytest.approx(1.0), key  # --max-batch 1: never more than one image a call
        else:
            assert run["batch_mean"] >= 1.0, key
    for key, s in result["summary"].items():
        assert s["speedup"] == pytest.approx(s["batched_rps"] / s["unbatched_rps"]), key
    assert "speedup" in proc.stdout


def test_serve_batching_script_refuses_bad_arguments(onnx_artifact: Path, tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, str(REPO / "benchmarks" / "serve_batching.py"), str(onnx_artifact), "--image", "x.jpg"]
        + ["--concurrency", "0"],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,
    )
    assert proc.returncode == 2
    assert "--concurrency and --rounds must be >= 1" in proc.stderr
