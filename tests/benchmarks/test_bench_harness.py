"""run_benchmark end to end on a tiny model and a small real subset, plus skip/fail/error paths."""

from __future__ import annotations

import dataclasses
import importlib.util
import json
from pathlib import Path

import pytest
from fake_backend import fake_format  # tests/benchmarks/fake_backend.py

from fishopt.artifacts.registry import Format
from fishopt.benchmarks import harness
from fishopt.benchmarks.variants import BASELINE, build_format, select_variants
from fishopt.errors import ConfigError, OutputError, SplitError


@pytest.fixture
def add_formats(monkeypatch: pytest.MonkeyPatch):
    """Register extra formats in the one registry for the duration of one test."""
    from fishopt.artifacts import registry

    registry.list_formats()  # load the built-in ones first
    monkeypatch.setattr(registry, "_FORMATS", dict(registry._FORMATS))
    monkeypatch.setattr(registry, "_VARIANTS", dict(registry._VARIANTS))

    def add(*formats: Format) -> None:
        for fmt in formats:
            registry.register_format(fmt)

    return add


def test_every_registered_format_is_a_benchmark_variant() -> None:
    from fishopt.artifacts.registry import list_formats, list_variants

    cpu = [v.name for v in select_variants(None)]
    assert cpu == [v.name for v in list_variants("cpu")]
    assert {f.name for f in list_formats() if not f.needs_gpu} <= set(cpu)
    assert {v.name for v in select_variants(None, "cuda")} == {BASELINE} | {v.name for v in list_variants("cuda")}
    picked = [v.name for v in select_variants(["onnx-fp32"])]
    assert picked == [BASELINE, "onnx-fp32"]  # the baseline is always measured


def test_unknown_variant_lists_valid_names() -> None:
    with pytest.raises(ConfigError) as err:
        select_variants(["onnx-fp32", "no-such-variant"])
    assert "no-such-variant" in str(err.value) and "onnx-fp32" in str(err.value) and BASELINE in str(err.value)


def test_missing_backend_is_skipped_with_reason(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    from fishopt.artifacts import registry

    real = importlib.util.find_spec
    hidden = {"onnxruntime", "openvino"}
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name in hidden else real(name, *a))
    monkeypatch.setattr(registry, "cuda_available", lambda: False)
    for name, needle in (("onnx-fp32", "onnxruntime not installed"), ("openvino-fp32", "fishopt[openvino]")):
        built = build_format(registry.get_format(name), None, tmp_path / name)
        assert built.artifact is None and built.status == "skipped" and needle in built.reason
    gpu = fake_format("fake-gpu-fp16", precision="fp16", needs_gpu=True)
    built = build_format(gpu, None, tmp_path / "gpu")
    assert built.status == "skipped" and "CUDA GPU" in built.reason and gpu.device == "cuda"
    assert not (tmp_path / "onnx-fp32").exists()


