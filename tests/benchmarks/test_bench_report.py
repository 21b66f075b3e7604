"""Report schema, validator, recommendation, CSV/markdown/plots on synthetic results."""

from __future__ import annotations

import copy
import functools
import json
from pathlib import Path

import pytest

from fishopt.benchmarks import report
from fishopt.benchmarks.plots import pareto_front
from fishopt.benchmarks.recommend import recommend
from fishopt.benchmarks.schema import RESULTS, check_results, validate

CLASSES = ["a", "b"]


def _timing(p50: float) -> dict:
    return {
        "n": 10,
        "mean_ms": p50,
        "p50_ms": p50,
        "p90_ms": p50 * 1.1,
        "p99_ms": p50 * 1.3,
        "ci95_ms": [p50 * 0.9, p50 * 1.1],
        "cv": 0.05,
        "robust_cv": 0.04,
        "unstable": False,
    }


def _row(name: str, precision: str, p50: float, top1: float, status: str = "ok", device: str = "cpu") -> dict:
    import numpy as np

    from fishopt.benchmarks.accuracy import compare

    row = {
        "variant": name,
        "runtime": name.split("-")[0],
        "precision": precision,
        "mode": None,
        "kind": "export",
        "backend": "x",
        "device": device,
        "status": status,
        "reason": None if status == "ok" else "why",
        "stage": None,
        "artifact": None,
        "raw_input": False,
        "accuracy": None,
        "latency": None,
        "throughput": None,
        "speedup_bs1": None,
        "speedup_throughput": None,
        "size_bytes": None,
        "build_seconds": None,
        "load_seconds": None,
        "peak_mem_mb": None,
        "gops": None,
        "peak_share": None,
    }
    if status != "ok":
        return row
    rep = {
        "n": 100,
        "top1": top1,
        "macro_f1": top1,
        "per_class": {"a": top1, "b": top1},
        "confusion": [[50, 0], [0, 50]],
    }
    ref = {"n": 100, "top1": 0.9, "macro_f1": 0.9, "per_class": {"a": 0.9, "b": 0.9}}
    row["accuracy"] = compare(rep, np.zeros(100), ref, np.zeros(100))
    row["latency"] = {"bs1": {**_timing(p50), "e2e": _timing(p50 + 1)}}
    row["throughput"] = {
        "1": {"batch_size": 1, "images_per_s": 1000 / p50, "p50_ms": p50},
        "32": {"batch_size": 32, "images_per_s": 32000 / (p50 * 10), "p50_ms": p50 * 10},
    }
    row.update(size_bytes=1000, build_seconds=1.0, peak_mem_mb=3.0, gops=1.0, peak_share=0.01, speedup_bs1=10 / p50)
    return row


@functools.lru_cache(maxsize=1)
def _peaks() -> dict:
    from fishopt.benchmarks.roofline import measure_peaks

    return measure_peaks(1, sizes=(64,), budget=0.002)  # small GEMMs: enough for the report's shape


def sample_results() -> dict:
    from fishopt.benchmarks.fingerprint import LoadSampler, fingerprint

    fp = fingerprint(2, "abc", peaks=copy.deepcopy(_peaks()))
    fp["background_load"] = LoadSampler().start().stop()
    rows = [
        _row("torch-eager-fp32", "fp32", 10.0, 0.90),
        _row("onnx-fp32", "fp32", 4.0, 0.90),
        _row("openvino-int8", "int8", 1.5, 0.895),
        _row("bad-int8", "int8", 1.0, 0.70),  # fastest but collapsed
        _row("tensorrt-fp16", "fp16", 0.1, 0.9, status="skipped", device="cuda"),
        _row("inc-int8", "int8", 0.1, 0.9, status="failed"),
    ]
    settings = {
        "checkpoint": "x/model.pt",
        "batch_sizes": [1, 32],
        "threads": 2,
        "quick": True,
        "max_drop": 1.0,
        "n_test": 100,
        "n_test_total": 500,
        "baseline": "torch-eager-fp32",
        "plans": {},
        "macs_per_image": 1000,
    }
    ref = {"n": 100, "top1": 0.9, "macro_f1": 0.9, "per_class": {"a": 0.9, "b": 0.9}, "confusion": [[1]]}
    return report.assemble(fp, settings, ref, rows)


def test_sample_results_fit_schema() -> None:
    results = sample_results()
    check_results(results)
    json.dumps(results)  # plain JSON types only


