"""``build_bundle``: what a bundle holds, that it checks itself, and how it refuses bad input."""

from __future__ import annotations

import ast
import json
import py_compile
import sys
import tarfile
from pathlib import Path

import numpy as np
import pytest
from deploy_helpers import run_program

from fishopt.data.decode import PIPELINES
from fishopt.errors import ConfigError, OutputError
from fishopt.io import file_sha256

ALLOWED_IMPORTS = {
    "fishdecode",
    "importlib",
    "io",
    "argparse",
    "ctypes",
    "functools",
    "hashlib",
    "json",
    "sys",
    "pathlib",
    "numpy",
    "PIL",
    "onnxruntime",
    "tensorrt",
    "__future__",
    "infer",
    "math",
    "os",
    "platform",
    "time",
}


def test_cpu_bundle_files_and_metadata(bundle_of) -> None:
    result = bundle_of("cpu")
    out, bundle = result.out_dir, result.bundle
    for name in (
        "model.onnx",
        "labels.json",
        "bundle.json",
        "infer.py",
        "verify.py",
        "benchmark.py",
        "Dockerfile",
        "README.md",
        "requirements.txt",
        "golden.json",
    ):
        assert (out / name).is_file(), name
    assert not (out / "build_engine.sh").exists() and not (out / ".export").exists()
    assert not (out / "__pycache__").exists()
    assert json.loads((out / "bundle.json").read_text()) == bundle
    assert bundle["model"]["sha256"] == file_sha256(out / "model.onnx")
    assert bundle["checkpoint"]["sha256"] and bundle["fishopt_version"] and bundle["precision"] == "fp32"
    assert bundle["model"]["input"]["shape"][1:] == [*bundle["load_size"], 3]
    assert bundle["accuracy"]["top1_agreement_with_checkpoint"] == 1.0 and bundle["accuracy"]["n"] > 0
    pre = bundle["preprocess"]  # the decode pipeline infer.py takes, gated on the test split
    assert pre["pipeline"] in PIPELINES and pre["checks"][0]["pipeline"] == "turbo"
    assert (pre["pipeline"] == "turbo") == pre["checks"][0]["taken"]
    assert all(c["n"] == bundle["accuracy"]["n"] for c in pre["checks"])
    assert f"through the `{pre['pipeline']}` pipeline" in (out / "README.md").read_text()
    labels = json.loads((out / "labels.json").read_text())
    assert list(labels.values()) == bundle["class_names"]
    golden = json.loads((out / "golden.json").read_text())
    assert len(golden["images"]) == len(bundle["class_names"])
    assert "FROM python:3.11-slim" in (out / "Dockerfile").read_text()
    assert result.verify["passed"] and result.verify["top1_agreement"] == 1.0


def test_model_returns_logits_and_probabilities(bundle_of) -> None:
    import onnx
    import onnxruntime as ort

    result = bundle_of("cpu")
    model = onnx.load(str(result.out_dir / "model.onnx"))
    assert [o.name for o in model.graph.output] == ["logits", "probs"]
    assert result.bundle["model"]["opset"] == 17  # lowered from the exporter's opset: TensorRT 8.5+ parses it
    session = ort.InferenceSession(str(result.out_dir / "model.onnx"))
    h, w = result.bundle["load_size"]
    x = np.random.default_rng(0).integers(0, 256, (2, h, w, 3), dtype=np.uint8)
    logits, probs = session.run(None, {"images": x})
    soft = np.exp(logits - logits.max(1, keepdims=True))
    np.testing.assert_allclose(probs, soft / soft.sum(1, keepdims=True), atol=1e-6)


