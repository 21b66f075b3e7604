"""The one registry of artifact formats and of the runtime variants that run them.

A :class:`Format` is one kind of artifact: its name, backend, precision, file suffix, the builder that makes
it, the runtime that loads it and the config dataclass of its build options. A :class:`Variant` is one way to
run a format: the format plus runtime settings (an execution provider, a precision hint, threads spinning,
CUDA, torch.compile ...); every format has a default variant of its own name. The CLI choices, option
validation, the benchmark loop and the test parametrization all read these tables.

Each backend is one package under :mod:`fishopt.backends` whose ``__init__`` registers its formats and
variants; the registry imports every such package the first time it is read. Builders and runtimes are named
as ``"module:attribute"`` strings and imported only when used, so reading the registry never imports
onnxruntime, openvino, neural_compressor or tensorrt.
"""

from __future__ import annotations

import dataclasses
import importlib
import importlib.util
import pkgutil
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from fishopt.artifacts.config import NoOptions, make_config
from fishopt.errors import BackendUnavailableError, ConfigError, MissingDependencyError, unknown_choice

#: The commands that build formats: ``fishopt export``, ``fishopt compile``, ``fishopt quantize``.
COMMANDS = ("export", "compile", "quantize")
PRECISIONS = ("fp32", "fp16", "bf16", "int8")
DEVICES = ("cpu", "cuda")
#: Built-in backends in listing order (the reference first); other backend packages follow by name.
BUILTIN_ORDER = ("torch", "onnx", "openvino", "tensorrt")


def availability(requires: tuple[str, ...], extra: str | None, device: str = "cpu") -> str | None:
    """Why something that needs ``requires`` (modules) and ``device`` cannot run here, or ``None`` if it can.

    The one availability check of fishopt: formats, variants and the TensorRT builder use it. The reason
    names everything that is missing (the modules with the extra that installs them, and the GPU).
    """
    reasons = []
    missing = [m for m in requires if importlib.util.find_spec(m) is None]
    if missing:
        reasons.append(f"{', '.join(missing)} not installed (pip install 'fishopt[{extra}]')")
    if device == "cuda" and not cuda_available():
        reasons.append("needs a CUDA GPU; none is available on this machine")
    return "; ".join(reasons) or None


def cuda_available() -> bool:
    """Whether torch sees a CUDA GPU."""
    import torch

    return bool(torch.cuda.is_available())


def resolve(ref: str) -> Any:
    """Import ``"module:attribute"`` and return the attribute."""
    module, _, attr = ref.partition(":")
    return getattr(importlib.import_module(module), attr)


