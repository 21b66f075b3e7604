"""Artifacts as the monitor sees them: the ONE module of :mod:`fishopt.monitor` that calls into the format
registry and the runtimes.

The registry (``fishopt.artifacts.registry``) and the runtimes (``fishopt.backends``) are moving
(to ``fishopt.artifacts.registry`` and ``fishopt.backends.<name>.runtime``); every call into them from the
monitor is here, so the move changes this file only. Embeddings come from the artifact's second output
(:meth:`fishopt.artifacts.runtime.Runtime.outputs`; ONNX and OpenVINO graphs), or from a forward hook for PyTorch
eager artifacts.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from fishopt.artifacts.metadata import check_metadata
from fishopt.artifacts.registry import get_format
from fishopt.errors import CheckpointError
from fishopt.io import file_sha256
from fishopt.monitor.imagestats import IMAGE_STATS, center_crop, image_statistics

MANIFEST = "manifest.json"
#: Images per runtime call (static-batch artifacts use their own batch size).
BATCH = 64


def read_manifest(folder: str | Path) -> dict[str, Any]:
    """The ``manifest.json`` of an artifact folder.

    Raises:
        CheckpointError: If the folder or its manifest is missing or unreadable.
    """
    folder = Path(folder)
    path = folder / MANIFEST
    if not folder.is_dir():
        raise CheckpointError(
            f"artifact folder {str(folder)!r} not found; pass a folder written by 'fishopt export', "
            "'fishopt quantize' or 'fishopt compile'"
        )
    if not path.is_file():
        raise CheckpointError(
            f"{str(folder)!r} has no {MANIFEST}: it is not an artifact folder; pass a folder written "
            "by 'fishopt export', 'fishopt quantize' or 'fishopt compile'"
        )
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise CheckpointError(f"{str(path)!r} is unreadable ({exc}); rebuild the artifact") from exc
    for key in ("format", "artifact"):
        if key not in manifest:
            raise CheckpointError(f"{str(path)!r} lacks {key!r}; rebuild the artifact")
    return manifest


def artifact_file(folder: str | Path, manifest: dict[str, Any] | None = None) -> Path:
    """The main artifact file of a folder (``manifest["artifact"]``)."""
    manifest = manifest or read_manifest(folder)
    return Path(folder) / manifest["artifact"]


@dataclass
class ArtifactModel:
    """A loaded artifact that gives logits (and embeddings where it can) for uint8 images.

    Attributes:
        folder: The artifact folder.
        manifest: Its ``manifest.json``.
        runtime: The loaded :class:`fishopt.artifacts.runtime.Runtime`.
    """

    folder: Path
    manifest: dict[str, Any]
    runtime: Any

    @property
    def meta(self) -> dict[str, Any]:
        """The artifact's metadata (class_names, input_size, load_size, mean, std, raw_input, ...)."""
        return self.runtime.meta

    @property
    def name(self) -> str:
        """Registry name of its format, e.g. ``onnxruntime-int8``."""
        return str(self.manifest["format"])

    @property
    def precision(self) -> str:
        """``fp32``, ``fp16``, ``bf16`` or ``int8``."""
        return str(self.manifest.get("precision") or self.meta.get("precision", "fp32"))

    @property
    def image_size(self) -> tuple[int, int]:
        """(H, W) to decode images at: ``raw_size`` for raw-input artifacts, else the load size."""
        size = self.meta.get("raw_size") if self.runtime.raw_input else None
        size = size or self.meta["load_size"]
        return int(size[0]), int(size[1])

    @property
    def torch_model(self) -> torch.nn.Module | None:
        """The torch module behind a PyTorch eager artifact (``None`` for the others)."""
        model = getattr(self.runtime, "model", None)
        return model if isinstance(model, torch.nn.Module) else None

    def outputs(self, images: torch.Tensor) -> tuple[np.ndarray, np.ndarray | None]:
        """Logits (and penultimate embeddings where available) of uint8 images (N, 3, H, W) at :attr:`image_size`.

        Returns:
            ``(logits (N, C) float32, embeddings (N, D) float32 or None)``.
        """
        from fishopt.data.preprocess import eval_transform

        meta = self.meta
        if self.torch_model is not None:
            from fishopt.monitor.embeddings import penultimate_outputs

            x = eval_transform(images, meta["input_size"], meta["mean"], meta["std"])
            return penultimate_outputs(self.torch_model, x.to(getattr(self.runtime, "device", "cpu")))
        if self.runtime.raw_input:
            inputs = images.permute(0, 2, 3, 1).contiguous().numpy()
        else:
            inputs = eval_transform(images, meta["input_size"], meta["mean"], meta["std"]).numpy()
        static = meta.get("dynamic_batch") is False
        batch = int(meta.get("batch_size") or 1) if static else BATCH
        logits, embs = [], []
        for i in range(0, len(inputs), batch):
            chunk = inputs[i : i + batch]
            pad = batch - len(chunk) if static else 0
            if pad:
                chunk = np.concatenate([chunk, np.repeat(chunk[-1:], pad, axis=0)])
            out, emb = self.runtime.outputs(chunk)
            logits.append(out[: len(chunk) - pad])
            if emb is not None:
                embs.append(emb[: len(chunk) - pad])
        n_classes = len(meta["class_names"])
        if not logits:
            return np.zeros((0, n_classes), np.float32), None
        return np.concatenate(logits), (np.concatenate(embs) if len(embs) == len(logits) else None)

    def input_statistics(self, images: torch.Tensor) -> np.ndarray | None:
        """Input statistics (:func:`fishopt.monitor.imagestats.image_statistics`) of what the model sees of uint8
        images (N, 3, H, W) at :attr:`image_size`: their center crop at the input size.

        Returns:
            (N, len(IMAGE_STATS)) float32, or ``None`` for a raw-input artifact at another size than the load
            size (a camera-size graph: its crop would not be comparable).
        """
        if tuple(self.image_size) != tuple(int(v) for v in self.meta["load_size"]):
            return None
        crop = center_crop(
            images.numpy() if isinstance(images, torch.Tensor) else np.asarray(images), self.meta["input_size"]
        )
        if len(crop) == 0:
            return np.zeros((0, len(IMAGE_STATS)), np.float32)
        return np.concatenate([image_statistics(crop[i : i + BATCH]) for i in range(0, len(crop), BATCH)])

    def predictor(self) -> Callable[[torch.Tensor], np.ndarray]:
        """A callable uint8 images (N, 3, H, W) at :attr:`image_size` -> logits (N, C)."""
        return lambda images: self.outputs(images)[0]

    def close(self) -> None:
        """Free the runtime."""
        self.runtime.close()