def test_jetson_bundle_has_engine_script_and_l4t_image(bundle_of) -> None:
    result = bundle_of("jetson")
    out, bundle = result.out_dir, result.bundle
    assert bundle["precision"] == "fp16" and bundle["model"]["precision"] == "fp32"
    assert bundle["requirements"]["tensorrt"] == ">=8.5,<11" and bundle["requirements"]["jetpack"] == "5.1 - 6.x"
    script = (out / "build_engine.sh").read_text()
    assert "FLAGS=(--fp16)" in script and bundle["model"]["sha256"] in script and "{{" not in script
    assert (out / "build_engine.sh").stat().st_mode & 0o111
    assert "FROM ${BASE_IMAGE}" in (out / "Dockerfile").read_text()
    assert "nvcr.io/nvidia/l4t-jetpack" in (out / "Dockerfile").read_text()
    assert "./build_engine.sh" in (out / "README.md").read_text()


def test_jetson_int8_is_symmetric_qdq(bundle_of) -> None:
    import onnx
    from onnx import numpy_helper

    result = bundle_of("jetson", "int8")
    model = onnx.load(str(result.out_dir / "model.onnx"))
    ops = [n.op_type for n in model.graph.node]
    assert "QuantizeLinear" in ops and "DequantizeLinear" in ops
    inits = {i.name: numpy_helper.to_array(i) for i in model.graph.initializer}
    zero_points = [inits[n.input[2]] for n in model.graph.node if n.op_type == "QuantizeLinear" and len(n.input) > 2]
    assert zero_points and all(z.dtype == np.int8 and not z.any() for z in zero_points)  # TensorRT: int8, zero point 0
    assert "FLAGS=(--int8 --fp16)" in (result.out_dir / "build_engine.sh").read_text()
    assert result.verify["passed"] and result.bundle["model"]["precision"] == "int8"


def test_archive_holds_the_folder(bundle_of) -> None:
    result = bundle_of("cpu")
    with tarfile.open(result.archive) as tar:
        names = tar.getnames()
    assert f"{result.out_dir.name}/model.onnx" in names and f"{result.out_dir.name}/golden.json" in names


def test_programs_import_nothing_from_fishopt_or_torch(tmp_path: Path) -> None:
    templates = Path(__file__).resolve().parents[2] / "fishopt" / "deploy" / "templates"
    for name in ("infer.py", "verify.py", "benchmark.py"):
        py_compile.compile(str(templates / name), cfile=str(tmp_path / f"{name}c"), doraise=True)
        tree = ast.parse((templates / name).read_text())
        modules = {a.name.split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
        modules |= {n.module.split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)}
        assert modules <= ALLOWED_IMPORTS, (name, modules - ALLOWED_IMPORTS)


def test_existing_bundle_is_refused_unless_overwrite(bundle_of, deploy_checkpoint: Path) -> None:
    from fishopt.deploy.bundle import build_bundle

    out = bundle_of("cpu").out_dir
    with pytest.raises(OutputError, match="exists; choose another --out or pass --overwrite"):
        build_bundle(deploy_checkpoint, out, target="cpu")


def test_bad_target_and_precision_fail_before_any_work(deploy_checkpoint: Path, tmp_path: Path) -> None:
    from fishopt.deploy.bundle import build_bundle

    with pytest.raises(ConfigError, match="valid choices: cpu, jetson"):
        build_bundle(deploy_checkpoint, tmp_path / "b", target="tpu")
    with pytest.raises(ConfigError, match="valid precisions: fp32, int8"):
        build_bundle(deploy_checkpoint, tmp_path / "b", target="cpu", precision="fp16")
    assert not (tmp_path / "b").exists()


def test_infer_json_and_bad_files(bundle_copy, tmp_path: Path) -> None:
    from PIL import Image

    out = bundle_copy("cpu")
    golden = json.loads((out / "golden.json").read_text())
    first = out / golden["images"][0]["file"]
    gray, rgba = tmp_path / "gray.png", tmp_path / "rgba.png"
    Image.open(first).convert("L").save(gray)
    Image.open(first).convert("RGBA").save(rgba)
    proc = run_program(sys.executable, out, "infer.py", str(out / "golden"), str(gray), str(rgba), "--json")
    assert proc.returncode == 0, proc.stderr
    rows = [json.loads(line) for line in proc.stdout.splitlines()]
    assert [set(r) for r in rows] == [{"file", "label", "prob"}] * (len(golden["images"]) + 2)
    assert [r["label"] for r in rows[:-2]] == [g["reference_label"] for g in golden["images"]]
    bad = tmp_path / "broken.jpg"
    bad.write_bytes(b"\xff\xd8 not really a jpeg")
    proc = run_program(sys.executable, out, "infer.py", str(first), str(bad))
    assert proc.returncode == 1 and "broken.jpg" in proc.stderr and "not a readable image" in proc.stderr
    assert len(proc.stdout.splitlines()) == 1  # the good image is still classified


