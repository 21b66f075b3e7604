"""``REPORT.md``: the table, the recommended variant per target, and the notes needed to trust it."""

from __future__ import annotations


def _f(value: float | None, spec: str = ".2f", suffix: str = "") -> str:
    return "-" if value is None else f"{value:{spec}}{suffix}"


def _ci(ci: dict | None) -> str:
    if not ci or ci.get("low") is None:
        return "-"
    return f"{100 * ci['low']:.1f}-{100 * ci['high']:.1f}"


def _best(row: dict) -> str:
    best = row.get("throughput_best") or {}
    if not best.get("images_per_s"):
        return "-"
    return f"{best['images_per_s_per_core']:.0f} @bs{best['batch_size']}"


def _row_line(row: dict, big: str, sizes: list[str]) -> str:
    acc = row.get("accuracy") or {}
    bs1 = (row.get("latency") or {}).get("bs1") or {}
    e2e = bs1.get("e2e") or {}
    tp = ((row.get("throughput") or {}).get(big) or {}).get("images_per_s")
    ci = bs1.get("ci95_ms")
    top1, agreement = acc.get("top1"), acc.get("agreement")
    cells = [
        f"`{row['variant']}`",
        row["device"],
        row["status"],
        _f(top1 * 100 if top1 is not None else None, ".2f"),
        _ci(acc.get("top1_ci95")),
        _f(acc.get("delta_top1"), "+.2f"),
        _f(agreement * 100 if agreement is not None else None, ".1f"),
        "**yes**" if acc.get("collapse") else ("no" if acc else "-"),
        _f(bs1.get("p50_ms"), ".3f"),
        f"{ci[0]:.3f}-{ci[1]:.3f}" if ci else "-",
        _f(bs1.get("p99_ms"), ".3f"),
        _f(bs1.get("robust_cv"), ".2f") + (" ⚠" if bs1.get("unstable") else ""),
        _f(e2e.get("p50_ms"), ".3f"),
        _f(row.get("speedup_bs1"), ".2f", "x"),
        _f(tp, ".1f"),
        _f(row.get("speedup_throughput"), ".2f", "x"),
        _f(row["size_bytes"] / 1e6 if row.get("size_bytes") else None, ".3f"),
        _f(row.get("build_seconds"), ".1f"),
        _f(row.get("peak_mem_mb"), ".1f"),
        _f(row.get("gops"), ".2f"),
        row.get("compute_precision") or "-",
        _f(row["peak_share"] * 100 if row.get("peak_share") is not None else None, ".1f", "%"),
        _best(row),
    ] + [_f((((row.get("e2e") or {}).get(s) or {}).get("total") or {}).get("p50_ms"), ".3f") for s in sizes]
    return "| " + " | ".join(cells) + " |"


def _table(results: dict) -> list[str]:
    big = str(max(results["settings"]["batch_sizes"]))
    head = [
        "variant",
        "device",
        "status",
        "top-1 %",
        "top-1 95% CI (clusters)",
        "Δ top-1 pts",
        "agree %",
        "collapse",
        "bs1 p50 ms",
        "p50 95% CI",
        "bs1 p99 ms",
        "robust CV",
        "e2e bs1 p50 ms",
        "speedup bs1",
        f"img/s bs{big}",
        f"speedup bs{big}",
        "size MB",
        "build s",
        "peak MB",
        "GOPS",
        "computes in",
        "% of measured peak",
        "img/s/core @best bs",
    ]
    sizes = [s for s in results["settings"].get("input_sizes", []) if s != "native"]
    head += [f"e2e {s} p50 ms" for s in sizes]
    if any(r.get("run") for r in results["rows"]):  # merged runs: say which model each row is
        head = ["model"] + head
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    body = [_row_line(r, big, sizes) for r in results["rows"]]
    if head[0] == "model":
        body = [f"| {r.get('model') or '-'} " + line for r, line in zip(results["rows"], body, strict=True)]
    return lines + body


