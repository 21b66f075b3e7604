"""INT8 with PyTorch: static PT2E (torchao ``X86InductorQuantizer``) and dynamic torchao ``quantize_``.

Static: ``torch.export`` (:func:`fishopt.backends.torch.export.export_program`) with a dynamic batch dimension -> ``prepare_pt2e`` -> calibration forward passes
over TRAIN images -> ``convert_pt2e`` (weights folded to int8) -> saved as an AOTInductor package
(``.pt2``, compiled with freezing so Inductor fuses the Q/DQ pairs into oneDNN int8 kernels), or, with
``package="exported"``, as a ``torch.export`` program (reference Q/DQ kernels, slower, no compiler needed).

Dynamic: torchao ``quantize_(model, Int8DynamicActivationInt8WeightConfig())``. It swaps the weights of
``nn.Linear`` layers only; convolutions stay FP32 (see :func:`dynamic_coverage`).
"""

from __future__ import annotations

import copy
import logging
import time
from pathlib import Path
from typing import Any

import torch
from torch import nn

from fishopt.artifacts.build import BuildOutput
from fishopt.artifacts.calibration import calibration_images
from fishopt.artifacts.config import PackageConfig, TorchInt8Config
from fishopt.artifacts.metadata import write_sidecar
from fishopt.backends.torch.compile import PROGRAM_OUTPUTS, aoti_package
from fishopt.backends.torch.export import example_input, export_program
from fishopt.checkpoint import LoadedCheckpoint
from fishopt.io import deflate_zip
from fishopt.models import count_macs
from fishopt.models.embeddings import WithEmbeddings

log = logging.getLogger(__name__)


def quantize_pt2e(model: nn.Module, calib: torch.Tensor, batch_size: int = 32) -> torch.fx.GraphModule:
    """Static INT8 of a float model with torchao's PT2E flow and the x86 Inductor quantizer.

    Args:
        model: Float model in eval mode.
        calib: Preprocessed calibration batch (N, 3, H, W), float32.
        batch_size: Calibration forward pass batch size.

    Returns:
        The converted graph module (int8 weights, quantize/dequantize around activations).
    """
    import torchao.quantization.pt2e.quantizer.x86_inductor_quantizer as xiq
    from torchao.quantization.pt2e.quantize_pt2e import convert_pt2e, prepare_pt2e

    quantizer = xiq.X86InductorQuantizer()
    quantizer.set_global(xiq.get_default_x86_inductor_quantization_config())
    graph = export_program(model.eval(), calib[:2]).module()
    prepared = prepare_pt2e(graph, quantizer)
    with torch.no_grad():
        for i in range(0, len(calib), batch_size):
            prepared(calib[i : i + batch_size])
    return convert_pt2e(prepared)


def quantize_dynamic(model: nn.Module) -> nn.Module:
    """Dynamic INT8 of the Linear layers with torchao ``quantize_`` (in place; returns the model)."""
    from torchao.quantization import Int8DynamicActivationInt8WeightConfig, quantize_

    quantize_(model.eval(), Int8DynamicActivationInt8WeightConfig())
    return model


def dynamic_coverage(model: nn.Module, input_size: tuple[int, int] | list[int]) -> dict[str, Any]:
    """What dynamic INT8 covers: Linear layers only.

    Returns:
        ``{"quantized": "Linear layers only (N of M MACs, P%); K conv layers stay FP32", "linear_mac_share": P, ...}``.
    """
    macs = count_macs(model, input_size)
    convs = sum(isinstance(m, nn.Conv2d) for m in model.modules())
    linears = sum(isinstance(m, nn.Linear) for m in model.modules())
    share = 100.0 * macs["linear"] / max(macs["total"], 1)
    return {
        "quantized": f"{linears} Linear layers only ({share:.1f}% of MACs); {convs} Conv2d layers stay FP32",
        "linear_mac_share": round(share, 2),
        "macs": macs,
    }


def save_program(model: nn.Module, example: torch.Tensor, path: Path, package: str = "aoti") -> tuple[Path, str]:
    """Save a (quantized) model as an AOTInductor package or, failing that or on request, an exported program.

    Args:
        model: The model or graph module.
        example: An example input batch.
        path: Destination ``.pt2`` file.
        package: ``aoti`` or ``exported``.

    Returns:
        The path and what was written: ``aoti`` or ``exported`` (``exported`` also when AOTInductor failed;
        the reason is logged).
    """
    if isinstance(model, torch.fx.GraphModule):
        strip_unused(model)
    program = export_program(model, example[:2])
    if package == "aoti":
        try:
            return aoti_package(program, path), "aoti"
        except Exception as exc:  # Inductor raises many types (compiler missing, lowering errors)
            log.warning(
                "AOTInductor packaging failed (%s: %s); saving a torch.export program instead",
                exc.__class__.__name__,
                str(exc).splitlines()[0] if str(exc) else "",
            )
    _drop_example_inputs(program)
    _drop_debug_meta(program)
    torch.export.save(program, path)
    deflate_zip(path)
    return path, "exported"


