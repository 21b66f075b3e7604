"""Ctrl-C, SIGTERM and SIGKILL during a build (issue 12, item 19): exit 130 / 143, nothing left behind."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

# An export whose builder writes a file and then hangs, so the signal lands mid-build.
SLOW_EXPORT = """
import sys, time
from fishopt.artifacts.registry import Format, register_format

def slow_builder(ckpt, workdir, meta, config):
    (workdir / "model.onnx").write_bytes(b"x" * 527)
    time.sleep(120)

register_format(Format(name="slow-fp32", backend="torch", precision="fp32", suffix=".onnx",
                       builder="__main__:slow_builder", runtime="fishopt.backends.torch.runtime:TorchEagerRuntime"))
from fishopt.cli import main
sys.exit(main(["export", sys.argv[1], "--format", "slow-fp32", "--out", sys.argv[2]], prog_name="fishopt"))
"""


def _start(checkpoint: Path, out: Path) -> subprocess.Popen:
    import fishopt

    root = Path(fishopt.__file__).resolve().parents[1]  # the fishopt under test, in the child too
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(root), os.environ.get("PYTHONPATH", "")])}
    return subprocess.Popen(
        [sys.executable, "-c", SLOW_EXPORT, str(checkpoint), str(out)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _wait_for_build(out: Path, proc: subprocess.Popen, timeout: float = 60.0) -> Path:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        builds = [p for p in out.parent.glob(f".{out.name}.build-*") if (p / "model.onnx").is_file()]
        if builds:
            return builds[0]
        if proc.poll() is not None:
            pytest.fail(f"the export ended before the signal: {proc.communicate()}")
        time.sleep(0.05)
    proc.kill()
    pytest.fail("the build folder never appeared")


@pytest.mark.parametrize(("signum", "code"), [(signal.SIGTERM, 143), (signal.SIGINT, 130)])
def test_signal_mid_build_cleans_up_and_exits_128_plus_signal(tiny_checkpoint, tmp_path, signum, code):
    out = tmp_path / "artifacts" / "onnx"
    proc = _start(tiny_checkpoint, out)
    _wait_for_build(out, proc)
    proc.send_signal(signum)
    stdout, stderr = proc.communicate(timeout=60)
    assert proc.returncode == code, stderr
    assert "Traceback" not in stderr and f"interrupted ({signal.Signals(signum).name})" in stderr
    assert list((tmp_path / "artifacts").iterdir()) == []  # no .onnx.build-*, no empty out folder


def test_sigkill_leftover_is_removed_by_the_next_build(tiny_checkpoint, tmp_path):
    from fishopt.io import staging_dir

    out = tmp_path / "artifacts" / "onnx"
    proc = _start(tiny_checkpoint, out)
    left = _wait_for_build(out, proc)
    proc.kill()  # SIGKILL: nothing can clean up
    proc.communicate(timeout=60)
    assert left.is_dir()
    with staging_dir(out) as tmp:
        (tmp / "model.onnx").write_bytes(b"ok")
    assert sorted(p.name for p in (tmp_path / "artifacts").iterdir()) == ["onnx"]
