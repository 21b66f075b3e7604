"""ONNX export with torch's dynamo exporter: one self-contained file, metadata in ``metadata_props``.

The graph takes normalized float32 (N, 3, H, W) at the checkpoint's ``input_size``, or, with
``with_preprocessing``, raw uint8 RGB images (N, H, W, 3) at ``raw_size`` (default: the checkpoint's
``load_size``, so no resize is needed and the graph reproduces the evaluation transform exactly: center
crop + normalize). Another ``raw_size`` adds :func:`fishopt.data.preprocess.fit_to`'s antialiased
bilinear resize (ONNX ``Resize`` with ``antialias=1``, opset >= 18) to the graph.

Graphs built by ``fishopt export --onnx`` (and the INT8 graphs quantized from them) have two outputs: ``logits``
(N, classes) and ``embeddings`` (N, D), the model's penultimate embedding from the same forward pass
(:class:`fishopt.models.embeddings.WithEmbeddings`), which the drift monitor reads. The metadata key ``outputs``
lists them.
"""

from __future__ import annotations

import copy
import logging
from pathlib import Path
from typing import Any

import torch
from torch import nn

from fishopt.artifacts.build import BuildOutput
from fishopt.artifacts.config import OnnxConfig
from fishopt.artifacts.runtime import EMBEDDINGS_OUTPUT, LOGITS_OUTPUT
from fishopt.backends.onnx.graph import sanitize_onnx, save_onnx, strip_debug_info
from fishopt.backends.torch.export import batch_dim
from fishopt.checkpoint import LoadedCheckpoint
from fishopt.data.preprocess import Preprocess
from fishopt.errors import ConfigError
from fishopt.logs import quiet
from fishopt.models.embeddings import WithEmbeddings

log = logging.getLogger(__name__)
INPUT_NAME = "images"
OUTPUT_NAME = LOGITS_OUTPUT
MIN_OPSET = 18


class _Wrapped(nn.Module):
    """Optional preprocessing, then the model, optionally in FP16 with float32 input and outputs.

    The model returns logits, or ``(logits, embeddings)`` when wrapped in :class:`WithEmbeddings`.
    """

    def __init__(self, model: nn.Module, preprocess: nn.Module | None, fp16: bool) -> None:
        super().__init__()
        self.preprocess = preprocess
        self.fp16 = fp16
        self.model = model.half() if fp16 else model

    def forward(self, x: torch.Tensor) -> torch.Tensor | tuple[torch.Tensor, ...]:  # noqa: D102 - nn.Module API
        if self.preprocess is not None:
            x = self.preprocess(x)
        if not self.fp16:
            return self.model(x)
        out = self.model(x.half())
        return tuple(o.float() for o in out) if isinstance(out, tuple) else out.float()


def resolve_raw_size(meta: dict[str, Any], raw_size: Any = None) -> list[int]:
    """The raw input size (H, W) of a preprocessing graph: ``raw_size`` or the checkpoint's load size.

    Raises:
        ConfigError: If it is not two positive integers at least as large as the input size.
    """
    size = meta["load_size"] if raw_size is None else raw_size
    try:
        h, w = (int(v) for v in size)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"raw_size must be two integers HxW (e.g. 168x224), got {raw_size!r}") from exc
    ih, iw = meta["input_size"]
    if h < ih or w < iw:
        raise ConfigError(f"raw_size {h}x{w} is smaller than the model input {ih}x{iw}; use at least {ih}x{iw}")
    return [h, w]


