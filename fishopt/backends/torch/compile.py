"""``torch.compile`` ahead of time: Inductor (with freezing) packaged by AOTInductor (``.pt2``).

The package (deflated) holds the compiled kernels (a shared library, built without debug line tables)
and the weights, so a fresh process loads it with :func:`torch._inductor.aoti_load_package` in
milliseconds, without recompiling and without the model's Python code. Build time (``compile_seconds``)
goes into the metadata; load time is measured by the runtime
(:class:`fishopt.backends.torch.runtime.TorchProgramRuntime`, ``load_seconds``).
"""

from __future__ import annotations

import copy
import logging
import time
from pathlib import Path
from typing import Any

import torch

from fishopt.artifacts.build import BuildOutput
from fishopt.artifacts.config import COMPILE_MODES, CompileConfig
from fishopt.artifacts.metadata import write_sidecar
from fishopt.artifacts.runtime import EMBEDDINGS_OUTPUT, LOGITS_OUTPUT
from fishopt.backends.torch.export import example_input, export_program
from fishopt.checkpoint import LoadedCheckpoint
from fishopt.errors import unknown_choice
from fishopt.io import deflate_zip
from fishopt.models.embeddings import WithEmbeddings

#: Outputs of every ``.pt2`` fishopt builds: the logits and the penultimate embeddings of the same inference.
PROGRAM_OUTPUTS = [LOGITS_OUTPUT, EMBEDDINGS_OUTPUT]

log = logging.getLogger(__name__)


def inductor_configs(mode: str) -> dict[str, Any]:
    """Inductor options for a compile mode (``default`` or ``max-autotune``).

    Raises:
        ConfigError: For an unknown mode (lists the valid ones).
    """
    if mode not in COMPILE_MODES:
        raise unknown_choice("compile mode", mode, COMPILE_MODES)
    # AOTInductor compiles with line tables (-g1) by default: 1.2 MB of the fish model's 1.7 MB shared
    # library. A deployable package does without them.
    configs: dict[str, Any] = {"freezing": True, "aot_inductor.enable_line_tables": False}
    if mode == "max-autotune":
        configs.update({"max_autotune": True})
    return configs


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

    with torch.no_grad():
        out = aoti_compile_and_package(
            program, package_path=str(path), inductor_configs=configs or inductor_configs("default")
        )
    deflate_zip(out)  # AOTInductor stores every record uncompressed
    return Path(out)


def build_aoti(ckpt: LoadedCheckpoint, workdir: Path, meta: dict[str, Any], config: CompileConfig) -> BuildOutput:
    """Builder of ``torch-compile-fp32``: ``torch.export`` + Inductor (freezing) + AOTInductor package.

    Returns:
        ``workdir/model.pt2``; its metadata (with ``compile_seconds`` and ``mode``) in ``model.pt2.json``.
    """
    path = Path(workdir) / "model.pt2"
    model = WithEmbeddings(copy.deepcopy(ckpt.model)).eval()
    start = time.perf_counter()
    program = export_program(
        model, example_input(ckpt.meta["input_size"], config.example_batch), static_batch=config.static_batch
    )
    aoti_package(program, path, inductor_configs(config.mode))
    seconds = time.perf_counter() - start
    log.info("compiled %s (mode %s) in %.1f s", path.name, config.mode, seconds)
    facts = {
        "raw_input": False,
        "outputs": list(PROGRAM_OUTPUTS),
        "mode": config.mode,
        "compile_seconds": round(seconds, 3),
        **config.shape_meta(),
        "torch_version": torch.__version__,
    }
    write_sidecar(path, {**meta, **facts})
    return BuildOutput(path, facts)
