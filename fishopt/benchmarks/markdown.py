"""``REPORT.md``: the table, the recommended variant per target, and the notes needed to trust it."""

from __future__ import annotations


def _f(value: float | None, spec: str = ".2f", suffix: str = "") -> str:
    return "-" if value is None else f"{value:{spec}}{suffix}"


def _row_line(row: dict, big: str) -> str:
    acc = row.get("accuracy") or {}
    bs1 = (row.get("latency") or {}).get("bs1") or {}
    e2e = bs1.get("e2e") or {}
    tp = ((row.get("throughput") or {}).get(big) or {}).get("images_per_s")
    ci = bs1.get("ci95_ms")
    cells = [
        f"`{row['variant']}`", row["device"], row["status"],
        _f(acc.get("top1") * 100 if acc.get("top1") is not None else None, ".2f"), _f(acc.get("delta_top1"), "+.2f"),
        _f(acc.get("agreement") * 100 if acc.get("agreement") is not None else None, ".1f"),
        "**yes**" if acc.get("collapse") else ("no" if acc else "-"),
        _f(bs1.get("p50_ms"), ".3f"), f"{ci[0]:.3f}-{ci[1]:.3f}" if ci else "-", _f(bs1.get("p99_ms"), ".3f"),
        _f(bs1.get("robust_cv"), ".2f") + (" ⚠" if bs1.get("unstable") else ""), _f(e2e.get("p50_ms"), ".3f"),
        _f(row.get("speedup_bs1"), ".2f", "x"), _f(tp, ".1f"), _f(row.get("speedup_throughput"), ".2f", "x"),
        _f(row["size_bytes"] / 1e6 if row.get("size_bytes") else None, ".3f"), _f(row.get("build_seconds"), ".1f"),
        _f(row.get("peak_mem_mb"), ".1f"), _f(row.get("gops"), ".2f"),
        _f(row["peak_share"] * 100 if row.get("peak_share") is not None else None, ".1f", "%"),
    ]
    return "| " + " | ".join(cells) + " |"


