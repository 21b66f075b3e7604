"""One verb for every artifact: :func:`build` (used by ``fishopt export``, ``compile``, ``quantize``, the benchmark).

``build`` turns the options into the format's config (:mod:`fishopt.artifacts.config`), checks the format can be
built here, computes the reference logits of the checkpoint on the parity images, builds into a staging folder
beside ``out_dir``, loads the artifact through its runtime and runs the parity gate
(:mod:`fishopt.artifacts.parity`), writes ``manifest.json``, and only then moves the folder into place: a failed
build or parity check leaves nothing behind.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fishopt.artifacts.config import recipe
from fishopt.artifacts.manifest import write_manifest
from fishopt.artifacts.metadata import artifact_metadata
from fishopt.artifacts.parity import (
    DEFAULT_IMAGES,
    ParityReport,
    check_parity,
    raw_reference_logits,
    resized_raw_size,
)
from fishopt.artifacts.registry import Format, get_format
from fishopt.checkpoint import LoadedCheckpoint, SplitImages, as_checkpoint, check_compatible
from fishopt.errors import ConfigError, OutputError
from fishopt.io import check_new_dir, staging_dir

log = logging.getLogger(__name__)


@dataclass
class BuildOutput:
    """What a builder returns: the main artifact file and the facts it embedded beside ``meta``.

    Attributes:
        path: The main artifact file inside the build folder.
        facts: Format-specific metadata the builder added (``quantization``, ``dynamic_batch``, ...).
    """

    path: Path
    facts: dict[str, Any] = field(default_factory=dict)


@dataclass
class BuildResult:
    """What :func:`build` made.

    Attributes:
        out_dir: The artifact folder.
        artifact: The main artifact file inside it.
        manifest: The content of ``manifest.json``.
        parity: The parity report (``None`` with ``verify=False``).
    """

    out_dir: Path
    artifact: Path
    manifest: dict[str, Any]
    parity: ParityReport | None


def check_output_dir(out: Path, checkpoint: Path) -> None:
    """Refuse output folders that ``--overwrite`` would destroy by accident.

    Raises:
        OutputError: If ``out`` holds the checkpoint or is the current folder (or one above it).
    """
    target = out.resolve()
    if target == checkpoint.resolve().parent or target in checkpoint.resolve().parents:
        raise OutputError(f"output folder {str(out)!r} contains the checkpoint {checkpoint.name}; choose another --out")
    cwd = Path.cwd().resolve()
    if target == cwd or target in cwd.parents:
        raise OutputError(f"output folder {str(out)!r} is the current folder or above it; choose a new subfolder")


def verify_artifact(
    fmt: Format,
    ckpt: LoadedCheckpoint,
    artifact: Path,
    images: SplitImages,
    reference: Any,
    threads: int | None = None,
    raw_images: Any = None,
) -> tuple[ParityReport, dict[str, Any], dict[str, Any]]:
    """Load ``artifact`` through its runtime and run the parity gate against precomputed reference logits.

    For a raw-input graph that resizes, ``raw_images`` are the parity images at its ``raw_size`` and
    ``reference`` the reference's logits on them (:func:`fishopt.artifacts.parity.raw_reference_logits`).

    Returns:
        The parity report, the metadata read back from the artifact, and runtime facts (load time, the
        inference precision the device chose).

    Raises:
        CheckpointError: The artifact's classes or input size differ from the checkpoint's.
        ParityError: The gate failed.
    """
    runtime = fmt.load_runtime().load(artifact, threads=threads)
    try:
        check_compatible(
            ckpt.meta, runtime.meta.get("class_names"), runtime.meta.get("input_size"), what="the artifact"
        )
        report = check_parity(
            ckpt,
            runtime,
            images.images,
            images.labels,
            precision=fmt.precision,
            atol=fmt.atol,
            raw_images=raw_images,
            reference=reference,
        )
        info = {k: getattr(runtime, k) for k in ("load_seconds", "inference_precision") if hasattr(runtime, k)}
        return report, runtime.meta, info
    finally:
        runtime.close()


def build(
    format_name: str,
    checkpoint: LoadedCheckpoint | str | Path,
    out_dir: str | Path,
    *,
    options: dict[str, Any] | Any | None = None,
    verify: bool = True,
    overwrite: bool = False,
    parity_images: int = DEFAULT_IMAGES,
    threads: int | None = None,
    data_root: str | Path | None = None,
    parity_set: SplitImages | None = None,
) -> BuildResult:
    """Build, verify and write one artifact.

    Args:
        format_name: A registered format (:func:`fishopt.artifacts.registry.list_formats`).
        checkpoint: The loaded checkpoint (or the path of a ``model.pt`` written by ``fishopt train``).
        out_dir: Output folder (must not exist or be empty, unless ``overwrite``).
        options: Build options (a dict, unset ones ``None``, or the format's config object).
        verify: Run the parity gate (``False``: skip it and record that in the manifest).
        overwrite: Replace a non-empty ``out_dir``.
        parity_images: Test images for the parity gate (stratified per class, seed 0).
        threads: Threads for the runtime during the parity check.
        data_root: Data root for the parity images (default ``$FISHOPT_DATA``, then the checkpoint's root).
        parity_set: Parity images the caller has loaded already (instead of ``parity_images`` new ones).

    Returns:
        The :class:`BuildResult`.

    Raises:
        ConfigError: Unknown format, unsupported option or bad option value (lists the valid ones).
        MissingDependencyError: The format's packages are not installed (names the extra).
        BackendUnavailableError: It needs a GPU (or TensorRT) that is not here.
        OutputError: ``out_dir`` exists and is not empty (without ``overwrite``), is not writable, holds the
            checkpoint, or is the current folder.
        CheckpointError: The checkpoint is missing, corrupt or does not fit its model config.
        ParityError: The artifact disagrees with the checkpoint; nothing is written.
    """
    fmt = get_format(format_name)
    config = fmt.make_config(options)
    fmt.check_available()
    if parity_images < 1:
        raise ConfigError(f"parity_images must be at least 1, got {parity_images}")
    ckpt = as_checkpoint(checkpoint)
    out = Path(out_dir)
    check_output_dir(out, ckpt.path)
    images = reference = raw = None
    if verify:  # the reference runs before the build: a builder cannot change what it is judged against
        images = parity_set or ckpt.split_images("test", limit=parity_images, data=data_root)
        raw_size = resized_raw_size(
            ckpt.meta, bool(getattr(config, "with_preprocessing", False)), getattr(config, "raw_size", None)
        )
        if raw_size is None:
            reference = ckpt.logits(images.images)
        else:  # a graph that resizes raw images is judged on those images (see fishopt.artifacts.parity)
            raw = ckpt.split_images("test", limit=len(images), size=raw_size, data=data_root).images
            reference = raw_reference_logits(ckpt, raw)
    check_new_dir(out, overwrite=overwrite)
    with staging_dir(out) as tmp:  # removed on any failure, Ctrl-C or SIGTERM; moved to out when verified
        start = time.perf_counter()
        meta = artifact_metadata(
            ckpt, fmt.name, fmt.precision, recipe=recipe(config, format=fmt.name, precision=fmt.precision)
        )
        output = fmt.load_builder()(ckpt, tmp, meta, config)
        build_seconds = time.perf_counter() - start
        report: ParityReport | None = None
        info: dict[str, Any] = {}
        metadata = {**meta, **output.facts}
        if verify:
            if images is None:  # loaded above whenever verify is set
                raise RuntimeError("the parity images were not loaded")
            report, metadata, info = verify_artifact(fmt, ckpt, output.path, images, reference, threads, raw_images=raw)
        manifest = write_manifest(
            tmp,
            fmt=fmt,
            artifact=output.path,
            checkpoint=ckpt.path,
            metadata=metadata,
            config=config,
            parity=report.to_dict() if report else None,
            verified=verify,
            build_seconds=build_seconds,
            runtime_info=info,
        )
    log.info("wrote %s (%s)%s", out, fmt.name, "" if verify else " without the parity check (--no-verify)")
    return BuildResult(out_dir=out, artifact=out / output.path.relative_to(tmp), manifest=manifest, parity=report)
