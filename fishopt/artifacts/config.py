"""Build options of the artifact formats: one small frozen dataclass per family of builders.

Like torchao's ``quantize_(model, config)``: a format names its config class in the registry, the build verb
turns the user's options into that config (unknown options and bad values are :class:`ConfigError` listing
what is valid), the builder receives the config object, and the config travels with the artifact as its
``recipe`` (:func:`recipe`).

Shape rule (one place): a dynamic-batch artifact is traced with an example batch of 2 (so the batch dimension
is not specialised to 1); a static-batch one with its ``batch_size`` (default 1).
"""

from __future__ import annotations

import dataclasses
import difflib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from fishopt.errors import ConfigError

#: Largest batch a dynamic-batch artifact accepts (the upper bound of its traced batch dimension).
MAX_BATCH = 4096
#: Default number of calibration images (train part of the split, stratified per class).
DEFAULT_CALIB_SIZE = 256
COMPILE_MODES = ("default", "max-autotune")
PACKAGES = ("aoti", "exported")


def _positive(name: str, value: Any, allow_none: bool = True) -> None:
    if value is None and allow_none:
        return
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise ConfigError(f"{name} must be a positive integer, got {value!r}")


@dataclass(frozen=True)
class BuildConfig:
    """Batch dimension of the artifact.

    Attributes:
        static_batch: Fix the batch dimension to ``batch_size`` instead of a dynamic one (1..:data:`MAX_BATCH`).
        batch_size: The static batch size (default 1); only with ``static_batch``.
    """

    static_batch: bool = False
    batch_size: int | None = None

    def __post_init__(self) -> None:
        _positive("batch_size", self.batch_size)
        if self.batch_size is not None and not self.static_batch:
            raise ConfigError("batch_size sets the static batch; add static_batch (--static-batch) or drop it")

    @property
    def example_batch(self) -> int:
        """Batch size of the example input the artifact is traced with."""
        return int(self.batch_size or 1) if self.static_batch else 2

    def shape_meta(self) -> dict[str, Any]:
        """The metadata keys that describe the batch dimension."""
        return {"dynamic_batch": not self.static_batch, "batch_size": self.example_batch if self.static_batch else None}


@dataclass(frozen=True)
class GraphConfig(BuildConfig):
    """Options of graph exports (ONNX, OpenVINO).

    Attributes:
        with_preprocessing: The graph takes raw uint8 RGB images (N, H, W, 3) and runs
            :class:`fishopt.data.preprocess.Preprocess` itself.
        raw_size: (H, W) of those raw images (default: the checkpoint's ``load_size``; another size adds an
            antialiased resize to the graph).
    """

    with_preprocessing: bool = False
    raw_size: tuple[int, int] | None = None

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.raw_size is not None:
            try:
                size = tuple(int(v) for v in self.raw_size)
            except (TypeError, ValueError) as exc:
                raise ConfigError(f"raw_size must be two integers (height, width), got {self.raw_size!r}") from exc
            if len(size) != 2 or min(size) < 1:
                raise ConfigError(f"raw_size must be two positive integers (height, width), got {self.raw_size!r}")
            object.__setattr__(self, "raw_size", size)
            if not self.with_preprocessing:
                raise ConfigError(
                    "raw_size applies to with_preprocessing graphs (--with-preprocessing); add it or drop raw_size"
                )


@dataclass(frozen=True)
class OnnxConfig(GraphConfig):
    """Options of ONNX exports.

    Attributes:
        opset: ONNX opset (default: the exporter's; at least 18).
        sanitize: Constant-fold and clean the graph with polygraphy (TensorRT-ready ONNX).
    """

    opset: int | None = None
    sanitize: bool = False

    def __post_init__(self) -> None:
        super().__post_init__()
        _positive("opset", self.opset)


@dataclass(frozen=True)
class CompileConfig(BuildConfig):
    """Options of ``torch.compile`` packages.

    Attributes:
        mode: ``default`` or ``max-autotune``.
    """

    mode: str = "default"

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.mode not in COMPILE_MODES:
            raise ConfigError(f"unknown compile mode {self.mode!r}; valid choices: {', '.join(COMPILE_MODES)}")


