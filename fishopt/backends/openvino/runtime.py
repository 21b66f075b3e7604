"""OpenVINO runtime for any IR (``.xml``) artifact: FP32, FP16-weight, BF16, INT8, raw-input graphs."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from fishopt.artifacts.metadata import check_metadata, get_openvino_metadata
from fishopt.artifacts.runtime import EMBEDDINGS_OUTPUT, Runtime, reject_settings
from fishopt.errors import CheckpointError, require, unknown_choice

PRECISION_HINTS = ("f32", "bf16", "f16")
PERFORMANCE_HINTS = ("LATENCY", "THROUGHPUT")


class OpenVINORuntime(Runtime):
    """An OpenVINO IR compiled with ``PERFORMANCE_HINT=LATENCY`` and a stated inference precision.

    Attributes:
        inference_precision: What the device actually runs in (``f32``, ``bf16``...), read back from the
            compiled model: OpenVINO's CPU default is bf16 on CPUs with AVX-512 BF16 or AMX.
    """

    def __init__(
        self,
        path: Path,
        meta: dict[str, Any],
        compiled: Any,
        *,
        threads: int | None = None,
        settings: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(path, meta, threads=threads, settings=settings)
        self.compiled = compiled
        self.request = compiled.create_infer_request()
        self._output = compiled.outputs[0]
        self._embeddings = next((o for o in compiled.outputs[1:] if EMBEDDINGS_OUTPUT in o.get_names()), None)
        self.inference_precision = compiled.get_property("INFERENCE_PRECISION_HINT").get_type_name()
        first = compiled.inputs[0]
        self.raw_input = bool(meta.get("raw_input", first.get_element_type().get_type_name() == "u8"))

    @classmethod
    def load(
        cls,
        path: str | Path,
        *,
        threads: int | None = None,
        device: str = "cpu",
        precision_hint: str | None = None,
        performance_hint: str = "LATENCY",
        reshape: int | None = None,
        perf_count: bool = False,
        **settings: Any,
    ) -> OpenVINORuntime:
        """Read and compile the IR.

        Args:
            path: The ``.xml`` file (``.bin`` beside it).
            threads: ``INFERENCE_NUM_THREADS`` (``None``: OpenVINO's default).
            device: ``cpu`` (or ``gpu`` for an Intel GPU).
            precision_hint: ``INFERENCE_PRECISION_HINT`` (``f32``, ``bf16``, ``f16``); default: the artifact's
                ``inference_precision`` metadata, or the device default where that is ``None``.
            performance_hint: ``LATENCY`` (default, for batch 1) or ``THROUGHPUT``.
            reshape: Compile for this static batch size (a dynamic-batch IR then runs only that batch; lets the
                CPU plugin pick kernels for it; the benchmark does this per timed batch size, see
                :meth:`latency_settings`).
            perf_count: Turn on per-layer performance counters (``PERF_COUNT``; :meth:`profiling_info`).
            **settings: Nothing else: any other setting is an error.

        Raises:
            MissingDependencyError: openvino is not installed.
            CheckpointError: The file is missing, not an IR, or lacks fishopt metadata.
            ConfigError: An unknown setting or precision hint.
        """
        reject_settings("OpenVINO", settings, ("precision_hint", "performance_hint", "reshape", "perf_count"))
        require("openvino", "openvino")
        import openvino as ov

        if not Path(path).is_file():
            raise CheckpointError(f"OpenVINO IR {str(path)!r} not found; export one with 'fishopt export --openvino'")
        core = ov.Core()
        try:
            model = core.read_model(str(path))
        except RuntimeError as exc:
            raise CheckpointError(f"cannot read {str(path)!r} as an OpenVINO IR: {exc}") from exc
        meta = check_metadata(get_openvino_metadata(model), path)
        hint = precision_hint or meta.get("inference_precision")
        if hint is not None and hint not in PRECISION_HINTS:
            raise unknown_choice("OpenVINO precision hint", hint, PRECISION_HINTS)
        if performance_hint not in PERFORMANCE_HINTS:
            raise unknown_choice("OpenVINO performance hint", performance_hint, PERFORMANCE_HINTS)
        if reshape is not None:
            shape = model.inputs[0].get_partial_shape()
            shape[0] = int(reshape)
            model.reshape({model.inputs[0]: shape})
        config: dict[str, object] = {"PERFORMANCE_HINT": performance_hint}
        if hint:
            config["INFERENCE_PRECISION_HINT"] = hint
        if threads:
            config["INFERENCE_NUM_THREADS"] = int(threads)
        if perf_count:
            config["PERF_COUNT"] = True
        compiled = core.compile_model(model, device.upper(), config)
        applied = {
            k: v
            for k, v in (
                ("precision_hint", precision_hint),
                ("performance_hint", performance_hint),
                ("reshape", reshape),
                ("perf_count", perf_count or None),
            )
            if v is not None
        }
        runtime = cls(Path(path), meta, compiled, threads=threads, settings=applied)
        runtime.device = device
        return runtime

    @classmethod
    def latency_settings(cls, batch: int) -> dict[str, Any]:
        """Settings that compile for one batch size (the benchmark times each batch size with its own compile)."""
        return {"reshape": int(batch)}

    def __call__(self, batch: np.ndarray) -> np.ndarray:
        """Logits of a batch (float32 NCHW normalized, or uint8 NHWC for raw-input graphs).

        The input is shared with the request (no copy into an OpenVINO tensor), the output copied once.
        """
        x = np.ascontiguousarray(batch, dtype=np.uint8 if self.raw_input else np.float32)
        results = self.request.infer({0: x}, share_inputs=True, share_outputs=True)
        return np.array(results[self._output], dtype=np.float32)

    @property
    def has_embeddings(self) -> bool:
        """Whether the IR has an ``embeddings`` output (every IR ``fishopt export --openvino``/``quantize`` builds)."""
        return self._embeddings is not None

    def outputs(self, batch: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
        """Logits and the ``embeddings`` output of a batch, from one inference (``None`` without it)."""
        if self._embeddings is None:
            return self(batch), None
        x = np.ascontiguousarray(batch, dtype=np.uint8 if self.raw_input else np.float32)
        results = self.request.infer({0: x}, share_inputs=True, share_outputs=True)
        return (
            np.array(results[self._output], dtype=np.float32),
            np.array(results[self._embeddings], dtype=np.float32),
        )

    def profiling_info(self) -> list[Any]:
        """Per-layer counters of the last inference (``perf_count=True``): name, type, exec type, real time."""
        return list(self.request.profiling_info)
