"""Encoded image bytes -> uint8 RGB at the model's size: the server's ONE call into the image decoder.

:func:`decode_image_bytes` runs :func:`fishopt.data.decode.decode_and_fit` in its ``exact`` pipeline (full decode,
simplejpeg for JPEG; resize to cover + center crop with the arithmetic of
:func:`fishopt.data.preprocess.fit_to`), so a served image gets the decode cache's pixels and is seen exactly as in
evaluation. Everything that decodes an image in the server goes through it.
"""

from __future__ import annotations

import io
from collections.abc import Sequence

import numpy as np
import torch  # noqa: F401 - loaded, it makes decode_and_fit's exact fit torch's own resize (2x the numpy port)

from fishopt.data.decode import ImageDecodeError, ImageTooLargeError, decode_and_fit
from fishopt.errors import DataError

#: Largest decoded image accepted (pixels); a small JPEG can declare a huge canvas (a decompression bomb).
MAX_PIXELS = 64_000_000


class ImageError(DataError):
    """Bytes that are not a decodable image (HTTP 400), or ``too_large`` ones (HTTP 413)."""

    def __init__(self, message: str, too_large: bool = False) -> None:
        super().__init__(message)
        self.too_large = too_large


def decode_image_bytes(data: bytes, size: Sequence[int], max_pixels: int = MAX_PIXELS) -> np.ndarray:
    """Decode an encoded image (JPEG, PNG, anything Pillow reads) and fit it to ``size``.

    Args:
        data: The encoded image.
        size: Target (height, width).
        max_pixels: Refuse images whose declared width x height exceeds this.

    Returns:
        uint8 array (3, height, width), RGB.

    Raises:
        ImageError: Empty, undecodable, or larger than ``max_pixels``.
    """
    if not data:
        raise ImageError("the image is empty (0 bytes)")
    try:  # the pixel limit is checked from the header (JPEG: parsed in Python, no decoder call) before decoding
        return decode_and_fit(data, size, pipeline="exact", layout="chw", max_pixels=max_pixels)
    except ImageTooLargeError as exc:
        raise ImageError(
            f"the image is {exc.width}x{exc.height} = {exc.width * exc.height:,} pixels, more than the "
            f"{max_pixels:,} accepted; downscale it before sending",
            too_large=True,
        ) from None
    except ImageDecodeError as exc:
        reason = exc.__cause__ or "corrupt, truncated or not an image"  # the decoder's own words where it gave some
        raise ImageError(f"cannot decode the image ({len(data)} bytes): {reason}; send a JPEG or PNG file") from None


def warm_up_decoder(size: Sequence[int]) -> np.ndarray:
    """Decode one generated JPEG through :func:`decode_image_bytes` (first-call imports and allocations)."""
    from PIL import Image

    buf = io.BytesIO()
    Image.new("RGB", (int(size[1]) + 7, int(size[0]) + 5), (90, 120, 150)).save(buf, format="JPEG")
    return decode_image_bytes(buf.getvalue(), size)