def test_validator_reports_paths_of_violations() -> None:
    results = sample_results()
    bad = copy.deepcopy(results)
    bad["rows"][0]["status"] = "weird"
    del bad["rows"][1]["latency"]
    bad["rows"][2]["accuracy"]["top1"] = 1.5
    bad["rows"][2]["latency"]["bs1"]["p50_ms"] = "fast"
    errors = validate(bad, RESULTS)
    text = "\n".join(errors)
    assert "$.rows[0].status" in text and "$.rows[1]: missing key 'latency'" in text
    assert "$.rows[2].accuracy.top1" in text and "$.rows[2].latency.bs1.p50_ms" in text
    with pytest.raises(ValueError, match="schema"):
        check_results(bad)
    assert validate(True, {"type": "integer"}) and not validate(None, {"type": ["object", "null"]})


def test_recommendation_is_fastest_within_budget() -> None:
    results = sample_results()
    recs = results["recommendations"]
    assert recs["cpu-latency"]["variant"] == "openvino-int8"  # bad-int8 is faster but collapsed
    assert recs["cpu-throughput"]["variant"] == "openvino-int8"
    assert "gpu-latency" not in recs  # no GPU row ran
    tight = recommend(results["rows"], 0.1, [1, 32])
    assert tight["cpu-latency"]["variant"] == "onnx-fp32"
    none = recommend([r for r in results["rows"] if r["status"] != "ok"], 1.0, [1])
    assert none["cpu-latency"]["variant"] is None and "no cpu variant ran" in none["cpu-latency"]["reason"]
    assert results["settings"]["best_by_precision"]["int8"]["variant"] == "bad-int8"


def test_collapse_flag_and_warnings() -> None:
    results = sample_results()
    rows = {r["variant"]: r for r in results["rows"]}
    assert rows["bad-int8"]["accuracy"]["collapse"] and not rows["openvino-int8"]["accuracy"]["collapse"]
    text = "\n".join(results["warnings"])
    assert "bad-int8: accuracy COLLAPSE" in text and "inc-int8: FAILED" in text and "quick run" in text


def test_per_class_collapse() -> None:
    import numpy as np

    from fishopt.benchmarks.accuracy import compare

    ref = {"top1": 0.9, "macro_f1": 0.9, "per_class": {"a": 0.9, "b": 0.9}}
    rep = {"n": 10, "top1": 0.895, "macro_f1": 0.89, "per_class": {"a": 0.78, "b": 1.0}, "confusion": []}
    out = compare(rep, np.array([0, 1]), ref, np.array([0, 0]))
    assert out["collapse"] and out["worst_class"] == "a" and out["agreement"] == 0.5
    assert out["delta_per_class"]["a"] == pytest.approx(-12.0)


def test_write_all_outputs(tmp_path: Path) -> None:
    results = sample_results()
    paths = report.write_all(results, tmp_path, show=True)
    for name in ("results.json", "results.csv", "REPORT.md", "pareto.png", "confusion-openvino-int8.png"):
        assert (tmp_path / name).is_file(), name
    assert set(paths) == {"json", "csv", "pareto", "confusion", "markdown"}
    csv_lines = (tmp_path / "results.csv").read_text().splitlines()
    assert len(csv_lines) == 1 + len(results["rows"]) and csv_lines[0].startswith("model,variant,runtime,precision")
    md = (tmp_path / "REPORT.md").read_text()
    assert "cpu-latency**: `openvino-int8`" in md and "MALLOC_MMAP_THRESHOLD_" in md and "Background load" in md
    assert "`tensorrt-fp16`: why" in md  # skipped reasons listed
    check_results(json.loads((tmp_path / "results.json").read_text()))


def test_pareto_front() -> None:
    pts = [(1.0, 80.0), (2.0, 90.0), (3.0, 85.0), (0.5, 70.0), (4.0, 95.0)]
    assert pareto_front(pts) == [3, 0, 1, 4]


def test_int8_size_ratio_pairs_each_int8_format_with_its_fp32_sibling() -> None:
    from fishopt.benchmarks.recommend import int8_size_ratios

    def sized(name: str, precision: str, size: int | None) -> dict:
        return {**_row(name, precision, 1.0, 0.9), "size_bytes": size}

    rows = [
        sized("onnx-fp32", "fp32", 528_000),
        sized("onnxruntime-int8", "int8", 148_000),
        sized("openvino-fp32", "fp32", 540_000),
        sized("openvino-int8", "int8", 172_000),
        sized("torch-eager-fp32", "fp32", 533_000),
        sized("torch-int8", "int8", 270_000),  # no .pt2 FP32 built
        sized("onnxruntime-int8-dynamic", "int8", 425_000),  # Linear layers only: not a size candidate
        sized("bad-int8", "int8", 1_000),
        sized("inc-int8", "int8", None),
    ]
    ratios = int8_size_ratios(rows)
    assert set(ratios) == {"onnxruntime-int8", "openvino-int8"}
    assert ratios["onnxruntime-int8"] == {"fp32": "onnx-fp32", "ratio": pytest.approx(3.568, abs=1e-3), "meets": True}
    assert ratios["openvino-int8"]["fp32"] == "openvino-fp32" and ratios["openvino-int8"]["meets"] is False
    rows.append(sized("torch-compile-fp32", "fp32", 631_000))
    assert int8_size_ratios(rows)["torch-int8"]["fp32"] == "torch-compile-fp32"