@dataclass(frozen=True)
class Format:
    """One artifact format.

    Attributes:
        name: Registry name, ``<backend or toolkit>-<precision>[-<method>]`` (e.g. ``onnx-fp32``, ``openvino-int8``).
        backend: The package under :mod:`fishopt.backends` that builds and runs it (``torch``, ``onnx``,
            ``openvino``, ``tensorrt``).
        precision: ``fp32``, ``fp16``, ``bf16`` or ``int8``.
        suffix: File suffix of the main artifact file (``.onnx``, ``.xml``, ``.pt2``, ``.engine``, ``.pt``).
        builder: ``"module:function"`` that builds it (contract below).
        runtime: ``"module:Class"`` of the :class:`fishopt.artifacts.runtime.Runtime` that loads it.
        config: Dataclass of its build options (:mod:`fishopt.artifacts.config`); its fields are the valid options.
        command: The CLI command that builds it: ``export``, ``compile`` or ``quantize``.
        toolkit: For ``quantize`` formats, the toolkit that quantizes (``fishopt quantize --backend``):
            ``torch``, ``onnxruntime``, ``openvino`` or ``inc``.
        method: For ``quantize`` formats, ``static`` or ``dynamic`` (``fishopt quantize --method``).
        needs_gpu: It needs a CUDA GPU to build and run.
        requires: Importable modules it needs.
        extra: The pip extra that installs them (``pip install 'fishopt[extra]'``).
        description: One line for help texts and reports.
        atol: Parity tolerance (max |logit diff|) for ``fp32`` formats; ``None``: the default of
            :mod:`fishopt.artifacts.parity`. Other precisions are judged by agreement and accuracy.

    Builder contract::

        builder(ckpt: LoadedCheckpoint, workdir: Path, meta: dict, config) -> BuildOutput

    It writes the artifact (and any side files) into the empty folder ``workdir``, embeds ``meta`` (from
    :func:`fishopt.artifacts.metadata.artifact_metadata`) plus its own facts with the writers of
    :mod:`fishopt.artifacts.metadata`, must not change ``ckpt``, and returns the main file and those facts
    (:class:`fishopt.artifacts.build.BuildOutput`). Calibration images, if any, come from
    :func:`fishopt.artifacts.calibration.calibration_batch` (train part of the split only).
    """

    name: str
    backend: str
    precision: str
    suffix: str
    builder: str
    runtime: str
    config: type = NoOptions
    command: str = "export"
    toolkit: str | None = None
    method: str | None = None
    needs_gpu: bool = False
    requires: tuple[str, ...] = ()
    extra: str | None = None
    description: str = ""
    atol: float | None = None

    @property
    def device(self) -> str:
        """``cuda`` for GPU formats, else ``cpu``."""
        return "cuda" if self.needs_gpu else "cpu"

    def unavailable_reason(self) -> str | None:
        """Why this format cannot be built or run here, or ``None`` if it can."""
        return availability(self.requires, self.extra, self.device)

    def check_available(self) -> None:
        """Raise if the format cannot be used here.

        Raises:
            MissingDependencyError: A required module is not installed (names the extra).
            BackendUnavailableError: It needs a GPU and there is none.
        """
        reason = self.unavailable_reason()
        if reason is None:
            return
        error = MissingDependencyError if "not installed" in reason and "GPU" not in reason else BackendUnavailableError
        raise error(f"format {self.name!r} cannot be used here: {reason}")

    def options(self) -> tuple[str, ...]:
        """The option names the format accepts (the fields of its config)."""
        return tuple(f.name for f in dataclasses.fields(self.config))

    def make_config(self, options: Mapping[str, Any] | Any | None = None) -> Any:
        """The validated config of this format from ``options`` (unset ones may be ``None``/``False``).

        Raises:
            ConfigError: For an option the format does not take (lists the ones it does) or a bad value.
        """
        if isinstance(options, self.config):
            return options
        return make_config(self.config, options, what=f"format {self.name!r}")

    def load_builder(self) -> Any:
        """Import and return the builder function."""
        return resolve(self.builder)

    def load_runtime(self) -> Any:
        """Import and return the runtime class."""
        return resolve(self.runtime)


@dataclass(frozen=True)
class Variant:
    """One way to run a format: a benchmark row.

    Attributes:
        name: Registry name (a format's own name for its default variant).
        format: The format it runs.
        settings: Keyword arguments of the runtime's ``load`` (execution provider, precision hint, ...).
        device: ``cpu`` or ``cuda``.
        requires: Importable modules the settings need beyond the format's.
        extra: The pip extra that installs them.
        description: One line for reports.
    """

    name: str
    format: str
    settings: Mapping[str, Any] = field(default_factory=dict)
    device: str = "cpu"
    requires: tuple[str, ...] = ()
    extra: str | None = None
    description: str = ""

    @property
    def fmt(self) -> Format:
        """The :class:`Format` it runs."""
        return get_format(self.format)

    def unavailable_reason(self) -> str | None:
        """Why this variant cannot run here, or ``None``."""
        return self.fmt.unavailable_reason() or availability(self.requires, self.extra or self.fmt.extra, self.device)

    def load(self, path: Any, threads: int | None = None) -> Any:
        """Load an artifact of :attr:`format` with this variant's settings."""
        return self.fmt.load_runtime().load(path, threads=threads, device=self.device, **dict(self.settings))


_FORMATS: dict[str, Format] = {}
_VARIANTS: dict[str, Variant] = {}
_LOADED = False


