"""Pick the variant to deploy per target: the fastest one within the accuracy budget.

A row is eligible when it ran (``ok``), lost at most ``max_drop`` top-1 points against the FP32
reference and did not collapse (see :mod:`fishopt.benchmarks.accuracy`).
"""

from __future__ import annotations

from collections.abc import Callable

from fishopt.artifacts.registry import list_formats


def eligible(row: dict, max_drop: float) -> bool:
    """True if the row ran and stays within the accuracy budget without collapsing."""
    acc = row.get("accuracy")
    return (
        row.get("status") == "ok"
        and bool(row.get("latency"))
        and acc is not None
        and acc["delta_top1"] >= -max_drop
        and not acc["collapse"]
    )


def _p50(row: dict) -> float:
    return row["latency"]["bs1"]["p50_ms"]


def _ips(batch: str) -> Callable[[dict], float]:
    return lambda row: ((row.get("throughput") or {}).get(batch) or {}).get("images_per_s") or 0.0


def _pick(
    rows: list[dict],
    device: str,
    metric: str,
    key: Callable[[dict], float],
    best_is_low: bool,
    speedup_key: str,
    max_drop: float,
) -> dict:
    pool = [r for r in rows if r["device"] == device and eligible(r, max_drop)]
    if not pool:
        ran = [r for r in rows if r["device"] == device and r["status"] == "ok"]
        why = f"no {device} variant ran" if not ran else f"no {device} variant within {max_drop} points of FP32 top-1"
        return {"variant": None, "metric": metric, "value": None, "speedup": None, "delta_top1": None, "reason": why}
    best = min(pool, key=key) if best_is_low else max(pool, key=key)
    return {
        "variant": best["variant"],
        "metric": metric,
        "value": key(best),
        "speedup": best.get(speedup_key),
        "delta_top1": best["accuracy"]["delta_top1"],
        "reason": f"{'lowest' if best_is_low else 'highest'} {metric} among {len(pool)} variant(s) within {max_drop} points",
    }


def recommend(rows: list[dict], max_drop: float, batch_sizes: list[int]) -> dict[str, dict]:
    """Recommendation per target: ``cpu-latency`` (bs1 p50), ``cpu-throughput`` (largest batch), and
    ``gpu-latency`` / ``gpu-throughput`` when any GPU row ran (CPU targets only when there are CPU rows).

    Returns:
        Target -> ``{"variant", "metric", "value", "speedup", "delta_top1", "reason"}``; ``variant``
        is ``None`` (with the reason) when nothing qualifies.
    """
    big = str(max(batch_sizes))
    cpu_rows = any(r["device"] == "cpu" for r in rows) or not rows
    devices = (["cpu"] if cpu_rows else []) + (
        ["cuda"] if any(r["device"] == "cuda" and r["status"] == "ok" for r in rows) else []
    )
    out: dict[str, dict] = {}
    for dev in devices:
        target = "gpu" if dev == "cuda" else "cpu"
        out[f"{target}-latency"] = _pick(rows, dev, "bs1 p50 ms", _p50, True, "speedup_bs1", max_drop)
        if big != "1":
            out[f"{target}-throughput"] = _pick(
                rows, dev, f"images/s at bs{big}", _ips(big), False, "speedup_throughput", max_drop
            )
    return out


def best_by_precision(rows: list[dict], batch: str) -> dict[str, dict]:
    """Highest throughput at ``batch`` per precision among rows that ran (for 'INT8 beats FP32')."""
    out: dict[str, dict] = {}
    for row in rows:
        ips = _ips(batch)(row)
        if (
            row["status"] == "ok"
            and row["device"] == "cpu"
            and ips
            and ips > _ips(batch)(out.get(row["precision"], {}))
        ):
            out[row["precision"]] = row
    return {p: {"variant": r["variant"], "images_per_s": _ips(batch)(r)} for p, r in out.items()}


MIN_INT8_SIZE_RATIO = 3.5