def test_report_states_the_size_target() -> None:
    from fishopt.benchmarks.markdown import to_markdown

    base = sample_results()
    rows = [*base["rows"], {**_row("openvino-fp32", "fp32", 3.0, 0.90), "size_bytes": 4000}]
    results = report.assemble(base["fingerprint"], base["settings"], base["reference"], rows)
    check_results(results)
    assert results["targets"]["int8_size"] == {"openvino-int8": {"fp32": "openvino-fp32", "ratio": 4.0, "meets": True}}
    assert "`openvino-int8` 4.00x vs `openvino-fp32` (met)" in to_markdown(results, {})


def _e2e(decode: float, pre: float, model: float, pipeline: str = "fast") -> dict:
    total = decode + pre + model
    return {
        "pipeline": pipeline,
        "total": _timing(total),
        "stages_p50_ms": {"decode": decode, "preprocess": pre, "model": model},
    }


def test_camera_rows_split_plot_targets_and_merge(tmp_path: Path) -> None:
    results = sample_results()
    results["settings"]["input_sizes"] = ["native", "1920x1080", "590x445"]
    rows = {r["variant"]: r for r in results["rows"]}
    for name in ("torch-eager-fp32", "onnx-fp32", "openvino-int8", "bad-int8"):
        rows[name]["e2e"] = {
            "native": _e2e(0.2, 0.5, 1.0),
            "1920x1080": _e2e(2.5, 0.6, 0.2),
            "590x445": _e2e(0.7, 0.5, 0.2),
        }
        rows[name]["compute_precision"] = rows[name]["precision"]
    today = {"1920x1080": _e2e(20.0, 30.0, 2.0, "today"), "590x445": _e2e(3.0, 8.0, 2.0, "today")}
    camera = {
        s: {
            "n_files": 4,
            "mean_kb": 10.0,
            "pipeline": "fast",
            "agreement": {"n": 10, "agreement": 1.0, "delta_points": 0.0, "taken": True, "scales": {"1/8": 10}},
        }
        for s in ("native", "1920x1080", "590x445")
    }
    camera["590x445"]["agreement"].update(agreement=0.99, taken=False)
    camera["590x445"]["pipeline"] = "exact"
    done = report.assemble(
        results["fingerprint"],
        results["settings"],
        results["reference"],
        results["rows"],
        e2e_today=today,
        camera=camera,
        profiles={},
    )
    check_results(done)
    cam = done["targets"]["camera"]
    assert cam["variant"] == "openvino-int8"  # the recommended CPU variant is INT8
    assert cam["e2e_over_today_1080"] == round(52.0 / 3.3, 3) and cam["meets"]["e2e_over_today_1080"] is True
    assert cam["input_over_model_1080"] == round(3.1 / 0.2, 3) and cam["meets"]["input_over_model_1080"] is False
    assert cam["e2e_over_model_590"] == round(1.4 / 1.5, 3) and cam["meets"]["e2e_over_model_590"] is True
    assert any("590x445: faster decode paths changed" in w and "exact pipeline" in w for w in done["warnings"])
    paths = report.write_all(done, tmp_path, show=False)
    assert paths["e2e_split"].is_file()
    md = (tmp_path / "REPORT.md").read_text()
    assert "## Where the time goes" in md and "today's pipeline" in md and "## End-to-end targets" in md
    assert "| 1920x1080 | `openvino-int8` | fast | 2.500 | 0.600 | 0.200 |" in md
    done["settings"]["model"] = "baseline"
    teacher = copy.deepcopy(done)
    teacher["settings"]["model"] = "efficientnet_lite0"
    teacher["camera"]["590x445"]["agreement"]["scales"] = {"5/8": 10}
    teacher["targets"]["camera"]["e2e_over_model_590"] = 2.5
    merged = report.merge([done, teacher])
    check_results(merged)
    assert merged["camera_by_model"]["efficientnet_lite0"]["590x445"]["agreement"]["scales"] == {"5/8": 10}
    assert len(merged["rows"]) == 2 * len(done["rows"]) and {r["run"] for r in merged["rows"]} == {0, 1}
    assert len(merged["settings"]["merged_runs"]) == 2
    out2 = tmp_path / "merged"
    out2.mkdir()
    report.write_all(merged, out2, show=False)
    merged_md = (out2 / "REPORT.md").read_text().splitlines()
    # each model's own gates and targets, not the first run's twice
    assert any(line.startswith("- efficientnet_lite0, 590x445:") and "'5/8'" in line for line in merged_md)
    assert any(line.startswith("- baseline, 590x445:") and "'1/8'" in line for line in merged_md)
    assert any("Recommended INT8 variant of efficientnet_lite0" in line for line in merged_md)
    assert "- 590x445: end to end <= 3x model-only: 2.50x (met)" in merged_md
    for model in ("baseline", "efficientnet_lite0"):  # each model's rows once, today's pipeline included
        assert sum(line.startswith(f"| 1920x1080 | {model} `openvino-int8` |") for line in merged_md) == 1
        assert sum(line.startswith(f"| 590x445 | {model} today's pipeline") for line in merged_md) == 1
    assert any(line.startswith("| model |") for line in merged_md)
    assert sum(line.startswith("- `") and "checkpoint `x/model.pt`" in line for line in merged_md[:5]) == 2


