"""Runtimes of the torch backend: the checkpoint in PyTorch eager, and ``.pt2`` files.

- :class:`TorchEagerRuntime` runs ``model.pt`` (the reference), optionally channels-last.
- :class:`TorchProgramRuntime` runs AOTInductor packages (``fishopt compile``, torch/INC INT8) and
  ``torch.export`` programs (``--package exported``), chosen from the file's content, without recompiling.
"""

from __future__ import annotations

import contextlib
import time
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch

from fishopt.artifacts.metadata import check_metadata, read_sidecar, sidecar_path
from fishopt.artifacts.runtime import Runtime, reject_settings
from fishopt.checkpoint import load_checkpoint
from fishopt.errors import BackendUnavailableError, CheckpointError, unknown_choice
from fishopt.models.embeddings import has_embeddings

AUTOCAST = {"fp32": None, "fp16": torch.float16, "bf16": torch.bfloat16}
TORCH_COMPILE_MODES = ("default", "reduce-overhead", "max-autotune", "max-autotune-no-cudagraphs")


def check_device(device: str) -> None:
    """Raise unless ``device`` is ``cpu``, or ``cuda`` with a GPU present.

    Raises:
        ConfigError: Another device name. BackendUnavailableError: ``cuda`` without a CUDA GPU.
    """
    if device not in ("cpu", "cuda"):
        raise unknown_choice("device", device, ("cpu", "cuda"))
    if device == "cuda" and not torch.cuda.is_available():
        raise BackendUnavailableError(
            "device 'cuda' needs a CUDA GPU and a CUDA build of torch; none is available here"
        )


def is_aoti_package(path: str | Path) -> bool:
    """True for an AOTInductor package, False for a ``torch.export`` program (both are ``.pt2`` zip files)."""
    with zipfile.ZipFile(path) as zf:
        return any("/data/aotinductor/" in name for name in zf.namelist())


def load_program(path: str | Path) -> Any:
    """Load a ``.pt2`` written by :func:`save_program` (AOTInductor package or exported program) as a callable."""
    if is_aoti_package(path):
        from torch._inductor import aoti_load_package

        return aoti_load_package(str(path))
    import torchao.quantization  # noqa: F401 - registers torchao's tensor types for dynamic INT8 programs
    import torchao.quantization.pt2e  # noqa: F401 - registers the quantized_decomposed ops PT2E graphs call

    return torch.export.load(path).module()