def _recommendations(results: dict) -> list[str]:
    lines = [
        "## Recommendation",
        "",
        f"Fastest variant within {results['settings']['max_drop']} top-1 point(s) of the FP32 reference, no collapse:",
        "",
    ]
    for target, rec in results["recommendations"].items():
        if rec["variant"] is None:
            lines.append(f"- **{target}**: none ({rec['reason']})")
        else:
            lines.append(
                f"- **{target}**: `{rec['variant']}`: {rec['metric']} {rec['value']:.4g}, "
                f"speedup {_f(rec.get('speedup'), '.2f', 'x')} vs `{results['settings']['baseline']}`, "
                f"Δ top-1 {rec['delta_top1']:+.2f} points"
            )
    across = results.get("across_models") or {}
    if across:
        lines += [
            "",
            f"Across models (one test split; the fastest variant within {results['settings']['max_drop']} point(s) of "
            "the most accurate variant of any model"
            + (
                ", and the most accurate one under the latency budget"
                if results["settings"].get("latency_budget_ms")
                else ""
            )
            + "):",
            "",
        ]
        for target, rec in across.items():
            if rec["variant"] is None:
                lines.append(f"- **{target}**: none ({rec['reason']})")
            else:
                lines.append(
                    f"- **{target}**: `{rec['model']}` / `{rec['variant']}`: top-1 {100 * rec['top1']:.2f} %, "
                    f"bs1 p50 {rec['p50_ms']:.3f} ms ({rec['reason']})"
                )
    best = results["settings"].get("best_by_precision") or {}
    big = max(results["settings"]["batch_sizes"])
    if best:
        lines += [
            "",
            f"Best throughput at batch {big} per precision: "
            + ", ".join(f"{p} `{b['variant']}` {b['images_per_s']:.1f} img/s" for p, b in sorted(best.items())),
        ]
    t = results.get("targets") or {}
    if t:
        yes = {True: "met", False: "NOT met", None: "not measured"}
        lines += [
            "",
            "Targets:",
            "",
            f"- recommended CPU variant >= 3x faster than eager FP32 at bs1 p50 (goal 5x): "
            f"{_f(t.get('cpu_latency_speedup'), '.2f', 'x')}: 3x {yes[t.get('meets_3x')]}, 5x {yes[t.get('meets_5x')]}",
            f"- best INT8 beats best FP32 at bs{big}: `{t.get('best_int8')}` / `{t.get('best_fp32')}` = "
            f"{_f(t.get('int8_over_fp32'), '.2f', 'x')}: {yes[t.get('int8_beats_fp32')]}",
        ]
        sizes = t.get("int8_size") or {}
        if sizes:
            lines.append(
                "- static INT8 >= 3.5x smaller on disk than the same format's FP32: "
                + ", ".join(f"`{n}` {s['ratio']:.2f}x vs `{s['fp32']}` ({yes[s['meets']]})" for n, s in sizes.items())
            )
    return lines


