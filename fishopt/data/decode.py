"""Decode and fit one image: encoded bytes or a file -> uint8 RGB at the load size, fast for camera-size JPEGs.

The one input pipeline for a single image, used by the benchmark's end-to-end timing, the deploy bundle's
``infer.py`` (this file is copied into every bundle as ``fishdecode.py``) and the server:
:func:`decode_and_fit`. It needs numpy and Pillow only (``simplejpeg`` when installed), never torch or
fishopt, so the bundle can run it on a device.

Two stages, timed separately by the benchmark:

1. :func:`decode_rgb`: encoded bytes -> uint8 RGB (H, W, 3). For a JPEG it decodes at the smallest libjpeg
   DCT scale (k/8) whose output still covers :data:`OVERSAMPLE` (1.5) times the resize target, when k is at most
   :data:`MAX_DCT_SCALE` (6; with Pillow's ``draft``: 1, 2 or 4) (the *fast path*): a 1920x1080 JPEG fitted to
   120x160 is decoded at 2/8 (480x270), a 590x445 one at 4/8, and fitted to the teacher's 168x224 at 5/8
   (369x279). At 5/8 and 6/8 the decode itself is no faster (libjpeg-turbo has SIMD IDCTs for 1/8-4/8 and 8/8
   only), but the resize after it reads 2.6x / 1.8x fewer pixels: 590x445 -> 168x224 decode + uint8 resize took
   3.0 / 3.6 ms against 4.2 ms from a full decode (40 files, loaded machine). Measured on the 998 test images of
   the default split re-encoded at 1920x1080 / 590x445 / 1280x720, the reference model's top-1 agrees with
   today's pipeline on 99.7 / 99.7 / 99.6 % of them with accuracy unchanged (+0.0 / +0.0 / +0.1 points);
   covering the target only 1x (1/8 at 1920x1080) agreed on 98.9 %, below the 99.5 % gate. Closer to the
   target the fast path is not taken, so images of the shared data set (224x168) decode in full, exactly as
   :func:`fishopt.data.preprocess.decode_image` does. JPEGs go through ``simplejpeg``
   (libjpeg-turbo; any scale k/8) when it is installed, else through Pillow's ``Image.draft`` (powers of two
   only); both are libjpeg-turbo and give the same pixels at the same scale. PNG and every other format take
   the general path (Pillow, full decode). Grayscale, palette, CMYK and alpha images become RGB.
2. :func:`fit_array`: resize to cover the target keeping the aspect ratio (antialiased bilinear), then
   center crop. Exact arithmetic reproduces ``torch.nn.functional.interpolate(mode="bilinear", antialias=True)``
   as :func:`fishopt.data.preprocess.fit_to` runs it (float32 weights, fused multiply-add accumulation, width
   first), so it gives the decode cache's pixels (measured: identical on real images; on random ones 99.9998 % of
   values, the rest off by one level), but costs numpy ~30 ms from 1920x1080. In a process that has imported torch
   (fishopt itself: the server, the benchmark) the exact fit calls torch's own resize instead: the reference
   itself, 2x faster than the port (0.38 vs 0.77 ms from 224x168 to 160x120). This module never imports torch. Pillow's float resize of the same
   filter is 3x faster and equal on all but ~0.002 % of values when the image is reduced at least
   :data:`MIN_REDUCTION` times (near the target size, where exact .5 ties are common, 0.2 % differ).

:data:`PIPELINES` name the four combinations, fastest first; :func:`decode_and_fit` takes one:

- ``turbo``: as ``fast``, with Pillow's uint8 resize (fixed-point) where ``fast`` takes the float one: about
  5x cheaper again, off by one level on ~13 % of values; taken only for models whose answers it keeps. From
  :data:`BANDED_MIN_PIXELS` up it resizes :data:`RESIZE_BANDS` bands of the output at once, one per thread
  (1.5x faster on 2 cores: 590x445 -> 224x168 in 2.0 instead of 3.1 ms on a loaded machine).
- ``fast``: DCT scaling where it applies (stage 1), then Pillow's float resize; a full decode that the fit still
  reduces at least :data:`MIN_REDUCTION` times also takes the float resize, anything nearer the target the exact
  arithmetic (so the shared data's own files get the cache's pixels).
- ``full``: a full decode, then the same resize rule as ``fast`` (for models whose answers DCT scaling changes).
- ``exact``: a full decode and the exact arithmetic: today's pixels, the reference the other two are gated on.

The benchmark measures, per model and input size, whether ``turbo``, then ``fast``, then ``full`` keeps the model's
top-1 answers (:func:`fishopt.artifacts.pipeline_check.choose_pipeline`) and times the first that does.
Which path an input takes is recorded in :class:`Decoded` (``scale``), so callers can report it.
"""