def fold_weight_quantize(graph: torch.fx.GraphModule) -> torch.fx.GraphModule:
    """Constant-fold ``quantize(weight)`` into int8 weights (what ``convert_pt2e(fold_quantize=True)`` does).

    INC converts with ``fold_quantize=False``, which keeps FP32 weights and quantizes them at every call.
    """
    from torchao.quantization.pt2e.constant_fold import constant_fold

    def is_quantize(node: torch.fx.Node) -> bool:
        name = str(node.target)
        return node.op == "call_function" and ".quantize_per_" in name

    constant_fold(graph, is_quantize)
    return graph


def strip_unused(graph: torch.fx.GraphModule) -> None:
    """Delete parameters and buffers the graph no longer reads (the float weights ``convert_pt2e`` replaced)."""
    used = {n.target for n in graph.graph.nodes if n.op == "get_attr"}
    for name, _ in [*graph.named_parameters(), *graph.named_buffers()]:
        if name not in used:
            owner, _, attr = name.rpartition(".")
            delattr(graph.get_submodule(owner) if owner else graph, attr)


def _drop_example_inputs(program: torch.export.ExportedProgram) -> None:
    """Do not store the example batch in the artifact (it is only used for re-tracing)."""
    try:
        program.example_inputs = None
    except (AttributeError, TypeError, ValueError):
        log.debug("this torch version keeps example inputs in exported programs")


_DEBUG_META = ("stack_trace", "from_node", "source_fn_stack", "torch_fn", "nn_module_stack")


def _drop_debug_meta(program: torch.export.ExportedProgram) -> None:
    """Drop per-node stack traces and provenance (debug information, ~15 % of a small saved program)."""
    for node in program.graph.nodes:
        for key in _DEBUG_META:
            node.meta.pop(key, None)


def package_facts(saved_as: str, start: float, **extra: Any) -> dict[str, Any]:
    """The ``quantization`` facts of a saved torch INT8 program: how it was saved and how long it took."""
    how = (
        "AOTInductor package (compiled, loads without recompiling)"
        if saved_as == "aoti"
        else ("torch.export program (reference Q/DQ kernels; AOTInductor was not used or failed)")
    )
    return {**extra, "saved_as": saved_as, "package": how, "quantize_seconds": round(time.perf_counter() - start, 2)}


def write_program_meta(path: Path, meta: dict[str, Any], quantization: dict[str, Any]) -> BuildOutput:
    """Write ``<path>.json`` for a dynamic-batch torch INT8 program and return the build output."""
    facts = {
        "raw_input": False,
        "outputs": list(PROGRAM_OUTPUTS),
        "quantization": quantization,
        "dynamic_batch": True,
        "batch_size": None,
    }
    write_sidecar(path, {**meta, **facts})
    return BuildOutput(path, facts)


def build_torch_int8(
    ckpt: LoadedCheckpoint, workdir: Path, meta: dict[str, Any], config: TorchInt8Config
) -> BuildOutput:
    """Builder of ``torch-int8``: PT2E static INT8 (X86InductorQuantizer), saved as ``model.pt2``."""
    start = time.perf_counter()
    calib = calibration_images(ckpt, config.calib_size, config.seed)
    batch = calib.model_input(ckpt.meta)
    quantized = quantize_pt2e(WithEmbeddings(copy.deepcopy(ckpt.model)), batch)
    path, saved_as = save_program(quantized, batch, Path(workdir) / "model.pt2", config.package)
    facts = package_facts(
        saved_as,
        start,
        quantized="Conv2d and Linear weights and activations (static, per-channel weights)",
        calibration={"split": "train", "images": len(calib), "seed": config.seed},
    )
    return write_program_meta(path, meta, facts)


def build_torch_int8_dynamic(
    ckpt: LoadedCheckpoint, workdir: Path, meta: dict[str, Any], config: PackageConfig
) -> BuildOutput:
    """Builder of ``torch-int8-dynamic``: torchao dynamic INT8 of the Linear layers, saved as ``model.pt2``."""
    start = time.perf_counter()
    coverage = dynamic_coverage(ckpt.model, ckpt.meta["input_size"])
    quantized = quantize_dynamic(WithEmbeddings(copy.deepcopy(ckpt.model)))
    path, saved_as = save_program(
        quantized, example_input(ckpt.meta["input_size"], 2), Path(workdir) / "model.pt2", config.package
    )
    return write_program_meta(path, meta, package_facts(saved_as, start, **coverage))
