"""Offline drift check: a folder of new images against an artifact's reference profile (``fishopt drift``)."""

from __future__ import annotations

import logging
import os
import random
from dataclasses import dataclass
from pathlib import Path

from fishopt.errors import DataError
from fishopt.io import file_sha256
from fishopt.monitor import stats
from fishopt.monitor.drift import MIN_WINDOW, DriftDetector, DriftReport
from fishopt.monitor.profile import load_profile

log = logging.getLogger(__name__)

IMAGE_SUFFIXES = frozenset({".png", ".jpg", ".jpeg"})
#: Folders of the Kaggle download that hold segmentation masks, not photos.
MASK_SUFFIX = " GT"


def find_images(folder: str | Path) -> list[Path]:
    """Every image (.png/.jpg/.jpeg, any case) under ``folder``, recursively, sorted.

    Hidden files and folders and the Kaggle layout's mask folders (``<class> GT``) are left out.

    Raises:
        DataError: If ``folder`` is not a folder or holds no images.
    """
    root = Path(folder)
    if not root.is_dir():
        raise DataError(f"image folder {str(root)!r} not found; pass a folder of .jpg/.jpeg/.png images")
    found: list[Path] = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith(".") and not d.endswith(MASK_SUFFIX))
        for name in filenames:
            if not name.startswith(".") and Path(name).suffix.lower() in IMAGE_SUFFIXES:
                found.append(Path(dirpath) / name)
    if not found:
        raise DataError(
            f"no images (.jpg, .jpeg, .png) found under {str(root)!r}; pass the folder that holds the new images"
        )
    return sorted(found)


@dataclass
class FolderCheck:
    """The result of :func:`check_folder`.

    Attributes:
        report: The drift report.
        found: Images found in the folder.
        used: The images tested (all of them, or a seeded sample of ``window``).
        artifact: The artifact's format name.
    """

    report: DriftReport
    found: int
    used: list[Path]
    artifact: str


def check_folder(
    artifact_dir: str | Path,
    folder: str | Path,
    *,
    window: int = 500,
    alpha: float = 0.05,
    seed: int = 0,
    threads: int | None = None,
    cache: str | Path | None = None,
    progress: bool = False,
) -> FolderCheck:
    """Compare a folder of new images with the reference profile stored in an artifact folder.

    At most ``window`` images are tested (a seeded random sample when the folder holds more), in one window
    whose calibration matches its size.

    Args:
        artifact_dir: An artifact folder holding a drift profile.
        folder: The new images (any layout, found recursively; labels are not needed).
        window: Largest number of images in the window.
        alpha: Target false-alarm rate on clean windows.
        seed: Seed of the sample, the calibration and the permutations.
        threads: Runtime threads.
        cache: Decode cache folder.
        progress: Progress bar while decoding.

    Raises:
        CheckpointError: No artifact or no profile (the message says how to make one).
        DataError: No images, fewer than the smallest window, or an undecodable image.
    """
    from fishopt.data.cache import load_images
    from fishopt.monitor.artifacts import artifact_file, load_artifact, read_manifest

    manifest = read_manifest(artifact_dir)
    profile = load_profile(artifact_dir, artifact_sha256=file_sha256(artifact_file(artifact_dir, manifest)))
    paths = find_images(folder)
    if len(paths) < MIN_WINDOW:
        raise DataError(f"{str(folder)!r} holds {len(paths)} image(s); a drift check needs at least {MIN_WINDOW}")
    used = sorted(random.Random(seed).sample(paths, window)) if len(paths) > window else paths
    model = load_artifact(artifact_dir, threads=threads)
    try:
        images = load_images(used, model.image_size, cache=cache, progress=progress)
        logits, emb = model.outputs(images)
        image_stats = model.input_statistics(images) if profile.has_image_stats else None
        name = model.name
    finally:
        model.close()
    detector = DriftDetector(profile, window=len(used), alpha=alpha, seed=seed)
    detector.update(stats.softmax(logits), emb if profile.has_embeddings else None, image_stats)
    return FolderCheck(report=detector.check(), found=len(paths), used=list(used), artifact=name)
