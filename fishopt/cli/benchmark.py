"""``fishopt benchmark``: accuracy against latency on every registered backend."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import click

from fishopt.cli.options import data_option, setup_logging

DEFAULT_CHECKPOINT = Path("runs/default/model.pt")
DEFAULT_OUT = Path("benchmarks/results")
_REEXEC_GUARD = "FISHOPT_MALLOC_REEXEC"


def _int_list(_ctx: click.Context, _param: click.Parameter, value: str | None) -> tuple[int, ...] | None:
    if value is None:
        return None
    try:
        sizes = tuple(int(v) for v in value.split(",") if v.strip())
    except ValueError:
        raise click.BadParameter(f"{value!r} is not a comma-separated list of integers, e.g. 1,32") from None
    if not sizes or any(s < 1 for s in sizes):
        raise click.BadParameter(f"batch sizes must be positive integers, e.g. 1,32; got {value!r}")
    return sizes


def _size_list(_ctx: click.Context, _param: click.Parameter, value: str | None) -> tuple[str, ...] | None:
    if value is None:
        return None
    from fishopt.benchmarks.camera import parse_size
    from fishopt.errors import ConfigError

    try:
        return tuple(parse_size(v) for v in value.split(",") if v.strip())
    except ConfigError as exc:
        raise click.BadParameter(str(exc)) from None


def malloc_argv(params: dict) -> list[str]:
    """The command line that re-runs this benchmark with the same options (for the malloc re-exec)."""
    argv = ["benchmark"]
    for path in params.get("checkpoints") or ():
        argv += ["--checkpoint", str(path)]
    for key in ("variants", "threads", "out", "data", "device", "latency_budget_ms"):
        if params.get(key) is not None and not (key == "device" and params[key] == "cpu"):
            argv += [f"--{key.replace('_', '-')}", str(params[key])]
    if params.get("batch_sizes"):
        argv += ["--batch-sizes", ",".join(str(b) for b in params["batch_sizes"])]
    if params.get("input_sizes"):
        argv += ["--input-sizes", ",".join(params["input_sizes"])]
    argv += ["--max-drop", str(params["max_drop"])]
    flags = ("overwrite", "quick", "no-profile", "no-robustness", "with-teacher")
    argv += [f"--{flag}" for flag in flags if params.get(flag.replace("-", "_"))]
    return argv


def ensure_malloc_tuning(params: dict) -> None:
    """Re-exec this process with glibc's malloc thresholds set unless they already are.

    glibc reads them only at start-up, so setting them from Python is too late. Without them
    PyTorch eager pays ~40k page faults per batch-32 call and runs ~2x slower.
    """
    from fishopt.benchmarks.fingerprint import MALLOC_ENV, malloc_settings

    if malloc_settings()["tuned"] or os.environ.get(_REEXEC_GUARD):
        return
    env = {**os.environ, **MALLOC_ENV, _REEXEC_GUARD: "1"}
    code = "import sys; from fishopt.cli import main; sys.exit(main(prog_name='fishopt'))"
    click.echo(
        "re-starting with MALLOC_MMAP_THRESHOLD_ and MALLOC_TRIM_THRESHOLD_ set (disable with --no-malloc-tuning)",
        err=True,
    )
    sys.stdout.flush()
    sys.stderr.flush()
    os.execvpe(sys.executable, [sys.executable, "-c", code, *malloc_argv(params)], env)


def _check_inputs(checkpoints: tuple[str, ...], out: str, overwrite: bool) -> list[Path]:
    from fishopt.errors import CheckpointError, ConfigError, OutputError

    paths = [Path(c) for c in checkpoints] or [DEFAULT_CHECKPOINT]
    for path in paths:
        if not path.is_file():
            hint = "train the default one with 'make train' (or 'fishopt train'), or pass --checkpoint runs/<name>/model.pt"
            raise CheckpointError(f"checkpoint {str(path)!r} not found; {hint}")
    if len({p.resolve() for p in paths}) < len(paths):
        raise ConfigError("the same checkpoint was given twice; pass each --checkpoint once")
    out_path = Path(out)
    if out_path.exists() and (not out_path.is_dir() or any(out_path.iterdir())) and not overwrite:
        raise OutputError(f"output folder {out!r} exists and is not empty; choose another --out or pass --overwrite")
    return paths


@click.command()
@click.option(
    "--checkpoint",
    "checkpoints",
    type=click.Path(dir_okay=False),
    multiple=True,
    help=f"model.pt to benchmark (default: {DEFAULT_CHECKPOINT}; make it with 'make train'). Repeat it to "
    "benchmark several models (trained on one split) into one report with recommendations across models.",
)
@click.option(
    "--with-teacher",
    is_flag=True,
    help="Also benchmark the teacher the (first) checkpoint was distilled from, as recorded in it.",
)
@click.option(
    "--latency-budget-ms",
    type=click.FloatRange(min=0, min_open=True),
    default=None,
    help="With several models: also recommend the most accurate variant whose batch-1 p50 is within this budget.",
)
@click.option(
    "--variants",
    default=None,
    help="Comma-separated registry names (default: all registered). "
    "torch-eager-fp32 (the baseline) is always included.",
)
@click.option(
    "--batch-sizes",
    default=None,
    callback=_int_list,
    help="Batch 1 = latency; larger = throughput (default: 1,8,32,128; with --quick 1,32).",
)
@click.option(
    "--input-sizes",
    default=None,
    callback=_size_list,
    help="End-to-end input sizes: 'native' (the data's files) and/or WxH camera sizes, test images "
    "re-encoded once and cached (default: native,1920x1080,590x445). E.g. native,1920x1080,590x445.",
)
@click.option("--no-profile", is_flag=True, help="Skip the per-operator profiles of the two fastest INT8 variants.")
@click.option(
    "--no-robustness",
    is_flag=True,
    help="Skip the quick robustness check (5 ImageNet-C corruptions at severity 3, 300 test images) of the "
    "recommended variants.",
)
@click.option(
    "--threads",
    type=click.IntRange(min=1),
    default=None,
    help="Threads for torch and every runtime (default: usable CPUs).",
)
@click.option("--out", default=str(DEFAULT_OUT), show_default=True, help="Output folder.")
@click.option("--overwrite", is_flag=True, help="Write into a non-empty --out.")
@click.option(
    "--quick",
    is_flag=True,
    help="180 test images (stratified per class) instead of the whole test split, "
    "and 8 timing rounds instead of 20 (end to end 4 instead of 10, large batches 3 instead of 8): a first "
    "look, not for publication.",
)
@click.option(
    "--max-drop",
    type=click.FloatRange(min=0),
    default=1.0,
    show_default=True,
    help="Accuracy budget (top-1 points) for the recommendation.",
)
@click.option(
    "--no-malloc-tuning", is_flag=True, help="Do not re-start with glibc malloc thresholds set (the report says so)."
)
@click.option(
    "--device",
    type=click.Choice(["cpu", "cuda"]),
    default="cpu",
    show_default=True,
    help="Without --variants: benchmark the CPU variants, or the CUDA ones (the CPU FP32 baseline is always measured).",
)
@click.option(
    "--list", "list_only", is_flag=True, help="List the registered variants and whether they can run here, then exit."
)
@data_option
def benchmark(
    checkpoints: tuple[str, ...],
    with_teacher: bool,
    latency_budget_ms: float | None,
    variants: str | None,
    batch_sizes: tuple[int, ...] | None,
    input_sizes: tuple[str, ...] | None,
    no_profile: bool,
    no_robustness: bool,
    threads: int | None,
    out: str,
    overwrite: bool,
    quick: bool,
    max_drop: float,
    no_malloc_tuning: bool,
    device: str,
    list_only: bool,
    data: str | None,
) -> None:
    """Build every registered variant, then measure accuracy, latency, throughput and size.

    Writes results.json, results.csv, REPORT.md, pareto.png and the recommended variant's confusion
    matrix to --out, and prints the table.

    \b
    Examples:
      fishopt benchmark --quick
      fishopt benchmark --checkpoint runs/exp/model.pt --variants onnx-fp32,openvino-int8 --threads 2
      fishopt benchmark --input-sizes native,1920x1080,590x445
      fishopt benchmark --checkpoint runs/default/model.pt --with-teacher --latency-budget-ms 2
    """
    setup_logging()
    if list_only:
        _print_variants()
        return
    names = [v.strip() for v in variants.split(",") if v.strip()] if variants else None
    from fishopt.benchmarks.variants import select_variants

    select_variants(names, device)  # unknown names fail here, before any re-exec or work
    paths = _check_inputs(checkpoints, out, overwrite)
    if not no_malloc_tuning:
        ensure_malloc_tuning(
            {
                "checkpoints": [str(p) for p in paths],
                "with_teacher": with_teacher,
                "latency_budget_ms": latency_budget_ms,
                "variants": variants,
                "threads": threads,
                "out": out,
                "data": data,
                "device": device,
                "batch_sizes": batch_sizes,
                "input_sizes": input_sizes,
                "max_drop": max_drop,
                "overwrite": overwrite,
                "quick": quick,
                "no_profile": no_profile,
                "no_robustness": no_robustness,
            }
        )
    from fishopt.benchmarks.harness import run_benchmarks, teacher_of
    from fishopt.checkpoint import load_checkpoint

    loaded = [load_checkpoint(p) for p in paths]  # once per command; the harness takes the loaded objects
    if with_teacher:
        teacher = teacher_of(loaded[0])
        if teacher.resolve() not in {p.resolve() for p in paths}:
            loaded.append(load_checkpoint(teacher))
    run_benchmarks(
        loaded,
        variants=names,
        latency_budget_ms=latency_budget_ms,
        batch_sizes=batch_sizes,
        threads=threads,
        out_dir=out,
        quick=quick,
        max_drop=max_drop,
        data=data,
        overwrite=overwrite,
        device=device,
        input_sizes=input_sizes,
        profile=not no_profile,
        robustness=not no_robustness,
    )
    click.echo(str(Path(out) / "REPORT.md"))


def _print_variants() -> None:
    from fishopt.artifacts.registry import list_variants

    for variant in list_variants():
        reason = variant.unavailable_reason()
        settings = ", ".join(f"{k}={v}" for k, v in variant.settings.items())
        where = f"{variant.format}{' (' + settings + ')' if settings else ''}, {variant.device}"
        click.echo(f"{variant.name:36s} {where:60s} {'ok' if reason is None else 'skip: ' + reason}")
