"""Importing the quantization modules, registry entries and CLI must not import the heavy toolkits."""

from __future__ import annotations

import subprocess
import sys

HEAVY = ("onnxruntime", "openvino", "nncf", "neural_compressor", "torchao", "onnx")


def test_quantization_imports_are_lean():
    code = (
        "import sys\n"
        "import fishopt.optimize.recipes, fishopt.optimize.calibration, fishopt.optimize.quantize\n"
        "import fishopt.optimize.torch_pt2e, fishopt.optimize.onnxruntime_quant, fishopt.optimize.openvino_quant\n"
        "import fishopt.optimize.inc, fishopt.cli.quantize, fishopt.runtimes.torch_program\n"
        "from fishopt.export.registry import list_formats\n"
        "assert len(list_formats(kind='quantize')) == 6\n"
        f"print(sorted(m for m in {HEAVY!r} if m in sys.modules))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip() == "[]"
