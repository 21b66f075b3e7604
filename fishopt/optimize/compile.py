"""``torch.compile`` ahead of time: Inductor (with freezing) packaged by AOTInductor (``.pt2``).

The package (deflated) holds the compiled kernels (a shared library, built without debug line tables)
and the weights, so a fresh process loads it with :func:`torch._inductor.aoti_load_package` in
milliseconds, without recompiling and without the model's Python code. Build time (``compile_seconds``)
goes into the metadata; load time is measured by the runtime
(:class:`fishopt.runtimes.torch_program.TorchProgramRuntime`, ``load_seconds``).
"""

from __future__ import annotations

import copy
import logging
import time
from pathlib import Path
from typing import Any

import torch

from fishopt.errors import unknown_choice

log = logging.getLogger(__name__)
MODES = ("default", "max-autotune")
MAX_BATCH = 4096


def inductor_configs(mode: str) -> dict[str, Any]:
    """Inductor options for a compile mode (``default`` or ``max-autotune``).

    Raises:
        ConfigError: For an unknown mode (lists the valid ones).
    """
    if mode not in MODES:
        raise unknown_choice("compile mode", mode, MODES)
    # AOTInductor compiles with line tables (-g1) by default: 1.2 MB of the fish model's 1.7 MB shared
    # library. A deployable package does without them.
    configs: dict[str, Any] = {"freezing": True, "aot_inductor.enable_line_tables": False}
    if mode == "max-autotune":
        configs.update({"max_autotune": True})
    return configs


def export_program(model: torch.nn.Module, input_size: tuple[int, int] | list[int], *, static_batch: bool = False,
                   batch_size: int = 2) -> torch.export.ExportedProgram:
    """``torch.export`` the model for a (N, 3, H, W) input with a dynamic (or static) batch dimension."""
    example = torch.randn(batch_size, 3, *input_size)
    dynamic = None if static_batch else ({0: torch.export.Dim("batch", min=1, max=MAX_BATCH)},)
    with torch.no_grad():
        return torch.export.export(model, (example,), dynamic_shapes=dynamic)


def aoti_package(program: torch.export.ExportedProgram, path: Path, configs: dict[str, Any] | None = None) -> Path:
    """Compile an exported program with Inductor and write it as an AOTInductor package, deflated.

    Args:
        program: The ``torch.export`` program (FP32 or a PT2E INT8 graph).
        path: Destination ``.pt2``.
        configs: Inductor options (default: :func:`inductor_configs` of the ``default`` mode).

    Returns:
        The package path.
    """
    from torch._inductor import aoti_compile_and_package

    from fishopt.io import deflate_zip

    with torch.no_grad():
        out = aoti_compile_and_package(program, package_path=str(path), inductor_configs=configs or inductor_configs("default"))
    deflate_zip(out)  # AOTInductor stores every record uncompressed
    return Path(out)


def compile_package(model: torch.nn.Module, input_size, path: Path, *, mode: str = "default",
                    static_batch: bool = False, batch_size: int = 2) -> float:
    """Compile ``model`` with Inductor and write an AOTInductor package to ``path``; return the seconds taken."""
    configs = inductor_configs(mode)
    start = time.perf_counter()
    program = export_program(model, input_size, static_batch=static_batch, batch_size=batch_size)
    aoti_package(program, path, configs)
    seconds = time.perf_counter() - start
    log.info("compiled %s (mode %s) in %.1f s", path.name, mode, seconds)
    return seconds


def build_aoti(ckpt, workdir: Path, *, meta: dict[str, Any], mode: str | None = None, static_batch: bool = False,
               batch_size: int | None = None) -> Path:
    """Builder of ``torch-compile-fp32`` (contract: :class:`fishopt.export.registry.Format`).

    Returns:
        ``workdir/model.pt2``; its metadata (with ``compile_seconds`` and ``mode``) in ``model.pt2.json``.
    """
    from fishopt.export.metadata import write_sidecar

    mode = mode or "default"
    batch = int(batch_size or 1) if static_batch else 2
    path = Path(workdir) / "model.pt2"
    model = copy.deepcopy(ckpt.model).eval()
    seconds = compile_package(model, ckpt.meta["input_size"], path, mode=mode, static_batch=static_batch,
                              batch_size=batch)
    write_sidecar(path, {**meta, "raw_input": False, "mode": mode, "compile_seconds": round(seconds, 3),
                         "dynamic_batch": not static_batch, "batch_size": batch if static_batch else None,
                         "torch_version": torch.__version__})
    return path
