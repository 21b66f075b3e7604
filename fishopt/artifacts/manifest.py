"""``manifest.json``: what an export/compile/quantize run made, written into its output folder."""

from __future__ import annotations

import dataclasses
import datetime as dt
import platform
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fishopt import __version__
from fishopt.io import atomic_write_json, file_sha256

if TYPE_CHECKING:
    from fishopt.artifacts.registry import Format

MANIFEST = "manifest.json"
_DIST_OF = {
    "onnx_graphsurgeon": "onnx-graphsurgeon",
    "neural_compressor": "neural-compressor-pt",
    "torch_tensorrt": "torch-tensorrt",
}


def dist_versions(dists: tuple[str, ...] | list[str]) -> dict[str, str | None]:
    """Installed versions of distributions (``None`` where not installed); imports nothing."""
    from importlib.metadata import PackageNotFoundError, version

    out: dict[str, str | None] = {}
    for dist in dists:
        try:
            out[dist] = version(dist)
        except PackageNotFoundError:
            out[dist] = None
    return out


def package_versions(modules: tuple[str, ...] | list[str] = ()) -> dict[str, str | None]:
    """Installed versions of python, fishopt, torch and ``modules`` (``None`` where not installed)."""
    dists = [_DIST_OF.get(module, module) for module in ("torch", *modules)]
    return {"python": platform.python_version(), "fishopt": __version__, **dist_versions(dists)}


def describe_files(folder: Path) -> list[dict[str, Any]]:
    """Every file under ``folder`` (except the manifest): relative path, size in bytes, SHA-256."""
    files = sorted(p for p in Path(folder).rglob("*") if p.is_file() and p.name != MANIFEST)
    return [
        {"path": p.relative_to(folder).as_posix(), "bytes": p.stat().st_size, "sha256": file_sha256(p)} for p in files
    ]


def write_manifest(
    folder: Path,
    *,
    fmt: Format,
    artifact: Path,
    checkpoint: Path,
    metadata: dict[str, Any],
    config: Any,
    parity: dict[str, Any] | None,
    verified: bool,
    build_seconds: float,
    runtime_info: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Write ``folder/manifest.json`` and return its content.

    Args:
        folder: The artifact folder (its files are listed with sizes and hashes).
        fmt: The registry entry of the format.
        artifact: The main artifact file.
        checkpoint: The source checkpoint.
        metadata: The artifact's metadata (as read back from it when verified).
        config: The config it was built with (the format's options).
        parity: The parity report (``None`` with ``--no-verify``).
        verified: Whether the parity gate ran.
        build_seconds: Wall time of the build (without the parity check).
        runtime_info: Extra figures from loading it (load time, actual inference precision).
    """
    files = describe_files(folder)
    manifest = {
        "format": fmt.name,
        "command": fmt.command,
        "backend": fmt.backend,
        "toolkit": fmt.toolkit,
        "method": fmt.method,
        "precision": fmt.precision,
        "artifact": Path(artifact).relative_to(folder).as_posix(),
        "files": files,
        "total_bytes": sum(f["bytes"] for f in files),
        "source_checkpoint": str(checkpoint),
        "options": dataclasses.asdict(config),
        "metadata": metadata,
        "verified": verified,
        "parity": parity,
        "build_seconds": round(build_seconds, 3),
        "runtime_info": runtime_info or {},
        "versions": package_versions(fmt.requires),
        "created": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
    }
    atomic_write_json(Path(folder) / MANIFEST, manifest)
    return manifest
