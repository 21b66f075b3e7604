"""Helpers for the quantization tests: build an INT8 artifact, load it in a fresh process, compare.

The shared ``fish_checkpoint`` is untrained, so its top-1 margins are small and INT8 rounding flips a few
predictions: round-trip tests check agreement >= :data:`MIN_AGREEMENT` on real test images in a fresh
process (the 98 % parity gate itself is tested with a forced failure and on the trained checkpoint).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
MIN_AGREEMENT = 0.9
N_IMAGES = 64

_FRESH = """
import json, sys
import numpy as np
from fishopt.artifacts.parity import runtime_logits
from fishopt.artifacts.registry import get_format
from fishopt.checkpoint import load_checkpoint
fmt, artifact, ckpt_path, n, out = sys.argv[1:6]
ckpt = load_checkpoint(ckpt_path)
runtime = get_format(fmt).load_runtime().load(artifact)
images = ckpt.split_images("test", limit=int(n)).images
np.save(out, runtime_logits(runtime, images, ckpt.meta))
print(json.dumps({"meta": runtime.meta, "kind": getattr(runtime, "kind", None)}))
"""


def fresh_process_run(
    fmt: str, artifact: Path, checkpoint: Path, tmp_path: Path, n: int = N_IMAGES
) -> tuple[np.ndarray, dict]:
    """Load ``artifact`` in a new Python process, run it on ``n`` test images; return logits and its metadata."""
    out = tmp_path / f"{fmt}-logits.npy"
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.run(
        [sys.executable, "-c", _FRESH, fmt, str(artifact), str(checkpoint), str(n), str(out)],
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
        cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return np.load(out), json.loads(proc.stdout.strip().splitlines()[-1])


def reference(checkpoint: Path, n: int = N_IMAGES) -> np.ndarray:
    """FP32 eager logits of the checkpoint on the same test images."""
    from fishopt.checkpoint import load_checkpoint

    ckpt = load_checkpoint(checkpoint)
    return ckpt.logits(ckpt.split_images("test", limit=n).images)


def check_round_trip(fmt: str, checkpoint: Path, out_dir: Path, tmp_path: Path, **options) -> dict:
    """Build ``fmt`` without the gate, reload it in a fresh process, check agreement; return its metadata."""
    from fishopt.artifacts.build import build

    result = build(fmt, checkpoint, out_dir, options=options, verify=False)
    assert result.artifact.is_file()
    assert (out_dir / "manifest.json").is_file()
    logits, info = fresh_process_run(fmt, result.artifact, checkpoint, tmp_path)
    ref = reference(checkpoint)
    assert logits.shape == ref.shape
    agreement = float((logits.argmax(1) == ref.argmax(1)).mean())
    assert agreement >= MIN_AGREEMENT, f"{fmt}: top-1 agreement {agreement:.2%}"
    meta = info["meta"]
    assert meta["format"] == fmt and meta["precision"] == "int8"
    assert meta["recipe"]["precision"] == "int8"
    assert "quantized" in meta["quantization"]
    info["agreement"] = agreement
    return info
