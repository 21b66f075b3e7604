"""The one preprocessing pipeline: decode, fit to the load size, center crop, normalize.

Training caches the output of :func:`fit_to` (uint8) and augments it; evaluation and every
exported artifact run :class:`Preprocess` (or its last two steps, :func:`eval_transform`). Export
bakes the same module into graphs that take raw uint8 images, so deployed models see exactly what
the model saw in evaluation.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from fishopt.errors import ConfigError, DataError

MAX_PIXELS_ENV = "FISHOPT_MAX_IMAGE_PIXELS"
#: Pillow's own decompression-bomb limit (it refuses images above twice ``Image.MAX_IMAGE_PIXELS``).
DEFAULT_MAX_IMAGE_PIXELS = 2 * 89_478_485


def max_image_pixels() -> int | None:
    """The largest image (width x height) fishopt decodes: ``$FISHOPT_MAX_IMAGE_PIXELS`` (``0``: no limit), by
    default Pillow's decompression-bomb limit of 178,956,970 pixels.

    Raises:
        ConfigError: If the variable is not a non-negative integer.
    """
    value = os.environ.get(MAX_PIXELS_ENV)
    if value is None or value.strip() == "":
        return DEFAULT_MAX_IMAGE_PIXELS
    try:
        limit = int(value)
    except ValueError:
        limit = -1
    if limit < 0:
        raise ConfigError(f"{MAX_PIXELS_ENV}={value!r} is not a pixel count; set a whole number (0: no limit)")
    return limit or None


class ImageDecodeError(DataError):
    """An image file that cannot be decoded; ``reason`` is the short form (file and cause) for lists."""

    def __init__(self, message: str, reason: str) -> None:
        super().__init__(message)
        self.reason = reason


def decode_image(path: str | Path) -> torch.Tensor:
    """Decode an image file to a uint8 RGB tensor of shape (3, H, W).

    Grayscale, palette, CMYK and RGBA images are converted to RGB (alpha is dropped). Images larger
    than :func:`max_image_pixels` are refused before their pixels are decoded.

    Raises:
        ImageDecodeError: If the file cannot be read, is not a complete image or is too large.
    """
    from PIL import Image

    limit = max_image_pixels()
    saved = Image.MAX_IMAGE_PIXELS
    Image.MAX_IMAGE_PIXELS = None  # fishopt checks the size itself (below), naming the file and the way out
    try:
        with warnings.catch_warnings(), Image.open(path) as img:
            warnings.filterwarnings("error", message="Truncated File Read")  # Pillow would return a partial image
            pixels = img.width * img.height
            if limit is not None and pixels > limit:
                raise ImageDecodeError(
                    f"image {str(path)!r} is {img.width}x{img.height} = {pixels:,} pixels, above the limit of "
                    f"{limit:,} that guards against decompression bombs; if the file is trusted, allow it with "
                    f"{MAX_PIXELS_ENV}={pixels} (or 0 for no limit), else remove it",
                    f"{str(path)!r} ({img.width}x{img.height} pixels, above the limit {limit:,}: "
                    f"{MAX_PIXELS_ENV} raises it)",
                )
            img.load()
            array = np.asarray(img.convert("RGB"))
    except ImageDecodeError:
        raise
    except (OSError, SyntaxError, ValueError, TypeError, EOFError, UserWarning, Image.DecompressionBombError) as exc:
        # PIL signals a corrupt, truncated or unreadable file with any of these
        reason = getattr(exc, "strerror", None) or str(exc) or exc.__class__.__name__
        raise ImageDecodeError(
            f"cannot decode image {str(path)!r} ({reason}); the file is corrupt, truncated, unreadable or not an "
            "image: replace or remove it",
            f"{str(path)!r} ({reason})",
        ) from exc
    finally:
        Image.MAX_IMAGE_PIXELS = saved
    if array.ndim != 3 or array.shape[2] != 3 or array.dtype != np.uint8 or 0 in array.shape:
        raise ImageDecodeError(
            f"cannot decode image {str(path)!r}: it decodes to an array of shape {array.shape}; replace or remove it",
            f"{str(path)!r} (decodes to shape {array.shape})",
        )
    return torch.from_numpy(array.copy()).permute(2, 0, 1).contiguous()


def fit_to(images: torch.Tensor, size: Sequence[int]) -> torch.Tensor:
    """Resize so the images cover ``size`` (keeping aspect ratio), then center crop to it.

    Args:
        images: uint8 or float tensor (N, 3, H, W) or (3, H, W).
        size: Target (height, width).

    Returns:
        Tensor of the same dtype and rank, spatial size ``size``. Bilinear with antialiasing;
        uint8 results are rounded.
    """
    squeeze = images.dim() == 3
    x = images.unsqueeze(0) if squeeze else images
    th, tw = int(size[0]), int(size[1])
    h, w = x.shape[-2:]
    if (h, w) != (th, tw):
        scale = max(th / h, tw / w)
        nh, nw = max(th, round(h * scale)), max(tw, round(w * scale))
        y = F.interpolate(x.float(), size=(nh, nw), mode="bilinear", antialias=True, align_corners=False)
        y = center_crop(y, (th, tw))
        x = y.round().clamp(0, 255).to(torch.uint8) if images.dtype == torch.uint8 else y
    return x.squeeze(0) if squeeze else x


def center_crop(images: torch.Tensor, size: Sequence[int]) -> torch.Tensor:
    """Center crop the last two dimensions to ``size`` (height, width)."""
    h, w = images.shape[-2:]
    th, tw = int(size[0]), int(size[1])
    if th > h or tw > w:
        raise DataError(f"cannot center crop {h}x{w} images to {th}x{tw}: the crop must not exceed the image")
    top, left = (h - th) // 2, (w - tw) // 2
    return images[..., top : top + th, left : left + tw]


def normalize(images: torch.Tensor, mean: Sequence[float], std: Sequence[float]) -> torch.Tensor:
    """Scale uint8 (or 0-255 float) images to [0, 1] and normalize per channel."""
    m = torch.tensor(mean, dtype=torch.float32, device=images.device).view(1, 3, 1, 1)
    s = torch.tensor(std, dtype=torch.float32, device=images.device).view(1, 3, 1, 1)
    return (images.float() / 255.0 - m) / s


def eval_transform(
    images: torch.Tensor, input_size: Sequence[int], mean: Sequence[float], std: Sequence[float]
) -> torch.Tensor:
    """Deterministic evaluation transform of images already at the load size: center crop + normalize."""
    return normalize(center_crop(images, input_size), mean, std)


class Preprocess(nn.Module):
    """Raw uint8 RGB images (NCHW or NHWC) of any size -> normalized model input.

    Args:
        load_size: (H, W) the images are fitted to (as cached for training).
        input_size: (H, W) center crop fed to the model.
        mean: Per-channel mean on the [0, 1] scale.
        std: Per-channel std on the [0, 1] scale.
        channels_last_input: Accept NHWC input (as image libraries give it) instead of NCHW.
    """

    mean: torch.Tensor  # buffers, registered in __init__
    std: torch.Tensor

    def __init__(
        self,
        load_size: Sequence[int],
        input_size: Sequence[int],
        mean: Sequence[float],
        std: Sequence[float],
        channels_last_input: bool = False,
    ) -> None:
        super().__init__()
        self.load_size = (int(load_size[0]), int(load_size[1]))
        self.input_size = (int(input_size[0]), int(input_size[1]))
        self.channels_last_input = channels_last_input
        self.register_buffer("mean", torch.tensor(mean, dtype=torch.float32).view(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor(std, dtype=torch.float32).view(1, 3, 1, 1))

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """Preprocess a batch of uint8 images."""
        x = images.permute(0, 3, 1, 2) if self.channels_last_input else images
        x = fit_to(x.float(), self.load_size).round().clamp(0, 255)
        x = center_crop(x, self.input_size)
        return (x / 255.0 - self.mean) / self.std


def channel_stats(images: torch.Tensor, input_size: Sequence[int]) -> tuple[list[float], list[float]]:
    """Per-channel mean and std (on the [0, 1] scale) of center-cropped uint8 images."""
    x = center_crop(images, input_size).float() / 255.0
    flat = x.transpose(0, 1).reshape(3, -1)
    return [round(v, 6) for v in flat.mean(1).tolist()], [round(v, 6) for v in flat.std(1).tolist()]
