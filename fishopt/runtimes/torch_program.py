"""Runtime for torch ``.pt2`` files: AOTInductor packages or ``torch.export`` programs.

``fishopt compile`` writes AOTInductor packages; ``fishopt quantize`` (torch, inc) writes AOTInductor packages
when Inductor can compile them, else exported programs (the metadata's ``quantization.saved_as`` says which).
This one runtime loads either, without recompiling.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import torch

from fishopt.runtimes.base import Runtime


class TorchProgramRuntime(Runtime):
    """A ``.pt2`` loaded with ``aoti_load_package`` or ``torch.export.load`` (chosen from the file's content).

    Attributes:
        kind: ``aoti`` or ``exported``.
        load_seconds: Time the file took to load.
    """

    def __init__(self, path: Path, meta: dict, program, kind: str, *, threads: int | None = None,
                 load_seconds: float = 0.0) -> None:
        super().__init__(path, meta, threads=threads)
        self.program = program
        self.kind = kind
        self.load_seconds = load_seconds

    @classmethod
    def load(cls, path: str | Path, *, threads: int | None = None, device: str = "cpu") -> TorchProgramRuntime:
        """Load ``model.pt2`` and its ``model.pt2.json`` metadata.

        Raises:
            CheckpointError: If the file or its metadata is missing, or it is not a ``.pt2`` archive.
            BackendUnavailableError: If ``device`` is not ``cpu`` (fishopt builds its ``.pt2`` files for the CPU).
        """
        import zipfile

        from fishopt.errors import BackendUnavailableError, CheckpointError
        from fishopt.export.metadata import check_metadata, read_sidecar
        from fishopt.optimize.torch_pt2e import is_aoti_package, load_program

        path = Path(path)
        if device != "cpu":
            raise BackendUnavailableError(f"{path.name} was built for the CPU; load it with device='cpu'")
        if not path.is_file():
            raise CheckpointError(f"{str(path)!r} not found; build it with 'fishopt compile' or 'fishopt quantize'")
        meta = check_metadata(read_sidecar(path), path)
        if threads:
            torch.set_num_threads(int(threads))
        start = time.perf_counter()
        try:
            kind = "aoti" if is_aoti_package(path) else "exported"
            program = load_program(path)
        except zipfile.BadZipFile as exc:
            raise CheckpointError(
                f"{str(path)!r} is not a .pt2 archive ({exc}); rebuild it with 'fishopt compile' or 'fishopt quantize'"
            ) from exc
        return cls(path, meta, program, kind, threads=threads, load_seconds=time.perf_counter() - start)

    @torch.no_grad()
    def __call__(self, batch: np.ndarray) -> np.ndarray:
        """Logits of a normalized float32 (N, 3, H, W) batch."""
        x = torch.from_numpy(np.ascontiguousarray(batch, dtype=np.float32))
        return self.program(x).float().numpy()