def test_tampered_model_fails_infer_and_verify(bundle_copy) -> None:
    out = bundle_copy("cpu")
    data = bytearray((out / "model.onnx").read_bytes())
    data[-1] ^= 0xFF
    (out / "model.onnx").write_bytes(bytes(data))
    for program in ("verify.py", "infer.py"):
        args = [str(out / "golden")] if program == "infer.py" else []
        proc = run_program(sys.executable, out, program, *args)
        assert proc.returncode == 2, (program, proc.stderr)
        assert "does not match bundle.json" in proc.stderr and "model.onnx" in proc.stderr


def test_changed_golden_reference_fails_verify(bundle_copy) -> None:
    out = bundle_copy("cpu")
    golden = json.loads((out / "golden.json").read_text())
    golden["images"][0]["reference_logits"] = [v + 1.0 for v in golden["images"][0]["reference_logits"]]
    (out / "golden.json").write_text(json.dumps(golden))
    proc = run_program(sys.executable, out, "verify.py", "--json")
    assert proc.returncode == 1
    assert json.loads(proc.stdout)["passed"] is False


def test_tensorrt_runtime_without_engine_says_build_it(bundle_copy) -> None:
    out = bundle_copy("jetson")
    proc = run_program(sys.executable, out, "verify.py", "--runtime", "tensorrt")
    assert proc.returncode == 2
    assert "build_engine.sh" in proc.stderr or "TensorRT Python bindings" in proc.stderr


def test_benchmark_reports_percentiles(bundle_copy) -> None:
    out = bundle_copy("cpu")
    proc = run_program(sys.executable, out, "benchmark.py", "--iters", "5", "--warmup", "1", "--json")
    assert proc.returncode == 0, proc.stderr
    row = json.loads(proc.stdout)
    assert row["n"] == 5 and row["p50_ms"] <= row["p90_ms"] and row["throughput_ips"] > 0
    assert row["runtime"] == "onnxruntime" and row["precision"] == "fp32"


def test_benchmark_reports_the_end_to_end_split(bundle_copy) -> None:
    out = bundle_copy("cpu")
    proc = run_program(
        sys.executable,
        out,
        "benchmark.py",
        "--iters",
        "5",
        "--warmup",
        "1",
        "--json",
        "--input-sizes",
        "native,1920x1080",
    )
    assert proc.returncode == 0, proc.stderr
    row = json.loads(proc.stdout)
    assert set(row["e2e"]) == {"native", "1920x1080"}
    hd = row["e2e"]["1920x1080"]
    assert hd["decode_p50_ms"] > 0 and hd["model_p50_ms"] > 0 and hd["speedup_vs_full_decode"] > 0
    assert hd["input_over_model"] > 0 and hd["e2e_over_model"] > 0 and hd["bytes"] > row["e2e"]["native"]["bytes"]
    bad = run_program(sys.executable, out, "benchmark.py", "--input-sizes", "huge", "--iters", "1")
    assert bad.returncode == 2 and "--input-sizes" in bad.stderr


def test_bundle_ships_fishopts_decode_module(bundle_of) -> None:
    from fishopt.data import decode

    out = bundle_of("cpu").out_dir
    assert (out / "fishdecode.py").read_text() == Path(decode.__file__).read_text()
    assert "simplejpeg" in (out / "requirements.txt").read_text()
