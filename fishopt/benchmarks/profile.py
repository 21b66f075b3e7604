"""Per-operator time profiles with the runtimes' own profilers (the report's appendix).

- ONNX Runtime: ``SessionOptions.enable_profiling`` (a JSON trace of every node's kernel time);
- OpenVINO: ``PERF_COUNT`` (``InferRequest.profiling_info``: real time and the kernel it chose per layer);
- torch (eager and ``.pt2`` programs): ``torch.profiler`` (self CPU time per aten/oneDNN op).

Each profile re-loads the artifact with profiling on (never the timed runtime), runs ``calls`` batch-1 calls
after a warm-up, and returns the operators by time per call, largest first.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

#: Operators listed per profile (the rest are summed into one line).
TOP = 12


def profile_runtime(runtime: Any, batch: np.ndarray, calls: int = 200, warmup: int = 20) -> dict:
    """Profile ``calls`` calls of a loaded runtime's artifact on ``batch``.

    Returns:
        ``{"profiler", "calls", "total_ms", "ops": [{"op", "kind", "impl", "ms", "share"}...]}``: ``ms`` per
        call, ``share`` of the profiled total, largest first (at most :data:`TOP`, then ``(other)``).

    Raises:
        ValueError: For a runtime without a profiler here.
    """
    name = type(runtime).__name__
    if name.startswith("Onnx"):
        return _summary("onnxruntime enable_profiling", calls, _profile_ort(runtime, batch, calls, warmup))
    if name.startswith("OpenVINO"):
        return _summary("openvino PERF_COUNT", calls, _profile_openvino(runtime, batch, calls, warmup))
    if name.startswith("Torch"):
        return _summary("torch.profiler", calls, _profile_torch(runtime, batch, calls, warmup))
    raise ValueError(f"no per-operator profiler for {name}")


def _summary(profiler: str, calls: int, table: dict[tuple[str, str, str], float]) -> dict:
    total = sum(table.values()) or 1.0
    rows = sorted(table.items(), key=lambda kv: -kv[1])
    ops = [
        {"op": k[0], "kind": k[1], "impl": k[2], "ms": round(v / calls * 1e3, 5), "share": round(v / total, 4)}
        for k, v in rows[:TOP]
    ]
    rest = sum(v for _, v in rows[TOP:])
    if rest:
        ops.append(
            {
                "op": "(other)",
                "kind": "",
                "impl": "",
                "ms": round(rest / calls * 1e3, 5),
                "share": round(rest / total, 4),
            }
        )
    return {"profiler": profiler, "calls": calls, "total_ms": round(total / calls * 1e3, 5), "ops": ops}


def _profile_ort(runtime: Any, batch: np.ndarray, calls: int, warmup: int) -> dict:
    with tempfile.TemporaryDirectory(prefix="fishopt-prof-") as tmp:
        settings = {k: v for k, v in runtime.settings.items() if k in ("provider", "spinning", "optimization")}
        rt = type(runtime).load(runtime.path, threads=runtime.threads, profile=str(Path(tmp) / "ort"), **settings)
        for _ in range(warmup):
            rt(batch)
        trace = Path(rt.end_profiling())  # drop the warm-up from the trace: a second profiled session
        rt = type(runtime).load(runtime.path, threads=runtime.threads, profile=str(Path(tmp) / "ort2"), **settings)
        for _ in range(calls + 1):
            rt(batch)
        trace = Path(rt.end_profiling())
        events = json.loads(trace.read_text())
    table: dict[tuple[str, str, str], float] = {}
    first_run = True
    for event in events:
        if event.get("cat") == "Session" and event.get("name") == "model_run" and first_run:
            first_run = False  # the first call pays allocation; counted anyway (1 of calls+1)
        if event.get("cat") != "Node" or not str(event.get("name", "")).endswith("_kernel_time"):
            continue
        args = event.get("args", {})
        node = event["name"][: -len("_kernel_time")]
        key = (node, args.get("op_name", "?"), args.get("provider", ""))
        table[key] = table.get(key, 0.0) + event.get("dur", 0) / 1e6
    return {k: v * calls / (calls + 1) for k, v in table.items()}


def _profile_openvino(runtime: Any, batch: np.ndarray, calls: int, warmup: int) -> dict:
    settings = {k: v for k, v in runtime.settings.items() if k in ("precision_hint", "performance_hint", "reshape")}
    settings.setdefault("reshape", int(batch.shape[0]))
    rt = type(runtime).load(runtime.path, threads=runtime.threads, perf_count=True, **settings)
    for _ in range(warmup):
        rt(batch)
    table: dict[tuple[str, str, str], float] = {}
    for _ in range(calls):
        rt(batch)
        for info in rt.profiling_info():
            if str(info.status).endswith("NOT_RUN"):
                continue
            key = (info.node_name, info.node_type, info.exec_type)
            table[key] = table.get(key, 0.0) + info.real_time.total_seconds()
    rt.close()
    return table


def _profile_torch(runtime: Any, batch: np.ndarray, calls: int, warmup: int) -> dict:
    from torch.profiler import ProfilerActivity, profile

    for _ in range(warmup):
        runtime(batch)
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        for _ in range(calls):
            runtime(batch)
    table: dict[tuple[str, str, str], float] = {}
    for event in prof.key_averages():
        if event.self_cpu_time_total <= 0:
            continue
        table[(event.key, "aten" if event.key.startswith("aten::") else "op", "")] = event.self_cpu_time_total / 1e6
    return table