def int8_size_ratios(rows: list[dict]) -> dict[str, dict]:
    """Each static INT8 artifact's size against the FP32 artifact of the same runtime and file type.

    Dynamic INT8 formats are left out: they quantize only the Linear layers, by design.

    ``onnxruntime-int8`` is compared with ``onnx-fp32``, ``openvino-int8`` with ``openvino-fp32``, and the
    torch ``.pt2`` INT8 formats with ``torch-compile-fp32`` (also a ``.pt2``): the same backend and file suffix.

    Returns:
        ``{int8_variant: {"fp32": variant, "ratio": fp32_bytes / int8_bytes, "meets": ratio >= 3.5}}`` for
        the static INT8 rows whose counterpart was built; rows of formats the registry does not know are
        left out.
    """
    formats = {f.name: f for f in list_formats()}
    built = {r["variant"]: r for r in rows if r.get("size_bytes") and r["variant"] in formats}
    out: dict[str, dict] = {}
    for name, row in built.items():
        fmt = formats[name]
        if fmt.precision != "int8" or fmt.method != "static":
            continue
        fp32 = next(
            (
                n
                for n in built
                if formats[n].precision == "fp32"
                and formats[n].backend == fmt.backend
                and formats[n].suffix == fmt.suffix
            ),
            None,
        )
        if fp32 is not None:
            ratio = round(built[fp32]["size_bytes"] / row["size_bytes"], 3)
            out[name] = {"fp32": fp32, "ratio": ratio, "meets": ratio >= MIN_INT8_SIZE_RATIO}
    return out


def targets(rows: list[dict], recommendations: dict[str, dict], batch: str) -> dict:
    """The project's speed targets, checked on these rows.

    Returns:
        ``{"cpu_latency_speedup", "meets_3x", "meets_5x", "best_int8", "best_fp32", "int8_over_fp32", "int8_beats_fp32"}``:
        the recommended CPU variant's bs1 speedup over the FP32 eager baseline (target >= 3x, goal 5x),
        and best INT8 against best FP32 throughput at batch ``batch``. ``None`` where not measurable.
        ``int8_size``: :func:`int8_size_ratios` (target: at least 3.5x smaller on disk).
    """
    rec = recommendations.get("cpu-latency") or {}
    sp = rec.get("speedup")
    best = best_by_precision(rows, batch)
    int8 = (best.get("int8") or {}).get("images_per_s")
    fp32 = (best.get("fp32") or {}).get("images_per_s")
    ratio = round(int8 / fp32, 3) if int8 and fp32 else None
    return {
        "cpu_latency_variant": rec.get("variant"),
        "cpu_latency_speedup": sp,
        "meets_3x": None if sp is None else sp >= 3.0,
        "meets_5x": None if sp is None else sp >= 5.0,
        "best_int8": (best.get("int8") or {}).get("variant"),
        "best_fp32": (best.get("fp32") or {}).get("variant"),
        "int8_over_fp32": ratio,
        "int8_beats_fp32": None if ratio is None else ratio > 1.0,
        "int8_size": int8_size_ratios(rows),
    }


#: Camera-size targets: e2e speedup over today's pipeline at 1920x1080, decode+preprocess vs model at 1920x1080,
#: e2e vs model-only at 590x445, batch-1 INT8 over eager FP32.
CAMERA_TARGETS = {
    "e2e_over_today_1080": 5.0,
    "input_over_model_1080": 4.0,
    "e2e_over_model_590": 3.0,
    "int8_bs1_speedup": 5.0,
}


def recommended_int8(rows: list[dict], recommendations: dict[str, dict], max_drop: float) -> dict | None:
    """The recommended CPU variant when it is INT8, else the fastest eligible INT8 CPU variant at batch 1."""
    rec = (recommendations.get("cpu-latency") or {}).get("variant")
    by_name = {r["variant"]: r for r in rows}
    if rec in by_name and by_name[rec]["precision"] == "int8":
        return by_name[rec]
    pool = [r for r in rows if r["device"] == "cpu" and r["precision"] == "int8" and eligible(r, max_drop)]
    return min(pool, key=_p50) if pool else None


def camera_targets(rows: list[dict], recommendations: dict[str, dict], today: dict[str, dict], max_drop: float) -> dict:
    """The end-to-end targets of the recommended INT8 variant (``None`` where its input size was not measured).

    Returns:
        ``{"variant", "e2e_over_today_1080", "input_over_model_1080", "e2e_over_model_590", "int8_bs1_speedup",
        "meets": {target: bool | None}, "targets": CAMERA_TARGETS}``: ratios of p50s measured in the same run.
    """
    row = recommended_int8(rows, recommendations, max_drop)
    out: dict = {"variant": row["variant"] if row else None, "targets": dict(CAMERA_TARGETS)}
    e2e = (row or {}).get("e2e") or {}
    hd, small = e2e.get("1920x1080"), e2e.get("590x445")
    today_hd = (today.get("1920x1080") or {}).get("total", {}).get("p50_ms")
    out["e2e_over_today_1080"] = speedup(today_hd, hd["total"]["p50_ms"]) if hd else None
    if hd and hd["stages_p50_ms"].get("model"):
        st = hd["stages_p50_ms"]
        out["input_over_model_1080"] = round((st["decode"] + st["preprocess"]) / st["model"], 3)
    else:
        out["input_over_model_1080"] = None
    model_only = ((row or {}).get("latency") or {}).get("bs1", {}).get("p50_ms")
    out["e2e_over_model_590"] = round(small["total"]["p50_ms"] / model_only, 3) if small and model_only else None
    out["int8_bs1_speedup"] = (row or {}).get("speedup_bs1")
    higher_is_better = {
        "e2e_over_today_1080": True,
        "input_over_model_1080": False,
        "e2e_over_model_590": False,
        "int8_bs1_speedup": True,
    }
    out["meets"] = {
        k: None if out[k] is None else (out[k] >= v if higher_is_better[k] else out[k] <= v)
        for k, v in CAMERA_TARGETS.items()
    }
    return out