def register_format(fmt: Format) -> Format:
    """Add a format (and its default variant of the same name) to the registry.

    Raises:
        ValueError: For a duplicate name or an unknown command, precision or backend package.
    """
    if fmt.name in _FORMATS or fmt.name in _VARIANTS:
        raise ValueError(f"format {fmt.name!r} registered twice")
    if fmt.command not in COMMANDS:
        raise ValueError(f"format {fmt.name!r}: command must be one of {COMMANDS}")
    if fmt.precision not in PRECISIONS:
        raise ValueError(f"format {fmt.name!r}: precision must be one of {PRECISIONS}")
    if (fmt.command == "quantize") != (fmt.method is not None and fmt.toolkit is not None):
        raise ValueError(f"format {fmt.name!r}: quantize formats (and only they) name a toolkit and a method")
    _FORMATS[fmt.name] = fmt
    _VARIANTS[fmt.name] = Variant(name=fmt.name, format=fmt.name, device=fmt.device, description=fmt.description)
    return fmt


def register_variant(variant: Variant) -> Variant:
    """Add a runtime variant of a registered format.

    Raises:
        ValueError: For a duplicate name, an unknown device, or a format that is not registered.
    """
    if variant.name in _VARIANTS:
        raise ValueError(f"variant {variant.name!r} registered twice")
    if variant.format not in _FORMATS:
        raise ValueError(f"variant {variant.name!r}: format {variant.format!r} is not registered")
    if variant.device not in DEVICES:
        raise ValueError(f"variant {variant.name!r}: device must be one of {DEVICES}")
    _VARIANTS[variant.name] = variant
    return variant


def _ensure_loaded() -> None:
    """Import every backend package under :mod:`fishopt.backends` (each registers its formats)."""
    global _LOADED
    if _LOADED:
        return
    _LOADED = True
    import fishopt.backends as backends

    order = {name: i for i, name in enumerate(BUILTIN_ORDER)}
    for info in sorted(pkgutil.iter_modules(backends.__path__), key=lambda i: (order.get(i.name, len(order)), i.name)):
        if info.ispkg:
            importlib.import_module(f"{backends.__name__}.{info.name}")


def list_formats(command: str | None = None, **filters: Any) -> list[Format]:
    """The registered formats, optionally only those of one command and with given field values."""
    _ensure_loaded()
    out = [f for f in _FORMATS.values() if command is None or f.command == command]
    return [f for f in out if all(getattr(f, k) == v for k, v in filters.items())]


def get_format(name: str) -> Format:
    """A format by name.

    Raises:
        ConfigError: If it is not registered (lists the valid names).
    """
    _ensure_loaded()
    if name not in _FORMATS:
        raise unknown_choice("format", name, _FORMATS)
    return _FORMATS[name]


def list_variants(device: str | None = None) -> list[Variant]:
    """The registered variants (every format's default one first, in registry order), optionally of one device."""
    _ensure_loaded()
    return [v for v in _VARIANTS.values() if device is None or v.device == device]


def get_variant(name: str) -> Variant:
    """A variant by name.

    Raises:
        ConfigError: If it is not registered (lists the valid names).
    """
    _ensure_loaded()
    if name not in _VARIANTS:
        raise unknown_choice("variant", name, _VARIANTS)
    return _VARIANTS[name]


def quantize_formats() -> dict[tuple[str, str], Format]:
    """``(method, toolkit) -> format`` of every INT8 quantization format (``fishopt quantize``)."""
    return {(f.method, f.toolkit): f for f in list_formats("quantize") if f.method and f.toolkit}


def quantize_format(method: str, toolkit: str) -> Format:
    """The quantization format of a method and toolkit.

    Raises:
        ConfigError: For a combination that does not exist (lists the valid ones).
    """
    table = quantize_formats()
    if method not in {m for m, _ in table}:
        raise unknown_choice("quantization method", method, {m for m, _ in table})
    if toolkit not in {t for _, t in table}:
        raise unknown_choice("quantization backend", toolkit, {t for _, t in table})
    if (method, toolkit) not in table:
        valid = ", ".join(f"--method {m} --backend {t}" for m, t in table)
        raise ConfigError(f"no {method} INT8 recipe for backend {toolkit!r}; valid combinations: {valid}")
    return table[(method, toolkit)]