def _notes(results: dict, files: dict[str, str]) -> list[str]:
    fp, st = results["fingerprint"], results["settings"]
    cpu, load, malloc = fp["cpu"], fp.get("background_load") or {}, fp["malloc"]
    flags = ", ".join(k for k, v in cpu["flags"].items() if v) or "none"
    gpu = fp.get("gpu")
    share = load.get("background_share")
    lines = [
        "## Notes",
        "",
        f"- Machine: {cpu['model']} ({cpu['usable_cpus']} usable of {cpu['logical_cpus']} logical CPUs, {cpu['mhz']} MHz, "
        f"{cpu['mem_total_gb']} GiB); ISA: {flags}; GPU: {gpu['name'] + ' driver ' + str(gpu['driver']) if gpu else 'none'}.",
        f"- Threads: {st['threads']} for torch (`torch.set_num_threads`) and every runtime's thread option.",
        f"- glibc malloc: MALLOC_MMAP_THRESHOLD_={malloc['MALLOC_MMAP_THRESHOLD_']}, MALLOC_TRIM_THRESHOLD_="
        f"{malloc['MALLOC_TRIM_THRESHOLD_']} ({'tuned before Python started' if malloc['tuned'] else 'NOT tuned'}).",
        f"- Background load: other processes used {_f(load.get('background_cpus'), '.2f')} CPUs on average "
        f"({_f(share * 100 if share is not None else None, '.0f', '%')} of all CPUs) over {_f(load.get('seconds'), '.0f')} s; "
        f"this process got {_f(load.get('own_cpus'), '.2f')} CPUs on average.",
        f"- Method: {st.get('method', 'interleaved rounds')}; shuffled order per round, {st.get('settle_seconds', 0) * 1000:.0f} ms "
        f"idle between two workers' bursts, after warm-up; plans {st['plans']}. OpenVINO IRs are compiled for the static "
        "batch being timed; each row's `timing_settings` in results.json says what its worker applied. p50 CI is the "
        "order-statistic 95% interval; robust CV (1.4826 MAD/median) > 0.15 is flagged ⚠; the plain CV is in results.json.",
        "- End-to-end = JPEG bytes in memory -> decode -> fit to the load size, crop, normalize -> inference, batch 1, "
        "through `fishopt.data.decode.decode_and_fit` in the fastest pipeline that keeps the reference's answers "
        "(`turbo`: JPEG DCT scaling to the smallest k/8, k <= 6, that still covers 1.5x the target, then Pillow's "
        "uint8 resize, in two bands at once for inputs of 100k pixels or more; `fast`: the same with a float resize; "
        "`full`: the float resize only; `exact`: today's pixels). Model-only starts from a preprocessed tensor.",
        f"- Accuracy: {st['n_test']} of {st['n_test_total']} test images of split {str(fp.get('split_hash'))[:12]}; "
        f"reference = the checkpoint in PyTorch eager FP32 (top-1 {100 * results['reference']['top1']:.2f}%). "
        "Collapse = top-1 drop > 2 points or any class losing > 10 points of recall.",
        f"- GOPS = 2 x {st.get('macs_per_image')} MACs/image x images/s at the row's best batch size; judged against the "
        "measured GEMM peak of the precision the row computes in (see Roofline).",
        "- Peak MB = peak resident memory above what the process held before loading the variant (load + test-set run); "
        "with tuned malloc freed memory is reused, so later variants can read low.",
        "- Versions: "
        + ", ".join(f"{k} {v}" for k, v in fp["versions"].items() if v)
        + f"; git {fp['git'].get('commit')}"
        + (" (dirty)" if fp["git"].get("dirty") else "")
        + ".",
        "- Files: "
        + ", ".join(f"`{name}`" for name in files.values())
        + ", `artifacts/<variant>/` (each with manifest.json).",
    ]
    return lines


def to_markdown(results: dict, files: dict[str, str]) -> str:
    """Render ``REPORT.md``."""
    st = results["settings"]
    took = f", run took {st['elapsed_seconds']:.0f} s" if st.get("elapsed_seconds") is not None else ""
    lines = ["# fishopt benchmark", ""]
    runs = st.get("merged_runs")
    if runs:  # several checkpoints, one run each, side by side
        for run in runs:
            spent = f", {run['elapsed_seconds']:.0f} s" if run.get("elapsed_seconds") is not None else ""
            lines.append(f"- `{run['model']}`: checkpoint `{run['checkpoint']}`, {run['time_utc']}{spent}")
        lines.append("")
    else:
        lines += [f"Checkpoint `{st['checkpoint']}`, {results['fingerprint']['time_utc']}{took}.", ""]
    lines += _table(results) + [""] + _recommendations(results) + [""]
    if results["warnings"]:
        lines += ["## Warnings", ""] + [f"- {w}" for w in results["warnings"]] + [""]
    skipped = [r for r in results["rows"] if r["status"] == "skipped"]
    if skipped:
        lines += ["## Skipped", ""] + [f"- `{r['variant']}`: {r['reason']}" for r in skipped] + [""]
    lines += _where_time_goes(results, files) + _camera_targets(results) + _roofline(results)
    by_model = results.get("robustness_by_model")
    if by_model:
        for model, rob in by_model.items():
            lines += _robustness(rob, f"## Robustness (quick), {model}")
    else:
        lines += _robustness(results.get("robustness") or {})
    lines += _notes(results, files) + [""]
    if "pareto" in files:
        lines += [f"![accuracy vs latency]({files['pareto']})", ""]
    if "confusion" in files:
        lines += [f"![confusion matrix of the recommended variant]({files['confusion']})", ""]
    lines += _appendix(results)
    return "\n".join(lines)


