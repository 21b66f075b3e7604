"""The one runtime interface every artifact is run through, and the one batching loop around it."""

from __future__ import annotations

import abc
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from fishopt.errors import unknown_choice

#: Names of a graph artifact's outputs: the logits, then (optional) the penultimate embeddings of the same
#: inference (:class:`fishopt.models.embeddings.WithEmbeddings`).
LOGITS_OUTPUT = "logits"
EMBEDDINGS_OUTPUT = "embeddings"


class Runtime(abc.ABC):
    """A loaded artifact that maps a batch to logits.

    Input convention: a float32 array (N, 3, H, W), already normalized (the checkpoint's evaluation
    transform), unless ``self.raw_input`` is True: then uint8 RGB images (N, H, W, 3) at the artifact's
    stated raw size, and the artifact does the preprocessing itself.

    Runtime settings (an execution provider, a precision hint, CUDA, ...) are keyword arguments of
    :meth:`load`; a registry :class:`fishopt.artifacts.registry.Variant` names a format plus such settings.
    A subclass names the settings it takes as keyword arguments and passes any others it is given to
    :func:`reject_settings`.

    Attributes:
        path: The artifact's main file.
        meta: Its metadata (class_names, input_size, mean, std, recipe, fishopt_version, ...).
        raw_input: Whether it takes raw uint8 NHWC images.
        device: ``cpu`` or ``cuda``.
        settings: The runtime settings it was loaded with (recorded in benchmark rows).
    """

    raw_input: bool = False
    device: str = "cpu"

    def __init__(
        self,
        path: str | Path,
        meta: dict[str, Any],
        *,
        threads: int | None = None,
        settings: dict[str, Any] | None = None,
    ) -> None:
        self.path = Path(path)
        self.meta = meta
        self.threads = threads
        self.settings = dict(settings or {})

    @classmethod
    @abc.abstractmethod
    def load(cls, path: str | Path, *, threads: int | None = None, device: str = "cpu", **settings: Any) -> Runtime:
        """Load an artifact (in a fresh process: nothing but the file and its metadata)."""

    @abc.abstractmethod
    def __call__(self, batch: np.ndarray) -> np.ndarray:
        """Run a batch; return float32 logits (N, num_classes)."""

    @property
    def has_embeddings(self) -> bool:
        """Whether the artifact returns the penultimate embeddings as a second output (see :meth:`outputs`)."""
        return False

    def outputs(self, batch: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
        """Run a batch; return float32 logits (N, num_classes) and, from the same inference, the penultimate
        embeddings (N, D) where the artifact has them as a second output (:attr:`has_embeddings`), else ``None``.
        """
        return self(batch), None

    @property
    def static_batch(self) -> int | None:
        """The fixed batch size of a static-batch artifact, ``None`` for a dynamic batch dimension."""
        if self.meta.get("dynamic_batch") is False:
            return int(self.meta.get("batch_size") or 1)
        return None

    def close(self) -> None:  # noqa: B027 - optional hook, a no-op unless a runtime holds resources
        """Free resources (optional)."""


def reject_settings(runtime: str, settings: Mapping[str, Any], valid: Iterable[str]) -> None:
    """Raise for runtime settings a :meth:`Runtime.load` does not take (the ones left in its ``**settings``).

    Args:
        runtime: The runtime, for the message (``ONNX Runtime``, ``OpenVINO``, ...).
        settings: The unknown settings (nothing is raised when empty).
        valid: The settings that runtime takes.

    Raises:
        ConfigError: If ``settings`` is not empty (names the first unknown one and lists the valid ones).
    """
    for name in settings:
        raise unknown_choice(f"{runtime} setting", name, valid)


def run_batches(runtime: Any, inputs: np.ndarray, batch_size: int = 32, num_classes: int | None = None) -> np.ndarray:
    """Logits of ``inputs`` in batches; a static-batch artifact gets batches of its size, the last one padded.

    Args:
        runtime: A :class:`Runtime` (or any batch -> logits callable with ``meta``).
        inputs: What the runtime takes (float32 NCHW normalized, or uint8 NHWC for raw-input artifacts).
        batch_size: Images per call for dynamic-batch artifacts.
        num_classes: Columns of the empty result when ``inputs`` is empty (default: the metadata's classes).

    Returns:
        float32 logits (N, num_classes).
    """
    fixed = getattr(runtime, "static_batch", None)
    batch = fixed or batch_size
    outs = []
    for i in range(0, len(inputs), batch):
        chunk = inputs[i : i + batch]
        pad = batch - len(chunk) if fixed else 0
        if pad:
            chunk = np.concatenate([chunk, np.repeat(chunk[-1:], pad, axis=0)])
        outs.append(np.asarray(runtime(chunk), dtype=np.float32)[: len(chunk) - pad])
    if outs:
        return np.concatenate(outs)
    classes = num_classes if num_classes is not None else len(runtime.meta["class_names"])
    return np.zeros((0, classes), np.float32)