def _table(results: dict) -> list[str]:
    big = str(max(results["settings"]["batch_sizes"]))
    head = ["variant", "device", "status", "top-1 %", "Δ top-1 pts", "agree %", "collapse", "bs1 p50 ms", "p50 95% CI",
            "bs1 p99 ms", "robust CV", "e2e bs1 p50 ms", "speedup bs1", f"img/s bs{big}", f"speedup bs{big}", "size MB",
            "build s", "peak MB", "GOPS", "% of peak"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    return lines + [_row_line(r, big) for r in results["rows"]]


def _recommendations(results: dict) -> list[str]:
    lines = ["## Recommendation", "",
             f"Fastest variant within {results['settings']['max_drop']} top-1 point(s) of the FP32 reference, no collapse:", ""]
    for target, rec in results["recommendations"].items():
        if rec["variant"] is None:
            lines.append(f"- **{target}**: none ({rec['reason']})")
        else:
            lines.append(f"- **{target}**: `{rec['variant']}`: {rec['metric']} {rec['value']:.4g}, "
                         f"speedup {_f(rec.get('speedup'), '.2f', 'x')} vs `{results['settings']['baseline']}`, "
                         f"Δ top-1 {rec['delta_top1']:+.2f} points")
    best = results["settings"].get("best_by_precision") or {}
    big = max(results["settings"]["batch_sizes"])
    if best:
        lines += ["", f"Best throughput at batch {big} per precision: "
                  + ", ".join(f"{p} `{b['variant']}` {b['images_per_s']:.1f} img/s" for p, b in sorted(best.items()))]
    t = results.get("targets") or {}
    if t:
        yes = {True: "met", False: "NOT met", None: "not measured"}
        lines += ["", "Targets:", "",
                  f"- recommended CPU variant >= 3x faster than eager FP32 at bs1 p50 (goal 5x): "
                  f"{_f(t.get('cpu_latency_speedup'), '.2f', 'x')}: 3x {yes[t.get('meets_3x')]}, 5x {yes[t.get('meets_5x')]}",
                  f"- best INT8 beats best FP32 at bs{big}: `{t.get('best_int8')}` / `{t.get('best_fp32')}` = "
                  f"{_f(t.get('int8_over_fp32'), '.2f', 'x')}: {yes[t.get('int8_beats_fp32')]}"]
        sizes = t.get("int8_size") or {}
        if sizes:
            lines.append("- static INT8 >= 3.5x smaller on disk than the same format's FP32: " + ", ".join(
                f"`{n}` {s['ratio']:.2f}x vs `{s['fp32']}` ({yes[s['meets']]})" for n, s in sizes.items()))
    return lines


def _notes(results: dict, files: dict[str, str]) -> list[str]:
    fp, st = results["fingerprint"], results["settings"]
    cpu, load, malloc = fp["cpu"], fp.get("background_load") or {}, fp["malloc"]
    flags = ", ".join(k for k, v in cpu["flags"].items() if v) or "none"
    gpu = fp.get("gpu")
    share = load.get("background_share")
    lines = [
        "## Notes", "",
        f"- Machine: {cpu['model']} ({cpu['usable_cpus']} usable of {cpu['logical_cpus']} logical CPUs, {cpu['mhz']} MHz, "
        f"{cpu['mem_total_gb']} GiB); ISA: {flags}; GPU: {gpu['name'] + ' driver ' + str(gpu['driver']) if gpu else 'none'}.",
        f"- Threads: {st['threads']} for torch (`torch.set_num_threads`) and every runtime's thread option.",
        f"- glibc malloc: MALLOC_MMAP_THRESHOLD_={malloc['MALLOC_MMAP_THRESHOLD_']}, MALLOC_TRIM_THRESHOLD_="
        f"{malloc['MALLOC_TRIM_THRESHOLD_']} ({'tuned before Python started' if malloc['tuned'] else 'NOT tuned'}).",
        f"- Background load: other processes used {_f(load.get('background_cpus'), '.2f')} CPUs on average "
        f"({_f(share * 100 if share is not None else None, '.0f', '%')} of all CPUs) over {_f(load.get('seconds'), '.0f')} s; "
        f"this process got {_f(load.get('own_cpus'), '.2f')} CPUs on average.",
        f"- Method: variants timed interleaved in rounds in one process (shuffled order per round) after warm-up; "
        f"plans {st['plans']}. p50 CI is the order-statistic 95% interval; robust CV (1.4826 MAD/median) > 0.15 "
        "is flagged ⚠; the plain CV is in results.json.",
        "- End-to-end = JPEG decode + resize/crop/normalize + inference, batch 1. Model-only starts from a preprocessed tensor.",
        f"- Accuracy: {st['n_test']} of {st['n_test_total']} test images of split {str(fp.get('split_hash'))[:12]}; "
        f"reference = the checkpoint in PyTorch eager FP32 (top-1 {100 * results['reference']['top1']:.2f}%). "
        "Collapse = top-1 drop > 2 points or any class losing > 10 points of recall.",
        f"- GOPS = 2 x {st.get('macs_per_image')} MACs/image x images/s at the largest batch; peak (FP32): "
        f"{fp['peak']['fp32']['assumption']} = {fp['peak']['fp32']['gops']} GOPS; INT8 rows use the INT8 peak "
        f"({fp['peak']['int8']['gops']} GOPS).",
        "- Peak MB = peak resident memory above what the process held before loading the variant (load + test-set run); "
        "with tuned malloc freed memory is reused, so later variants can read low.",
        "- Versions: " + ", ".join(f"{k} {v}" for k, v in fp["versions"].items() if v) + f"; git {fp['git'].get('commit')}"
        + (" (dirty)" if fp["git"].get("dirty") else "") + ".",
        "- Files: " + ", ".join(f"`{name}`" for name in files.values()) + ", `artifacts/<variant>/` (each with manifest.json).",
    ]
    return lines


def to_markdown(results: dict, files: dict[str, str]) -> str:
    """Render ``REPORT.md``."""
    st = results["settings"]
    took = f", run took {st['elapsed_seconds']:.0f} s" if st.get("elapsed_seconds") is not None else ""
    lines = ["# fishopt benchmark", "", f"Checkpoint `{st['checkpoint']}`, {results['fingerprint']['time_utc']}{took}.", ""]
    lines += _table(results) + [""] + _recommendations(results) + [""]
    if results["warnings"]:
        lines += ["## Warnings", ""] + [f"- {w}" for w in results["warnings"]] + [""]
    skipped = [r for r in results["rows"] if r["status"] == "skipped"]
    if skipped:
        lines += ["## Skipped", ""] + [f"- `{r['variant']}`: {r['reason']}" for r in skipped] + [""]
    lines += _notes(results, files) + [""]
    if "pareto" in files:
        lines += [f"![accuracy vs latency]({files['pareto']})", ""]
    if "confusion" in files:
        lines += [f"![confusion matrix of the recommended variant]({files['confusion']})", ""]
    return "\n".join(lines)
