"""``fishopt compile``: torch.compile (Inductor) ahead of time, as an AOTInductor package."""

from __future__ import annotations

import click

from fishopt.cli.export import common_options, report
from fishopt.cli.options import checkpoint_argument, setup_logging
from fishopt.errors import ConfigError


@click.command(name="compile")
@checkpoint_argument
@click.option(
    "--mode",
    type=click.Choice(["default", "max-autotune"]),
    default="default",
    show_default=True,
    help="Inductor mode; max-autotune benchmarks kernel choices (much slower to build).",
)
@common_options
def compile_(
    checkpoint: str,
    mode: str,
    out: str,
    overwrite: bool,
    no_verify: bool,
    parity_images: int,
    dynamic_batch: bool,
    batch_size: int | None,
    threads: int | None,
    data: str | None,
) -> None:
    """Compile a checkpoint with torch.compile (Inductor, freezing) into model.pt2 (AOTInductor).

    The package loads in a fresh process without recompiling (torch._inductor.aoti_load_package) and
    passes the FP32 parity check before it is written. manifest.json records the compile time and the
    load time.

    \b
    Examples:
      fishopt compile runs/exp/model.pt --out artifacts/compiled
      fishopt compile runs/exp/model.pt --mode max-autotune --static-batch --batch-size 1 --out artifacts/c1
    """
    setup_logging()
    from fishopt.artifacts.build import build
    from fishopt.checkpoint import load_checkpoint

    if batch_size is not None and dynamic_batch:
        raise ConfigError("--batch-size sets the static batch; add --static-batch (or drop --batch-size)")
    options = {"mode": mode, "static_batch": not dynamic_batch, "batch_size": batch_size}
    result = build(
        "torch-compile-fp32",
        load_checkpoint(checkpoint),
        out,
        options=options,
        verify=not no_verify,
        overwrite=overwrite,
        parity_images=parity_images,
        threads=threads,
        data_root=data,
    )
    report(result)
    click.echo(f"compile_seconds: {result.manifest['metadata'].get('compile_seconds')}")
