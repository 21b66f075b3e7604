"""The torch backend: the eager reference, ``torch.compile`` (AOTInductor), PT2E and INC INT8, CUDA variants.

Files: ``export.py`` (``torch.export`` of the model), ``eager.py`` (the reference), ``compile.py`` (AOTInductor
packages), ``pt2e.py`` (torchao PT2E static INT8, torchao dynamic INT8), ``inc.py`` (Intel Neural Compressor),
``runtime.py`` (:class:`TorchEagerRuntime`, :class:`TorchProgramRuntime`).
"""

from __future__ import annotations

from typing import Any

from fishopt.artifacts.config import (
    CompileConfig,
    IncInt8Config,
    NoOptions,
    PackageConfig,
    TorchInt8Config,
)
from fishopt.artifacts.registry import Format, Variant, register_format, register_variant

_EAGER_RUNTIME = "fishopt.backends.torch.runtime:TorchEagerRuntime"
_PROGRAM_RUNTIME = "fishopt.backends.torch.runtime:TorchProgramRuntime"

register_format(
    Format(
        name="torch-eager-fp32",
        backend="torch",
        precision="fp32",
        suffix=".pt",
        builder="fishopt.backends.torch.eager:build_torch_eager",
        runtime=_EAGER_RUNTIME,
        config=NoOptions,
        description="The reference: the checkpoint itself, run by PyTorch eager.",
        atol=1e-5,
    )
)

register_format(
    Format(
        name="torch-compile-fp32",
        backend="torch",
        precision="fp32",
        suffix=".pt2",
        command="compile",
        builder="fishopt.backends.torch.compile:build_aoti",
        runtime=_PROGRAM_RUNTIME,
        config=CompileConfig,
        description="torch.compile (Inductor, freezing) as an AOTInductor package; loads without recompiling.",
        atol=1e-3,
    )
)

register_format(
    Format(
        name="torch-int8",
        backend="torch",
        precision="int8",
        suffix=".pt2",
        command="quantize",
        toolkit="torch",
        method="static",
        builder="fishopt.backends.torch.pt2e:build_torch_int8",
        runtime=_PROGRAM_RUNTIME,
        config=TorchInt8Config,
        requires=("torchao",),
        extra="torchao",
        description="Static INT8 (torch.export + torchao PT2E X86InductorQuantizer) as an AOTInductor package.",
    )
)

register_format(
    Format(
        name="torch-int8-dynamic",
        backend="torch",
        precision="int8",
        suffix=".pt2",
        command="quantize",
        toolkit="torch",
        method="dynamic",
        builder="fishopt.backends.torch.pt2e:build_torch_int8_dynamic",
        runtime=_PROGRAM_RUNTIME,
        config=PackageConfig,
        requires=("torchao",),
        extra="torchao",
        description="Dynamic INT8 of the Linear layers only (torchao Int8DynamicActivationInt8Weight); convs stay FP32.",
    )
)

register_format(
    Format(
        name="inc-int8",
        backend="torch",
        precision="int8",
        suffix=".pt2",
        command="quantize",
        toolkit="inc",
        method="static",
        builder="fishopt.backends.torch.inc:build_inc_int8",
        runtime=_PROGRAM_RUNTIME,
        config=IncInt8Config,
        requires=("neural_compressor", "torchao"),
        extra="inc",
        description="Static INT8 with Intel Neural Compressor 3.x autotune (within max_drop on the val split).",
    )
)

# Runtime variants of the reference checkpoint: memory format, mixed precision, torch.compile, CUDA.
register_variant(
    Variant(
        name="torch-eager-fp32-cl",
        format="torch-eager-fp32",
        settings={"channels_last": True},
        description="PyTorch eager FP32, channels_last memory format.",
    )
)
_CUDA: dict[str, tuple[dict[str, Any], str]] = {
    "torch-eager-fp32-cuda": ({"channels_last": True}, "CUDA eager FP32, channels_last."),
    "torch-eager-fp16-cuda": ({"channels_last": True, "autocast": "fp16"}, "CUDA eager, FP16 autocast, channels_last."),
    "torch-eager-bf16-cuda": ({"channels_last": True, "autocast": "bf16"}, "CUDA eager, BF16 autocast, channels_last."),
    "torch-compile-fp32-cuda": ({"channels_last": True, "compile": "default"}, "CUDA torch.compile (Inductor) FP32."),
    "torch-compile-fp16-cuda": (
        {"channels_last": True, "autocast": "fp16", "compile": "default"},
        "CUDA torch.compile (Inductor), FP16 autocast.",
    ),
    "torch-compile-fp16-cudagraphs-cuda": (
        {"channels_last": True, "autocast": "fp16", "compile": "reduce-overhead"},
        "CUDA torch.compile mode reduce-overhead (CUDA graphs), FP16 autocast.",
    ),
}
for _name, (_settings, _text) in _CUDA.items():
    register_variant(
        Variant(name=_name, format="torch-eager-fp32", settings=_settings, device="cuda", description=_text)
    )
