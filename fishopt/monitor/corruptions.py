"""ImageNet-C corruptions (Hendrycks and Dietterich, ICLR 2019) of uint8 image batches, by ``corrupt-tta``.

``corrupt-tta`` is a maintained, modernized ImageNet-C (OpenCV, scikit-image and NumPy instead of Wand and
ImageMagick). It declares ``opencv-python``, which clashes with the ``opencv-python-headless`` fishopt uses
(both install ``cv2``), so it is installed without its dependencies; what it imports (numpy, scipy,
scikit-image, Pillow, cv2) comes from fishopt's ``monitor`` extra. See ``docs/monitoring.md``.

Corruptions are applied to the images at the model's load size (as ImageNet-C corrupts the images at the
network's resolution), then rounded to uint8 as a saved image would be. ``corrupt-tta`` draws from NumPy's
global random state; every image is corrupted under its own seed, derived from ``(seed, corruption,
severity, image index)``, so every model sees the same corrupted images, in any process and any order.
"""

from __future__ import annotations

import os
import zlib
from collections.abc import Iterable
from concurrent.futures import ProcessPoolExecutor

import numpy as np
import torch

from fishopt.errors import DataError, MissingDependencyError, unknown_choice

#: The 15 ImageNet-C corruptions by family.
FAMILIES: dict[str, tuple[str, ...]] = {
    "noise": ("gaussian_noise", "shot_noise", "impulse_noise"),
    "blur": ("defocus_blur", "glass_blur", "motion_blur", "zoom_blur"),
    "weather": ("snow", "frost", "fog"),
    "digital": ("brightness", "contrast", "elastic_transform", "pixelate", "jpeg_compression"),
}
#: The 15 corruptions of the benchmark, in the paper's order.
IMAGENET_C: tuple[str, ...] = tuple(name for names in FAMILIES.values() for name in names)
#: ImageNet-C's held-out corruptions (for validation), also in corrupt-tta.
EXTRA: tuple[str, ...] = ("speckle_noise", "gaussian_blur", "spatter", "saturate")
#: One or two per family, cheap to compute: the quick check of the benchmark.
QUICK: tuple[str, ...] = ("gaussian_noise", "defocus_blur", "fog", "contrast", "jpeg_compression")
SEVERITIES: tuple[int, ...] = (1, 2, 3, 4, 5)
INSTALL_HINT = (
    "pip install 'fishopt[monitor]' && pip install --no-deps corrupt-tta==0.1.7 "
    "(without its dependencies: its opencv-python clashes with opencv-python-headless)"
)


def family_of(name: str) -> str:
    """The family of a corruption (``noise``, ``blur``, ``weather``, ``digital``; ``extra`` for the held-out ones)."""
    for family, names in FAMILIES.items():
        if name in names:
            return family
    return "extra"


def resolve_corruptions(names: Iterable[str] | None) -> tuple[str, ...]:
    """Expand corruption names: ``all`` (the 15), ``quick``, ``extra``, a family name or a corruption name.

    Raises:
        ConfigError: For an unknown name (lists the valid ones).
    """
    if not names:
        return IMAGENET_C
    groups = {"all": IMAGENET_C, "quick": QUICK, "extra": EXTRA, **FAMILIES}
    out: list[str] = []
    for raw in names:
        name = raw.strip().replace("-", "_")
        if name in groups:
            out += [n for n in groups[name] if n not in out]
        elif name in IMAGENET_C + EXTRA:
            if name not in out:
                out.append(name)
        else:
            raise unknown_choice("corruption", raw, (*groups, *IMAGENET_C, *EXTRA))
    return tuple(out)


def resolve_severities(values: Iterable[int] | None) -> tuple[int, ...]:
    """Check severities (1-5), keep their order, drop repeats.

    Raises:
        ConfigError: For a value outside 1-5.
    """
    if not values:
        return SEVERITIES
    out: list[int] = []
    for v in values:
        if isinstance(v, bool) or int(v) not in SEVERITIES:
            raise unknown_choice("severity", v, [str(s) for s in SEVERITIES])
        if int(v) not in out:
            out.append(int(v))
    return tuple(out)


def _require() -> None:
    import importlib.util

    if importlib.util.find_spec("corrupt_tta") is None or importlib.util.find_spec("skimage") is None:
        raise MissingDependencyError(
            f"the corruptions need corrupt-tta and scikit-image; install them with: {INSTALL_HINT}"
        )


