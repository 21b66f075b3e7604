"""Helpers shared by the deploy tests (a module, not a conftest, so tests can import it)."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path


def run_program(python: str | Path, bundle: Path, program: str, *args: str, timeout: int = 300):
    """Run one of the bundle's programs with ``python`` from a neutral folder; return the CompletedProcess."""
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME")}
    return subprocess.run(
        [str(python), str(bundle / program), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=bundle.parent,
        env=env,
        check=False,
    )
