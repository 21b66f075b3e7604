"""The bundle on the device's software only: a clean venv with numpy, Pillow and onnxruntime (no fishopt, no torch).

``infer.py`` must agree 100 % (top-1) with fishopt's evaluation of the same files, ``verify.py`` must pass, and a
tampered model must fail. Slow: the first run creates the venv (pip, ~10-60 s); later runs reuse it.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from deploy_helpers import run_program

pytestmark = pytest.mark.slow


def fishopt_labels(
    checkpoint: Path, files: list[Path], pipeline: str = "exact", min_margin: float = 0.0
) -> dict[str, str]:
    """fishopt's evaluation of image files: decode, fit to the load size (``exact``: the decode cache's way),
    evaluation transform, model. File name -> label, for the files whose top-2 probabilities differ by more than
    ``min_margin`` (a near-tie flips under any FP32 reordering of the sums)."""
    import torch

    from fishopt.checkpoint import load_checkpoint
    from fishopt.data.decode import decode_and_fit
    from fishopt.data.preprocess import decode_image, fit_to
    from fishopt.training.evaluate import predict

    ckpt = load_checkpoint(checkpoint)
    load = ckpt.meta["load_size"]
    images = torch.stack(
        [
            fit_to(decode_image(f), load)
            if pipeline == "exact"
            else torch.from_numpy(decode_and_fit(f, load, pipeline=pipeline))
            for f in files
        ]
    )
    scores = predict(ckpt.model, images, ckpt.meta)
    top2 = scores.topk(2, dim=1).values
    return {
        f.name: ckpt.meta["class_names"][int(scores[i].argmax())]
        for i, f in enumerate(files)
        if float(top2[i, 0] - top2[i, 1]) > min_margin
    }


def held_out_folder(dest: Path, sources: list[Path]) -> list[Path]:
    """Copy test images into a folder, plus a grayscale and an RGBA version of the first one."""
    from PIL import Image

    dest.mkdir()
    files = []
    for i, src in enumerate(sources):
        files.append(dest / f"{i:03d}{src.suffix}")
        shutil.copyfile(src, files[-1])
    Image.open(sources[0]).convert("L").save(dest / "gray.png")
    Image.open(sources[0]).convert("RGBA").save(dest / "rgba.png")
    return sorted(dest.iterdir())


def infer_labels(python: Path, bundle: Path, folder: Path, *extra: str) -> dict[str, str]:
    proc = run_program(python, bundle, "infer.py", str(folder), "--json", *extra)
    assert proc.returncode == 0, proc.stderr
    rows = [json.loads(line) for line in proc.stdout.splitlines()]
    return {Path(r["file"]).name: r["label"] for r in rows}


def test_clean_venv_has_no_fishopt_or_torch(clean_python: Path) -> None:
    import subprocess

    for module in ("torch", "fishopt"):
        proc = subprocess.run([str(clean_python), "-c", f"import {module}"], capture_output=True, cwd="/", check=False)
        assert proc.returncode != 0, f"{module} is importable in the clean venv"


@pytest.mark.parametrize("target,precision", [("cpu", None), ("jetson", None), ("jetson", "int8"), ("cpu", "int8")])
def test_infer_agrees_with_fishopt_and_verify_passes(
    clean_python: Path, bundle_of, deploy_checkpoint: Path, tmp_path: Path, target: str, precision: str | None
) -> None:
    result = bundle_of(target, precision)
    out = result.out_dir
    proc = run_program(clean_python, out, "verify.py", "--json")
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["passed"]
    golden = json.loads((out / "golden.json").read_text())
    assert infer_labels(clean_python, out, out / "golden") == {
        Path(g["file"]).name: g["reference_label"] for g in golden["images"]
    }
    if precision == "int8":
        return  # INT8 agrees with the FP32 reference within the bundle's accuracy gate, not image by image
    from fishopt.checkpoint import load_checkpoint

    ckpt = load_checkpoint(deploy_checkpoint)
    root = Path(ckpt.meta["data_root"])
    sources = [root / p for p in ckpt.load_split().paths("test")]
    files = held_out_folder(tmp_path / "held-out", sources)
    expected = fishopt_labels(deploy_checkpoint, files)
    assert infer_labels(clean_python, out, tmp_path / "held-out") == expected


def test_tampered_model_fails_in_clean_venv(clean_python: Path, bundle_copy) -> None:
    out = bundle_copy("jetson")
    blob = bytearray((out / "model.onnx").read_bytes())
    blob[len(blob) // 2] ^= 0x01
    (out / "model.onnx").write_bytes(bytes(blob))
    proc = run_program(clean_python, out, "verify.py")
    assert proc.returncode == 2 and "does not match bundle.json" in proc.stderr


def test_real_fish_images_agree(
    clean_python: Path, fish_checkpoint: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Real test-split photos (224x168 JPEG, resized by infer.py): the labels fishopt gives the same pixels.

    The checkpoint is untrained: its top two scores can tie to 2e-4, which ONNX Runtime's FP32 sums flip, so only
    the images decided by more than 1e-3 are compared (at least 50 of 62). The gated pipeline's labels are compared
    with fishopt's through the same pipeline, the ``exact`` ones with today's.
    """
    from fishopt.checkpoint import load_checkpoint
    from fishopt.deploy.bundle import build_bundle

    ckpt = load_checkpoint(fish_checkpoint)
    root = Path(ckpt.meta["data_root"])
    monkeypatch.setenv("FISHOPT_DATA", str(root))
    result = build_bundle(fish_checkpoint, tmp_path / "bundle", target="cpu")
    paths = ckpt.load_split().paths("test")
    pick = np.random.default_rng(0).permutation(len(paths))[:60]
    files = held_out_folder(tmp_path / "photos", [root / paths[i] for i in sorted(pick)])
    gated = json.loads((result.out_dir / "bundle.json").read_text())["preprocess"]["pipeline"]
    for pipeline, extra in ((gated, ()), ("exact", ("--pipeline", "exact"))):
        expected = fishopt_labels(fish_checkpoint, files, pipeline, min_margin=1e-3)
        assert len(expected) >= 50
        got = infer_labels(clean_python, result.out_dir, tmp_path / "photos", *extra)
        assert set(got) == {f.name for f in files}
        assert {name: got[name] for name in expected} == expected, pipeline
    assert run_program(clean_python, result.out_dir, "verify.py").returncode == 0