def test_existing_output_dir_is_refused(tiny_checkpoint: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    (out / "results.json").write_text("{}")
    with pytest.raises(OutputError, match="--overwrite"):
        harness.run_benchmark(tiny_checkpoint, [BASELINE], out_dir=out, quick=True, progress=False)


def _drop_test_side(checkpoint: Path) -> Path:
    import torch

    from fishopt.data.split import load_split, save_split

    split_file = checkpoint.parent / "split.json"
    split = load_split(split_file)
    assignment = {p: ("val" if s == "test" else s) for p, s in split.assignment.items()}
    new_hash = save_split(dataclasses.replace(split, assignment=assignment), split_file)
    blob = torch.load(checkpoint, weights_only=True)
    blob["meta"]["split"]["hash"] = new_hash
    torch.save(blob, checkpoint)
    return checkpoint


def test_checkpoint_without_test_split(tiny_checkpoint: Path, tmp_path: Path) -> None:
    ckpt = _drop_test_side(tiny_checkpoint)
    with pytest.raises(SplitError, match="no test images"):
        harness.run_benchmark(ckpt, [BASELINE], out_dir=tmp_path / "out", quick=True, progress=False)


def test_bad_batch_sizes(tiny_checkpoint: Path, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="batch sizes"):
        harness.run_benchmark(tiny_checkpoint, [BASELINE], batch_sizes=(0,), out_dir=tmp_path / "o", progress=False)


def test_quick_run_on_real_subset_writes_all_outputs(
    fish_checkpoint: Path, tmp_path: Path, add_formats, monkeypatch: pytest.MonkeyPatch
) -> None:
    import fake_backend

    from fishopt.artifacts import registry

    monkeypatch.setattr(fake_backend.CrashingRuntime, "ok_calls", 0)
    monkeypatch.setattr(registry, "cuda_available", lambda: False)
    add_formats(
        fake_format("fake-crash-fp32"),  # its runtime raises on the first call -> failed (parity gate)
        fake_format("fake-badbuild-fp32", builder="fake_backend:build_crash"),  # its builder raises -> failed
        fake_format("fake-missing-int8", precision="int8", requires=("no_such_module_xyz",), extra="nothing"),
    )
    variants = [BASELINE, "onnx-fp32", "fake-crash-fp32", "fake-badbuild-fp32", "fake-missing-int8"]
    out = tmp_path / "bench"
    results = harness.run_benchmark(
        fish_checkpoint,
        variants,
        batch_sizes=(1, 8),
        threads=1,
        out_dir=out,
        quick=True,
        progress=False,
        input_sizes=["native"],
    )
    for name in ("results.json", "results.csv", "REPORT.md", "pareto.png"):
        assert (out / name).is_file(), name
    assert list(out.glob("confusion-*.png"))
    rows = {r["variant"]: r for r in results["rows"]}
    assert list(rows) == variants
    assert rows["fake-crash-fp32"]["status"] == "failed" and "fake backend crashed" in rows["fake-crash-fp32"]["reason"]
    assert (
        rows["fake-badbuild-fp32"]["status"] == "failed"
        and "fake builder exploded" in rows["fake-badbuild-fp32"]["reason"]
    )
    assert (
        rows["fake-missing-int8"]["status"] == "skipped" and "no_such_module_xyz" in rows["fake-missing-int8"]["reason"]
    )
    base = rows[BASELINE]
    assert base["status"] == "ok" and base["speedup_bs1"] == 1.0 and base["accuracy"]["delta_top1"] == 0.0
    assert base["accuracy"]["agreement"] == 1.0 and not base["accuracy"]["collapse"]
    assert base["latency"]["bs1"]["p50_ms"] > 0 and base["latency"]["bs1"]["e2e"]["p50_ms"] > 0
    assert set(base["throughput"]) == {"1", "8"} and base["size_bytes"] > 0 and base["gops"] > 0
    if importlib.util.find_spec("onnxruntime") is not None:
        onnx = rows["onnx-fp32"]
        assert onnx["status"] == "ok" and onnx["accuracy"]["agreement"] >= 0.99
        assert onnx["timing_settings"]["torch_imported"] is False  # timed in its own torch-free process
        assert onnx["compute_precision"] == "fp32" and 0 < onnx["peak_share"] <= 1.0
    cam = results["camera"]["native"]
    assert set(base["e2e"]) == {"native"} and base["e2e"]["native"]["pipeline"] == cam["pipeline"]
    # the fastest pipeline whose answers agree is timed: turbo, fast, full in that order, else exact
    checks = cam["checks"]
    assert checks[0]["n"] == 998 and checks[0]["pipeline"] == "turbo" and cam["agreement"] == checks[-1]
    assert all(not c["taken"] for c in checks[:-1])
    assert cam["pipeline"] == (checks[-1]["pipeline"] if checks[-1]["taken"] else "exact")
    assert set(base["e2e"]["native"]["stages_p50_ms"]) == {"decode", "preprocess", "model"}
    assert results["e2e_today"]["native"]["pipeline"] == "today"
    # this tiny model's load size is a fraction of the files' 224x168: even native files take DCT scaling here
    assert sum(checks[0]["scales"].values()) == 998 and "8/8" not in checks[0]["scales"]
    assert (out / "e2e_split.png").is_file() and "Where the time goes" in (out / "REPORT.md").read_text()
    assert results["recommendations"]["cpu-latency"]["variant"] in {BASELINE, "onnx-fp32"}
    saved = json.loads((out / "results.json").read_text())
    assert saved["settings"]["quick"] and saved["settings"]["threads"] == 1 and saved["fingerprint"]["split_hash"]
    assert "fake-crash-fp32: FAILED" in (out / "REPORT.md").read_text()


def test_raw_input_batches_are_uint8_nhwc() -> None:
    import numpy as np
    import torch

    from fishopt.benchmarks.timing import model_input

    meta = {"input_size": [4, 4], "mean": [0.5] * 3, "std": [0.5] * 3}
    images = torch.full((2, 3, 6, 6), 255, dtype=torch.uint8)
    raw = model_input(images, meta, True, 3)
    assert raw.dtype == np.uint8 and raw.shape == (3, 6, 6, 3)
    x = model_input(images, meta, False, 3)
    assert x.dtype == np.float32 and x.shape == (3, 3, 4, 4) and np.allclose(x, 1.0)
