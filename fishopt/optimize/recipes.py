"""Quantization recipes: one small dataclass per method, serialized into the artifact's ``recipe``.

A recipe says what to do (static or dynamic INT8, with which toolkit, how much calibration data, how
much accuracy may be lost); :func:`fishopt.optimize.quantize` does it. Like torchao's
``quantize_(model, config)``, the recipe is data and travels with the artifact (``to_dict``).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from typing import Any

from fishopt.errors import ConfigError, unknown_choice

DEFAULT_CALIB_SIZE = 256  # calibration images from the train split
METHODS = ("static", "dynamic")
BACKENDS = ("torch", "onnxruntime", "openvino", "inc")
PACKAGES = ("aoti", "exported")

# (method, backend) -> registry format name
FORMAT_OF: dict[tuple[str, str], str] = {
    ("static", "torch"): "torch-int8",
    ("dynamic", "torch"): "torch-int8-dynamic",
    ("static", "onnxruntime"): "onnxruntime-int8",
    ("dynamic", "onnxruntime"): "onnxruntime-int8-dynamic",
    ("static", "openvino"): "openvino-int8",
    ("static", "inc"): "inc-int8",
}


@dataclass(frozen=True)
class QuantRecipe:
    """An INT8 post-training quantization recipe.

    Attributes:
        method: ``static`` (weights and activations, calibrated) or ``dynamic`` (weights ahead of time,
            activations at run time; Linear/MatMul layers only).
        backend: Toolkit: ``torch`` (PT2E / torchao), ``onnxruntime``, ``openvino`` (NNCF) or ``inc``.
        calib_size: Calibration images from the TRAIN split, stratified per class (static only).
        seed: Seed of the calibration draw.
        max_drop: Largest accepted top-1 drop in points; INC tunes against it on the VALIDATION split.
        per_channel: Per-channel weight scales (static ONNX Runtime; torch/INC/NNCF use per-channel anyway).
        package: How torch-based INT8 models are saved: ``aoti`` (AOTInductor package, compiled) or
            ``exported`` (a ``torch.export`` program, reference Q/DQ kernels, slower).
    """

    method: str = "static"
    backend: str = "onnxruntime"
    calib_size: int = DEFAULT_CALIB_SIZE
    seed: int = 0
    max_drop: float = 1.0
    per_channel: bool = True
    package: str = "aoti"
    extra: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.method not in METHODS:
            raise unknown_choice("quantization method", self.method, METHODS)
        if self.backend not in BACKENDS:
            raise unknown_choice("quantization backend", self.backend, BACKENDS)
        if (self.method, self.backend) not in FORMAT_OF:
            valid = ", ".join(f"--method {m} --backend {b}" for m, b in FORMAT_OF)
            raise ConfigError(f"no {self.method} INT8 recipe for backend {self.backend!r}; valid combinations: {valid}")
        if self.package not in PACKAGES:
            raise unknown_choice("package", self.package, PACKAGES)
        if int(self.calib_size) < 1:
            raise ConfigError(f"calib_size must be a positive number of images, got {self.calib_size}")
        if not 0.0 <= float(self.max_drop) <= 100.0:
            raise ConfigError(f"max_drop is a top-1 drop in points (0-100), got {self.max_drop}")

    @property
    def format_name(self) -> str:
        """The registry format this recipe builds."""
        return FORMAT_OF[(self.method, self.backend)]

    @property
    def name(self) -> str:
        """Short label, e.g. ``int8-static-onnxruntime``."""
        return f"int8-{self.method}-{self.backend}"

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form for the artifact metadata ``recipe``."""
        out = {"name": self.name, "precision": "int8", **asdict(self)}
        if self.method == "dynamic":
            out.pop("calib_size")
        if not out["extra"]:
            out.pop("extra")
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> QuantRecipe:
        """Rebuild a recipe from :meth:`to_dict` output (unknown keys are ignored)."""
        keys = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in keys})

    @classmethod
    def for_format(cls, format_name: str, **kwargs: Any) -> QuantRecipe:
        """The recipe of a registry format name (e.g. ``openvino-int8``) with optional overrides.

        Raises:
            ConfigError: If the format is not an INT8 quantization format.
        """
        for (method, backend), name in FORMAT_OF.items():
            if name == format_name:
                return cls(method=method, backend=backend, **kwargs)
        raise unknown_choice("INT8 format", format_name, FORMAT_OF.values())


def recipe_from_options(format_name: str, options: dict[str, Any] | None) -> QuantRecipe:
    """Build the recipe of ``format_name`` from builder options (``calib_size``, ``seed``, ``max_drop``, ...).

    ``calib_images`` (the registry-wide name, also used by ``tensorrt-int8``) is accepted for ``calib_size``;
    ``per_tensor=True`` sets ``per_channel=False`` (the build verb drops options that are False).
    """
    options = dict(options or {})
    if options.get("calib_images") is not None and options.get("calib_size") is None:
        options["calib_size"] = options["calib_images"]
    if options.get("per_tensor"):
        options["per_channel"] = False
    keys = {f.name for f in fields(QuantRecipe)} - {"method", "backend"}
    return QuantRecipe.for_format(format_name, **{k: v for k, v in options.items() if k in keys and v is not None})
