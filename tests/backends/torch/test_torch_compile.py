"""``fishopt compile``: Inductor + AOTInductor package that loads in a fresh process without recompiling."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from fishopt.errors import ConfigError

LOAD = r"""
import json, sys, time, torch
from fishopt.backends.torch.runtime import TorchProgramRuntime
from fishopt.checkpoint import load_checkpoint
rt = TorchProgramRuntime.load(sys.argv[1], threads=1)
assert rt.kind == "aoti"
model = load_checkpoint(sys.argv[2]).model
diffs = {}
for n in (1, 3, 8):
    x = torch.randn(n, 3, 32, 32)
    with torch.no_grad():
        diffs[n] = float((torch.from_numpy(rt(x.numpy())) - model(x)).abs().max())
print("RESULT" + json.dumps({"load_seconds": rt.load_seconds, "diffs": diffs, "meta": rt.meta}))
"""


def test_inductor_configs() -> None:
    from fishopt.backends.torch.compile import inductor_configs

    assert inductor_configs("default") == {"freezing": True, "aot_inductor.enable_line_tables": False}
    assert inductor_configs("max-autotune")["max_autotune"] is True
    with pytest.raises(ConfigError, match="valid choices: default, max-autotune"):
        inductor_configs("fast")


def test_compile_rejects_bad_mode_before_building(tiny_checkpoint: Path, tmp_path: Path) -> None:
    from fishopt.artifacts.build import build

    with pytest.raises(ConfigError, match="default, max-autotune"):
        build("torch-compile-fp32", tiny_checkpoint, tmp_path / "c", options={"mode": "turbo"})
    assert not (tmp_path / "c").exists()


@pytest.mark.slow
def test_compile_package_loads_in_fresh_process_without_recompiling(
    tiny_checkpoint: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Fresh process, empty Inductor cache: the only C++ it compiles is torch's CPU-ISA probes, not the model."""
    monkeypatch.delenv("FISHOPT_DATA", raising=False)
    from fishopt.artifacts.build import build

    result = build("torch-compile-fp32", tiny_checkpoint, tmp_path / "c", parity_images=16)
    meta = result.manifest["metadata"]
    assert (
        meta["compile_seconds"] > 0 and meta["mode"] == "default" and result.manifest["parity"]["max_abs_diff"] <= 1e-5
    )
    assert {f["path"] for f in result.manifest["files"]} == {"model.pt2", "model.pt2.json"}

    cache = tmp_path / "inductor-cache"
    env = {**os.environ, "TORCHINDUCTOR_CACHE_DIR": str(cache), "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(
        [sys.executable, "-c", LOAD, str(result.artifact), str(tiny_checkpoint)],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = json.loads(next(x for x in proc.stdout.splitlines() if x.startswith("RESULT"))[len("RESULT") :])
    assert all(d <= 1e-5 for d in out["diffs"].values()), out["diffs"]  # dynamic batch: 1, 3, 8
    assert out["meta"]["format"] == "torch-compile-fp32"
    sources = list(cache.rglob("*.cpp")) if cache.exists() else []
    model_code = [p.name for p in sources if "_chk_kernel" not in p.read_text(errors="ignore")]
    assert not model_code, f"the fresh process compiled model code: {model_code}"