from __future__ import annotations

import functools
import io
import math
import os
import sys
import threading
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Union

import numpy as np

if TYPE_CHECKING:
    from fishopt.errors import DataError as _ErrorBase
else:
    try:  # inside fishopt decode errors are DataErrors; inside a deploy bundle (no fishopt) plain ValueErrors
        from fishopt.errors import DataError as _ErrorBase
    except ImportError:  # pragma: no cover - exercised by the bundle tests in a clean venv
        _ErrorBase = ValueError

Source = Union[bytes, bytearray, memoryview, str, os.PathLike]  # noqa: UP007 - runs on Python 3.8 in bundles

#: A fully decoded image takes the float resize (pipelines ``fast`` and ``full``) only when the fit reduces it at
#: least this many times.
MIN_REDUCTION = 2
#: The largest DCT scale numerator k (of k/8) taken as the fast path (simplejpeg decodes at any k/8). 7/8 would
#: save the resize only an eighth of its input while decoding slower than 8/8.
MAX_DCT_SCALE = 6
#: The DCT-scaled image must cover this many times the resize target (1x loses agreement at 1920x1080).
OVERSAMPLE = 1.5
#: The ``turbo`` resize splits its output into this many horizontal bands, resized at once in as many threads
#: (Pillow releases the GIL while it resamples). Each band places its filters by its own part of the box, which
#: rounds like the whole box's on the benchmark's camera sizes (no value of 16.4 million differed) and otherwise
#: puts a value one level off, rarely (3 of 35,211 for a random 333x401 image fitted to 97x121) ...
RESIZE_BANDS = 2
#: ... when its input has at least this many pixels (below, a thread hand-off costs more than it saves).
BANDED_MIN_PIXELS = 100_000
#: Largest image (pixels) decoded at all: Pillow's decompression-bomb limit (2 x ``Image.MAX_IMAGE_PIXELS``).
MAX_PIXELS = 2 * 89_478_485
_JPEG_MAGIC = b"\xff\xd8\xff"
#: The pipelines of :func:`decode_and_fit`, fastest first (see the module docstring).
PIPELINES = ("turbo", "fast", "full", "exact")
#: The pipelines that decode JPEGs at a reduced DCT scale where it applies.
DCT_PIPELINES = ("turbo", "fast")


class ImageDecodeError(_ErrorBase):
    """The input is not a readable image (corrupt, truncated, not an image, or too large)."""


class ImageTooLargeError(ImageDecodeError):
    """An image whose declared size is over the pixel limit (read from its header: nothing was decoded).

    Attributes:
        height: Declared height.
        width: Declared width.
        limit: The limit it exceeds (pixels).
    """

    def __init__(self, message: str, height: int, width: int, limit: int) -> None:
        super().__init__(message)
        self.height, self.width, self.limit = height, width, limit


@dataclass(frozen=True)
class Decoded:
    """A decoded image and how it was decoded.

    Attributes:
        rgb: uint8 (H, W, 3).
        source_size: (height, width) of the encoded image.
        scale: DCT scale numerator k of k/8 (8 = full decode; < 8 = the fast path).
        decoder: ``simplejpeg``, ``pillow-draft`` or ``pillow``.
    """

    rgb: np.ndarray
    source_size: tuple[int, int]
    scale: int
    decoder: str

    @property
    def fast(self) -> bool:
        """Whether the JPEG was decoded at a reduced DCT scale."""
        return self.scale < 8


