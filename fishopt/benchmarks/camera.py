"""Camera-size inputs for the end-to-end rows.

:func:`camera_jpegs` re-encodes test images at a camera's frame size once (Lanczos resize to cover the size,
center crop, JPEG quality 90, 4:2:0), cached outside the repository under the decode cache folder:
``<cache>/camera/<W>x<H>-q<quality>/<sha256 of the source>.jpg``. Upscaled photos are smoother than real camera
frames, so their JPEGs are smaller and decode somewhat faster (the report states the mean file size).

Which decode pipeline each size takes is gated by :mod:`fishopt.artifacts.pipeline_check`.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from pathlib import Path

from fishopt.data.cache import cache_dir
from fishopt.errors import ConfigError
from fishopt.io import atomic_write, file_sha256

#: The size of the shared data's own files (no re-encoding).
NATIVE = "native"
#: Default sizes of the end-to-end rows.
DEFAULT_SIZES = (NATIVE, "1920x1080", "590x445")
QUALITY = 90


def parse_size(text: str) -> str:
    """Validate ``native`` or ``WxH`` (e.g. ``1920x1080``) and return it normalized.

    Raises:
        ConfigError: For anything else.
    """
    text = str(text).strip().lower()
    if text == NATIVE:
        return NATIVE
    try:
        w, h = (int(v) for v in text.split("x"))
    except ValueError:
        raise ConfigError(f"input size {text!r} is not WIDTHxHEIGHT (e.g. 1920x1080) or 'native'") from None
    if w < 16 or h < 16 or w * h > 50_000_000:
        raise ConfigError(f"input size {text!r} must be between 16x16 and 50 megapixels, e.g. 1920x1080 or 590x445")
    return f"{w}x{h}"


def _size(label: str) -> tuple[int, int]:
    w, h = (int(v) for v in label.split("x"))
    return w, h


def camera_jpeg(source: Path, label: str, quality: int = QUALITY, cache: str | Path | None = None) -> Path:
    """The cached ``label``-size (``WxH``) JPEG re-encoding of ``source`` (made on first use)."""
    w, h = _size(label)
    entry = cache_dir(cache) / "camera" / f"{w}x{h}-q{quality}" / f"{file_sha256(source)}.jpg"
    if entry.is_file():
        return entry
    from PIL import Image

    with Image.open(source) as img:
        rgb = img.convert("RGB")
    scale = max(w / rgb.width, h / rgb.height)
    nw, nh = max(w, round(rgb.width * scale)), max(h, round(rgb.height * scale))
    left, top = (nw - w) // 2, (nh - h) // 2
    frame = rgb.resize((nw, nh), Image.Resampling.LANCZOS).crop((left, top, left + w, top + h))
    buf = io.BytesIO()
    frame.save(buf, "JPEG", quality=quality, subsampling="4:2:0")
    atomic_write(entry, lambda tmp: tmp.write_bytes(buf.getvalue()))
    return entry


def camera_jpegs(
    files: Sequence[Path], label: str, quality: int = QUALITY, cache: str | Path | None = None
) -> list[Path]:
    """:func:`camera_jpeg` of every file (``native``: the files themselves)."""
    if label == NATIVE:
        return list(files)
    return [camera_jpeg(Path(f), label, quality, cache) for f in files]
