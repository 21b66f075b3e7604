"""The reference profile a drift check compares new images against, stored with an artifact.

A profile holds the model's softmax outputs and penultimate embeddings on images it never trained on (the
test side of the checkpoint's split: with the default refit recipe, val was trained on), the split unit and
class of each image (the bootstrap of clean windows splits by unit), a PCA of the embeddings to ~32
dimensions and the RBF bandwidth (median heuristic) in that space, and the input statistics of each image
(:mod:`fishopt.monitor.imagestats`).

On disk, in the artifact folder: ``drift_profile.npz`` (the arrays) and ``drift_profile.json`` (a small
header: counts, classes, PCA, bandwidth, where it came from, the SHA-256 of the npz and of the artifact file
it was made for). Both are written atomically, the header last, so a reader never sees half a profile.
"""

from __future__ import annotations

import datetime as dt
import io
import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from fishopt.errors import CheckpointError, DataError
from fishopt.io import atomic_write, atomic_write_json, file_sha256
from fishopt.monitor import stats
from fishopt.monitor.imagestats import IMAGE_STATS

log = logging.getLogger(__name__)

PROFILE_FORMAT = "fishopt-drift-profile"
PROFILE_VERSION = 1
NPZ_NAME = "drift_profile.npz"
HEADER_NAME = "drift_profile.json"
#: Embedding dimensions kept by the PCA.
N_COMPONENTS = 32


def make_profile_hint(folder: str | Path) -> str:
    """How to make a profile for an artifact folder (for error messages)."""
    return (
        f"make one with: fishopt drift {folder} --make-profile (add --checkpoint model.pt if the checkpoint "
        "it was built from has moved), or from Python: fishopt.monitor.make_artifact_profile(folder)"
    )


