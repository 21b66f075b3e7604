"""A measured roofline: this machine's achievable GEMM peak per precision, and the precision each row computes in.

:func:`measure_peaks` times square GEMMs through the libraries the runtimes use, at the run's thread count
(a few hundred ms): FP32 through torch (MKL/oneDNN) and ONNX Runtime (MLAS), BF16 and FP16 through torch
(oneDNN: AVX-512 BF16/FP16 or AMX where the CPU has them), INT8 u8 x s8 -> s32 through ONNX Runtime's
``MatMulInteger`` (MLAS: VNNI or AMX) and ``torch._int_mm``. Each precision's peak is the best of its
libraries and sizes.

:func:`compute_precision` asks a loaded runtime what its convolutions and matrix products really run in:
OpenVINO's execution graph (``runtimePrecision`` of each layer: bf16 when the CPU default applies), ONNX
Runtime's optimized graph (integer kernels such as ``QLinearConv`` after QDQ fusion), the artifact's
precision otherwise. A row is judged against :func:`peak_for` its compute precision, which is never below the
FP32 peak (a runtime can always fall back to FP32), so a measured share stays at or below 100 % unless the
peak measurement itself was disturbed (then the report flags it).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

PRECISIONS = ("fp32", "bf16", "fp16", "int8")
#: Square GEMM sizes timed per precision (the largest usually wins; the small one catches cache effects).
SIZES = (512, 1024)
#: Seconds of GEMM timing per (library, precision, size) at most.
BUDGET = 0.08
_INT_OPS = (
    "QLinearConv",
    "QLinearMatMul",
    "ConvInteger",
    "MatMulInteger",
    "QGemm",
    "MatMulIntegerToFloat",
    "DynamicQuantizeMatMul",
    "QLinearAdd",
)
_COMPUTE_LAYERS = ("Convolution", "FullyConnected", "MatMul", "GroupConvolution", "Deconvolution", "Gemm")


def _best_seconds(fn: Callable[[], object], budget: float = BUDGET, min_reps: int = 3) -> float:
    fn()  # warm-up (packing, JIT kernels)
    best, spent, reps = float("inf"), 0.0, 0
    while reps < min_reps or spent < budget:
        t0 = time.perf_counter()
        fn()
        dt = time.perf_counter() - t0
        best, spent, reps = min(best, dt), spent + dt, reps + 1
        if reps >= 50:
            break
    return best


def _torch_gemm(precision: str, n: int, threads: int) -> Callable[[], object] | None:
    import torch

    torch.set_num_threads(threads)
    if precision == "int8":
        if not hasattr(torch, "_int_mm"):
            return None
        a = torch.randint(-128, 127, (n, n), dtype=torch.int8)
        b = torch.randint(-128, 127, (n, n), dtype=torch.int8)
        return lambda: torch._int_mm(a, b)
    dtype = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}[precision]
    a, b = torch.randn(n, n).to(dtype), torch.randn(n, n).to(dtype)
    return lambda: torch.mm(a, b)


def _ort_gemm(precision: str, n: int, threads: int) -> Callable[[], object] | None:
    try:
        import numpy as np
        import onnxruntime as ort
        from onnx import TensorProto, helper, numpy_helper
    except ImportError:
        return None
    if precision not in ("fp32", "int8"):
        return None
    rng = np.random.default_rng(0)
    if precision == "int8":
        weight = numpy_helper.from_array(rng.integers(-128, 127, (n, n)).astype(np.int8), "B")
        a = rng.integers(0, 255, (n, n)).astype(np.uint8)
        node, elem, out = "MatMulInteger", TensorProto.UINT8, TensorProto.INT32
    else:
        weight = numpy_helper.from_array(rng.standard_normal((n, n)).astype(np.float32), "B")
        a = rng.standard_normal((n, n)).astype(np.float32)
        node, elem, out = "MatMul", TensorProto.FLOAT, TensorProto.FLOAT
    graph = helper.make_graph(
        [helper.make_node(node, ["A", "B"], ["Y"])],
        "gemm",
        [helper.make_tensor_value_info("A", elem, [n, n])],
        [helper.make_tensor_value_info("Y", out, [n, n])],
        [weight],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
    session = ort.InferenceSession(model.SerializeToString(), opts, providers=["CPUExecutionProvider"])
    return lambda: session.run(None, {"A": a})


LIBRARIES = {"torch": _torch_gemm, "onnxruntime": _ort_gemm}


def measure_peaks(threads: int, sizes: tuple[int, ...] = SIZES, budget: float = BUDGET) -> dict[str, dict]:
    """The best measured GEMM rate per precision at ``threads`` threads.

    Returns:
        ``{precision: {"gops", "library", "n", "threads", "method", "tried": {"library n": gops}}}`` for
        fp32, bf16, fp16 and int8 (``gops`` ``None`` where no library could run it).
    """
    out: dict[str, dict] = {}
    for precision in PRECISIONS:
        tried: dict[str, float | None] = {}
        for library, make in LIBRARIES.items():
            for n in sizes:
                try:
                    fn = make(precision, n, threads)
                    if fn is None:
                        continue
                    tried[f"{library} {n}"] = round(2.0 * n**3 / _best_seconds(fn, budget) / 1e9, 1)
                except Exception as exc:  # a library without this precision on this CPU: not a peak
                    tried[f"{library} {n}"] = None
                    del exc
        valid = {k: v for k, v in tried.items() if v}
        best = max(valid, key=valid.__getitem__) if valid else None
        out[precision] = {
            "gops": valid[best] if best else None,
            "library": best.split()[0] if best else None,
            "n": int(best.split()[1]) if best else None,
            "threads": threads,
            "tried": tried,
            "method": "best of square GEMMs (2*n^3 ops) through " + ", ".join(LIBRARIES) + f" at {threads} thread(s)",
        }
    return out


def peak_for(peaks: dict[str, dict], precision: str | None) -> float | None:
    """The peak a row computing in ``precision`` is judged against: max(its precision's peak, the FP32 peak)."""
    values = [(peaks.get(p) or {}).get("gops") for p in {precision or "fp32", "fp32"}]
    known = [v for v in values if v]
    return max(known) if known else None


def judge(gops: float | None, precision: str | None, peaks: dict[str, dict]) -> float | None:
    """Share (0-1+) of the measured peak of ``precision``; ``None`` when unknown."""
    peak = peak_for(peaks, precision)
    if not gops or not peak:
        return None
    return round(gops / peak, 4)


# ------------------------------------------------------------------------------------------- compute precision
def compute_precision(runtime: Any) -> dict:
    """What a loaded runtime's convolutions and matrix products run in.

    Returns:
        ``{"precision": fp32|bf16|fp16|int8, "source": how it was found, "detail": {...}}``; the precision is the
        fastest one any compute layer uses (the upper bound a row is judged against).
    """
    name = type(runtime).__name__
    if hasattr(runtime, "compiled") and name.startswith("OpenVINO"):
        return _openvino_precision(runtime)
    if hasattr(runtime, "session") and name.startswith("Onnx"):
        return _ort_precision(runtime)
    meta = getattr(runtime, "meta", {}) or {}
    settings = getattr(runtime, "settings", {}) or {}
    precision = settings.get("autocast") or meta.get("precision") or "fp32"
    return {"precision": precision, "source": "artifact metadata", "detail": {}}


def _text(value: Any) -> str:
    """An rt_info value (OpenVINO's ``OVAny``) as text."""
    return str(value.astype(str)) if hasattr(value, "astype") else str(value)


def _openvino_precision(runtime: Any) -> dict:
    counts: dict[str, int] = {}
    for op in runtime.compiled.get_runtime_model().get_ordered_ops():
        info = op.get_rt_info()
        layer = _text(info["layerType"]) if "layerType" in info else op.get_type_name()
        if layer in _COMPUTE_LAYERS and "runtimePrecision" in info:
            prec = _text(info["runtimePrecision"]).lower()
            counts[prec] = counts.get(prec, 0) + 1
    mapping = {"i8": "int8", "u8": "int8", "bf16": "bf16", "f16": "fp16", "f32": "fp32"}
    found = {mapping.get(k, "fp32") for k in counts}
    precision = next((p for p in ("int8", "bf16", "fp16", "fp32") if p in found), "fp32")
    return {
        "precision": precision,
        "source": "OpenVINO execution graph (runtimePrecision of compute layers)",
        "detail": {"layers": counts, "inference_precision": getattr(runtime, "inference_precision", None)},
    }


def _ort_precision(runtime: Any) -> dict:
    ops = runtime.optimized_op_types() if hasattr(runtime, "optimized_op_types") else {}
    integer = {k: v for k, v in ops.items() if k in _INT_OPS}
    precision = "int8" if integer else "fp32"
    return {
        "precision": precision,
        "source": "ONNX Runtime optimized graph (integer kernels after QDQ fusion)",
        "detail": {"op_types": ops},
    }
