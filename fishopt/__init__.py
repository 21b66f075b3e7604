"""fishopt: train, optimize, export, benchmark and deploy an image classifier for the Kaggle fish dataset.

The public API, imported lazily (``import fishopt`` imports neither torch nor any runtime)::

    import fishopt

    ckpt = fishopt.load_checkpoint("runs/default/model.pt")
    print([f.name for f in fishopt.list_formats()])
    result = fishopt.build("openvino-int8", ckpt, "artifacts/ov-int8")      # parity-checked artifact
    fishopt.quantize(ckpt, "artifacts/ort-int8", backend="onnxruntime")     # the same verb, by toolkit
    fishopt.benchmark(ckpt, variants=["onnx-fp32", "openvino-int8"], out_dir="bench", overwrite=True)
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.2.0"

#: Public name -> "module:attribute", resolved on first use.
_API = {
    "load_checkpoint": "fishopt.checkpoint:load_checkpoint",
    "LoadedCheckpoint": "fishopt.checkpoint:LoadedCheckpoint",
    "build": "fishopt.artifacts.build:build",
    "quantize": "fishopt.artifacts.quantize:quantize",
    "list_formats": "fishopt.artifacts.registry:list_formats",
    "get_format": "fishopt.artifacts.registry:get_format",
    "list_variants": "fishopt.artifacts.registry:list_variants",
    "list_models": "fishopt.models:list_models",
    "create_model": "fishopt.models:create_model",
    "evaluate": "fishopt.training.evaluate:evaluate_checkpoint",
    "benchmark": "fishopt.benchmarks.harness:run_benchmark",
    "deploy": "fishopt.deploy.bundle:build_bundle",
}

__all__ = [
    "LoadedCheckpoint",
    "__version__",
    "benchmark",
    "build",
    "create_model",
    "deploy",
    "evaluate",
    "get_format",
    "list_formats",
    "list_models",
    "list_variants",
    "load_checkpoint",
    "quantize",
]

if TYPE_CHECKING:  # pragma: no cover - for type checkers and IDEs only
    from fishopt.artifacts.build import build
    from fishopt.artifacts.quantize import quantize
    from fishopt.artifacts.registry import get_format, list_formats, list_variants
    from fishopt.benchmarks.harness import run_benchmark as benchmark
    from fishopt.checkpoint import LoadedCheckpoint, load_checkpoint
    from fishopt.deploy.bundle import build_bundle as deploy
    from fishopt.models import create_model, list_models
    from fishopt.training.evaluate import evaluate_checkpoint as evaluate


def __getattr__(name: str) -> Any:
    if name not in _API:
        raise AttributeError(f"module 'fishopt' has no attribute {name!r}")
    module, _, attr = _API[name].partition(":")
    value = getattr(importlib.import_module(module), attr)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
