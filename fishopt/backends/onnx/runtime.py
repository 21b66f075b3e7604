"""ONNX Runtime runtime for any ``.onnx`` artifact (FP32, FP16, INT8 Q/DQ, raw-input graphs)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from fishopt.artifacts.metadata import check_metadata, read_onnxruntime_metadata
from fishopt.artifacts.runtime import EMBEDDINGS_OUTPUT, Runtime, reject_settings
from fishopt.errors import BackendUnavailableError, CheckpointError, require, unknown_choice

OPTIMIZATION_LEVELS = ("disable", "basic", "extended", "all")
#: Execution providers by their short name, CPU last (the fallback for nodes a provider does not take).
PROVIDERS = {
    "cpu": "CPUExecutionProvider",
    "cuda": "CUDAExecutionProvider",
    "openvino": "OpenVINOExecutionProvider",
    "tensorrt": "TensorrtExecutionProvider",
}


class OnnxRuntime(Runtime):
    """An ONNX file run by an ``onnxruntime.InferenceSession``.

    Format-agnostic: the input name, dtype and layout come from the session; ``raw_input`` from the
    metadata (or a uint8 input). Metadata is read from ``metadata_props``.

    Runtime settings (keyword arguments of :meth:`load`): ``provider`` (an execution provider), ``spinning``
    (idle threads spin: lower latency on a quiet machine, worse under load), ``optimization`` (graph
    optimization level) and ``profile`` (a file prefix: ONNX Runtime's per-node profiler writes a JSON trace,
    see :meth:`end_profiling`).
    """

    #: The session options and providers it was loaded with (set by :meth:`load`; :meth:`optimized_op_types`).
    _options: tuple[Any, list[str]]

    def __init__(
        self,
        path: Path,
        meta: dict[str, Any],
        session: Any,
        *,
        threads: int | None = None,
        settings: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(path, meta, threads=threads, settings=settings)
        self.session = session
        first = session.get_inputs()[0]
        self.input_name = first.name
        self.input_dtype = np.uint8 if first.type == "tensor(uint8)" else np.float32
        self.raw_input = bool(meta.get("raw_input", self.input_dtype == np.uint8))
        names = [o.name for o in session.get_outputs()]
        self._logits = names[:1]
        self._both = names[:1] + [EMBEDDINGS_OUTPUT] if EMBEDDINGS_OUTPUT in names[1:] else None

    @classmethod
    def load(
        cls,
        path: str | Path,
        *,
        threads: int | None = None,
        device: str = "cpu",
        provider: str | None = None,
        spinning: bool = False,
        optimization: str = "all",
        profile: str | None = None,
        **settings: Any,
    ) -> OnnxRuntime:
        """Create the session.

        Args:
            path: The ``.onnx`` file.
            threads: Intra-op threads (``None``: ONNX Runtime's default, one per core).
            device: ``cpu`` or ``cuda`` (the CUDA execution provider unless ``provider`` says otherwise).
            provider: ``cpu``, ``cuda``, ``openvino`` or ``tensorrt`` (default: from ``device``).
            spinning: Let idle threads spin (lower latency on a quiet machine, worse under load).
            optimization: Graph optimization level: ``disable``, ``basic``, ``extended`` or ``all``.
            profile: Turn on ONNX Runtime's profiler, writing ``<profile>_<date>.json`` (per-node kernel times).
            **settings: Nothing else: any other setting is an error.

        Raises:
            MissingDependencyError: onnxruntime is not installed.
            BackendUnavailableError: The provider is not in this onnxruntime build (names the package that has it).
            ConfigError: Unknown setting, provider or optimization level.
            CheckpointError: The file is missing, not ONNX, or lacks fishopt metadata.
        """
        reject_settings("ONNX Runtime", settings, ("provider", "spinning", "optimization", "profile"))
        require("onnxruntime", "onnx")
        import onnxruntime as ort

        provider = provider or ("cuda" if device == "cuda" else "cpu")
        if provider not in PROVIDERS:
            raise unknown_choice("ONNX Runtime execution provider", provider, PROVIDERS)
        if optimization not in OPTIMIZATION_LEVELS:
            raise unknown_choice("ONNX Runtime optimization level", optimization, OPTIMIZATION_LEVELS)
        if PROVIDERS[provider] not in ort.get_available_providers():
            package = {"cuda": "onnxruntime-gpu", "tensorrt": "onnxruntime-gpu", "openvino": "onnxruntime-openvino"}
            raise BackendUnavailableError(
                f"this onnxruntime has no {PROVIDERS[provider]}; install {package.get(provider, 'onnxruntime')} "
                "instead of onnxruntime, or use provider 'cpu'"
            )
        level = ort.GraphOptimizationLevel
        levels = dict(
            zip(
                OPTIMIZATION_LEVELS,
                (level.ORT_DISABLE_ALL, level.ORT_ENABLE_BASIC, level.ORT_ENABLE_EXTENDED, level.ORT_ENABLE_ALL),
                strict=True,
            )
        )
        opts = ort.SessionOptions()
        opts.graph_optimization_level = levels[optimization]
        opts.inter_op_num_threads = 1
        if threads:
            opts.intra_op_num_threads = int(threads)
        opts.add_session_config_entry("session.intra_op.allow_spinning", "1" if spinning else "0")
        if profile:
            opts.enable_profiling = True
            opts.profile_file_prefix = str(profile)
        providers = list(dict.fromkeys([PROVIDERS[provider], PROVIDERS["cpu"]]))
        if not Path(path).is_file():
            raise CheckpointError(f"ONNX file {str(path)!r} not found; export one with 'fishopt export --onnx'")
        try:
            session = ort.InferenceSession(str(path), sess_options=opts, providers=providers)
        except Exception as exc:  # onnxruntime raises its own Fail/InvalidGraph/... types
            raise CheckpointError(f"cannot load {str(path)!r} with onnxruntime: {exc}") from exc
        meta = check_metadata(read_onnxruntime_metadata(session), path)
        applied = {"provider": provider, "spinning": spinning, "optimization": optimization}
        runtime = cls(Path(path), meta, session, threads=threads, settings=applied)
        runtime.device = "cuda" if provider in ("cuda", "tensorrt") else "cpu"
        runtime._options = (opts, providers)
        return runtime

    def optimized_op_types(self) -> dict[str, int]:
        """Op types (and counts) of the graph ONNX Runtime actually runs: the file after its graph optimizations.

        QDQ pairs around Conv/MatMul are fused into integer kernels (``QLinearConv``...) here, or not.
        """
        import tempfile

        import onnx
        import onnxruntime as ort

        opts, providers = self._options
        with tempfile.TemporaryDirectory(prefix="fishopt-ort-") as tmp:
            out = Path(tmp) / "optimized.onnx"
            copy = ort.SessionOptions()
            copy.graph_optimization_level = opts.graph_optimization_level
            copy.intra_op_num_threads = 1
            copy.optimized_model_filepath = str(out)
            ort.InferenceSession(str(self.path), sess_options=copy, providers=providers)
            graph = onnx.load(str(out), load_external_data=False).graph
        counts: dict[str, int] = {}
        for node in graph.node:
            counts[node.op_type] = counts.get(node.op_type, 0) + 1
        return counts

    def end_profiling(self) -> str:
        """Stop ONNX Runtime's profiler (``profile`` setting) and return the path of its JSON trace."""
        return self.session.end_profiling()

    def __call__(self, batch: np.ndarray) -> np.ndarray:
        """Logits of a batch (float32 NCHW normalized, or uint8 NHWC for raw-input graphs)."""
        x = np.ascontiguousarray(batch, dtype=self.input_dtype)
        return np.asarray(self.session.run(self._logits, {self.input_name: x})[0], dtype=np.float32)

    @property
    def has_embeddings(self) -> bool:
        """Whether the graph has an ``embeddings`` output (every graph ``fishopt export --onnx`` builds)."""
        return self._both is not None

    def outputs(self, batch: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
        """Logits and the ``embeddings`` output of a batch, from one ``session.run`` (``None`` without it)."""
        if self._both is None:
            return self(batch), None
        x = np.ascontiguousarray(batch, dtype=self.input_dtype)
        logits, emb = self.session.run(self._both, {self.input_name: x})
        return np.asarray(logits, dtype=np.float32), np.asarray(emb, dtype=np.float32)
