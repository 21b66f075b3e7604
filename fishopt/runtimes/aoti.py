"""AOTInductor runtime for ``model.pt2`` packages (``fishopt compile``)."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import torch

from fishopt.runtimes.base import Runtime


class AOTIRuntime(Runtime):
    """An AOTInductor package loaded with ``torch._inductor.aoti_load_package`` (no recompilation).

    Attributes:
        load_seconds: Time the package took to load.
    """

    def __init__(self, path: Path, meta: dict, compiled, *, threads: int | None = None, load_seconds: float = 0.0) -> None:
        super().__init__(path, meta, threads=threads)
        self.compiled = compiled
        self.load_seconds = load_seconds

    @classmethod
    def load(cls, path: str | Path, *, threads: int | None = None, device: str = "cpu") -> AOTIRuntime:
        """Load ``model.pt2`` and its ``model.pt2.json`` metadata.

        Raises:
            CheckpointError: If the metadata file is missing.
            BackendUnavailableError: If ``device`` is ``cuda`` (packages are compiled for the CPU).
        """
        from fishopt.errors import BackendUnavailableError
        from fishopt.export.metadata import check_metadata, read_sidecar

        if device != "cpu":
            raise BackendUnavailableError(f"{Path(path).name} was compiled for the CPU; load it with device='cpu'")
        meta = check_metadata(read_sidecar(path), path)
        if threads:
            torch.set_num_threads(int(threads))
        start = time.perf_counter()
        compiled = torch._inductor.aoti_load_package(str(path))
        return cls(Path(path), meta, compiled, threads=threads, load_seconds=time.perf_counter() - start)

    @torch.no_grad()
    def __call__(self, batch: np.ndarray) -> np.ndarray:
        """Logits of a normalized float32 (N, 3, H, W) batch."""
        x = torch.from_numpy(np.ascontiguousarray(batch, dtype=np.float32))
        return self.compiled(x).float().numpy()