def e2e_entries(results: dict, size: str, today_name: str, code: bool = True) -> list[tuple[str, dict]]:
    """``(label, e2e block)`` of today's pipeline and each variant at ``size``, in table order.

    In a merged report (``e2e_today_by_model``, one entry per run in run order) each run contributes its own
    today's pipeline and its own rows (``row["run"]``), labelled with the model's name, so two models'
    ``openvino-int8`` rows stay apart. ``code``: variant names in backticks (Markdown).
    """
    by_model = results.get("e2e_today_by_model") or {"": results.get("e2e_today") or {}}
    entries = []
    for run, (model, e2e_today) in enumerate(by_model.items()):
        prefix = f"{model} " if model else ""
        today = e2e_today.get(size)
        if today:
            entries.append((f"{prefix}{today_name}", today))
        entries += [
            (f"{prefix}`{r['variant']}`" if code else f"{prefix}{r['variant']}", r["e2e"][size])
            for r in results["rows"]
            if r["status"] == "ok" and (r.get("e2e") or {}).get(size) and (not model or r.get("run") == run)
        ]
    return entries


def where_time_goes(results: dict) -> list[str]:
    """The end-to-end split table: per input size and variant, decode / preprocess / model / total p50 in ms."""
    lines = [
        "| input | variant | pipeline | decode ms | preprocess ms | model ms | total p50 ms | model share |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for size in results["settings"].get("input_sizes", []):
        for name, block in e2e_entries(
            results, size, "today's pipeline: Pillow full decode + torch resize + eager FP32"
        ):
            st, total = block["stages_p50_ms"], block["total"]["p50_ms"]
            share = st.get("model", 0.0) / total if total else None
            lines.append(
                f"| {size} | {name} | {block['pipeline']} | {_f(st.get('decode'), '.3f')} | "
                f"{_f(st.get('preprocess'), '.3f')} | {_f(st.get('model'), '.3f')} | {total:.3f} | "
                f"{_f(share * 100 if share is not None else None, '.0f', '%')} |"
            )
    return lines


def _where_time_goes(results: dict, files: dict[str, str]) -> list[str]:
    if not any(r.get("e2e") for r in results["rows"]):
        return []
    lines = [
        "## Where the time goes (end to end, batch 1)",
        "",
        "Stage p50s of JPEG bytes -> label; stage medians need not add up exactly to the total's median.",
        "",
    ]
    by_model = results.get("camera_by_model") or {"": results.get("camera") or {}}
    for model, camera in by_model.items():
        for size, cam in camera.items():
            checks = cam.get("checks") or [cam["agreement"]]
            tried = "; ".join(
                f"{c.get('pipeline', '?')}: agreement {100 * c['agreement']:.2f}%, top-1 {c['delta_points']:+.2f} "
                "points" + (f", DCT scales {c['scales']}" if c.get("scales") else "")
                for c in checks
            )
            lines.append(
                f"- {f'{model}, ' if model else ''}{size}: {cam['n_files']} files, mean {cam['mean_kb']} kB; against "
                f"today's pixels on {checks[0]['n']} test images: {tried} -> {cam['pipeline']} pipeline"
            )
    lines += [""] + where_time_goes(results) + [""]
    if "e2e_split" in files:
        lines += [f"![end-to-end split]({files['e2e_split']})", ""]
    return lines


def _camera_targets(results: dict) -> list[str]:
    by_model = results.get("camera_targets_by_model") or {"": (results.get("targets") or {}).get("camera")}
    by_model = {model: cam for model, cam in by_model.items() if cam}
    if not by_model:
        return []
    lines = ["## End-to-end targets", ""]
    for model, cam in by_model.items():
        lines += _camera_target_lines(cam, model)
    return lines


def _camera_target_lines(cam: dict, model: str) -> list[str]:
    yes = {True: "met", False: "NOT met", None: "not measured"}
    m = cam["meets"]
    return [
        f"Recommended INT8 variant{f' of {model}' if model else ''}: `{cam['variant']}` (ratios of p50s in this run).",
        "",
        f"- 1920x1080: end to end >= 5x faster than today's pipeline: {_f(cam['e2e_over_today_1080'], '.2f', 'x')} "
        f"({yes[m['e2e_over_today_1080']]})",
        f"- 1920x1080: decode + preprocess <= 4x the model time: {_f(cam['input_over_model_1080'], '.2f', 'x')} "
        f"({yes[m['input_over_model_1080']]})",
        f"- 590x445: end to end <= 3x model-only: {_f(cam['e2e_over_model_590'], '.2f', 'x')} ({yes[m['e2e_over_model_590']]})",
        f"- batch-1 INT8 >= 5x eager FP32: {_f(cam['int8_bs1_speedup'], '.2f', 'x')} ({yes[m['int8_bs1_speedup']]})",
        "",
    ]


def _robustness(rob: dict, title: str = "## Robustness (quick)") -> list[str]:
    if not rob:
        return []
    if rob.get("skipped"):
        return [title, "", f"Not run: {rob['skipped']}.", ""]
    st = rob["settings"]
    lines = [
        title,
        "",
        f"{', '.join(st['corruptions'])} at severity {st['severity']} on {st['n']} test images, the same corrupted "
        "images for every variant. Relative mCE > 1: less robust than FP32 (the interval resamples clusters). "
        "The full grid: `fishopt robustness ARTIFACT_DIR`.",
        "",
        "| variant | clean top-1 % | corrupted top-1 % (mean) | relative mCE | 95% CI | less robust |",
        "|---|---|---|---|---|---|",
    ]
    fp32 = rob["fp32"]
    lines.append(
        f"| FP32 checkpoint | {100 * fp32['clean']:.2f} | {100 * fp32['mean_corrupted_top1']:.2f} | 1.000 | - | - |"
    )
    for name, summary in rob["variants"].items():
        ci = (summary.get("ci95") or {}).get("relative_mce") or [None, None]
        lines.append(
            f"| `{name}` | {100 * summary['clean']:.2f} | {100 * summary['mean_corrupted_top1']:.2f} | "
            f"{_f(summary.get('relative_mce'), '.3f')} | {_f(ci[0], '.3f')}-{_f(ci[1], '.3f')} | "
            f"{'yes' if summary.get('less_robust') else 'no'} |"
        )
    return lines + [""]


def roofline_table(results: dict) -> list[str]:
    """Measured peaks per precision, then each CPU row's GOPS against the peak of what it computes in."""
    peaks = results["fingerprint"]["peak"]
    lines = ["| precision | measured peak GOPS | library, n | nominal GOPS |", "|---|---|---|---|"]
    nominal = results["fingerprint"].get("peak_nominal") or {}
    for p, v in peaks.items():
        lines.append(
            f"| {p} | {_f(v.get('gops'), '.1f')} | {v.get('library') or '-'} {v.get('n') or ''} | "
            f"{_f((nominal.get(p) or {}).get('gops'), '.1f')} |"
        )
    lines += [
        "",
        "| variant | computes in | how we know | GOPS @best bs | peak GOPS | % of measured peak |",
        "|---|---|---|---|---|---|",
    ]
    for r in results["rows"]:
        if r["status"] == "ok" and r["device"] == "cpu" and r.get("gops"):
            lines.append(
                f"| `{r['variant']}` | {r.get('compute_precision') or r['precision']} | "
                f"{r.get('compute_precision_source') or 'format precision'} | {r['gops']:.2f} | "
                f"{_f(r.get('peak_gops'), '.1f')} | {_f((r.get('peak_share') or 0) * 100, '.1f', '%')} |"
            )
    return lines


def _roofline(results: dict) -> list[str]:
    if "gops" not in str(results["fingerprint"].get("peak")):
        return []
    return (
        [
            "## Roofline (measured)",
            "",
            "GEMM peaks measured at the run's thread count "
            f"({results['settings']['threads']}); a row is judged against max(peak of its compute precision, FP32 peak).",
            "",
        ]
        + roofline_table(results)
        + [""]
    )


def _appendix(results: dict) -> list[str]:
    profiles = results.get("profiles") or {}
    if not profiles:
        return []
    lines = ["## Appendix: per-operator profiles (batch 1)", ""]
    for variant, prof in profiles.items():
        lines += [
            f"### `{variant}` ({prof['profiler']}, {prof['calls']} calls, {prof['total_ms']:.4f} ms/call in operators)",
            "",
            "| operator | type | implementation | ms/call | share |",
            "|---|---|---|---|---|",
        ]
        lines += [
            f"| {o['op']} | {o['kind']} | {o['impl']} | {o['ms']:.4f} | {100 * o['share']:.1f}% |" for o in prof["ops"]
        ]
        lines.append("")
    return lines
