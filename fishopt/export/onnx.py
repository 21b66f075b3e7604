"""ONNX export with torch's dynamo exporter: one self-contained file, metadata in ``metadata_props``.

The graph takes normalized float32 (N, 3, H, W) at the checkpoint's ``input_size``, or, with
``with_preprocessing``, raw uint8 RGB images (N, H, W, 3) at ``raw_size`` (default: the checkpoint's
``load_size``, so no resize is needed and the graph reproduces the evaluation transform exactly: center
crop + normalize). Another ``raw_size`` adds :func:`fishopt.data.preprocess.fit_to`'s antialiased
bilinear resize (ONNX ``Resize`` with ``antialias=1``, opset >= 18) to the graph.
"""

from __future__ import annotations

import contextlib
import copy
import io
import logging
from pathlib import Path
from typing import Any

import torch
from torch import nn

from fishopt.errors import ConfigError

log = logging.getLogger(__name__)
INPUT_NAME = "images"
OUTPUT_NAME = "logits"
MIN_OPSET = 18


class _Wrapped(nn.Module):
    """Optional preprocessing, then the model, optionally in FP16 with float32 input and output."""

    def __init__(self, model: nn.Module, preprocess: nn.Module | None, fp16: bool) -> None:
        super().__init__()
        self.preprocess = preprocess
        self.fp16 = fp16
        self.model = model.half() if fp16 else model

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # noqa: D102 - nn.Module API
        if self.preprocess is not None:
            x = self.preprocess(x)
        if self.fp16:
            return self.model(x.half()).float()
        return self.model(x)


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


def export_module(ckpt, *, precision: str = "fp32", with_preprocessing: bool = False, raw_size: Any = None,
                  batch_size: int = 2) -> tuple[nn.Module, torch.Tensor, dict[str, Any]]:
    """The module to export, an example input, and the metadata keys that describe its input.

    Args:
        ckpt: The loaded checkpoint (its model is copied, not changed).
        precision: ``fp32`` or ``fp16``.
        with_preprocessing: Take raw uint8 NHWC images and preprocess inside the graph.
        raw_size: (H, W) of the raw images (default: the checkpoint's load size).
        batch_size: Batch of the example input.

    Returns:
        ``(module, example, input_meta)``.
    """
    from fishopt.data.preprocess import Preprocess

    meta = ckpt.meta
    model = copy.deepcopy(ckpt.model).eval()
    pre = None
    info: dict[str, Any] = {"raw_input": bool(with_preprocessing), "input_name": INPUT_NAME, "output_name": OUTPUT_NAME}
    if with_preprocessing:
        size = resolve_raw_size(meta, raw_size)
        pre = Preprocess(meta["load_size"], meta["input_size"], meta["mean"], meta["std"], channels_last_input=True)
        example = torch.randint(0, 256, (batch_size, *size, 3), dtype=torch.uint8)
        info.update(raw_size=size, input_layout="NHWC uint8 RGB")
    else:
        example = torch.randn(batch_size, 3, *meta["input_size"])
        info.update(input_layout="NCHW float32 normalized")
    return _Wrapped(model, pre, precision == "fp16").eval(), example, info


def export_onnx(module: nn.Module, example: torch.Tensor, path: Path, *, static_batch: bool = False,
                opset: int | None = None) -> Any:
    """Export ``module`` with the dynamo exporter to one self-contained ONNX file.

    Args:
        module: Module to export (eval mode).
        example: Example input; its batch size is the static batch when ``static_batch``.
        path: Output ``.onnx`` file.
        static_batch: Fix the batch dimension instead of making it dynamic.
        opset: ONNX opset (default: the exporter's).

    Returns:
        The ``onnx.ModelProto`` (as written).

    Raises:
        ConfigError: For an opset below 18 (the dynamo exporter's minimum).
    """
    if opset is not None and int(opset) < MIN_OPSET:
        raise ConfigError(f"opset {opset} is not supported by the dynamo exporter; use {MIN_OPSET} or newer")
    dynamic = None if static_batch else ({0: torch.export.Dim("batch", min=1, max=4096)},)
    with torch.no_grad(), _quiet():
        program = torch.onnx.export(
            module, (example,), None, dynamo=True, external_data=False, dynamic_shapes=dynamic,
            input_names=[INPUT_NAME], output_names=[OUTPUT_NAME], opset_version=opset, verbose=False,
        )
    import onnx

    model = strip_debug_info(program.model_proto)
    onnx.save(model, str(path))
    return model


def strip_debug_info(model):
    """Drop the exporter's per-node debug metadata (stack traces, FX nodes, module paths) in place.

    The dynamo exporter annotates every node with where it came from, including absolute source paths
    of the machine that exported it: about 1.6 kB per node, more than the INT8 weights of a small
    model's first layers. A deployment artifact should not carry (or leak) that; model-level
    ``metadata_props`` (fishopt's metadata) are kept.

    Returns:
        ``model`` (the same ``onnx.ModelProto``).
    """
    graphs = [model.graph, *(f for f in model.functions)]
    while graphs:
        graph = graphs.pop()
        for node in graph.node:
            del node.metadata_props[:]
            node.doc_string = ""
            for attr in node.attribute:
                graphs.extend([attr.g] if attr.HasField("g") else [])
                graphs.extend(attr.graphs)
    return model


@contextlib.contextmanager
def _quiet():
    """Keep the exporter's progress prints and its passes' INFO logs out of the user's terminal."""
    loggers = [logging.getLogger(name) for name in ("onnxscript", "onnx_ir", "torch.onnx")]
    levels = [lg.level for lg in loggers]
    for lg in loggers:
        lg.setLevel(logging.WARNING)
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            yield
    finally:
        for lg, level in zip(loggers, levels, strict=True):
            lg.setLevel(level)


def opset_of(model) -> int:
    """The default-domain opset of an ``onnx.ModelProto``."""
    return next((int(o.version) for o in model.opset_import if o.domain in ("", "ai.onnx")), 0)


def finalize_onnx(model, path: Path, meta: dict[str, Any]) -> Path:
    """Write ``meta`` (plus the opset) into ``model``, save it to ``path`` and run ``onnx.checker``."""
    import onnx

    from fishopt.export.metadata import write_onnx_metadata

    write_onnx_metadata(model, {**meta, "opset": opset_of(model)})
    onnx.save(model, str(path))
    onnx.checker.check_model(str(path), full_check=True)
    return path


def build_onnx(ckpt, workdir: Path, *, meta: dict[str, Any], static_batch: bool = False, batch_size: int | None = None,
               with_preprocessing: bool = False, raw_size: Any = None, opset: int | None = None,
               sanitize: bool = False) -> Path:
    """Builder of ``onnx-fp32`` / ``onnx-fp16`` (contract: :class:`fishopt.export.registry.Format`).

    Returns:
        ``workdir/model.onnx``.
    """
    path = Path(workdir) / "model.onnx"
    batch = int(batch_size or 1) if static_batch else 2
    module, example, info = export_module(ckpt, precision=meta["precision"], with_preprocessing=with_preprocessing,
                                          raw_size=raw_size, batch_size=batch)
    model = export_onnx(module, example, path, static_batch=static_batch, opset=opset)
    if sanitize:
        from fishopt.export.tensorrt import sanitize_onnx

        model = sanitize_onnx(model)
    info.update(dynamic_batch=not static_batch, batch_size=None if not static_batch else batch, sanitized=bool(sanitize))
    return finalize_onnx(model, path, {**meta, **info})