@dataclass(frozen=True)
class CalibratedConfig:
    """Static INT8: calibration on train images.

    Attributes:
        calib_size: Calibration images from the TRAIN part of the split, stratified per class, seeded.
        seed: Seed of that draw.
    """

    calib_size: int = DEFAULT_CALIB_SIZE
    seed: int = 0

    def __post_init__(self) -> None:
        _positive("calib_size", self.calib_size, allow_none=False)


@dataclass(frozen=True)
class OrtInt8Config(CalibratedConfig):
    """Static INT8 with ONNX Runtime.

    Attributes:
        per_channel: Per-channel weight scales (per-tensor when False).
    """

    per_channel: bool = True


@dataclass(frozen=True)
class PackageConfig:
    """How a torch INT8 model is saved.

    Attributes:
        package: ``aoti`` (AOTInductor package: compiled, fast) or ``exported`` (a ``torch.export`` program:
            reference Q/DQ kernels, smaller, no compiler needed).
    """

    package: str = "aoti"

    def __post_init__(self) -> None:
        if self.package not in PACKAGES:
            raise ConfigError(f"unknown package {self.package!r}; valid choices: {', '.join(PACKAGES)}")


@dataclass(frozen=True)
class TorchInt8Config(CalibratedConfig, PackageConfig):
    """Static INT8 with PT2E (torchao X86InductorQuantizer)."""

    def __post_init__(self) -> None:
        CalibratedConfig.__post_init__(self)
        PackageConfig.__post_init__(self)


@dataclass(frozen=True)
class IncInt8Config(TorchInt8Config):
    """Static INT8 with Intel Neural Compressor's accuracy-aware tuning.

    Attributes:
        max_drop: Largest accepted top-1 drop in points, judged on the VALIDATION part of the split.
    """

    max_drop: float = 1.0

    def __post_init__(self) -> None:
        super().__post_init__()
        if not 0.0 <= float(self.max_drop) <= 100.0:
            raise ConfigError(f"max_drop is a top-1 drop in points (0-100), got {self.max_drop}")


@dataclass(frozen=True)
class NoOptions:
    """A format without build options (the eager reference, ONNX Runtime's dynamic INT8)."""


@dataclass(frozen=True)
class EngineConfig(BuildConfig):
    """TensorRT engines (batch dimension only; dynamic engines take 1..64 images)."""


@dataclass(frozen=True)
class Int8EngineConfig(EngineConfig):
    """TensorRT INT8 engines.

    Attributes:
        calib_size: Train images that calibrate the engine's Q/DQ graph.
    """

    calib_size: int = DEFAULT_CALIB_SIZE

    def __post_init__(self) -> None:
        super().__post_init__()
        _positive("calib_size", self.calib_size, allow_none=False)


def make_config(config_cls: type, options: Mapping[str, Any] | None, what: str = "this format") -> Any:
    """Build ``config_cls`` from ``options``.

    ``None`` means unset (the default applies). An option the config has no field for is an error unless it is
    unset or ``False`` (a CLI flag that was not given).

    Raises:
        ConfigError: For an option ``config_cls`` has no field for (closest first, then all valid ones) or a
            bad value.
    """
    fields = {f.name for f in dataclasses.fields(config_cls)}
    given = {k: v for k, v in (options or {}).items() if v is not None and (k in fields or v is not False)}
    bad = sorted(set(given) - fields)
    if bad:
        hints = [m for b in bad for m in difflib.get_close_matches(b, fields, n=1)]
        closest = f" (did you mean {', '.join(hints)}?)" if hints else ""
        valid = ", ".join(sorted(fields)) or "none"
        raise ConfigError(f"{what} does not support option(s) {', '.join(bad)}; it supports: {valid}{closest}")
    return config_cls(**given)


def recipe(config: Any, **extra: Any) -> dict[str, Any]:
    """The JSON form of a config for the artifact's ``recipe`` metadata, with ``extra`` keys first."""
    return {**extra, **dataclasses.asdict(config)}
