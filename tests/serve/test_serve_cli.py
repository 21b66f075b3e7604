"""``fishopt serve`` and ``fishopt serve-bench`` from the command line; SIGTERM of the real process."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner
from serve_helpers import http, running_server, server_process

from fishopt.cli import main

REPO = Path(__file__).resolve().parents[2]


def test_bad_artifact_folder_exits_2_without_traceback(tmp_path: Path) -> None:
    result = CliRunner().invoke(main, ["serve", str(tmp_path / "missing")])
    assert result.exit_code == 2
    assert "artifact folder" in result.output and "not found" in result.output
    assert "Traceback" not in result.output
    result = CliRunner().invoke(main, ["serve", str(tmp_path)])
    assert result.exit_code == 2 and "neither manifest.json nor bundle.json" in result.output


def test_bad_options_exit_2(onnx_artifact: Path) -> None:
    result = CliRunner().invoke(main, ["serve", str(onnx_artifact), "--model-name", "a/b"])
    assert result.exit_code == 2 and "model name 'a/b' is not valid" in result.output
    result = CliRunner().invoke(main, ["serve", str(onnx_artifact), "--max-batch", "0"])
    assert result.exit_code == 2 and "--max-batch" in result.output
    result = CliRunner().invoke(main, ["serve", str(onnx_artifact), "--monitor", "no-colon"])
    assert result.exit_code == 2 and "module:factory" in result.output


def test_sigterm_finishes_in_flight_requests_and_exits_0(onnx_artifact: Path, tiny_images: list[Path]) -> None:
    with server_process(onnx_artifact, "--threads", "1", "--log-level", "info") as server:
        assert re.search(r"serving onnx-fp32 \(version \w+, onnx-fp32\) at http://127\.0\.0\.1:\d+", server.log())
        status, _, body = http("POST", server.url + "/v1/classify", tiny_images[0].read_bytes())
        assert status == 200 and json.loads(body)["label"]
        code, log = server.stop()
    assert code == 0, log
    assert "answered 1 of 1 admitted inference requests" in log


def test_serve_bench_closed_and_open_loop(onnx_artifact: Path, tiny_images: list[Path], tmp_path: Path) -> None:
    out = tmp_path / "load.json"
    with running_server(onnx_artifact, max_batch=8) as running:
        args = [
            "serve-bench",
            "--url",
            running.url,
            "--image",
            str(tiny_images[0]),
            "--image",
            str(tiny_images[1]),
            "--resize",
            "48x64",
            "--duration",
            "0.6",
            "--warmup",
            "0.2",
        ]
        result = CliRunner().invoke(main, [*args, "--concurrency", "1,2", "--out", str(out)])
        assert result.exit_code == 0, result.output
        assert "concurrency 1" in result.output and "overhead (end-to-end - compute)" in result.output
        doc = json.loads(out.read_text())
        assert doc["mode"] == "infer" and len(doc["runs"]) == 2 and doc["image_bytes"][0] > 0
        for run in doc["runs"]:
            assert run["ok"] > 0 and run["errors"] == {} and run["throughput_rps"] > 0
            assert run["latency_s"]["p50"] > 0 and run["server"]["compute_duration_seconds"]["count"] > 0
            assert run["server"]["batch_size"]["mean"] >= 1 and run["overhead_s"]["p50"] is not None
        result = CliRunner().invoke(main, [*args, "--rate", "30", "--mode", "classify"])
        assert result.exit_code == 0, result.output
        assert "Poisson 30/s" in result.output
        result = CliRunner().invoke(main, [*args, "--rate", "30", "--mode", "infer-json", "--model", "nope"])
        assert result.exit_code == 0 and "errors {'http_404':" in result.output
        result = CliRunner().invoke(
            main,
            [
                "serve-bench",
                "--url",
                running.url,
                "--mode",
                "tensor",
                "--concurrency",
                "2",
                "--duration",
                "0.5",
                "--warmup",
                "0.1",
                "--out",
                str(out),
            ],
        )
        assert result.exit_code == 0, result.output
        run = json.loads(out.read_text())["runs"][0]
        assert run["ok"] > 0 and run["errors"] == {} and run["server"]["preprocess_duration_seconds"]["count"] > 0


def test_serve_bench_needs_one_load_shape(tiny_images: list[Path]) -> None:
    base = ["serve-bench", "--image", str(tiny_images[0])]
    result = CliRunner().invoke(main, base)
    assert result.exit_code == 2 and "--concurrency" in result.output
    result = CliRunner().invoke(main, [*base, "--concurrency", "1", "--rate", "5"])
    assert result.exit_code == 2
    result = CliRunner().invoke(main, [*base, "--concurrency", "x"])
    assert result.exit_code == 2 and "comma-separated numbers" in result.output
    result = CliRunner().invoke(main, [*base, "--concurrency", "1", "--resize", "big"])
    assert result.exit_code == 2 and "HEIGHTxWIDTH" in result.output
    result = CliRunner().invoke(main, ["serve-bench", "--concurrency", "1"])
    assert result.exit_code == 2 and "pass at least one --image" in result.output


@pytest.mark.parametrize(
    "module",
    [
        "fishopt.serve",
        "fishopt.cli.serve",
        "fishopt.serve.config",
        "fishopt.serve.protocol",
        "fishopt.serve.batcher",
        "fishopt.serve.model",
    ],
)
def test_lean_import(module: str) -> None:
    heavy = (
        "fastapi",
        "starlette",
        "uvicorn",
        "prometheus_client",
        "aiohttp",
        "tritonclient",
        "onnxruntime",
        "openvino",
        "torch",
    )
    code = f"import sys, fishopt, {module}; print(sorted(m for m in {heavy!r} if m in sys.modules))"
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]", f"{module} imports {out.stdout.strip()}"
