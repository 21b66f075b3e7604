"""The one registry of artifact formats and backends.

Every format fishopt can build is one :class:`Format` entry: its name, file suffix, precision, whether
it needs a GPU, which options it supports, the function that builds it and the runtime that loads
it. The CLI choices, option validation, the benchmark loop and the test parametrization all read
this table; adding a backend is one module plus one ``register_format`` call in
:mod:`fishopt.export.formats`.

Builders and runtimes are named as ``"module:attribute"`` strings and imported only when used, so
importing the registry never imports onnxruntime, openvino, neural_compressor or tensorrt.
"""

from __future__ import annotations

import importlib
import importlib.util
from dataclasses import dataclass, field
from typing import Any

from fishopt.errors import BackendUnavailableError, ConfigError, MissingDependencyError, unknown_choice

KINDS = ("export", "compile", "quantize")


@dataclass(frozen=True)
class Format:
    """One artifact format / backend.

    Attributes:
        name: Registry name, ``<runtime>-<precision>[-<mode>]`` (e.g. ``onnx-fp32``, ``openvino-int8``).
        kind: ``export``, ``compile`` or ``quantize`` (which command builds it).
        runtime: Runtime family (``torch``, ``onnxruntime``, ``openvino``, ``tensorrt``).
        precision: ``fp32``, ``fp16``, ``bf16`` or ``int8``.
        suffix: File suffix of the main artifact file (``.onnx``, ``.xml``, ``.pt2``, ``.engine``).
        builder: ``"module:function"`` that builds the artifact (see :func:`build`).
        runtime_cls: ``"module:Class"`` of the :class:`fishopt.runtimes.base.Runtime` that loads it.
        needs_gpu: True if it needs a CUDA GPU to build and run.
        requires: Importable modules it needs.
        extra: The pip extra that installs them (``pip install 'fishopt[extra]'``).
        options: Options the format supports (e.g. ``fp16``, ``dynamic_batch``, ``with_preprocessing``).
        method: Quantization method (``static``/``dynamic``) or compile mode, if any.
        backend: Toolkit that builds it (``torch``, ``onnxruntime``, ``openvino``, ``inc``, ``tensorrt``).
        description: One line for help texts and reports.
        atol: Parity tolerance, max |logit diff| against the reference checkpoint, for ``fp32`` formats
            (``None``: :data:`fishopt.export.parity.DEFAULT_ATOL`, 1e-3). Lower-precision formats are judged
            by top-1 agreement and accuracy instead (see :mod:`fishopt.export.parity`).

    Builder contract (``builder``), shared by export, compile and quantize formats::

        builder(ckpt: LoadedCheckpoint, workdir: Path, *, meta: dict, **options) -> Path

    It writes the artifact (and any side files) into the empty folder ``workdir``, embeds ``meta`` (from
    :func:`fishopt.export.metadata.artifact_metadata`) with the writers of :mod:`fishopt.export.metadata`,
    and returns the main artifact file. ``options`` holds only the options the user set (all in
    ``Format.options``); calibration data, if any, is read by the builder itself from
    ``ckpt.load_split().paths("train")``. :func:`fishopt.export.api.build` validates the options, builds
    into a temporary folder, runs the parity gate through ``runtime_cls`` and moves the folder into place.

    Runtime contract (``runtime_cls``): a :class:`fishopt.runtimes.base.Runtime` subclass whose
    ``load(path, threads=, device=)`` takes the path the builder returned.
    """

    name: str
    kind: str
    runtime: str
    precision: str
    suffix: str
    builder: str
    runtime_cls: str
    needs_gpu: bool = False
    requires: tuple[str, ...] = ()
    extra: str | None = None
    options: frozenset[str] = field(default_factory=frozenset)
    method: str | None = None
    backend: str | None = None
    description: str = ""
    atol: float | None = None

    def missing(self) -> list[str]:
        """Return the required modules that are not installed."""
        return [m for m in self.requires if importlib.util.find_spec(m) is None]

    def unavailable_reason(self) -> str | None:
        """Why this format cannot be built or run here, or ``None`` if it can."""
        missing = self.missing()
        if missing:
            return f"{', '.join(missing)} not installed (pip install 'fishopt[{self.extra}]')"
        if self.needs_gpu and not _cuda_available():
            return "needs a CUDA GPU; none is available on this machine"
        return None

    def check_available(self) -> None:
        """Raise if the format cannot be used here.

        Raises:
            MissingDependencyError: A required module is not installed (names the extra).
            BackendUnavailableError: It needs a GPU and there is none.
        """
        missing = self.missing()
        if missing:
            raise MissingDependencyError(
                f"format {self.name!r} needs {', '.join(missing)}; install it with: pip install 'fishopt[{self.extra}]'"
            )
        if self.needs_gpu and not _cuda_available():
            raise BackendUnavailableError(f"format {self.name!r} needs a CUDA GPU; none is available on this machine")

    def check_options(self, options: dict[str, Any]) -> None:
        """Raise :class:`ConfigError` for a set option this format does not support."""
        bad = sorted(k for k, v in options.items() if v and k not in self.options)
        if bad:
            valid = ", ".join(sorted(self.options)) or "none"
            raise ConfigError(f"format {self.name!r} does not support option(s) {', '.join(bad)}; it supports: {valid}")

    def load_builder(self):
        """Import and return the builder function."""
        return _resolve(self.builder)

    def load_runtime_cls(self):
        """Import and return the runtime class."""
        return _resolve(self.runtime_cls)


_FORMATS: dict[str, Format] = {}


def _resolve(ref: str):
    module, _, attr = ref.partition(":")
    return getattr(importlib.import_module(module), attr)


def _cuda_available() -> bool:
    import torch

    return bool(torch.cuda.is_available())


def register_format(fmt: Format) -> Format:
    """Add a format to the registry (names must be unique)."""
    if fmt.name in _FORMATS:
        raise ValueError(f"format {fmt.name!r} registered twice")
    if fmt.kind not in KINDS:
        raise ValueError(f"format {fmt.name!r}: kind must be one of {KINDS}")
    _FORMATS[fmt.name] = fmt
    return fmt


def _ensure_loaded() -> None:
    import fishopt.export.formats  # noqa: F401 - registers the built-in formats


def list_formats(kind: str | None = None, **filters: Any) -> list[Format]:
    """Return the registered formats, optionally filtered by kind and field values."""
    _ensure_loaded()
    out = [f for f in _FORMATS.values() if kind is None or f.kind == kind]
    return [f for f in out if all(getattr(f, k) == v for k, v in filters.items())]


def get_format(name: str) -> Format:
    """Return a format by name.

    Raises:
        ConfigError: If it is not registered (lists the valid names).
    """
    _ensure_loaded()
    if name not in _FORMATS:
        raise unknown_choice("format", name, _FORMATS)
    return _FORMATS[name]