class TorchEagerRuntime(Runtime):
    """A fishopt checkpoint run by PyTorch eager, on the CPU or a CUDA GPU.

    Runtime settings (keyword arguments of :meth:`load`, recorded in :attr:`settings`): ``channels_last``,
    ``autocast`` (``fp16``/``bf16`` mixed precision; weights stay FP32) and ``compile`` (a ``torch.compile``
    mode, ``default``, ``reduce-overhead`` (CUDA graphs) or ``max-autotune``). On CUDA the last input batch is
    kept on the device, so timing a fixed batch measures the model and the copy of its logits back (which
    synchronizes), not the host-to-device copy of the input.
    """

    def __init__(
        self,
        path: Path,
        meta: dict[str, Any],
        model: Callable[[torch.Tensor], torch.Tensor],
        *,
        threads: int | None = None,
        settings: dict[str, Any] | None = None,
        device: str = "cpu",
    ) -> None:
        super().__init__(path, meta, threads=threads, settings=settings)
        self.model: Callable[[torch.Tensor], torch.Tensor] | None = model
        self.device = device
        self.channels_last = bool(self.settings.get("channels_last"))
        self.autocast = AUTOCAST[self.settings.get("autocast") or "fp32"]
        self.cudagraphs = device == "cuda" and self.settings.get("compile") == "reduce-overhead"
        self._host: np.ndarray | None = None
        self._dev: torch.Tensor | None = None

    @classmethod
    def load(
        cls,
        path: str | Path,
        *,
        threads: int | None = None,
        device: str = "cpu",
        channels_last: bool = False,
        autocast: str | None = None,
        compile: str | None = None,
        **settings: Any,
    ) -> TorchEagerRuntime:
        """Load ``model.pt``; metadata from ``model.pt.json`` if present, else from the checkpoint.

        Args:
            path: The checkpoint.
            threads: torch intra-op threads (process-wide; ``None`` keeps torch's default).
            device: ``cpu`` or ``cuda``.
            channels_last: Run in channels_last memory format (about 2x faster on CPU for conv nets).
            autocast: ``fp16`` or ``bf16`` mixed precision (``None``: FP32).
            compile: A ``torch.compile`` mode (``None``: eager).
            **settings: Nothing else: any other setting is an error.

        Raises:
            ConfigError: Unknown setting, autocast precision, compile mode or device.
            BackendUnavailableError: ``device='cuda'`` without a CUDA GPU.
        """
        reject_settings("PyTorch eager", settings, ("channels_last", "autocast", "compile"))
        if autocast not in AUTOCAST and autocast is not None:
            raise unknown_choice("autocast precision", autocast, [k for k in AUTOCAST if k != "fp32"])
        if compile is not None and compile not in TORCH_COMPILE_MODES:
            raise unknown_choice("torch.compile mode", compile, TORCH_COMPILE_MODES)
        check_device(device)
        if threads:
            torch.set_num_threads(int(threads))
        ckpt = load_checkpoint(path)
        meta = read_sidecar(path) if sidecar_path(path).is_file() else {**ckpt.meta, "raw_input": False}
        model = ckpt.model.to(device).eval()
        if channels_last:
            # torch's stubs omit the memory_format keyword that Module.to documents and takes
            model = model.to(memory_format=torch.channels_last)  # type: ignore[call-overload]
        run: Callable[[torch.Tensor], torch.Tensor] = torch.compile(model, mode=compile) if compile else model
        applied = {
            k: v for k, v in (("channels_last", channels_last), ("autocast", autocast), ("compile", compile)) if v
        }
        return cls(ckpt.path, meta, run, threads=threads, settings=applied, device=device)

    def _input(self, batch: np.ndarray) -> torch.Tensor:
        if self.device == "cpu":
            x = torch.from_numpy(np.ascontiguousarray(batch, dtype=np.float32))
        elif batch is self._host and self._dev is not None:
            return self._dev
        else:
            x = torch.from_numpy(np.ascontiguousarray(batch, dtype=np.float32)).to(self.device)
            self._host = batch
        if self.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        if self.device != "cpu":
            self._dev = x
        return x

    @torch.inference_mode()
    def __call__(self, batch: np.ndarray) -> np.ndarray:
        """Logits of a normalized float32 (N, 3, H, W) batch."""
        if self.model is None:
            raise RuntimeError("this runtime is closed; load the checkpoint again")
        x = self._input(batch)
        if self.cudagraphs:
            torch.compiler.cudagraph_mark_step_begin()
        if self.autocast is None:
            out = self.model(x)
        else:
            with torch.autocast(device_type=self.device, dtype=self.autocast):
                out = self.model(x)
        return out.float().cpu().numpy()

    @property
    def has_embeddings(self) -> bool:
        """Whether :meth:`outputs` gives the embeddings: an uncompiled registered model (``forward_features``)."""
        return (
            self.model is not None
            and not self.settings.get("compile")
            and isinstance(self.model, torch.nn.Module)
            and has_embeddings(self.model)
        )

    @torch.inference_mode()
    def outputs(self, batch: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
        """Logits and the penultimate embeddings of one forward pass (``forward_features`` then ``forward_head``)."""
        if not self.has_embeddings:
            return self(batch), None
        model: Any = self.model
        x = self._input(batch)
        with contextlib.nullcontext() if self.autocast is None else torch.autocast(self.device, self.autocast):
            features = model.forward_features(x)
            logits = model.forward_head(features)
        return logits.float().cpu().numpy(), features.flatten(1).float().cpu().numpy()

    def close(self) -> None:
        """Drop the model and the cached device input."""
        self.model = None
        self._host = self._dev = None


class TorchProgramRuntime(Runtime):
    """A ``.pt2`` loaded with ``aoti_load_package`` or ``torch.export.load`` (chosen from the file's content).

    Attributes:
        kind: ``aoti`` or ``exported``.
        load_seconds: Time the file took to load.
    """

    def __init__(
        self,
        path: Path,
        meta: dict[str, Any],
        program: Callable[[torch.Tensor], torch.Tensor],
        kind: str,
        *,
        threads: int | None = None,
        load_seconds: float = 0.0,
    ) -> None:
        super().__init__(path, meta, threads=threads)
        self.program = program
        self.kind = kind
        self.load_seconds = load_seconds

    @classmethod
    def load(
        cls, path: str | Path, *, threads: int | None = None, device: str = "cpu", **settings: Any
    ) -> TorchProgramRuntime:
        """Load ``model.pt2`` and its ``model.pt2.json`` metadata.

        Args:
            path: The ``.pt2`` file.
            threads: torch intra-op threads (process-wide; ``None`` keeps torch's default).
            device: ``cpu`` (fishopt builds its ``.pt2`` files for the CPU).
            **settings: None: a ``.pt2`` takes no runtime settings, any is an error.

        Raises:
            ConfigError: A runtime setting was given.
            CheckpointError: If the file or its metadata is missing, or it is not a ``.pt2`` archive.
            BackendUnavailableError: If ``device`` is not ``cpu`` (fishopt builds its ``.pt2`` files for the CPU).
        """
        reject_settings("torch .pt2", settings, ())
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
        return self.outputs(batch)[0]

    @property
    def has_embeddings(self) -> bool:
        """Whether the program returns ``(logits, embeddings)`` (every ``.pt2`` fishopt builds; older ones do not)."""
        return len(self.meta.get("outputs") or []) > 1

    @torch.no_grad()
    def outputs(self, batch: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
        """Logits and, for programs built with them, the penultimate embeddings of one call."""
        x = torch.from_numpy(np.ascontiguousarray(batch, dtype=np.float32))
        out = self.program(x)
        if isinstance(out, (tuple, list)):
            emb = out[1].float().numpy() if len(out) > 1 and self.has_embeddings else None
            return out[0].float().numpy(), emb
        return out.float().numpy(), None