def test_share_above_measured_peak_is_flagged() -> None:
    results = sample_results()
    results["rows"][1]["peak_share"] = 1.3
    done = report.assemble(results["fingerprint"], results["settings"], results["reference"], results["rows"])
    assert any("peak measurement was disturbed" in w for w in done["warnings"])


def test_profiles_appendix() -> None:
    results = sample_results()
    profiles = {
        "openvino-int8": {
            "profiler": "openvino PERF_COUNT",
            "calls": 10,
            "total_ms": 0.2,
            "ops": [{"op": "conv1", "kind": "Convolution", "impl": "brgconv_i8", "ms": 0.1, "share": 0.5}],
        }
    }
    done = report.assemble(
        results["fingerprint"], results["settings"], results["reference"], results["rows"], profiles=profiles
    )
    check_results(done)
    from fishopt.benchmarks.markdown import to_markdown

    md = to_markdown(done, {})
    assert "## Appendix: per-operator profiles" in md and "| conv1 | Convolution | brgconv_i8 | 0.1000 | 50.0% |" in md


def _model_rows(model: str, rows: list[dict]) -> list[dict]:
    return [{**r, "model": model} for r in rows]


def test_across_models_fastest_within_points_of_the_most_accurate_and_under_a_budget() -> None:
    from fishopt.benchmarks.recommend import across_models

    small = _model_rows(
        "baseline", [_row("torch-eager-fp32", "fp32", 1.0, 0.94), _row("openvino-int8", "int8", 0.1, 0.94)]
    )
    big = _model_rows(
        "efficientnet_lite0",
        [_row("torch-eager-fp32", "fp32", 100.0, 0.99), _row("openvino-int8", "int8", 3.0, 0.985)],
    )
    recs = across_models(small + big, within=1.0, latency_budget_ms=0.5, batch_sizes=[1, 32])
    fast = recs["cpu-fastest-accurate"]
    assert (fast["model"], fast["variant"]) == ("efficientnet_lite0", "openvino-int8")  # 0.5 pt below the best
    assert recs["cpu-throughput-accurate"]["model"] == "efficientnet_lite0"
    budget = recs["cpu-most-accurate-under-0.5ms"]
    assert (budget["model"], budget["variant"]) == ("baseline", "openvino-int8")
    loose = across_models(small + big, within=10.0, batch_sizes=[1, 32])
    assert loose["cpu-fastest-accurate"]["model"] == "baseline" and not any("under" in k for k in loose)
    none = across_models(small + big, within=1.0, latency_budget_ms=0.01)["cpu-most-accurate-under-0.01ms"]
    assert none["variant"] is None and "no cpu variant answers within 0.01 ms" in none["reason"]


def test_merge_refuses_runs_on_different_splits() -> None:
    from fishopt.errors import ConfigError

    one, other = sample_results(), sample_results()
    other["fingerprint"]["split_hash"] = "another"
    with pytest.raises(ConfigError, match="different test splits"):
        report.merge([one, other])
    with pytest.raises(ConfigError, match="nothing to merge"):
        report.merge([])


def test_merged_report_has_per_model_and_across_model_recommendations(tmp_path: Path) -> None:
    one, two = sample_results(), sample_results()
    one["settings"]["model"], two["settings"]["model"] = "baseline", "efficientnet_lite0"
    for row in two["rows"]:
        if row.get("accuracy"):
            row["accuracy"]["top1"] = min(1.0, row["accuracy"]["top1"] + 0.05)
    merged = report.merge([one, two], latency_budget_ms=2.0)
    check_results(merged)
    assert {"baseline cpu-latency", "efficientnet_lite0 cpu-latency"} <= set(merged["recommendations"])
    assert merged["across_models"]["cpu-fastest-accurate"]["model"] == "efficientnet_lite0"
    report.write_all(merged, tmp_path, show=False)
    md = (tmp_path / "REPORT.md").read_text()
    assert "Across models" in md and "cpu-most-accurate-under-2ms" in md
