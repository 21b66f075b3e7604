"""The one runtime interface every artifact is run through."""

from __future__ import annotations

import abc
from pathlib import Path
from typing import Any

import numpy as np


class Runtime(abc.ABC):
    """A loaded artifact that maps a batch to logits.

    Input convention: a float32 array (N, 3, H, W), already normalized (the checkpoint's evaluation
    transform), unless ``self.raw_input`` is True: then uint8 RGB images (N, H, W, 3) at the artifact's
    stated input size, and the artifact does the preprocessing itself.

    Attributes:
        path: The artifact's main file.
        meta: Its metadata (class_names, input_size, mean, std, recipe, fishopt_version, ...).
        raw_input: Whether it takes raw uint8 NHWC images.
        device: ``cpu`` or ``cuda``.
    """

    raw_input: bool = False
    device: str = "cpu"

    def __init__(self, path: str | Path, meta: dict[str, Any], *, threads: int | None = None) -> None:
        self.path = Path(path)
        self.meta = meta
        self.threads = threads

    @classmethod
    @abc.abstractmethod
    def load(cls, path: str | Path, *, threads: int | None = None, device: str = "cpu") -> Runtime:
        """Load an artifact (in a fresh process: nothing but the file and its metadata)."""

    @abc.abstractmethod
    def __call__(self, batch: np.ndarray) -> np.ndarray:
        """Run a batch; return float32 logits (N, num_classes)."""

    def close(self) -> None:
        """Free resources (optional)."""
