"""Decode every image once: uint8 tensors at the load size, cached on disk by content hash and size.

Layout: ``<cache>/decoded/<H>x<W>/<sha256[:2]>/<sha256>.npy`` (uint8, 3xHxW). The cache folder is
``$FISHOPT_CACHE`` or ``~/.cache/fishopt`` (``$XDG_CACHE_HOME/fishopt``). A 3x120x160 image takes
57.6 kB, so the 7,304 shared images take 404 MB (429 MB on disk) and the same in memory.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable, Sequence
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
import torch

from fishopt.data.preprocess import ImageDecodeError, decode_image, fit_to
from fishopt.errors import DataError
from fishopt.io import atomic_write, file_sha256

log = logging.getLogger(__name__)

#: Images listed by name in one error; the rest are counted.
MAX_LISTED = 50
#: Largest intermediate image (pixels) of the resize to cover the load size: a 1x100000 strip would need
#: gigabytes of float memory to cover 120x160, and is no photo.
MAX_RESIZED_PIXELS = 1 << 24


def cache_dir(override: str | os.PathLike[str] | None = None) -> Path:
    """Return the cache folder: ``override``, ``$FISHOPT_CACHE`` or ``$XDG_CACHE_HOME/fishopt``."""
    if override is not None:
        return Path(override)
    if env := os.environ.get("FISHOPT_CACHE"):
        return Path(env)
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "fishopt"


def _entry(root: Path, digest: str, size: Sequence[int]) -> Path:
    return root / "decoded" / f"{size[0]}x{size[1]}" / digest[:2] / f"{digest}.npy"


def _init_worker() -> None:
    torch.set_num_threads(1)


def _decode_to_cache(args: tuple[str, str, tuple[int, int]]) -> str | None:
    """Decode one image into its cache entry; return why it cannot be used (``None``: done)."""

    path, entry, size = args
    try:
        image = decode_image(path)
    except ImageDecodeError as exc:
        return exc.reason
    except DataError as exc:
        return f"{path!r} ({exc})"
    h, w = image.shape[-2:]
    scale = max(size[0] / h, size[1] / w)
    if max(size[0], round(h * scale)) * max(size[1], round(w * scale)) > MAX_RESIZED_PIXELS:
        return f"{path!r} ({w}x{h} pixels: too narrow or too flat to fit {size[1]}x{size[0]})"
    array = fit_to(image, size).numpy()
    atomic_write(entry, lambda tmp: np.save(tmp.open("wb"), array))
    return None


def _read_entry(entry: Path, size: tuple[int, int]) -> np.ndarray:
    """Read a cache entry, checking it is what the decoder writes.

    Raises:
        ValueError, OSError, EOFError: If it is truncated, corrupt or of another shape or type.
    """
    array = np.load(entry, allow_pickle=False)
    if array.shape != (3, *size) or array.dtype != np.uint8:
        raise ValueError(f"holds {array.dtype} {array.shape}, expected uint8 {(3, *size)}")
    return array


def bad_images_error(reasons: Sequence[str], total: int) -> DataError:
    """One error naming every image that cannot be used (up to :data:`MAX_LISTED`, then a count)."""
    listed = "; ".join(reasons[:MAX_LISTED])
    more = f"; and {len(reasons) - MAX_LISTED} more" if len(reasons) > MAX_LISTED else ""
    return DataError(
        f"{len(reasons)} of {total} image(s) cannot be used: {listed}{more}. Replace or remove "
        "them (all are listed), then run again"
    )


def load_images(
    paths: Sequence[str | Path],
    size: Sequence[int],
    *,
    cache: str | os.PathLike[str] | None = None,
    workers: int | None = None,
    progress: bool = False,
) -> torch.Tensor:
    """Load images as one uint8 tensor (N, 3, H, W), decoding only those not cached yet.

    Args:
        paths: Image files.
        size: Load size (height, width); see :func:`fishopt.data.preprocess.fit_to`.
        cache: Cache folder (default :func:`cache_dir`).
        workers: Decoder processes for cache misses (default: CPU count).
        progress: Show a progress bar while decoding.

    Returns:
        The images, in the order of ``paths``.

    Raises:
        DataError: If images cannot be read or decoded: one error naming all of them (a corrupt cache entry
            is not an error: it is dropped with a warning and the image decoded again).
    """
    size = (int(size[0]), int(size[1]))
    root = cache_dir(cache)
    entries: list[Path | None] = []
    bad: list[str] = []
    for p in paths:
        try:
            entries.append(_entry(root, file_sha256(p), size))
        except DataError as exc:  # unreadable: collected, so one run names every bad file
            entries.append(None)
            bad.append(f"{str(p)!r} ({exc.__cause__.strerror if isinstance(exc.__cause__, OSError) else exc})")
    todo = [(str(p), str(e), size) for p, e in zip(paths, entries, strict=True) if e is not None and not e.exists()]
    if todo:
        bad += [reason for reason in _decode_all(todo, workers, progress) if reason is not None]
    if bad:
        raise bad_images_error(bad, len(entries))
    out = torch.empty((len(entries), 3, *size), dtype=torch.uint8)
    for i, (path, entry) in enumerate(zip(paths, entries, strict=True)):
        if entry is None:  # an unreadable image, reported above
            raise RuntimeError(f"no cache entry for {str(path)!r}")
        out[i] = torch.from_numpy(_load_entry(path, entry, size))
    return out


def _load_entry(path: str | Path, entry: Path, size: tuple[int, int]) -> np.ndarray:
    """Read a cache entry; a corrupt one is dropped (with a warning) and the image decoded again."""
    try:
        return _read_entry(entry, size)
    except (ValueError, OSError, EOFError) as exc:
        log.warning(
            "decode cache entry %s (of %s) is corrupt (%s): dropped, decoding the image again", entry, path, exc
        )
        entry.unlink(missing_ok=True)
    reason = _decode_to_cache((str(path), str(entry), size))
    if reason is not None:
        raise bad_images_error([reason], 1)
    return _read_entry(entry, size)


def _decode_all(todo: list[tuple[str, str, tuple[int, int]]], workers: int | None, progress: bool) -> list[str | None]:
    """Decode every image of ``todo`` into the cache; return each one's problem (``None``: decoded)."""
    workers = workers or os.cpu_count() or 1
    if workers == 1 or len(todo) < 64:
        return _drain(map(_decode_to_cache, todo), len(todo), progress)
    with ProcessPoolExecutor(max_workers=workers, initializer=_init_worker) as pool:
        return _drain(pool.map(_decode_to_cache, todo, chunksize=32), len(todo), progress)


def _drain(results: Iterable[str | None], total: int, progress: bool) -> list[str | None]:
    if not progress:
        return list(results)
    from tqdm import tqdm

    return list(tqdm(results, total=total, desc="decoding images", unit="img"))