@dataclass
class DriftProfile:
    """Reference outputs of a model on held-out images.

    Attributes:
        probs: Softmax outputs (N, C), float32.
        class_names: The class map (C names).
        embeddings: Penultimate embeddings (N, D), float32, or ``None`` when the model gives none.
        units: Split unit (cluster of near-duplicate photos) of each image, or ``None``.
        labels: Class id of each image, or ``None``.
        pca_mean: Mean of the embeddings (D,) (with embeddings).
        pca_components: Principal axes (k, D) (with embeddings).
        pca_explained: Explained variance ratio of each axis (k,) (with embeddings).
        pca_fit: Which images the PCA was fitted on (N,) bool (with embeddings). The MMD uses the others
            only: projected on axes fitted to themselves, the reference images would spread more along them
            than new images do, and the MMD would flag every window.
        bandwidth: RBF kernel sigma in the reduced space, by the median heuristic (with embeddings).
        image_stats: Input statistics of each image (N, len(IMAGE_STATS)) float32
            (:func:`fishopt.monitor.imagestats.image_statistics` of what the model sees), or ``None``.
        info: Where the profile came from (artifact format, checkpoint, split hash, ...).
    """

    probs: np.ndarray
    class_names: list[str]
    embeddings: np.ndarray | None = None
    units: np.ndarray | None = None
    labels: np.ndarray | None = None
    pca_mean: np.ndarray | None = field(default=None, repr=False)
    pca_components: np.ndarray | None = field(default=None, repr=False)
    pca_explained: np.ndarray | None = field(default=None, repr=False)
    pca_fit: np.ndarray | None = field(default=None, repr=False)
    bandwidth: float | None = None
    image_stats: np.ndarray | None = field(default=None, repr=False)
    info: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def build(
        cls,
        probs: np.ndarray,
        class_names: list[str],
        embeddings: np.ndarray | None = None,
        units: Any = None,
        labels: Any = None,
        n_components: int = N_COMPONENTS,
        info: dict[str, Any] | None = None,
        seed: int = 0,
        image_stats: np.ndarray | None = None,
    ) -> DriftProfile:
        """Make a profile: check the arrays, fit the PCA and the kernel bandwidth.

        The PCA is fitted on half of the reference units (stratified by class), the bandwidth on the other
        half, which is the MMD's reference (see ``pca_fit``).

        Args:
            probs: Softmax outputs (N, C) (rows sum to 1).
            class_names: C class names.
            embeddings: Penultimate embeddings (N, D), or ``None``.
            units: Split unit of each image (N,), or ``None``.
            labels: Class id of each image (N,), or ``None``.
            n_components: PCA dimensions (at most ``min(N - 1, D)``).
            info: Provenance to store in the header.
            seed: Seed of the PCA half.
            image_stats: Input statistics of each image (N, len(IMAGE_STATS)), or ``None``.

        Raises:
            DataError: Mismatched shapes, too few images, non-finite values, rows that are not probabilities.
        """
        probs = np.asarray(probs, dtype=np.float32)
        check_probs(probs, len(class_names), "reference outputs")
        n = len(probs)
        if n < 10:
            raise DataError(f"a drift profile needs at least 10 reference images, got {n}")
        for name, arr in (("units", units), ("labels", labels)):
            if arr is not None and len(arr) != n:
                raise DataError(f"{name} has {len(arr)} entries for {n} reference images")
        profile = cls(
            probs=probs,
            class_names=list(class_names),
            info=dict(info or {}),
            units=None if units is None else np.asarray(units).astype(str),
            labels=None if labels is None else np.asarray(labels).astype(np.int64),
        )
        if embeddings is not None:
            emb = np.asarray(embeddings, dtype=np.float32)
            if emb.ndim != 2 or len(emb) != n or not np.isfinite(emb).all():
                raise DataError(f"embeddings must be finite (N, D) with N = {n}, got shape {emb.shape}")
            fit, rest = stats.split_reference(profile.units, profile.labels, n, 0.5, np.random.default_rng(seed))
            mean, comps, ratio = stats.fit_pca(emb[fit], n_components)
            profile.embeddings = emb
            profile.pca_fit = np.isin(np.arange(n), fit)
            profile.pca_mean, profile.pca_components, profile.pca_explained = (
                mean.astype(np.float32),
                comps.astype(np.float32),
                ratio.astype(np.float32),
            )
            profile.bandwidth = stats.median_bandwidth(profile.reduce(emb[rest]))
        if image_stats is not None:
            img = np.asarray(image_stats, dtype=np.float32)
            if img.shape != (n, len(IMAGE_STATS)) or not np.isfinite(img).all():
                raise DataError(
                    f"image statistics must be finite with shape ({n}, {len(IMAGE_STATS)}), got {img.shape}"
                )
            profile.image_stats = img
        return profile

    @property
    def n(self) -> int:
        """Number of reference images."""
        return len(self.probs)

    @property
    def has_embeddings(self) -> bool:
        """Whether the profile holds embeddings (and so supports the MMD test)."""
        return self.embeddings is not None

    @property
    def has_image_stats(self) -> bool:
        """Whether the profile holds input statistics (and so supports the ``ks_image`` test)."""
        return self.image_stats is not None

    @property
    def embedding_dim(self) -> int | None:
        """D of the raw embeddings (``None`` without)."""
        return None if self.embeddings is None else int(self.embeddings.shape[1])

    def reduce(self, embeddings: np.ndarray) -> np.ndarray:
        """Project raw embeddings (N, D) onto the profile's principal axes: (N, k) float64."""
        if self.pca_components is None:
            raise DataError("this drift profile has no embeddings, so it cannot reduce any")
        return (np.asarray(embeddings, np.float64) - self.pca_mean) @ self.pca_components.T.astype(np.float64)

    def header(self) -> dict[str, Any]:
        """The JSON header (without the file hashes)."""
        return {
            "format": PROFILE_FORMAT,
            "version": PROFILE_VERSION,
            "n": self.n,
            "class_names": self.class_names,
            "embeddings": self.has_embeddings,
            "embedding_dim": self.embedding_dim,
            "pca_components": None if self.pca_components is None else int(self.pca_components.shape[0]),
            "pca_explained": None if self.pca_explained is None else round(float(self.pca_explained.sum()), 6),
            "bandwidth": self.bandwidth,
            "image_stats": list(IMAGE_STATS) if self.has_image_stats else None,
            "units": None if self.units is None else len(np.unique(self.units)),
            "labels": self.labels is not None,
            "info": self.info,
        }


