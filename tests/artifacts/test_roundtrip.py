"""Every registered format: build -> load in a fresh process -> parity against the checkpoint.

Parametrized over the registry, so a new format is collected automatically; it must also get an entry
in ROUNDTRIP_OPTIONS (its options for the tiny round trip), or ``test_all_formats_tested`` fails, like
Optimum's ``test_all_models_tested``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from fishopt.artifacts.metadata import REQUIRED_KEYS
from fishopt.artifacts.registry import list_formats

# Options for the tiny round trip of each registered format ({} = defaults).
ROUNDTRIP_OPTIONS: dict[str, dict] = {
    "torch-eager-fp32": {},
    "onnx-fp32": {},
    "onnx-fp16": {},
    "openvino-fp32": {},
    "openvino-fp16": {},
    "openvino-bf16": {},
    "torch-compile-fp32": {},
    "tensorrt-fp16": {},
    "tensorrt-int8": {"calib_size": 16},
    # quantization formats (fishopt/optimize): defaults
    "torch-int8": {},
    "torch-int8-dynamic": {},
    "onnxruntime-int8": {},
    "onnxruntime-int8-dynamic": {},
    "openvino-int8": {},
    "inc-int8": {},
}

FRESH = r"""
import json, sys
from fishopt.artifacts.parity import check_parity
from fishopt.artifacts.registry import get_format
from fishopt.checkpoint import load_checkpoint
name, artifact, checkpoint = sys.argv[1:4]
fmt = get_format(name)
runtime = fmt.load_runtime().load(artifact, threads=1)
ckpt = load_checkpoint(checkpoint)
_part = ckpt.split_images("test", limit=64); images, labels = _part.images, _part.labels
report = check_parity(ckpt, runtime, images, labels, precision=fmt.precision, atol=fmt.atol)
print("RESULT" + json.dumps({"report": report.to_dict(), "meta": runtime.meta}))
"""


def fresh_env() -> dict[str, str]:
    """Environment of a fresh process: no FISHOPT_DATA override, one thread."""
    env = {k: v for k, v in os.environ.items() if k != "FISHOPT_DATA"}
    env.update(OMP_NUM_THREADS="1")
    return env


def run_fresh(name: str, artifact, checkpoint, timeout: int = 240) -> dict:
    """Load an artifact in a new Python process, run the parity gate there, return its report and metadata."""
    proc = subprocess.run(
        [sys.executable, "-c", FRESH, name, str(artifact), str(checkpoint)],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=fresh_env(),
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    line = next(x for x in proc.stdout.splitlines() if x.startswith("RESULT"))
    return json.loads(line[len("RESULT") :])


def _marks(fmt) -> list:
    marks = []
    if fmt.needs_gpu:
        marks.append(pytest.mark.gpu)
    if fmt.runtime == "tensorrt":
        marks.append(pytest.mark.tensorrt)
    if fmt.suffix == ".pt2":  # Inductor compiles C++ (15-60 s on two shared cores)
        marks.append(pytest.mark.slow)
    return marks


FORMATS = [pytest.param(f.name, id=f.name, marks=_marks(f)) for f in list_formats()]


def test_all_formats_tested() -> None:
    missing = sorted(f.name for f in list_formats() if f.name not in ROUNDTRIP_OPTIONS)
    assert not missing, f"registered formats without a round-trip entry in ROUNDTRIP_OPTIONS: {missing}"
    stale = sorted(set(ROUNDTRIP_OPTIONS) - {f.name for f in list_formats()})
    assert not stale, f"ROUNDTRIP_OPTIONS names formats that are not registered: {stale}"


@pytest.mark.parametrize("name", FORMATS)
def test_roundtrip_fresh_process(name: str, built, trained_tiny) -> None:
    from fishopt.artifacts.registry import get_format

    fmt = get_format(name)
    if name not in ROUNDTRIP_OPTIONS:
        pytest.fail(f"{name} has no entry in ROUNDTRIP_OPTIONS")
    if reason := fmt.unavailable_reason():
        pytest.skip(f"{name}: {reason}")
    result = built(name, **ROUNDTRIP_OPTIONS[name])
    manifest = result.manifest
    assert manifest["format"] == name and manifest["verified"] is True and manifest["parity"]["passed"]
    assert result.artifact.is_file() and result.artifact.suffix == fmt.suffix
    assert (result.out_dir / "manifest.json").is_file()
    assert all(f["bytes"] > 0 and len(f["sha256"]) == 64 for f in manifest["files"])

    fresh = run_fresh(name, result.artifact, trained_tiny)
    assert fresh["report"]["passed"], fresh["report"]
    meta = fresh["meta"]
    assert set(REQUIRED_KEYS) <= set(meta), sorted(set(REQUIRED_KEYS) - set(meta))
    assert meta["format"] == name and meta["precision"] == fmt.precision
    assert isinstance(meta["class_names"], list) and len(meta["class_names"]) == 3
    if fmt.precision == "fp32":
        assert fresh["report"]["max_abs_diff"] <= (fmt.atol or 1e-3)
        assert fresh["report"]["top1_agreement"] == 1.0
