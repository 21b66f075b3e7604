"""One verb for every artifact: :func:`build` (used by ``fishopt export``, ``compile`` and ``quantize``).

``build`` validates the options against the registry, checks the format can be built here, builds into
a temporary folder beside ``out_dir``, loads the artifact through its runtime and runs the parity gate
(:mod:`fishopt.export.parity`), writes ``manifest.json``, and only then moves the folder into place: a
failed build or parity check leaves nothing behind.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fishopt.errors import ConfigError
from fishopt.io import check_new_dir, staging_dir

log = logging.getLogger(__name__)


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
    parity: Any | None


def clean_options(options: dict[str, Any] | None) -> dict[str, Any]:
    """Drop unset options (``None``/``False``) and check the values of the generic ones.

    Raises:
        ConfigError: For a non-positive ``batch_size``/``calib_images``/``opset`` or a malformed ``raw_size``.
    """
    opts = {k: v for k, v in (options or {}).items() if v is not None and v is not False}
    for key in ("batch_size", "calib_images", "opset"):
        if key in opts and (not isinstance(opts[key], int) or isinstance(opts[key], bool) or opts[key] < 1):
            raise ConfigError(f"{key} must be a positive integer, got {opts[key]!r}")
    if "raw_size" in opts:
        try:
            opts["raw_size"] = [int(v) for v in opts["raw_size"]]
        except (TypeError, ValueError) as exc:
            raise ConfigError(f"raw_size must be two integers (height, width), got {opts['raw_size']!r}") from exc
        if len(opts["raw_size"]) != 2:
            raise ConfigError(f"raw_size must be two integers (height, width), got {opts['raw_size']!r}")
    return opts


def check_output_dir(out: Path, checkpoint: Path) -> None:
    """Refuse output folders that ``--overwrite`` would destroy by accident.

    Raises:
        OutputError: If ``out`` holds the checkpoint or is the current folder (or one above it).
    """
    from fishopt.errors import OutputError

    target = out.resolve()
    if target == checkpoint.resolve().parent or target in checkpoint.resolve().parents:
        raise OutputError(f"output folder {str(out)!r} contains the checkpoint {checkpoint.name}; choose another --out")
    cwd = Path.cwd().resolve()
    if target == cwd or target in cwd.parents:
        raise OutputError(f"output folder {str(out)!r} is the current folder or above it; choose a new subfolder")


def _verify(fmt, ckpt, artifact: Path, parity_images: int, threads: int | None, data_root: str | Path | None):
    from fishopt.export.parity import check_parity, load_split_images
    from fishopt.training.checkpoint import check_compatible, load_checkpoint

    reference = load_checkpoint(ckpt.path)  # a fresh copy: a builder may have changed ckpt.model in place
    runtime = fmt.load_runtime_cls().load(artifact, threads=threads)
    check_compatible(reference.meta, runtime.meta.get("class_names"), runtime.meta.get("input_size"), what="the artifact")
    images, labels = load_split_images(ckpt, "test", parity_images, data_root=data_root)
    raw = None
    raw_size = runtime.meta.get("raw_size")
    if runtime.raw_input and raw_size and list(raw_size) != list(ckpt.meta["load_size"]):
        raw, _ = load_split_images(ckpt, "test", parity_images, size=raw_size, data_root=data_root)
    report = check_parity(reference, runtime, images, labels, precision=fmt.precision, atol=fmt.atol, raw_images=raw)
    info = {k: getattr(runtime, k) for k in ("load_seconds", "inference_precision") if hasattr(runtime, k)}
    meta = runtime.meta
    runtime.close()
    return report, meta, info


def build(format_name: str, checkpoint: str | Path, out_dir: str | Path, *, options: dict[str, Any] | None = None,
          verify: bool = True, overwrite: bool = False, parity_images: int = 256, threads: int | None = None,
          data_root: str | Path | None = None) -> BuildResult:
    """Build, verify and write one artifact.

    Args:
        format_name: A registered format (:func:`fishopt.export.registry.list_formats`).
        checkpoint: ``model.pt`` written by ``fishopt train``.
        out_dir: Output folder (must not exist or be empty, unless ``overwrite``).
        options: Format options (see :mod:`fishopt.export.formats`); unset ones may be ``None``/``False``.
        verify: Run the parity gate (``False``: skip it and record that in the manifest).
        overwrite: Replace a non-empty ``out_dir``.
        parity_images: Test images for the parity gate.
        threads: Threads for the runtime during the parity check.
        data_root: Data root for the parity images (default ``$FISHOPT_DATA``, then the checkpoint's root).

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
    from fishopt.export.manifest import write_manifest
    from fishopt.export.metadata import artifact_metadata
    from fishopt.export.registry import get_format
    from fishopt.training.checkpoint import load_checkpoint

    fmt = get_format(format_name)
    opts = clean_options(options)
    fmt.check_options(opts)
    fmt.check_available()
    if parity_images < 1:
        raise ConfigError(f"parity_images must be at least 1, got {parity_images}")
    ckpt = load_checkpoint(checkpoint)
    out = Path(out_dir)
    check_output_dir(out, ckpt.path)
    check_new_dir(out, overwrite=overwrite)
    with staging_dir(out) as tmp:  # removed on any failure, Ctrl-C or SIGTERM; moved to out when verified
        start = time.perf_counter()
        meta = artifact_metadata(ckpt, fmt.name, fmt.precision)
        artifact = Path(fmt.load_builder()(ckpt, tmp, meta=meta, **opts))
        build_seconds = time.perf_counter() - start
        report, info = None, {}
        if verify:
            report, meta, info = _verify(fmt, ckpt, artifact, parity_images, threads, data_root)
        manifest = write_manifest(tmp, fmt=fmt, artifact=artifact, checkpoint=ckpt.path, metadata=meta, options=opts,
                                  parity=report.to_dict() if report else None, verified=verify,
                                  build_seconds=build_seconds, runtime_info=info)
    log.info("wrote %s (%s)%s", out, fmt.name, "" if verify else " without the parity check (--no-verify)")
    return BuildResult(out_dir=out, artifact=out / artifact.relative_to(tmp), manifest=manifest, parity=report)
