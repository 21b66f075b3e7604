"""Local features of one image (SIFT keypoints), their mirror, and an on-disk cache by content hash.

SIFT survives rotation by any angle, rescaling and re-encoding; a horizontal flip permutes its
descriptor (the 4x4 grid's rows reverse and the 8 orientation bins negate, see
:data:`MIRROR_PERMUTATION`), so a mirrored copy is matched without extracting features twice.
:func:`bag_of_words` turns an image's descriptors (and their mirrors) into a flip-invariant tf-idf
vector for retrieval.

Cache layout: ``<cache>/features/<FEATURE_VERSION>/<sha256[:2]>/<sha256>.npz`` holding ``xy``
(float32, N x 2, pixels of the image shrunk to :data:`WORK_SIZE`) and ``desc`` (uint8, N x 128).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from fishopt.data.cache import cache_dir
from fishopt.errors import DataError
from fishopt.io import atomic_write, file_sha256

FEATURE_VERSION = "sift-224-v1"
WORK_SIZE = 224  # longer side features are computed at (larger images are shrunk to it)
MAX_FEATURES = 400


def _mirror_permutation() -> np.ndarray:
    """Return the index map taking a SIFT descriptor to the descriptor of the mirrored patch.

    OpenCV lays a descriptor out as ``(row * 4 + col) * 8 + bin``; mirroring the image reverses
    the rows of the keypoint-aligned grid and negates the orientation bin (measured on real images).
    """
    perm = [((3 - r) * 4 + c) * 8 + (-o) % 8 for r in range(4) for c in range(4) for o in range(8)]
    return np.asarray(perm, dtype=np.intp)


MIRROR_PERMUTATION = _mirror_permutation()


@dataclass(frozen=True)
class Features:
    """Keypoint positions and SIFT descriptors of one image.

    Attributes:
        xy: Keypoint positions (N, 2), float32, in pixels of the working-size image.
        desc: Descriptors (N, 128), uint8.
        entry: The cache file they were read from or written to ("" when not cached).
    """

    xy: np.ndarray
    desc: np.ndarray
    entry: str = ""

    def __len__(self) -> int:
        return len(self.xy)

    def mirrored_desc(self) -> np.ndarray:
        """Return the descriptors as they would be computed on the horizontally flipped image."""
        return self.desc[:, MIRROR_PERMUTATION]


def read_gray(path: str | os.PathLike[str]) -> np.ndarray:
    """Decode an image as 8-bit grayscale, shrunk so its longer side is at most :data:`WORK_SIZE`.

    Raises:
        DataError: If the file cannot be read or decoded (names the file).
    """
    import cv2

    try:
        raw = np.fromfile(path, dtype=np.uint8)
    except OSError as exc:
        raise DataError(f"cannot read image {str(path)!r}: {exc.strerror}; check the file or remove it") from exc
    image = cv2.imdecode(raw, cv2.IMREAD_GRAYSCALE) if raw.size else None
    if image is None:
        raise DataError(f"cannot decode image {str(path)!r}: not a valid PNG/JPEG; replace or remove the file")
    scale = WORK_SIZE / max(image.shape)
    if scale < 1.0:
        size = (max(1, round(image.shape[1] * scale)), max(1, round(image.shape[0] * scale)))
        image = cv2.resize(image, size, interpolation=cv2.INTER_AREA)
    return image


def extract(path: str | os.PathLike[str]) -> Features:
    """Compute the SIFT features of one image file.

    Raises:
        DataError: If the image cannot be decoded.
    """
    import cv2

    cv2.setNumThreads(1)
    sift = cv2.SIFT_create(nfeatures=MAX_FEATURES)
    keypoints, desc = sift.detectAndCompute(read_gray(path), None)
    if desc is None or not keypoints:
        return Features(np.zeros((0, 2), np.float32), np.zeros((0, 128), np.uint8))
    xy = np.asarray([k.pt for k in keypoints], dtype=np.float32)
    return Features(xy, np.clip(np.rint(desc), 0, 255).astype(np.uint8))


def feature_file(root: Path, digest: str) -> Path:
    """Return the cache file of the image with content hash ``digest``."""
    return root / "features" / FEATURE_VERSION / digest[:2] / f"{digest}.npz"


def load_features(entry: str | os.PathLike[str]) -> Features:
    """Read a cached feature file."""
    with np.load(entry) as data:
        return Features(data["xy"], data["desc"], str(entry))


def _save(entry: Path, feats: Features) -> None:
    def write(tmp: Path) -> None:
        with tmp.open("wb") as handle:
            np.savez(handle, xy=feats.xy, desc=feats.desc)

    atomic_write(entry, write)


def cached_extract(args: tuple[str, str]) -> Features:
    """Return the features of ``args = (image path, cache entry)``, computing and caching on a miss."""
    path, entry = args
    if os.path.exists(entry):
        try:
            return load_features(entry)
        except (OSError, ValueError, KeyError):
            pass  # a corrupt entry is recomputed below
    feats = extract(path)
    _save(Path(entry), feats)
    return Features(feats.xy, feats.desc, entry)


def extract_all(
    paths: Sequence[str | os.PathLike[str]],
    *,
    cache: str | os.PathLike[str] | None = None,
    workers: int | None = None,
    progress: bool = True,
) -> list[Features]:
    """Return the features of every image, computing only those not cached yet.

    Args:
        paths: Image files.
        cache: Cache folder (default :func:`fishopt.data.cache.cache_dir`).
        workers: Processes (default: CPU count).
        progress: Show a progress bar.

    Returns:
        Features in the order of ``paths``.

    Raises:
        DataError: If an image cannot be decoded (names the file).
    """

    root = cache_dir(cache)
    jobs = [(str(p), str(feature_file(root, file_sha256(p)))) for p in paths]
    return list(run_parallel(cached_extract, jobs, workers, progress, "image features", "img"))


def _vocabulary(desc: np.ndarray, words: int, rng: np.random.Generator, iters: int = 5) -> np.ndarray:
    """Return ``words`` k-means centers of ``desc`` (float32 rows), from a seeded sample."""
    sample = desc[rng.choice(len(desc), size=min(len(desc), 40 * words), replace=False)]
    centers = sample[rng.choice(len(sample), size=min(words, len(sample)), replace=False)].copy()
    for _ in range(iters):
        labels = _assign(sample, centers)
        sums = np.zeros_like(centers)
        np.add.at(sums, labels, sample)
        counts = np.bincount(labels, minlength=len(centers))
        filled = counts > 0
        centers[filled] = sums[filled] / counts[filled, None]
    return centers


def _assign(desc: np.ndarray, centers: np.ndarray, block: int = 65536) -> np.ndarray:
    """Return the index of the nearest center of every descriptor."""
    c2 = (centers**2).sum(1)
    out = np.empty(len(desc), dtype=np.intp)
    for start in range(0, len(desc), block):
        part = desc[start : start + block]
        out[start : start + block] = np.argmin(c2[None, :] - 2.0 * part @ centers.T, axis=1)
    return out


def bag_of_words(feats: Sequence[Features], words: int, seed: int = 0) -> np.ndarray:
    """Return flip-invariant tf-idf bag-of-words vectors (one L2-normalized row per image).

    Every image counts the words of its descriptors and of their mirrors, so an image and its
    mirrored copy get the same vector.
    """
    sizes = [len(f) for f in feats]
    owner = np.repeat(np.arange(len(feats)), sizes)
    if not owner.size:
        return np.zeros((len(feats), 1), dtype=np.float32)
    desc = np.concatenate([f.desc for f in feats]).astype(np.float32)
    both = np.concatenate([desc, desc[:, MIRROR_PERMUTATION]])
    centers = _vocabulary(both, words, np.random.default_rng(seed))
    labels = _assign(both, centers)
    hist = np.zeros((len(feats), len(centers)), dtype=np.float32)
    np.add.at(hist, (np.concatenate([owner, owner]), labels), 1.0)
    idf = np.log((len(feats) + 1) / ((hist > 0).sum(0) + 1))
    vec = np.sqrt(hist) * idf
    return vec / np.maximum(np.linalg.norm(vec, axis=1, keepdims=True), 1e-12)


def run_parallel(
    func: Callable[[Any], Any], jobs: list, workers: int | None, progress: bool, desc: str, unit: str
) -> Iterator[Any]:
    """Yield ``func(job)`` for every job in order, on ``workers`` processes, with an optional bar."""
    from tqdm import tqdm

    workers = workers or os.cpu_count() or 1
    bar = tqdm(total=len(jobs), desc=desc, unit=unit, disable=not progress)
    try:
        if workers == 1 or len(jobs) < 2 * workers:
            for job in jobs:
                yield func(job)
                bar.update()
            return
        from concurrent.futures import ProcessPoolExecutor

        chunk = max(1, min(32, len(jobs) // (8 * workers)))
        with ProcessPoolExecutor(max_workers=workers) as pool:
            for result in pool.map(func, jobs, chunksize=chunk):
                yield result
                bar.update()
    finally:
        bar.close()
