"""build_engine.sh (shellcheck + a fake trtexec) and infer.py's engine checks; real TensorRT is not here."""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

FAKE_TRTEXEC = """#!/usr/bin/env bash
echo "&&&& RUNNING TensorRT.trtexec [TensorRT v${FAKE_TRT_CODE}] # trtexec $*"
echo "$*" > "$FAKE_ARGS"
for arg in "$@"; do
    case "$arg" in --saveEngine=*) printf 'not a real engine' > "${arg#--saveEngine=}" ;; esac
done
"""


@pytest.fixture
def jetson(bundle_copy, tmp_path: Path):
    """A private jetson bundle copy and a runner for its build_engine.sh with a fake trtexec."""
    out = bundle_copy("jetson")
    fake = tmp_path / "trtexec"
    fake.write_text(FAKE_TRTEXEC)
    fake.chmod(0o755)
    args_file = tmp_path / "args.txt"

    def run(code: str | None = "100300", **env: str) -> subprocess.CompletedProcess:
        base = {
            "PATH": "/usr/bin:/bin",
            "HOME": str(tmp_path),
            "FAKE_ARGS": str(args_file),
            "FAKE_TRT_CODE": code or "",
        }
        if code is not None:
            base["TRTEXEC"] = str(fake)
        return subprocess.run(
            ["bash", str(out / "build_engine.sh")],
            capture_output=True,
            text=True,
            timeout=60,
            env={**base, **env},
            check=False,
        )

    if subprocess.run(["python3", "-c", "import tensorrt"], capture_output=True, check=False).returncode == 0:
        pytest.skip("python3 imports tensorrt here: the script would read the real version, not the fake banner")
    return out, run, args_file


def test_shellcheck_clean(bundle_of) -> None:
    if shutil.which("shellcheck") is None:
        pytest.skip("shellcheck is not installed (Debian/Ubuntu: apt-get install -y shellcheck)")
    for target, precision in (("jetson", None), ("jetson", "int8")):
        script = bundle_of(target, precision).out_dir / "build_engine.sh"
        proc = subprocess.run(
            ["shellcheck", "--severity=style", str(script)], capture_output=True, text=True, check=False
        )
        assert proc.returncode == 0, proc.stdout


def test_builds_engine_and_records_it(jetson) -> None:
    out, run, args_file = jetson
    proc = run("100300")
    assert proc.returncode == 0, proc.stderr
    info = json.loads((out / "engine.json").read_text())
    bundle = json.loads((out / "bundle.json").read_text())
    assert (
        info["tensorrt"] == "10.3.0"
        and info["precision"] == "fp16"
        and info["model_sha256"] == bundle["model"]["sha256"]
    )
    assert (out / "model.engine").is_file() and not (out / "model.engine.partial").exists()
    args = args_file.read_text()
    h, w = bundle["load_size"]
    assert "--fp16" in args and f"--minShapes=images:1x{h}x{w}x3" in args and f"--maxShapes=images:32x{h}x{w}x3" in args
    assert "--onnx=model.onnx" in args and "--memPoolSize=workspace:1024" in args


def test_tensorrt_8_5_banner_is_accepted(jetson) -> None:
    out, run, _ = jetson
    assert run("8502").returncode == 0
    assert json.loads((out / "engine.json").read_text())["tensorrt"] == "8.5.2"


def test_version_outside_range_is_refused(jetson) -> None:
    out, run, _ = jetson
    proc = run("8401")
    assert proc.returncode == 1 and "TensorRT 8.4.1 is outside the range" in proc.stderr and "JetPack" in proc.stderr
    proc = run("110000")
    assert proc.returncode == 1 and "outside the range" in proc.stderr
    assert not (out / "model.engine").exists()


def test_missing_trtexec_says_where_to_get_it(jetson) -> None:
    if Path("/usr/src/tensorrt/bin/trtexec").exists():
        pytest.skip("a real trtexec is installed here")
    _, run, _ = jetson
    proc = run(None)
    assert proc.returncode == 1
    assert "trtexec not found" in proc.stderr and "nvidia-jetpack" in proc.stderr and "onnxruntime" in proc.stderr


def test_changed_model_is_refused(jetson) -> None:
    out, run, _ = jetson
    (out / "model.onnx").write_bytes((out / "model.onnx").read_bytes() + b"\0")
    proc = run("100300")
    assert proc.returncode == 1 and "does not match bundle.json" in proc.stderr


def test_bad_max_batch_is_refused(jetson) -> None:
    _, run, _ = jetson
    proc = run("100300", MAX_BATCH="lots")
    assert proc.returncode == 1 and "MAX_BATCH must be a positive integer" in proc.stderr


def _infer_module(folder: Path):
    spec = importlib.util.spec_from_file_location("bundle_infer_engine", folder / "infer.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_infer_rejects_stale_engines(bundle_copy) -> None:
    out = bundle_copy("jetson")
    infer = _infer_module(out)
    bundle = infer.load_bundle(out)
    with pytest.raises(infer.BundleError, match="build_engine.sh"):
        infer.check_engine(bundle, out, "10.3.0")
    (out / "model.engine").write_bytes(b"x")
    info = {"model_sha256": bundle["model"]["sha256"], "tensorrt": "10.3.0", "precision": "fp16"}
    (out / "engine.json").write_text(json.dumps(info))
    assert infer.check_engine(bundle, out, "10.3.0.26")[1]["precision"] == "fp16"
    with pytest.raises(infer.BundleError, match="not portable"):
        infer.check_engine(bundle, out, "10.7.0")
    (out / "engine.json").write_text(json.dumps({**info, "model_sha256": "0" * 64}))
    with pytest.raises(infer.BundleError, match="another model"):
        infer.check_engine(bundle, out, "10.3.0")


def test_tensorrt_branch_compiles(bundle_of, tmp_path: Path) -> None:
    import py_compile

    py_compile.compile(str(bundle_of("jetson").out_dir / "infer.py"), cfile=str(tmp_path / "infer.pyc"), doraise=True)
    assert os.access(bundle_of("jetson").out_dir / "infer.py", os.X_OK)