def load_artifact(folder: str | Path, threads: int | None = None) -> ArtifactModel:
    """Load an artifact folder through the format registry.

    Args:
        folder: A folder written by ``fishopt export``/``quantize``/``compile``.
        threads: Runtime threads (``None``: the runtime's default).

    Raises:
        CheckpointError: Missing folder or manifest, or metadata without the keys every artifact has.
        ConfigError: The manifest names a format the registry does not know.
        MissingDependencyError, BackendUnavailableError: Its runtime cannot run here.
    """

    folder = Path(folder)
    manifest = read_manifest(folder)
    fmt = get_format(manifest["format"])
    fmt.check_available()
    path = artifact_file(folder, manifest)
    if not path.exists():
        raise CheckpointError(f"artifact file {str(path)!r} named by the manifest is missing; rebuild the artifact")
    runtime = fmt.load_runtime().load(path, threads=threads)
    check_metadata(runtime.meta, path)
    return ArtifactModel(folder=folder, manifest=manifest, runtime=runtime)


def runtime_predictor(runtime: Any, meta: dict[str, Any]) -> Callable[[torch.Tensor], np.ndarray]:
    """A callable uint8 images (N, 3, H, W) at the load size -> logits, for a runtime loaded elsewhere.

    For callers that hold a loaded :class:`fishopt.artifacts.runtime.Runtime` already (the benchmark); raw-input
    runtimes must take the load size (their ``raw_size``, if any, equal to it).

    Args:
        runtime: The loaded runtime.
        meta: The checkpoint's metadata (input_size, mean, std, load_size, class_names).
    """
    from fishopt.artifacts.parity import runtime_logits

    return lambda images: runtime_logits(runtime, images, meta)


def source_checkpoint(model: ArtifactModel, checkpoint: str | Path | None = None) -> Path:
    """The checkpoint an artifact was built from: ``checkpoint`` or the manifest's ``source_checkpoint``, checked
    by SHA-256 against the artifact's metadata.

    Raises:
        CheckpointError: If it is not here or is another checkpoint than the artifact's source.
    """

    path = Path(checkpoint or model.manifest.get("source_checkpoint") or "")
    if not path.is_file():
        raise CheckpointError(
            f"the checkpoint artifact {str(model.folder)!r} was built from ({str(path)!r}) is not "
            "here; pass --checkpoint model.pt (the checkpoint it was built from)"
        )
    expected = model.meta.get("source_checkpoint_sha256")
    if expected and file_sha256(path) != expected:
        raise CheckpointError(
            f"checkpoint {str(path)!r} is not the one artifact {str(model.folder)!r} was built from "
            "(SHA-256 differs); pass the checkpoint it was built from"
        )
    return path
