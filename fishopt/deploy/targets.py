"""Deployment targets: which model each (target, precision) ships and what the device must run.

One :class:`Target` per kind of device; the CLI choices and the error messages read this table. Every bundle
starts from the same artifact, the ``onnx-fp32`` format exported ``with_preprocessing`` (raw uint8 RGB in);
``int8`` quantizes that graph (:mod:`fishopt.deploy.int8`), ``fp16`` (Jetson) is a TensorRT builder flag.
"""

from __future__ import annotations

from dataclasses import dataclass

from fishopt.errors import ConfigError, unknown_choice

#: Largest |logit difference| verify.py accepts, as a fraction of max(1, largest |reference logit|).
TOLERANCE = {"fp32": 1e-3, "fp16": 2e-2, "int8": 0.1}

#: trtexec flags per precision. fp32 turns TF32 off (Orin's Ampere GPU uses it by default); an INT8 model is
#: QDQ (explicit quantization): --int8 honours its scales and --fp16 lets unquantized layers run in FP16.
TRTEXEC_FLAGS = {"fp32": ("--noTF32",), "fp16": ("--fp16",), "int8": ("--int8", "--fp16")}


@dataclass(frozen=True)
class Target:
    """A kind of device a bundle is built for.

    Attributes:
        name: CLI name (``--target``).
        description: One line for help texts.
        precisions: Supported precisions.
        default_precision: Used when ``--precision`` is not given.
        tensorrt: Whether the bundle builds a TensorRT engine on the device (``build_engine.sh``).
        base_image: Base image of the bundle's Dockerfile.
        dockerfile: Template file name of the Dockerfile.
    """

    name: str
    description: str
    precisions: tuple[str, ...] = ()
    default_precision: str = "fp32"
    tensorrt: bool = False
    base_image: str = ""
    dockerfile: str = ""

    def check_precision(self, precision: str | None) -> str:
        """Return the precision to build (``None``: the target's default).

        Raises:
            ConfigError: If the target does not support the precision (lists the valid ones).
        """
        precision = precision or self.default_precision
        if precision not in self.precisions:
            valid = ", ".join(self.precisions)
            raise ConfigError(
                f"target {self.name!r} does not support precision {precision!r}; valid precisions: {valid}"
            )
        return precision


TARGETS: dict[str, Target] = {
    "jetson": Target(
        name="jetson",
        description="NVIDIA Jetson (JetPack): TensorRT engine built on the device, onnxruntime fallback",
        precisions=("fp32", "fp16", "int8"),
        default_precision="fp16",
        tensorrt=True,
        base_image="nvcr.io/nvidia/l4t-jetpack:r36.4.0",
        dockerfile="Dockerfile.jetson",
    ),
    "cpu": Target(
        name="cpu",
        description="any x86-64/arm64 box: onnxruntime on the CPU",
        precisions=("fp32", "int8"),
        default_precision="fp32",
        base_image="python:3.11-slim",
        dockerfile="Dockerfile.cpu",
    ),
}

PRECISIONS = ("fp32", "fp16", "int8")
EXPORT_FORMAT = "onnx-fp32"


def get_target(name: str) -> Target:
    """Return a target by name.

    Raises:
        ConfigError: If it is unknown (lists the valid targets).
    """
    if name not in TARGETS:
        raise unknown_choice("target", name, TARGETS)
    return TARGETS[name]


# ONNX opset -> (TensorRT range, JetPack range, L4T range). TensorRT 8.5 (JetPack 5.1, L4T r35.2) is the first
# release that imports UINT8 network inputs; TensorRT 8.5/8.6 parse opsets up to 17 and TensorRT 10.0 up to 20
# (onnx-tensorrt docs/operators.md). JetPack 6.0 ships TensorRT 8.6, JetPack 6.1/6.2 ship TensorRT 10.3.
_JETSON_BY_OPSET = (
    (17, {"tensorrt": ">=8.5,<11", "jetpack": "5.1 - 6.x", "l4t": "r35.2 - r36.x"}),
    (20, {"tensorrt": ">=10.0,<11", "jetpack": "6.1 - 6.x", "l4t": "r36.4+"}),
)

# ONNX opset -> oldest onnxruntime that runs it.
_ORT_BY_OPSET = ((17, "1.14"), (18, "1.14"), (19, "1.16"), (20, "1.17"), (21, "1.20"), (22, "1.22"))


def jetson_requirements(opset: int) -> dict[str, str]:
    """JetPack / TensorRT / L4T ranges that can build an engine from a model of this ONNX opset.

    Raises:
        ConfigError: If no JetPack 5/6 TensorRT parses the opset (the fix: export with a lower opset).
    """
    for max_opset, req in _JETSON_BY_OPSET:
        if opset <= max_opset:
            return dict(req)
    raise ConfigError(
        f"the model uses ONNX opset {opset}; TensorRT on JetPack 5/6 (8.5 - 10.x) parses opsets up to 20: "
        "export the model with opset 20 or lower"
    )


def onnxruntime_requirement(opset: int) -> str:
    """Oldest onnxruntime (``>=X``) that runs a model of this ONNX opset."""
    for max_opset, version in _ORT_BY_OPSET:
        if opset <= max_opset:
            return f">={version}"
    return f">={_ORT_BY_OPSET[-1][1]}"
