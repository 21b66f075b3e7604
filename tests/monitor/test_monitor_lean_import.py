"""Importing the monitor's server hook and its CLI commands stays lean: no torch, scipy or corruption libraries."""

from __future__ import annotations

import subprocess
import sys

HEAVY = ("torch", "scipy", "corrupt_tta", "skimage", "cv2", "matplotlib", "onnxruntime", "openvino")


def test_lean_import() -> None:
    code = (
        "import sys, fishopt.monitor, fishopt.monitor.server, fishopt.cli.drift, fishopt.cli.robustness;"
        "from fishopt.monitor import ServerMonitor, DriftDetector;"
        f"print(sorted(m for m in {HEAVY!r} if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=False)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]", f"heavy modules imported: {out.stdout}"