def check_probs(probs: np.ndarray, n_classes: int, what: str = "outputs") -> None:
    """Raise :class:`DataError` unless ``probs`` is a finite (N, n_classes) array of probability rows."""
    if probs.ndim != 2 or probs.shape[1] != n_classes:
        raise DataError(f"{what} must have shape (N, {n_classes}) (one column per class), got {probs.shape}")
    if not np.isfinite(probs).all():
        raise DataError(f"{what} hold NaN or infinite values")
    if len(probs) and (np.abs(probs.sum(axis=1) - 1.0).max() > 1e-2 or probs.min() < -1e-6):
        raise DataError(
            f"{what} are not softmax probabilities (rows must be >= 0 and sum to 1); "
            "convert logits with fishopt.monitor.stats.softmax(logits)"
        )


def profile_exists(folder: str | Path) -> bool:
    """Whether ``folder`` holds a drift profile header."""
    return (Path(folder) / HEADER_NAME).is_file()


def save_profile(profile: DriftProfile, folder: str | Path, artifact_sha256: str | None = None) -> Path:
    """Write ``drift_profile.npz`` and ``drift_profile.json`` into ``folder`` atomically (header last).

    Args:
        profile: The profile.
        folder: The artifact folder.
        artifact_sha256: SHA-256 of the artifact file the outputs came from (checked on load).

    Returns:
        The header path.
    """
    from fishopt import __version__

    folder = Path(folder)
    arrays: dict[str, np.ndarray] = {"probs": profile.probs}
    for key in (
        "embeddings",
        "units",
        "labels",
        "pca_mean",
        "pca_components",
        "pca_explained",
        "pca_fit",
        "image_stats",
    ):
        value = getattr(profile, key)
        if value is not None:
            arrays[key] = value
    buffer = io.BytesIO()
    np.savez_compressed(buffer, **arrays)
    npz = atomic_write(folder / NPZ_NAME, lambda tmp: tmp.write_bytes(buffer.getvalue()))
    header = profile.header() | {
        "file": NPZ_NAME,
        "sha256": file_sha256(npz),
        "artifact_sha256": artifact_sha256,
        "fishopt_version": __version__,
        "created": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
    }
    return atomic_write_json(folder / HEADER_NAME, header)


