"""Build a deployment bundle: one folder (and optionally ``DIR.tar.gz``) that runs on the device without fishopt.

Steps, all in a temporary folder beside the destination, moved into place only when every check passed:

1. export the ``onnx-fp32`` artifact ``with_preprocessing`` through :func:`fishopt.artifacts.build.build` (its
   parity gate runs), lower it to opset 17 when that is lossless, quantize it for ``int8``, append a Softmax;
2. measure it on the checkpoint's whole test split with onnxruntime (accuracy, agreement with the checkpoint;
   ``int8`` must stay within ``max_drop`` points of the checkpoint's top-1);
3. write golden images + ``golden.json``, ``labels.json``, ``bundle.json``, the programs, ``build_engine.sh``
   (Jetson), ``Dockerfile``, ``requirements.txt`` and ``README.md``;
4. run the bundle's own ``verify.py`` (onnxruntime) in a subprocess: the bundle must pass its own check.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from fishopt import __version__
from fishopt.artifacts.build import build
from fishopt.artifacts.calibration import calibration_images
from fishopt.artifacts.pipeline_check import choose_pipeline
from fishopt.artifacts.runtime import run_batches
from fishopt.backends.onnx.runtime import OnnxRuntime
from fishopt.checkpoint import LoadedCheckpoint, SplitImages, as_checkpoint
from fishopt.data.decode import PIPELINES
from fishopt.deploy import model as bm
from fishopt.deploy import render
from fishopt.deploy.golden import GOLDEN_JSON, load_test_set, pick_golden, write_golden
from fishopt.deploy.int8 import quantize_raw
from fishopt.deploy.targets import (
    EXPORT_FORMAT,
    TOLERANCE,
    Target,
    get_target,
    jetson_requirements,
    onnxruntime_requirement,
)
from fishopt.errors import OutputError, ParityError
from fishopt.io import atomic_write, atomic_write_json, file_sha256, publish_modes, staging_dir
from fishopt.training.metrics import classification_report

log = logging.getLogger(__name__)

MODEL_FILE = "model.onnx"
ENGINE_FILE = "model.engine"
DEFAULT_MAX_BATCH = 32
#: What verify.py compares a runtime's logits with, per its precision: the checkpoint's (FP32/FP16), or the INT8
#: model's own on the build machine (INT8 error is the artifact's, gated on the whole test split at build time).
COMPARE_WITH = {"fp32": "reference_logits", "fp16": "reference_logits", "int8": "artifact_logits"}


@dataclass
class BundleResult:
    """What :func:`build_bundle` made.

    Attributes:
        out_dir: The bundle folder.
        archive: ``DIR.tar.gz`` when requested.
        bundle: The content of ``bundle.json``.
        verify: The result of the bundle's own ``verify.py`` on the build machine.
        size_bytes: Total size of the bundle folder.
    """

    out_dir: Path
    archive: Path | None
    bundle: dict[str, Any]
    verify: dict[str, Any]
    size_bytes: int


def archive_path(out: Path) -> Path:
    """``DIR.tar.gz`` beside the bundle folder."""
    return out.with_name(out.name + ".tar.gz")


def check_destination(out: Path, overwrite: bool, archive: bool) -> None:
    """Refuse an existing bundle folder or archive unless ``overwrite``.

    Raises:
        OutputError: If it exists (and ``overwrite`` is off) or is a file.
    """
    if out.exists() and not out.is_dir():
        raise OutputError(f"{str(out)!r} exists and is a file; choose another --out")
    if out.is_dir() and any(out.iterdir()) and not overwrite:
        raise OutputError(f"bundle folder {str(out)!r} exists; choose another --out or pass --overwrite")
    if archive and archive_path(out).exists() and not overwrite:
        raise OutputError(f"archive {str(archive_path(out))!r} exists; choose another --out or pass --overwrite")


def build_bundle(
    checkpoint: LoadedCheckpoint | str | os.PathLike[str],
    out: str | os.PathLike[str],
    *,
    target: str = "cpu",
    precision: str | None = None,
    archive: bool = False,
    overwrite: bool = False,
    data: str | None = None,
    max_drop: float = 1.0,
    calib_images: int = 128,
    keep_opset: bool = False,
    golden_per_class: int = 1,
) -> BundleResult:
    """Build, self-check and write a deployment bundle.

    Args:
        checkpoint: The loaded checkpoint (or the path of a ``model.pt`` written by ``fishopt train``).
        out: Bundle folder to create.
        target: ``jetson`` or ``cpu`` (:data:`fishopt.deploy.targets.TARGETS`).
        precision: ``fp32``, ``fp16`` (Jetson) or ``int8``; default: the target's.
        archive: Also write ``DIR.tar.gz``.
        overwrite: Replace an existing bundle folder / archive.
        data: Data root (default ``$FISHOPT_DATA``, then the checkpoint's recorded root).
        max_drop: Largest top-1 drop (points) on the test split an ``int8`` bundle may have.
        calib_images: Train images to calibrate ``int8`` with.
        keep_opset: Keep the exporter's opset instead of lowering it to 17.
        golden_per_class: Golden images per class.

    Returns:
        The :class:`BundleResult`.

    Raises:
        ConfigError: Unknown target or precision (lists the valid ones).
        OutputError: The folder or archive exists (without ``overwrite``) or cannot be written.
        CheckpointError, DataError, SplitError: Bad checkpoint or data.
        ParityError: The model or the bundle's own verify.py disagrees with the checkpoint.
    """
    tgt = get_target(target)
    precision = tgt.check_precision(precision)
    out = Path(out)
    check_destination(out, overwrite, archive)
    with staging_dir(out) as tmp:  # fails here on a read-only place, before any work; removed on any failure
        ckpt = as_checkpoint(checkpoint)
        test = load_test_set(ckpt, data)
        settings = {
            "max_drop": max_drop,
            "calib_images": calib_images,
            "keep_opset": keep_opset,
            "golden_per_class": golden_per_class,
        }
        bundle = _assemble(tmp, ckpt, test, tgt, precision, settings)
        verify = self_check(tmp)
        publish_modes(tmp, executable_suffixes=(".py", ".sh"))
    tar = write_archive(out) if archive else None
    size = sum(p.stat().st_size for p in out.rglob("*") if p.is_file())
    log.info("wrote bundle %s (%s, %s, %.1f kB)", out, tgt.name, precision, size / 1e3)
    return BundleResult(out_dir=out, archive=tar, bundle=bundle, verify=verify, size_bytes=size)


def _assemble(
    folder: Path, ckpt: LoadedCheckpoint, test: SplitImages, target: Target, precision: str, settings: dict[str, Any]
) -> dict[str, Any]:
    """Write every file of the bundle into ``folder``; return ``bundle.json``'s content."""

    model_info = make_model(folder, ckpt, test, target, precision, settings)
    reference = ckpt.logits(test.images)
    artifact = run_batches(OnnxRuntime.load(folder / MODEL_FILE), test.nhwc(), 64)
    labels = test.labels.numpy()
    accuracy = measure(artifact, reference, labels, ckpt.meta["class_names"], precision, settings["max_drop"])
    preprocess = gate_pipeline(ckpt, test)
    picks = pick_golden(reference, labels, settings["golden_per_class"])
    golden = write_golden(folder, test, picks, reference, artifact, ckpt.meta["class_names"])
    atomic_write_json(folder / GOLDEN_JSON, golden)
    atomic_write_json(folder / "labels.json", {str(i): n for i, n in enumerate(ckpt.meta["class_names"])})
    bundle = bundle_json(ckpt, target, precision, model_info, accuracy)
    bundle["preprocess"] = preprocess
    atomic_write_json(folder / "bundle.json", bundle)
    render.write_programs(folder)
    render.write_requirements(folder, bundle)
    render.write_dockerfile(folder, bundle, target)
    render.write_readme(folder, bundle, target)
    if target.tensorrt:
        render.write_build_engine(folder, bundle, target)
    return bundle


def gate_pipeline(ckpt: LoadedCheckpoint, test: SplitImages) -> dict[str, Any]:
    """The decode pipeline ``infer.py`` takes: the fastest that keeps the checkpoint's answers on the test split.

    Measured with :func:`fishopt.artifacts.pipeline_check.choose_pipeline` on the test split's own files (the
    verdict is cached), and written to ``bundle.json`` as ``preprocess``.
    """
    pipeline, checks = choose_pipeline(ckpt, test.files, test.labels.numpy(), ckpt.meta["load_size"])
    return {
        "pipeline": pipeline,
        "choices": list(PIPELINES),
        "checked_on": f"the test split's {len(test)} image files at their own size",
        "rule": checks[0]["rule"],
        "checks": [
            {k: c[k] for k in ("pipeline", "n", "agreement", "top1_fast", "top1_today", "delta_points", "taken")}
            for c in checks
        ],
    }


def make_model(
    folder: Path, ckpt: LoadedCheckpoint, test: SplitImages, target: Target, precision: str, settings: dict[str, Any]
) -> dict[str, Any]:
    """Export, lower, quantize and finish ``folder/model.onnx``; return its ``bundle.json`` description."""
    import onnx

    work = folder / ".export"
    sanitize = target.tensorrt and _can_sanitize()
    result = build(
        EXPORT_FORMAT,
        ckpt,
        work / "onnx",
        options={"with_preprocessing": True, "sanitize": sanitize},
        verify=True,
        parity_set=test,
    )
    logits = result.manifest["metadata"].get("output_name", "logits")
    graph = bm.keep_only_output(onnx.load(str(result.artifact)), logits)
    if not settings["keep_opset"]:
        graph = bm.lower_opset(graph)
    fp32 = work / "fp32.onnx"
    onnx.save(graph, str(fp32))
    if precision == "int8":
        graph = _quantize(fp32, work, ckpt, target, settings["calib_images"])
    probs = bm.add_probabilities(graph, logits)
    bm.set_metadata(
        graph,
        {
            "opset": bm.opset_of(graph),
            "precision": precision,
            "format": f"bundle-{target.name}-{precision}",
            "probs_name": probs,
        },
    )
    onnx.checker.check_model(graph, full_check=True)
    path = folder / MODEL_FILE
    onnx.save(graph, str(path))
    if precision != "int8":
        bm.same_outputs(result.artifact, path, test.nhwc()[:8], logits)
    info = bm.describe(graph, logits, probs)
    info.update(
        sanitized=sanitize,
        file=MODEL_FILE,
        precision="int8" if precision == "int8" else "fp32",
        sha256=file_sha256(path),
        bytes=path.stat().st_size,
        source_format=EXPORT_FORMAT,
        exporter_parity=result.parity.to_dict() if result.parity is not None else None,
    )
    shutil.rmtree(work)
    return info


def _can_sanitize() -> bool:
    """Whether polygraphy + onnx-graphsurgeon (constant folding for TensorRT) are installed; optional."""
    import importlib.util

    ok = all(importlib.util.find_spec(m) is not None for m in ("polygraphy", "onnx_graphsurgeon"))
    if not ok:
        log.warning(
            "polygraphy/onnx-graphsurgeon not installed: the Jetson model is not constant-folded "
            "(TensorRT folds it itself); install them for a sanitized graph"
        )
    return ok


def _quantize(fp32: Path, work: Path, ckpt: LoadedCheckpoint, target: Target, calib_images: int) -> Any:
    import onnx

    images = calibration_images(ckpt, calib_images).nhwc()
    out = quantize_raw(fp32, work / "int8.onnx", images, tensorrt=target.tensorrt)
    graph = onnx.load(str(out))
    source = onnx.load(str(fp32), load_external_data=False)
    del graph.metadata_props[:]  # some onnxruntime versions drop metadata_props, others keep them
    graph.metadata_props.extend(source.metadata_props)
    return graph


def measure(
    artifact: np.ndarray,
    reference: np.ndarray,
    labels: np.ndarray,
    class_names: list[str],
    precision: str,
    max_drop: float,
) -> dict[str, Any]:
    """Accuracy of the bundled model and the checkpoint on the test split, and their top-1 agreement.

    Raises:
        ParityError: FP32/FP16 models must agree with the checkpoint on every test image; INT8 models must stay
            within ``max_drop`` points of its top-1.
    """
    import onnxruntime as ort
    import torch

    preds, ref_preds = artifact.argmax(1), reference.argmax(1)
    report = classification_report(torch.from_numpy(preds), torch.from_numpy(labels), class_names)
    ref_top1 = float((ref_preds == labels).mean())
    agreement = float((preds == ref_preds).mean())
    drop = (ref_top1 - report["top1"]) * 100
    if precision != "int8" and agreement < 1.0:
        raise ParityError(
            f"the bundled model disagrees with the checkpoint on {1 - agreement:.2%} of the test split; "
            "report this as a bug (the exporter's parity gate passed)"
        )
    if precision == "int8" and drop > max_drop:
        raise ParityError(
            f"INT8 loses {drop:.2f} points of top-1 on the test split (allowed {max_drop}); use more "
            "--calib-images, a larger --max-drop, or deploy fp16/fp32"
        )
    return {
        "split": "test",
        "n": int(len(labels)),
        "top1": round(float(report["top1"]), 6),
        "macro_f1": round(float(report["macro_f1"]), 6),
        "checkpoint_top1": round(ref_top1, 6),
        "top1_agreement_with_checkpoint": round(agreement, 6),
        "max_logit_diff_vs_checkpoint": round(float(np.abs(artifact - reference).max()), 6),
        "measured_with": f"onnxruntime {ort.__version__} (CPU)",
    }


def bundle_json(
    ckpt: LoadedCheckpoint, target: Target, precision: str, model_info: dict[str, Any], accuracy: dict[str, Any]
) -> dict[str, Any]:
    """The content of ``bundle.json``."""

    meta = ckpt.meta
    requirements = {
        "python": ">=3.8",
        "numpy": ">=1.21",
        "pillow": ">=9.0",
        "onnxruntime": onnxruntime_requirement(model_info["opset"]),
    }
    bundle: dict[str, Any] = {
        "format": "fishopt-bundle",
        "version": 1,
        "target": target.name,
        "precision": precision,
        "fishopt_version": __version__,
        "created": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "class_names": list(meta["class_names"]),
        "labels_file": "labels.json",
        "input_size": list(meta["input_size"]),
        "load_size": list(meta["load_size"]),
        "mean": list(meta["mean"]),
        "std": list(meta["std"]),
        "recipe": meta.get("recipe"),
        "checkpoint": {"file": ckpt.path.name, "sha256": file_sha256(ckpt.path), "model": meta["model"]["name"]},
        "model": model_info,
        "accuracy": accuracy,
        "requirements": requirements,
        "verify": {
            "golden": "golden.json",
            "tolerance": dict(TOLERANCE),
            "compare_with": dict(COMPARE_WITH),
            "rule": "per runtime precision: top-1 agreement 100 % and max |logit diff| <= "
            "tolerance * max(1, max |expected logit|)",
        },
    }
    if target.tensorrt:
        requirements.update(jetson_requirements(model_info["opset"]))
        bundle["engine"] = {"file": ENGINE_FILE, "built_by": "build_engine.sh", "max_batch": DEFAULT_MAX_BATCH}
    return bundle


def self_check(folder: Path) -> dict[str, Any]:
    """Run the bundle's own verify.py (onnxruntime) in a subprocess; return its result.

    Raises:
        ParityError: If it does not pass.
    """
    env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1"}  # no __pycache__ in the bundle
    proc = subprocess.run(
        [sys.executable, "verify.py", "--runtime", "onnxruntime", "--json"],
        cwd=folder,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
        env=env,
    )
    try:
        result = json.loads(proc.stdout.strip().splitlines()[-1])
    except (IndexError, json.JSONDecodeError):
        raise ParityError(f"the bundle's verify.py failed on the build machine: {proc.stderr.strip()}") from None
    if proc.returncode != 0 or not result.get("passed"):
        raise ParityError(f"the bundle's verify.py failed on the build machine: {result}")
    return result


def write_archive(out: Path) -> Path:
    """Write ``DIR.tar.gz`` (atomically) holding the bundle folder as ``DIR/``."""
    import tarfile

    def writer(tmp: Path) -> None:
        with tarfile.open(tmp, "w:gz") as tar:
            tar.add(out, arcname=out.name)

    return atomic_write(archive_path(out), writer)
