"""TensorRT runtime for ``.engine`` files (``tensorrt-fp16``, ``tensorrt-int8``); needs a CUDA GPU."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from fishopt.artifacts.metadata import check_metadata, read_sidecar
from fishopt.artifacts.registry import availability, cuda_available
from fishopt.artifacts.runtime import Runtime, reject_settings
from fishopt.errors import BackendUnavailableError


def check_tensorrt() -> None:
    """Raise if TensorRT engines cannot be built or run here.

    Raises:
        BackendUnavailableError: Naming everything that is missing: the ``tensorrt`` module, a CUDA GPU, or both.
    """
    missing = []
    if availability(("tensorrt",), "tensorrt"):
        missing.append("the tensorrt module (pip install 'fishopt[tensorrt]' on a CUDA machine)")
    if not cuda_available():
        missing.append("a CUDA GPU (TensorRT engines are built and run on an NVIDIA GPU)")
    if missing:
        raise BackendUnavailableError(f"TensorRT is not usable on this machine: missing {'; '.join(missing)}")


class TensorRTRuntime(Runtime):
    """A serialized TensorRT engine run with ``execute_async_v3`` on torch CUDA tensors."""

    device = "cuda"

    def __init__(self, path: Path, meta: dict[str, Any], engine: Any, *, threads: int | None = None) -> None:
        super().__init__(path, meta, threads=threads)
        import tensorrt as trt
        import torch

        self.engine = engine
        self.context = engine.create_execution_context()
        names = [engine.get_tensor_name(i) for i in range(engine.num_io_tensors)]
        self.input_name = next(n for n in names if engine.get_tensor_mode(n) == trt.TensorIOMode.INPUT)
        self.output_name = next(n for n in names if engine.get_tensor_mode(n) == trt.TensorIOMode.OUTPUT)
        self.stream = torch.cuda.Stream()

    @classmethod
    def load(
        cls,
        path: str | Path,
        *,
        threads: int | None = None,
        device: str = "cuda",  # noqa: ARG003 - the Runtime signature
        **settings: Any,
    ) -> TensorRTRuntime:
        """Deserialize ``model.engine`` (metadata from ``model.engine.json``).

        Args:
            path: The ``.engine`` file.
            threads: Recorded only (TensorRT runs on the GPU).
            device: Always ``cuda``.
            **settings: None: TensorRT takes no runtime settings, any is an error.

        Raises:
            ConfigError: A runtime setting was given.
            BackendUnavailableError: No tensorrt module or no CUDA GPU (names which), or the engine does not
                deserialize (built for another GPU or TensorRT version: rebuild it on this machine).
        """
        reject_settings("TensorRT", settings, ())
        check_tensorrt()
        import tensorrt as trt

        meta = check_metadata(read_sidecar(path), path)
        runtime = trt.Runtime(trt.Logger(trt.Logger.WARNING))
        engine = runtime.deserialize_cuda_engine(Path(path).read_bytes())
        if engine is None:
            raise BackendUnavailableError(
                f"TensorRT cannot load {str(path)!r}: engines are tied to the GPU and TensorRT version that built "
                "them; rebuild it here with 'fishopt export --tensorrt'"
            )
        return cls(Path(path), meta, engine, threads=threads)

    def __call__(self, batch: np.ndarray) -> np.ndarray:
        """Logits of a normalized float32 (N, 3, H, W) batch."""
        import torch

        with torch.cuda.stream(self.stream):
            x = torch.from_numpy(np.ascontiguousarray(batch, dtype=np.float32)).cuda(non_blocking=False)
            self.context.set_input_shape(self.input_name, tuple(x.shape))
            shape = tuple(self.context.get_tensor_shape(self.output_name))
            out = torch.empty(shape, dtype=torch.float32, device="cuda")
            self.context.set_tensor_address(self.input_name, x.data_ptr())
            self.context.set_tensor_address(self.output_name, out.data_ptr())
            ok = self.context.execute_async_v3(self.stream.cuda_stream)
        if not ok:
            raise BackendUnavailableError(f"TensorRT failed to run {self.path.name}")
        self.stream.synchronize()
        return out.cpu().numpy()
