"""Importing fishopt, the registry or the formats must not import heavy optional runtimes."""

from __future__ import annotations

import subprocess
import sys

HEAVY = ("onnxruntime", "openvino", "neural_compressor", "tensorrt", "onnx", "polygraphy", "torch_tensorrt")


def test_lean_import() -> None:
    code = (
        "import sys, fishopt, fishopt.export.registry as r; fmts = r.list_formats(); r.get_format('onnx-fp32');"
        "[f.unavailable_reason() for f in fmts if not f.needs_gpu];"
        "import fishopt.cli.export, fishopt.cli.compile;"
        f"print(sorted(m for m in {HEAVY!r} if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]", f"heavy modules imported: {out.stdout}"