def _read(source: Source) -> bytes:
    if isinstance(source, (bytes, bytearray, memoryview)):
        return bytes(source)
    try:
        return Path(source).read_bytes()
    except OSError as exc:
        raise ImageDecodeError(
            f"cannot read image {str(source)!r} ({exc}); check the path and its permissions"
        ) from exc


def _name(source: Source) -> str:
    return "image bytes" if isinstance(source, (bytes, bytearray, memoryview)) else f"image {str(source)!r}"


def cover_size(height: int, width: int, size: Sequence[int]) -> tuple[int, int]:
    """The (height, width) an image of ``height`` x ``width`` is resized to before the center crop to ``size``.

    The same rounding as :func:`fishopt.data.preprocess.fit_to`: scale by ``max(th/h, tw/w)``, round, and never
    below the target.
    """
    th, tw = int(size[0]), int(size[1])
    scale = max(th / height, tw / width)
    return max(th, round(height * scale)), max(tw, round(width * scale))


def dct_scale(
    height: int, width: int, target: Sequence[int], powers_of_two: bool = False, oversample: float = OVERSAMPLE
) -> int:
    """The DCT scale numerator k (of k/8) to decode a ``height`` x ``width`` JPEG at for a resize to ``target``.

    The smallest k whose decoded size (libjpeg rounds up: ``ceil(dim * k / 8)``) still covers ``oversample`` x
    ``target`` in both dimensions, taken only when k <= :data:`MAX_DCT_SCALE`; else 8 (a full decode).
    ``powers_of_two``: only 1, 2 and 4 (Pillow's ``draft``).
    """
    th, tw = math.ceil(oversample * int(target[0])), math.ceil(oversample * int(target[1]))
    choices = (1, 2, 4) if powers_of_two else range(1, MAX_DCT_SCALE + 1)
    for k in choices:
        if -(-height * k // 8) >= th and -(-width * k // 8) >= tw:
            return k
    return 8


def _jpeg_header(data: bytes) -> tuple[int, int, int] | None:
    """(height, width, components) of a JPEG from its SOF marker, ``None`` if none is found."""
    i, n = 2, len(data)
    while i + 9 < n:
        if data[i] != 0xFF:
            return None
        marker = data[i + 1]
        if marker == 0xFF:  # fill byte
            i += 1
            continue
        if marker in (0xD8, 0x01) or 0xD0 <= marker <= 0xD7:
            i += 2
            continue
        length = int.from_bytes(data[i + 2 : i + 4], "big")
        if 0xC0 <= marker <= 0xCF and marker not in (0xC4, 0xC8, 0xCC):
            components = data[i + 9] if i + 9 < n else 0
            return int.from_bytes(data[i + 5 : i + 7], "big"), int.from_bytes(data[i + 7 : i + 9], "big"), components
        i += 2 + length
    return None


def _simplejpeg() -> Any:
    """The ``simplejpeg`` module, or ``None`` where it is not installed."""
    try:
        import simplejpeg
    except ImportError:
        return None
    return simplejpeg


def _check_pixels(height: int, width: int, name: str, limit: int | None = None) -> None:
    limit = MAX_PIXELS if limit is None else limit
    if height * width > limit:
        raise ImageTooLargeError(
            f"{name} has {height}x{width} pixels, more than the {limit:,} a decoder accepts "
            "(a decompression bomb?); resize it before classifying",
            height,
            width,
            limit,
        )


def decode_rgb(
    source: Source, target: Sequence[int] | None = None, *, fast: bool = True, max_pixels: int | None = None
) -> Decoded:
    """Decode an image to uint8 RGB (H, W, 3), at a reduced DCT scale where that is the fast path.

    Args:
        source: Encoded image bytes, or a file path.
        target: The (height, width) the image will be fitted to (:func:`fit_array`); ``None`` decodes in full.
        fast: Take the JPEG fast path where it applies (``False``: always a full decode).
        max_pixels: Refuse images whose header declares more pixels than this (default :data:`MAX_PIXELS`),
            before decoding anything.

    Returns:
        The :class:`Decoded` image.

    Raises:
        ImageDecodeError: The input cannot be read or decoded; :class:`ImageTooLargeError` when it declares more
            than ``max_pixels``.
    """
    data = _read(source)
    name = _name(source)
    if data[:3] == _JPEG_MAGIC:
        header = _jpeg_header(data)
        if header is not None:
            _check_pixels(header[0], header[1], name, max_pixels)
        if header is not None and header[2] in (1, 3):  # CMYK/YCCK (4 components): Pillow's conversion
            decoded = _decode_jpeg(data, header[:2], target, fast)
            if decoded is not None:
                return decoded
    return _decode_pillow(data, target, fast, name, max_pixels)


def _decode_jpeg(data: bytes, header: tuple[int, int], target: Sequence[int] | None, fast: bool) -> Decoded | None:
    """simplejpeg at the chosen scale; ``None`` when it is not installed or cannot decode this JPEG (CMYK, ...)."""
    sj = _simplejpeg()
    if sj is None:
        return None
    h, w = header
    k = dct_scale(h, w, cover_size(h, w, target)) if (fast and target is not None) else 8
    want_h, want_w = -(-h * k // 8), -(-w * k // 8)
    try:
        rgb = sj.decode_jpeg(data, "RGB", min_height=want_h, min_width=want_w)
    except ValueError:  # CMYK/YCCK, arithmetic coding, corrupt data: Pillow decides (and names the problem)
        return None
    if rgb.shape[:2] != (want_h, want_w):  # simplejpeg picked another scale: never silently use it
        return None
    return Decoded(rgb, (h, w), k, "simplejpeg")


def _decode_pillow(
    data: bytes, target: Sequence[int] | None, fast: bool, name: str, max_pixels: int | None = None
) -> Decoded:
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(io.BytesIO(data)) as img:
            h, w = img.height, img.width
            _check_pixels(h, w, name, max_pixels)
            k = 8
            if fast and target is not None and img.format == "JPEG":
                k = dct_scale(h, w, cover_size(h, w, target), powers_of_two=True)
                if k < 8:  # Pillow divides the sizes with floor division: ask for the floored scaled size
                    img.draft(None, (w * k // 8, h * k // 8))
            img.load()
            rgb = np.asarray(img.convert("RGB"))
    except ImageDecodeError:
        raise
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, Image.DecompressionBombError) as exc:
        raise ImageDecodeError(
            f"cannot decode {name} ({exc}); the file is corrupt, truncated or not an image: replace or remove it"
        ) from exc
    if rgb.shape[:2] == (h, w):
        k = 8
    elif rgb.shape[:2] != (-(-h * k // 8), -(-w * k // 8)):
        raise ImageDecodeError(
            f"{name}: Pillow decoded {rgb.shape[1]}x{rgb.shape[0]}, expected the {k}/8 scale of "
            f"{w}x{h}; "
            "report this as a bug"
        )
    return Decoded(rgb, (h, w), k, "pillow-draft" if k < 8 else "pillow")


# ------------------------------------------------------------------------------------------------ resize
@functools.lru_cache(maxsize=128)
def _taps(in_size: int, out_size: int) -> tuple[np.ndarray, np.ndarray]:
    """Indices (int64) and float32 weights (out_size, taps) of antialiased bilinear resampling, as torch computes them.

    ``torch.nn.functional.interpolate(mode="bilinear", antialias=True, align_corners=False)``: a triangle filter
    widened by the scale when shrinking, each output's weights normalized to sum 1; unused taps have weight 0.
    """
    f32 = np.float32
    scale = f32(in_size) / f32(out_size)
    support = scale if scale >= 1.0 else f32(1.0)
    invscale = f32(1.0) / scale if scale >= 1.0 else f32(1.0)
    rows = []
    for i in range(out_size):
        center = scale * f32(i + 0.5)
        xmin = max(int(center - support + f32(0.5)), 0)
        xmax = min(int(center + support + f32(0.5)), in_size)
        weights = [max(f32(0.0), f32(1.0) - abs((f32(j) - center + f32(0.5)) * invscale)) for j in range(xmin, xmax)]
        total = f32(0.0)
        for v in weights:
            total = f32(total + v)
        rows.append((xmin, [f32(v / total) if total != 0 else v for v in weights]))
    taps = max(len(w) for _, w in rows)
    index = np.zeros((out_size, taps), dtype=np.int64)
    weight = np.zeros((out_size, taps), dtype=np.float32)
    for i, (xmin, w) in enumerate(rows):
        index[i, : len(w)] = np.arange(xmin, xmin + len(w))
        weight[i, : len(w)] = w
    return index, weight


def fit_array(rgb: np.ndarray, size: Sequence[int], exact: bool = True, uint8: bool = False) -> np.ndarray:
    """Resize uint8 (H, W, 3) to cover ``size`` (height, width) keeping the aspect ratio, then center crop to it.

    Only the rows and columns the crop keeps are computed. Returns uint8 (height, width, 3); an image already of
    that size is returned as it is.

    Args:
        rgb: uint8 (H, W, 3).
        size: Target (height, width).
        exact: The decode cache's pixels: torch's own resize where torch is loaded, else its float arithmetic
            reproduced step by step in numpy. ``False``:
            Pillow's antialiased bilinear resize of float32 planes (mode ``F``: the same filter, accumulated in
            double), about 2x faster (measured 0.93 vs 2.0 ms from 480x270) and equal after rounding on all but
            ~0.002 % of values (0.2 % at 224x168); the ``fast`` and ``full`` pipelines use it where
            :func:`float_fit` says. Pillow's uint8
            resize would be 2x faster again but is off by one level on ~13 % of values and cost 0.1 point of
            agreement on the test split (1280x720: 99.50 % -> 99.499 %, under the gate).
        uint8: With ``exact=False``: that uint8 resize (the ``turbo`` pipeline), for models whose answers it keeps.
    """
    th, tw = int(size[0]), int(size[1])
    h, w = rgb.shape[:2]
    if (h, w) == (th, tw):
        return rgb
    nh, nw = cover_size(h, w, size)
    top, left = (nh - th) // 2, (nw - tw) // 2
    if not exact:
        from PIL import Image

        sx, sy = w / nw, h / nh
        box = (left * sx, top * sy, (left + tw) * sx, (top + th) * sy)
        # Image.BILINEAR, not Image.Resampling.BILINEAR (Pillow >= 9.1): bundles allow Pillow 9.0. Pillow's
        # stubs lack the module-level alias it still defines
        bilinear = Image.BILINEAR  # type: ignore[attr-defined]
        if uint8:
            return _resize_uint8(Image.fromarray(np.ascontiguousarray(rgb)), (tw, th), box, bilinear)
        out = np.empty((th, tw, 3), np.float32)
        # Pillow splits and converts the planes to float in C (1.1-1.7x faster than numpy's strided copies)
        for c, plane in enumerate(Image.fromarray(np.ascontiguousarray(rgb)).split()):
            out[:, :, c] = np.asarray(plane.convert("F").resize((tw, th), bilinear, box=box, reducing_gap=None))
        return np.clip(np.rint(out), 0, 255).astype(np.uint8)
    torch = _torch()
    if torch is not None:
        return _fit_torch(torch, rgb, (nh, nw), (top, left), (th, tw))
    return _fit_numpy(rgb, (nh, nw), (top, left), (th, tw))


_pool_lock = threading.Lock()
_pool: ThreadPoolExecutor | None = None


def _band_pool() -> ThreadPoolExecutor:
    """The threads that resize the extra bands (made on first use, made again in a forked child)."""
    global _pool
    with _pool_lock:
        if _pool is None:
            _pool = ThreadPoolExecutor(max_workers=RESIZE_BANDS - 1, thread_name_prefix="fishdecode-resize")
        return _pool


def _forget_pool() -> None:
    global _pool, _pool_lock
    _pool, _pool_lock = None, threading.Lock()  # a forked child has neither the parent's threads nor its lock


if hasattr(os, "register_at_fork"):  # POSIX
    os.register_at_fork(after_in_child=_forget_pool)


def resize_bands(pixels: int, out_rows: int) -> int:
    """How many bands :func:`fit_array`'s uint8 resize splits an image of ``pixels`` into (1: no split)."""
    if pixels < BANDED_MIN_PIXELS or (os.cpu_count() or 1) < 2:
        return 1
    return max(1, min(RESIZE_BANDS, out_rows // 16))


def _resize_uint8(image: Any, size: tuple[int, int], box: tuple[float, ...], resample: Any) -> np.ndarray:
    """Pillow's uint8 resize of ``box`` to ``size`` (width, height), in :func:`resize_bands` bands at once.

    Band ``i`` resizes the rows ``[r0, r1)`` of the output from the box's rows ``top + r0 * sy .. top + r1 * sy``
    (``sy`` the box's height over the output's): Pillow places each output row's filter by the box and clamps it
    only at the image's edges, never the box's, so the bands compute the single call's taps up to the rounding of
    the band's box (see :data:`RESIZE_BANDS`).
    """
    tw, th = size
    bands = resize_bands(image.width * image.height, th)
    if bands == 1:
        return np.array(image.resize(size, resample, box=box, reducing_gap=None))
    x0, y0, x1, y1 = box
    sy = (y1 - y0) / th
    cuts = [th * i // bands for i in range(bands + 1)]

    def band(r0: int, r1: int) -> np.ndarray:
        part = image.resize((tw, r1 - r0), resample, box=(x0, y0 + r0 * sy, x1, y0 + r1 * sy), reducing_gap=None)
        return np.asarray(part)

    pool = _band_pool()
    rest = [pool.submit(band, cuts[i], cuts[i + 1]) for i in range(1, bands)]
    first = band(cuts[0], cuts[1])
    return np.concatenate([first, *(f.result() for f in rest)])


def _torch() -> Any:
    """torch when this process has already imported it (fishopt does; a bundle does not), else ``None``."""
    return sys.modules.get("torch")


def _fit_torch(
    torch: Any, rgb: np.ndarray, cover: tuple[int, int], corner: tuple[int, int], size: tuple[int, int]
) -> np.ndarray:
    """The exact fit by torch itself: the calls of ``fishopt.data.preprocess.fit_to`` (2x faster than the port)."""
    (nh, nw), (top, left), (th, tw) = cover, corner, size
    # channels-last float input (no NCHW copy: the kernel gives the same values either way, tested), and the
    # rounding in numpy: 3 torch calls instead of 9, 1.1-1.4x faster at 224x168
    rgb = np.ascontiguousarray(rgb)
    if not rgb.flags.writeable:  # torch warns on read-only arrays (only read here); a copy is ~10 us at 224x168
        rgb = rgb.copy()
    x = torch.from_numpy(rgb).permute(2, 0, 1).unsqueeze(0).float()
    y = torch.nn.functional.interpolate(x, size=(nh, nw), mode="bilinear", antialias=True, align_corners=False)
    out = y[0].numpy().transpose(1, 2, 0)[top : top + th, left : left + tw]
    return np.rint(out, out=np.empty((th, tw, 3), np.float32)).clip(0, 255).astype(np.uint8)


def _fit_numpy(rgb: np.ndarray, cover: tuple[int, int], corner: tuple[int, int], size: tuple[int, int]) -> np.ndarray:
    """The exact fit in numpy: torch's arithmetic step by step (where torch is not loaded, as in a bundle)."""
    (nh, nw), (top, left), (th, tw) = cover, corner, size
    h, w = rgb.shape[:2]
    x = np.ascontiguousarray(rgb.transpose(1, 0, 2), dtype=np.float32)  # (W, H, 3): each pass gathers whole rows
    if nw != w:  # width first, as torch does
        index, weight = _taps(w, nw)
        x = _resample_rows(x, index[left : left + tw], weight[left : left + tw])
    else:
        x = x[left : left + tw]
    x = np.ascontiguousarray(x.transpose(1, 0, 2))  # (H, tw, 3)
    if nh != h:
        index, weight = _taps(h, nh)
        x = _resample_rows(x, index[top : top + th], weight[top : top + th])
    else:
        x = x[top : top + th]
    return np.clip(np.rint(x), 0, 255).astype(np.uint8)


def _resample_rows(x: np.ndarray, index: np.ndarray, weight: np.ndarray) -> np.ndarray:
    """``out[i] = sum_j x[index[i, j]] * weight[i, j]`` along axis 0, one fused multiply-add per tap.

    Each step is computed exactly in float64 (a float32 x float32 product fits) and rounded to float32 once, as an
    FMA does: that is what makes the result equal torch's.
    """
    shape = (len(index),) + (1,) * (x.ndim - 1)
    acc = x[index[:, 0]] * weight[:, 0].reshape(shape)
    term = np.empty(acc.shape, np.float64)
    for j in range(1, index.shape[1]):
        np.multiply(x[index[:, j]], weight[:, j].astype(np.float64).reshape(shape), out=term)
        term += acc
        acc = term.astype(np.float32)
    return acc


def float_fit(decoded: Decoded, size: Sequence[int], pipeline: str = "fast") -> bool:
    """Whether ``pipeline`` fits ``decoded`` to ``size`` with Pillow's float resize (else the exact arithmetic).

    ``exact``: never. ``turbo`` (its uint8 variant), ``fast`` and ``full``: after DCT scaling always, after a full
    decode when the fit reduces the image at least :data:`MIN_REDUCTION` times in both dimensions.

    Raises:
        ValueError: An unknown ``pipeline``.
    """
    if pipeline not in PIPELINES:
        raise ValueError(f"pipeline must be one of {list(PIPELINES)}, got {pipeline!r}")
    if pipeline == "exact":
        return False
    if decoded.fast:
        return True
    h, w = decoded.rgb.shape[:2]
    nh, nw = cover_size(h, w, size)
    return h >= MIN_REDUCTION * nh and w >= MIN_REDUCTION * nw


def fit_decoded(decoded: Decoded, size: Sequence[int], pipeline: str = "fast") -> np.ndarray:
    """Stage 2 of :func:`decode_and_fit` for ``pipeline``: :func:`fit_array` with the resize it takes for
    ``decoded`` (exact, float or, for ``turbo``, uint8; see :func:`float_fit`). Returns uint8 (H, W, 3).

    Raises:
        ValueError: An unknown ``pipeline``.
    """
    approximate = float_fit(decoded, size, pipeline)
    return fit_array(decoded.rgb, size, exact=not approximate, uint8=approximate and pipeline == "turbo")


def decode_and_fit(
    source: Source,
    load_size: Sequence[int],
    *,
    pipeline: str = "fast",
    layout: str = "chw",
    max_pixels: int | None = None,
) -> np.ndarray:
    """Decode an image and fit it to ``load_size``: THE single-image input pipeline (benchmark, bundle, server).

    Args:
        source: Encoded image bytes (JPEG, PNG, BMP, TIFF, WebP, ...) or a file path.
        load_size: (height, width) to fit to (a checkpoint's ``meta["load_size"]``, or an artifact's raw size).
        pipeline: ``turbo`` (as ``fast`` with the uint8 resize), ``fast`` (JPEG DCT scaling and the float resize
            where they apply), ``full`` (no DCT scaling) or ``exact`` (today's pixels); see the module docstring.
        layout: ``chw`` (3, H, W), as the decode cache stores images, or ``hwc`` (H, W, 3), as raw-input
            graphs take them.
        max_pixels: Refuse larger images, from their header (default :data:`MAX_PIXELS`).

    Returns:
        uint8 RGB at ``load_size``, C-contiguous.

    Raises:
        ImageDecodeError: The input is not a readable image (a ``fishopt.errors.DataError`` inside fishopt);
            :class:`ImageTooLargeError` when it declares more than ``max_pixels``.
        ValueError: An unknown ``layout`` or ``pipeline``.
    """
    if layout not in ("chw", "hwc"):
        raise ValueError(f"layout must be 'chw' or 'hwc', got {layout!r}")
    if pipeline not in PIPELINES:
        raise ValueError(f"pipeline must be one of {list(PIPELINES)}, got {pipeline!r}")
    decoded = decode_rgb(source, load_size, fast=pipeline in DCT_PIPELINES, max_pixels=max_pixels)
    fitted = fit_decoded(decoded, load_size, pipeline)
    return np.ascontiguousarray(fitted.transpose(2, 0, 1) if layout == "chw" else fitted)
