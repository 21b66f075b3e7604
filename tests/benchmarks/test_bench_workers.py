"""Isolated timing: one worker process per variant, bursts interleaved across workers, one worker at a time."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
from fake_runtime import read_log  # tests/benchmarks/fake_runtime.py

from fishopt.benchmarks.workers import WorkerError, WorkerSpec, close_workers, normalize, start_workers, time_rounds

META = {"input_size": [4, 4], "load_size": [6, 8], "mean": [0.5] * 3, "std": [0.25] * 3}
IMAGES = np.random.default_rng(0).integers(0, 256, (3, 3, 6, 8), dtype=np.uint8)


def _spec(name: str, log: Path, runtime: str = "fake_runtime:LoggingRuntime", **settings) -> WorkerSpec:
    return WorkerSpec(
        name=name,
        runtime=runtime,
        path="unused",
        settings={"log": str(log), "name": name, **settings},
        threads=1,
        meta=META,
        images=IMAGES,
    )


def test_workers_run_one_at_a_time_in_shuffled_rounds(tmp_path: Path) -> None:
    log = tmp_path / "calls.log"
    workers, errors = start_workers([_spec(n, log) for n in ("a", "b", "c")])
    try:
        assert not errors and len({w.pid for w in workers.values()} | {os.getpid()}) == 4  # own processes
        job = {"kind": "model", "batch": 1}
        times, errors = time_rounds(workers, {n: job for n in workers}, warmup=2, rounds=6, calls=3)
        assert not errors and all(len(t["total"]) == 18 for t in times.values())
        calls = [c for c in read_log(log)]
        assert len(calls) == 3 * (2 + 18)
        timed = sorted(calls, key=lambda c: c[2])
        for prev, nxt in zip(timed, timed[1:], strict=False):
            assert nxt[2] >= prev[3]  # no two calls overlap: only one worker runs at a time
        bursts = [c[0] for i, c in enumerate(timed[6:]) if i % 3 == 0]  # after the warm-up, one burst = 3 calls
        orders = {tuple(bursts[r * 3 : r * 3 + 3]) for r in range(6)}
        assert len(orders) > 1  # a fresh order per round
        assert all(min(t["total"]) >= 0.0009 for t in times.values())  # the worker timed its own calls
    finally:
        close_workers(workers)
    assert all(not w.process.is_alive() for w in workers.values())


def test_a_crashing_variant_is_dropped_and_the_others_finish(tmp_path: Path) -> None:
    log = tmp_path / "calls.log"
    specs = [
        _spec("good", log),
        _spec("raises", log, crash_after=4),
        _spec("dies", log, exit_after=4),
        _spec("noload", log, fail_load=True),
    ]
    workers, errors = start_workers(specs)
    try:
        assert set(errors) == {"noload"} and "fake load failure" in errors["noload"]
        job = {"kind": "model", "batch": 1}
        times, errors = time_rounds(workers, {n: job for n in workers}, warmup=1, rounds=4, calls=2)
        assert set(times) == {"good"} and len(times["good"]["total"]) == 8
        assert "fake runtime crashed" in errors["raises"]
        assert "died" in errors["dies"] or "gone" in errors["dies"]
        with pytest.raises(WorkerError, match="crashed"):  # the raising worker is alive and keeps answering
            workers["raises"].time(job, 1)
    finally:
        close_workers(workers)


def test_static_compile_per_batch_size_is_recorded(tmp_path: Path) -> None:
    log = tmp_path / "calls.log"
    workers, errors = start_workers([_spec("ov", log, runtime="fake_runtime:ReshapingRuntime")])
    try:
        assert not errors
        for batch in (1, 4):
            times, errors = time_rounds(workers, {"ov": {"kind": "model", "batch": batch}}, 1, 2, 2)
            assert not errors and len(times["ov"]["total"]) == 4
        info = workers["ov"].request("info")
        assert {k: v["reshape"] for k, v in info["applied"].items()} == {"1": 1, "4": 4}
        assert info["torch_imported"] is False  # a non-torch runtime's worker never imports torch
        assert (
            info["inference_precision"] == "bf16"
        )  # the timed runtime's own (tool_agreement gives it to benchmark_app)
        assert {c[4] for c in read_log(log)} == {1, 4}
    finally:
        close_workers(workers)


def test_worker_environment_is_applied(tmp_path: Path) -> None:
    before = os.environ.get("OMP_WAIT_POLICY")
    spec = WorkerSpec(**{**_spec("env", tmp_path / "l").__dict__, "env": {"OMP_WAIT_POLICY": "PASSIVE"}})
    workers, _ = start_workers([spec])
    try:
        assert workers["env"].request("info")["env"]["OMP_WAIT_POLICY"] == "PASSIVE"
        assert os.environ.get("OMP_WAIT_POLICY") == before  # the parent's environment is restored
    finally:
        close_workers(workers)


def test_end_to_end_job_splits_decode_preprocess_model(tmp_path: Path) -> None:
    from PIL import Image

    files = []
    for i in range(2):
        path = tmp_path / f"{i}.jpg"
        Image.fromarray(np.full((60, 80, 3), 40 * i, np.uint8)).save(path)
        files.append(str(path))
    workers, _ = start_workers([_spec("e2e", tmp_path / "l")])
    try:
        assert workers["e2e"].request("jpegs", "native", files) == 2
        stages = workers["e2e"].time({"kind": "e2e", "key": "native", "fast": True}, 4, 1)
        assert set(stages) == {"total", "decode", "preprocess", "model"} and all(len(v) == 4 for v in stages.values())
        for i in range(4):
            parts = stages["decode"][i] + stages["preprocess"][i] + stages["model"][i]
            assert parts <= stages["total"][i] * 1.001 + 1e-6
    finally:
        close_workers(workers)


def test_numpy_normalize_matches_eval_transform() -> None:
    import torch

    from fishopt.data.preprocess import eval_transform

    ref = eval_transform(torch.from_numpy(IMAGES), META["input_size"], META["mean"], META["std"]).numpy()
    assert np.allclose(normalize(IMAGES, META), ref, atol=1e-6)


def test_numpy_normalize_is_the_out_of_place_arithmetic_bit_for_bit() -> None:
    hwc = np.random.default_rng(3).integers(0, 256, (2, 168, 224, 3), dtype=np.uint8)
    chw = hwc.transpose(0, 3, 1, 2)  # a view, as the end-to-end rows pass it
    meta = {"input_size": [160, 160], "mean": [0.485, 0.456, 0.406], "std": [0.229, 0.224, 0.225]}
    x = chw[..., 4:164, 32:192].astype(np.float32) / np.float32(255.0)
    mean = np.asarray(meta["mean"], np.float32).reshape(1, 3, 1, 1)
    std = np.asarray(meta["std"], np.float32).reshape(1, 3, 1, 1)
    out = normalize(chw, meta)
    assert out.flags.c_contiguous and out.dtype == np.float32
    np.testing.assert_array_equal(out, (x - mean) / std)
