"""The measured roofline: GEMM peaks per precision, what each artifact computes in, no share above 100 %."""

from __future__ import annotations

import pytest

from fishopt.benchmarks import roofline


def test_measure_peaks_small() -> None:
    peaks = roofline.measure_peaks(1, sizes=(64, 128), budget=0.005)
    assert set(peaks) == set(roofline.PRECISIONS)
    fp32 = peaks["fp32"]
    assert fp32["gops"] > 0 and fp32["threads"] == 1 and fp32["library"] in roofline.LIBRARIES
    assert all(v is None or v > 0 for p in peaks.values() for v in p["tried"].values())


def test_rows_are_judged_against_their_compute_precision() -> None:
    peaks = {"fp32": {"gops": 100.0}, "bf16": {"gops": 80.0}, "fp16": {"gops": None}, "int8": {"gops": 1000.0}}
    assert roofline.peak_for(peaks, "int8") == 1000.0
    assert roofline.peak_for(peaks, "bf16") == 100.0  # never below the FP32 peak: a runtime can fall back to FP32
    assert roofline.peak_for(peaks, "fp16") == 100.0 and roofline.peak_for(peaks, None) == 100.0
    assert roofline.judge(250.0, "int8", peaks) == 0.25
    assert roofline.judge(None, "int8", peaks) is None and roofline.judge(1.0, "fp32", {}) is None


def test_derive_fills_best_batch_and_share() -> None:
    from fishopt.benchmarks.harness import derive

    def row(name: str, precision: str, compute: str, ips: dict[int, float]) -> dict:
        tp = {str(b): {"batch_size": b, "images_per_s": v, "p50_ms": 1000 * b / v} for b, v in ips.items()}
        return {
            "variant": name,
            "status": "ok",
            "device": "cpu",
            "precision": precision,
            "compute_precision": compute,
            "latency": {"bs1": {"p50_ms": 1000 / ips[1]}},
            "throughput": tp,
        }

    rows = [
        row("torch-eager-fp32", "fp32", "fp32", {1: 100.0, 32: 400.0}),
        row("x-fp16", "fp16", "bf16", {1: 1000.0, 32: 3000.0}),
        row("x-int8", "int8", "int8", {1: 2000.0, 32: 1500.0}),
    ]
    peaks = {"fp32": {"gops": 200.0}, "bf16": {"gops": 800.0}, "fp16": {"gops": 50.0}, "int8": {"gops": 2000.0}}
    derive(rows, 10_000_000, peaks, (1, 32), threads=2)
    by = {r["variant"]: r for r in rows}
    assert by["x-int8"]["throughput_best"] == {"batch_size": 1, "images_per_s": 2000.0, "images_per_s_per_core": 1000.0}
    assert by["x-fp16"]["peak_gops"] == 800.0 and by["x-fp16"]["peak_share"] == round(60.0 / 800.0, 4)
    assert by["x-int8"]["gops"] == 40.0 and by["x-int8"]["peak_share"] == 0.02
    assert all(0 < r["peak_share"] <= 1.0 for r in rows)
    assert by["x-int8"]["speedup_bs1"] == 20.0


@pytest.mark.parametrize(
    "fmt,expected",
    [
        ("onnxruntime-int8", {"int8"}),
        ("onnx-fp32", {"fp32"}),
        ("openvino-int8", {"int8"}),
        ("openvino-fp16", {"bf16", "fp16", "fp32"}),
    ],
)
def test_compute_precision_is_read_from_the_runtime(built, fmt: str, expected: set) -> None:
    import importlib.util

    from fishopt.artifacts.registry import get_format

    if any(importlib.util.find_spec(m) is None for m in get_format(fmt).requires):
        pytest.skip(f"{fmt} needs {get_format(fmt).requires}")
    result = built(fmt)
    rt = get_format(fmt).load_runtime().load(result.artifact, threads=1)
    found = roofline.compute_precision(rt)
    assert found["precision"] in expected, found
    if fmt == "openvino-fp16":  # what OpenVINO really runs: bf16 where the CPU has it, never "fp16" by assumption
        assert found["precision"] == ("bf16" if rt.inference_precision == "bf16" else "fp32")