def _label(row: dict) -> str:
    return f"{row['model']}/{row['variant']}" if row.get("model") else row["variant"]


def _top1(row: dict) -> float:
    return float(row["accuracy"]["top1"])


def across_models(
    rows: list[dict], within: float, latency_budget_ms: float | None = None, batch_sizes: list[int] | None = None
) -> dict[str, dict]:
    """Recommendations across model families (rows of several checkpoints that share one test split).

    Within one model, a variant is judged against its own FP32 reference (:func:`recommend`). Across models the
    question is different: a user picks the model and the runtime together. Per device:

    - ``<target>-fastest-accurate``: the fastest variant (bs1 p50) whose top-1 is within ``within`` points of the
      most accurate variant of any model;
    - ``<target>-throughput-accurate``: the same by images/s at the largest batch size;
    - ``<target>-most-accurate-under-<budget>ms``: the most accurate variant whose bs1 p50 is at most
      ``latency_budget_ms`` (only when a budget is given; ties go to the faster one).

    Only rows that ran, have accuracy and did not collapse against their own reference are considered.

    Returns:
        Target -> ``{"variant", "model", "top1", "value", "metric", "reason"}`` (``variant`` ``None`` with the
        reason when nothing qualifies).
    """
    out: dict[str, dict] = {}
    usable = [r for r in rows if r.get("status") == "ok" and r.get("latency") and r.get("accuracy")]
    usable = [r for r in usable if not r["accuracy"].get("collapse")]
    big = str(max(batch_sizes)) if batch_sizes else None
    for device in sorted({r["device"] for r in usable}):
        target = "gpu" if device == "cuda" else "cpu"
        pool = [r for r in usable if r["device"] == device]
        best = max(_top1(r) for r in pool)
        close = [r for r in pool if 100.0 * (best - _top1(r)) <= within + 1e-9]
        fast = min(close, key=_p50)
        out[f"{target}-fastest-accurate"] = _cross(
            fast,
            "bs1 p50 ms",
            _p50(fast),
            f"lowest bs1 p50 among {len(close)} variant(s) within {within} points "
            f"of the most accurate ({100 * best:.2f} %)",
        )
        if big and big != "1":
            with_tp = [r for r in close if _ips(big)(r) > 0]
            if with_tp:
                top = max(with_tp, key=_ips(big))
                out[f"{target}-throughput-accurate"] = _cross(
                    top,
                    f"images/s at bs{big}",
                    _ips(big)(top),
                    f"highest images/s at bs{big} among "
                    f"{len(with_tp)} variant(s) within {within} points of the most accurate",
                )
        if latency_budget_ms is not None:
            key = f"{target}-most-accurate-under-{latency_budget_ms:g}ms"
            fits = [r for r in pool if _p50(r) <= latency_budget_ms]
            if not fits:
                quickest = min(pool, key=_p50)
                out[key] = {
                    "variant": None,
                    "model": None,
                    "top1": None,
                    "value": None,
                    "metric": "top-1",
                    "reason": f"no {device} variant answers within {latency_budget_ms:g} ms at batch 1 "
                    f"(fastest: {_label(quickest)}, {_p50(quickest):.3f} ms)",
                }
            else:
                pick = max(fits, key=lambda r: (_top1(r), -_p50(r)))
                out[key] = _cross(
                    pick,
                    "top-1",
                    _top1(pick),
                    f"highest top-1 among {len(fits)} variant(s) with bs1 p50 <= "
                    f"{latency_budget_ms:g} ms ({_p50(pick):.3f} ms)",
                )
    return out


def _cross(row: dict, metric: str, value: float, reason: str) -> dict:
    return {
        "variant": row["variant"],
        "model": row.get("model"),
        "top1": _top1(row),
        "p50_ms": _p50(row),
        "value": value,
        "metric": metric,
        "reason": reason,
    }


def speedup(base: float | None, value: float | None) -> float | None:
    """``base / value`` rounded, ``None`` when either is missing."""
    return round(base / value, 3) if base and value else None
