"""ONNX Runtime runtime for any ``.onnx`` artifact (FP32, FP16, INT8 Q/DQ, raw-input graphs)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from fishopt.runtimes.base import Runtime


class OnnxRuntime(Runtime):
    """An ONNX file run by an ``onnxruntime.InferenceSession``.

    Format-agnostic: the input name, dtype and layout come from the session; ``raw_input`` from the
    metadata (or a uint8 input). Metadata is read from ``metadata_props``.
    """

    def __init__(self, path: Path, meta: dict, session, *, threads: int | None = None) -> None:
        super().__init__(path, meta, threads=threads)
        self.session = session
        first = session.get_inputs()[0]
        self.input_name = first.name
        self.input_dtype = np.uint8 if first.type == "tensor(uint8)" else np.float32
        self.raw_input = bool(meta.get("raw_input", self.input_dtype == np.uint8))

    @classmethod
    def load(cls, path: str | Path, *, threads: int | None = None, device: str = "cpu",
             spinning: bool = False, optimization: str = "all") -> OnnxRuntime:
        """Create the session.

        Args:
            path: The ``.onnx`` file.
            threads: Intra-op threads (``None``: ONNX Runtime's default, one per core).
            device: ``cpu`` or ``cuda`` (CUDAExecutionProvider, falling back to the CPU).
            spinning: Let idle threads spin (lower latency on a quiet machine, worse under load).
            optimization: Graph optimization level: ``disable``, ``basic``, ``extended`` or ``all``.

        Raises:
            MissingDependencyError: onnxruntime is not installed.
            BackendUnavailableError: ``device='cuda'`` without the CUDA provider.
            CheckpointError: The file is missing, not ONNX, or lacks fishopt metadata.
        """
        from fishopt.errors import BackendUnavailableError, CheckpointError, require, unknown_choice

        require("onnxruntime", "onnx")
        import onnxruntime as ort

        from fishopt.export.metadata import check_metadata, read_onnxruntime_metadata

        level = ort.GraphOptimizationLevel
        levels = {"disable": level.ORT_DISABLE_ALL, "basic": level.ORT_ENABLE_BASIC,
                  "extended": level.ORT_ENABLE_EXTENDED, "all": level.ORT_ENABLE_ALL}
        if optimization not in levels:
            raise unknown_choice("ONNX Runtime optimization level", optimization, levels)
        opts = ort.SessionOptions()
        opts.graph_optimization_level = levels[optimization]
        opts.inter_op_num_threads = 1
        if threads:
            opts.intra_op_num_threads = int(threads)
        opts.add_session_config_entry("session.intra_op.allow_spinning", "1" if spinning else "0")
        providers = ["CPUExecutionProvider"]
        if device == "cuda":
            if "CUDAExecutionProvider" not in ort.get_available_providers():
                raise BackendUnavailableError(
                    "onnxruntime has no CUDAExecutionProvider here; install onnxruntime-gpu or use device='cpu'"
                )
            providers.insert(0, "CUDAExecutionProvider")
        if not Path(path).is_file():
            raise CheckpointError(f"ONNX file {str(path)!r} not found; export one with 'fishopt export --onnx'")
        try:
            session = ort.InferenceSession(str(path), sess_options=opts, providers=providers)
        except Exception as exc:  # onnxruntime raises its own Fail/InvalidGraph/... types
            raise CheckpointError(f"cannot load {str(path)!r} with onnxruntime: {exc}") from exc
        meta = check_metadata(read_onnxruntime_metadata(session), path)
        runtime = cls(Path(path), meta, session, threads=threads)
        runtime.device = device
        return runtime

    def __call__(self, batch: np.ndarray) -> np.ndarray:
        """Logits of a batch (float32 NCHW normalized, or uint8 NHWC for raw-input graphs)."""
        x = np.ascontiguousarray(batch, dtype=self.input_dtype)
        return np.asarray(self.session.run(None, {self.input_name: x})[0], dtype=np.float32)