def wrap_for_export(
    ckpt: LoadedCheckpoint,
    *,
    precision: str = "fp32",
    with_preprocessing: bool = False,
    raw_size: Any = None,
    batch_size: int = 2,
    embeddings: bool = False,
) -> tuple[nn.Module, torch.Tensor, dict[str, Any]]:
    """The module to export, an example input, and the metadata keys that describe its input and outputs.

    Args:
        ckpt: The loaded checkpoint (its model is copied, not changed).
        precision: ``fp32`` or ``fp16``.
        with_preprocessing: Take raw uint8 NHWC images and preprocess inside the graph.
        raw_size: (H, W) of the raw images (default: the checkpoint's load size).
        batch_size: Batch of the example input.
        embeddings: Return ``(logits, embeddings)`` (:class:`WithEmbeddings`) instead of logits alone.

    Returns:
        ``(module, example, meta)``; ``meta["outputs"]`` names the module's outputs in order.
    """
    meta = ckpt.meta
    model: nn.Module = copy.deepcopy(ckpt.model).eval()
    outputs = [OUTPUT_NAME]
    if embeddings:
        model = WithEmbeddings(model).eval()
        outputs.append(EMBEDDINGS_OUTPUT)
    pre = None
    info: dict[str, Any] = {
        "raw_input": bool(with_preprocessing),
        "input_name": INPUT_NAME,
        "output_name": OUTPUT_NAME,
        "outputs": outputs,
    }
    if with_preprocessing:
        size = resolve_raw_size(meta, raw_size)
        pre = Preprocess(meta["load_size"], meta["input_size"], meta["mean"], meta["std"], channels_last_input=True)
        example = torch.randint(0, 256, (batch_size, *size, 3), dtype=torch.uint8)
        info.update(raw_size=size, input_layout="NHWC uint8 RGB")
    else:
        example = torch.randn(batch_size, 3, *meta["input_size"])
        info.update(input_layout="NCHW float32 normalized")
    return _Wrapped(model, pre, precision == "fp16").eval(), example, info


def export_onnx(
    module: nn.Module,
    example: torch.Tensor,
    path: Path,
    *,
    static_batch: bool = False,
    opset: int | None = None,
    output_names: list[str] | None = None,
) -> Any:
    """Export ``module`` with the dynamo exporter to one self-contained ONNX file.

    Args:
        module: Module to export (eval mode).
        example: Example input; its batch size is the static batch when ``static_batch``.
        path: Output ``.onnx`` file.
        static_batch: Fix the batch dimension instead of making it dynamic.
        opset: ONNX opset (default: the exporter's).
        output_names: Names of the module's outputs in order (default: ``["logits"]``).

    Returns:
        The ``onnx.ModelProto`` (as written).

    Raises:
        ConfigError: For an opset below 18 (the dynamo exporter's minimum).
    """
    if opset is not None and int(opset) < MIN_OPSET:
        raise ConfigError(f"opset {opset} is not supported by the dynamo exporter; use {MIN_OPSET} or newer")
    dynamic = None if static_batch else batch_dim()
    with torch.no_grad(), quiet("onnxscript", "onnx_ir", "torch.onnx", stdout=True):
        program = torch.onnx.export(
            module,
            (example,),
            None,
            dynamo=True,
            external_data=False,
            dynamic_shapes=dynamic,
            input_names=[INPUT_NAME],
            output_names=list(output_names or [OUTPUT_NAME]),
            opset_version=opset,
            verbose=False,
        )
    if program is None:  # torch.onnx.export returns the program whenever dynamo=True
        raise RuntimeError("torch.onnx.export(dynamo=True) returned no ONNXProgram")
    import onnx

    model = strip_debug_info(program.model_proto)
    onnx.save(model, str(path))
    return model


def build_onnx(ckpt: LoadedCheckpoint, workdir: Path, meta: dict[str, Any], config: OnnxConfig) -> BuildOutput:
    """Builder of ``onnx-fp32`` / ``onnx-fp16``: ``workdir/model.onnx``, one self-contained file."""
    path = Path(workdir) / "model.onnx"
    module, example, facts = wrap_for_export(
        ckpt,
        precision=meta["precision"],
        with_preprocessing=config.with_preprocessing,
        raw_size=config.raw_size,
        batch_size=config.example_batch,
        embeddings=True,
    )
    model = export_onnx(
        module, example, path, static_batch=config.static_batch, opset=config.opset, output_names=facts["outputs"]
    )
    if config.sanitize:
        model = sanitize_onnx(model)
    facts.update(config.shape_meta(), sanitized=config.sanitize)
    save_onnx(model, path, {**meta, **facts})
    return BuildOutput(path, facts)