def load_profile(folder: str | Path, artifact_sha256: str | None = None) -> DriftProfile:
    """Load the drift profile of an artifact folder.

    Args:
        folder: The artifact folder.
        artifact_sha256: If given, the SHA-256 of the artifact file; a profile made for another file is refused.

    Raises:
        CheckpointError: No profile (says how to make one), a damaged or foreign one, or one made for another
            artifact file.
    """

    folder = Path(folder)
    head_path, npz_path = folder / HEADER_NAME, folder / NPZ_NAME
    if not head_path.is_file():
        raise CheckpointError(f"{str(folder)!r} has no drift profile ({HEADER_NAME}); {make_profile_hint(folder)}")
    try:
        header = json.loads(head_path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise CheckpointError(
            f"drift profile {str(head_path)!r} is unreadable ({exc}); {make_profile_hint(folder)}"
        ) from exc
    if header.get("format") != PROFILE_FORMAT or header.get("version") != PROFILE_VERSION:
        raise CheckpointError(
            f"{str(head_path)!r} is not a version-{PROFILE_VERSION} fishopt drift profile; {make_profile_hint(folder)}"
        )
    if not npz_path.is_file() or file_sha256(npz_path) != header.get("sha256"):
        raise CheckpointError(
            f"drift profile data {str(npz_path)!r} is missing or does not match its header; {make_profile_hint(folder)}"
        )
    if artifact_sha256 and header.get("artifact_sha256") and header["artifact_sha256"] != artifact_sha256:
        raise CheckpointError(
            f"the drift profile in {str(folder)!r} was made for another artifact file; {make_profile_hint(folder)}"
        )
    with np.load(npz_path, allow_pickle=False) as data:
        arrays = {k: data[k] for k in data.files}
    profile = DriftProfile(
        probs=arrays["probs"],
        class_names=list(header["class_names"]),
        embeddings=arrays.get("embeddings"),
        units=arrays.get("units"),
        labels=arrays.get("labels"),
        pca_mean=arrays.get("pca_mean"),
        pca_components=arrays.get("pca_components"),
        pca_explained=arrays.get("pca_explained"),
        pca_fit=arrays.get("pca_fit"),
        bandwidth=header.get("bandwidth"),
        image_stats=arrays.get("image_stats") if header.get("image_stats") == list(IMAGE_STATS) else None,
        info=dict(header.get("info") or {}),
    )
    return profile


def make_artifact_profile(
    folder: str | Path,
    checkpoint: str | Path | None = None,
    *,
    data: str | Path | None = None,
    cache: str | Path | None = None,
    threads: int | None = None,
    n_components: int = N_COMPONENTS,
) -> DriftProfile:
    """Make and save the drift profile of an artifact (the call ``fishopt export`` can run after a build).

    Runs the artifact itself on the test side of its checkpoint's split (its softmax outputs, and its
    embeddings where it gives them), so the profile matches what the artifact outputs in deployment.

    Args:
        folder: The artifact folder.
        checkpoint: The checkpoint it was built from (default: the manifest's ``source_checkpoint``); it must
            be the same file (checked by SHA-256), as its split says which images were never trained on.
        data: Data root (default ``$FISHOPT_DATA``, then the checkpoint's recorded root).
        cache: Decode cache folder.
        threads: Runtime threads.
        n_components: PCA dimensions.

    Returns:
        The profile (also written into ``folder``).

    Raises:
        CheckpointError: No manifest, the checkpoint is missing or is not the artifact's source.
        SplitError, DataError: The split or data cannot be read.
    """
    from fishopt.checkpoint import load_checkpoint
    from fishopt.monitor.artifacts import artifact_file, load_artifact, source_checkpoint

    model = load_artifact(folder, threads=threads)
    try:
        ckpt_path = source_checkpoint(model, checkpoint)
        ckpt = load_checkpoint(ckpt_path)
        split = ckpt.split
        side = ckpt.split_images("test", size=model.image_size, data=data, cache=cache)
        logits, emb = model.outputs(side.images)
        image_stats = model.input_statistics(side.images)
        if emb is None:
            log.warning(
                "artifact %s gives no embeddings: its profile holds softmax outputs only and drift checks "
                "skip the MMD test",
                model.name,
            )
        info = {
            "artifact_format": model.name,
            "precision": model.precision,
            "checkpoint": str(ckpt.path),
            "checkpoint_sha256": file_sha256(ckpt.path),
            "split_hash": split.hash,
            "side": "test",
            "data_root": str(side.root),
            "image_size": list(model.image_size),
        }
        profile = DriftProfile.build(
            stats.softmax(logits),
            list(model.meta["class_names"]),
            emb,
            units=[split.units[p] for p in side.paths],
            labels=side.labels.numpy(),
            n_components=n_components,
            info=info,
            image_stats=image_stats,
        )
        save_profile(profile, folder, artifact_sha256=file_sha256(artifact_file(folder, model.manifest)))
    finally:
        model.close()
    return profile