def image_seed(seed: int, name: str, severity: int, index: int) -> int:
    """The NumPy seed of one corrupted image (stable across processes and Python versions)."""
    seq = np.random.SeedSequence([int(seed), zlib.crc32(name.encode()), int(severity), int(index)])
    return int(seq.generate_state(1)[0])


def _corrupt_range(images: np.ndarray, name: str, severity: int, seed: int, start: int) -> np.ndarray:
    """Corrupt NHWC uint8 images (global index of the first: ``start``) under per-image seeds.

    corrupt-tta draws from NumPy's global state, except ``impulse_noise``: scikit-image's ``random_noise``,
    called without ``rng``, seeds itself from the OS. Its module-level name is pointed at a seeded
    ``random_noise`` for each image and restored afterwards.
    """
    import functools

    import corrupt_tta.corruptions as impl
    from corrupt_tta import corrupt

    unseeded = impl.random_noise
    out = np.empty_like(images)
    try:
        for i, img in enumerate(images):
            image = image_seed(seed, name, severity, start + i)
            np.random.seed(image)
            impl.random_noise = functools.partial(unseeded, rng=image)
            out[i] = np.clip(np.rint(corrupt(img, severity=severity, corruption_name=name)), 0, 255).astype(np.uint8)
    finally:
        impl.random_noise = unseeded
    return out


_WORKER_IMAGES: np.ndarray | None = None


def _init_worker(images: np.ndarray) -> None:
    global _WORKER_IMAGES
    _WORKER_IMAGES = images
    torch.set_num_threads(1)


def _worker_task(args: tuple[str, int, int, int, int]) -> np.ndarray:
    name, severity, seed, start, stop = args
    assert _WORKER_IMAGES is not None  # set by the pool initializer
    return _corrupt_range(_WORKER_IMAGES[start:stop], name, severity, seed, start)


class Corruptor:
    """Corrupts one fixed batch of images with any corruption and severity, in worker processes.

    Use as a context manager; the worker pool (and its copy of the images) lives until it closes.

    Args:
        images: uint8 images (N, 3, H, W).
        seed: Base seed of the per-image seeds.
        workers: Processes (default: CPU count; 1 = in this process, restoring NumPy's global state after).

    Raises:
        MissingDependencyError: corrupt-tta or scikit-image is not installed (says how to install them).
    """

    def __init__(self, images: torch.Tensor | np.ndarray, seed: int = 0, workers: int | None = None) -> None:
        _require()
        arr = images.numpy() if isinstance(images, torch.Tensor) else np.asarray(images)
        if arr.dtype != np.uint8 or arr.ndim != 4 or arr.shape[1] != 3:
            raise DataError(f"images must be uint8 (N, 3, H, W), got {arr.dtype} {arr.shape}")
        self.images = np.ascontiguousarray(arr.transpose(0, 2, 3, 1))
        self.seed = int(seed)
        self.workers = max(1, min(int(workers or os.cpu_count() or 1), len(self.images) or 1))
        self._pool: ProcessPoolExecutor | None = None

    def __enter__(self) -> Corruptor:  # noqa: PYI034 - typing.Self needs Python 3.11
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Stop the worker processes."""
        if self._pool is not None:
            self._pool.shutdown()
            self._pool = None

    def __call__(self, name: str, severity: int) -> torch.Tensor:
        """The images under one corruption at one severity, uint8 (N, 3, H, W)."""
        n = len(self.images)
        if self.workers == 1 or n < 2 * self.workers:
            state = np.random.get_state()
            try:
                out = _corrupt_range(self.images, name, severity, self.seed, 0)
            finally:
                np.random.set_state(state)
        else:
            if self._pool is None:
                self._pool = ProcessPoolExecutor(
                    max_workers=self.workers, initializer=_init_worker, initargs=(self.images,)
                )
            step = -(-n // (4 * self.workers))
            tasks = [(name, int(severity), self.seed, s, min(n, s + step)) for s in range(0, n, step)]
            out = np.concatenate(list(self._pool.map(_worker_task, tasks)))
        return torch.from_numpy(out).permute(0, 3, 1, 2).contiguous()


def corrupt_images(
    images: torch.Tensor | np.ndarray, name: str, severity: int, *, seed: int = 0, workers: int | None = 1
) -> torch.Tensor:
    """One corruption of a batch of uint8 images (N, 3, H, W) (see :class:`Corruptor` for many)."""
    with Corruptor(images, seed=seed, workers=workers) as corruptor:
        return corruptor(name, severity)
