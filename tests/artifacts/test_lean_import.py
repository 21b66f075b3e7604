"""Importing fishopt must stay cheap: ``import fishopt`` imports no torch, and no fishopt module imports an
optional toolkit (onnxruntime, openvino, nncf, INC, torchao, onnx, TensorRT) at module level."""

from __future__ import annotations

import subprocess
import sys

HEAVY = (
    "onnxruntime",
    "openvino",
    "nncf",
    "neural_compressor",
    "torchao",
    "tensorrt",
    "onnx",
    "polygraphy",
    "torch_tensorrt",
)


def _run(code: str) -> str:
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=180)
    assert out.returncode == 0, out.stderr[-3000:]
    return out.stdout.strip()


def test_import_fishopt_imports_no_torch() -> None:
    assert (
        _run("import sys, fishopt; print(sorted(m for m in ('torch', 'numpy', 'click') if m in sys.modules))") == "[]"
    )


def test_no_module_imports_a_heavy_toolkit() -> None:
    code = (
        "import importlib, pkgutil, sys, fishopt\n"
        "for info in pkgutil.walk_packages(fishopt.__path__, 'fishopt.'):\n"
        "    if '.templates' not in info.name:\n"
        "        importlib.import_module(info.name)\n"
        "from fishopt.artifacts.registry import list_formats, list_variants\n"
        "[f.unavailable_reason() for f in list_formats() if not f.needs_gpu]; list_variants()\n"
        f"print(sorted(m for m in {HEAVY!r} if m in sys.modules))\n"
    )
    assert _run(code) == "[]", "heavy modules imported at module level"
