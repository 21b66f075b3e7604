"""``fishopt robustness``."""

from __future__ import annotations

import click

from fishopt.cli.options import data_option, setup_logging


def _split(value: str | None) -> list[str] | None:
    return [v for v in value.split(",") if v.strip()] if value else None


@click.command()
@click.argument("target", type=click.Path(exists=True, path_type=str), metavar="CHECKPOINT_OR_ARTIFACT")
@data_option
@click.option(
    "--reference",
    type=click.Path(dir_okay=False),
    default=None,
    help="FP32 checkpoint to compare with (default: the artifact's source checkpoint).",
)
@click.option(
    "--corruptions",
    default="all",
    show_default=True,
    help="Comma list of corruptions or groups: all (the 15 ImageNet-C), quick, extra, noise, blur, "
    "weather, digital, or names such as gaussian_noise.",
)
@click.option("--severities", default="1,2,3,4,5", show_default=True, help="Comma list of severities 1-5.")
@click.option(
    "--limit", type=click.IntRange(min=1), default=None, help="At most this many test images (stratified per class)."
)
@click.option(
    "--json",
    "json_out",
    type=click.Path(dir_okay=False),
    default=None,
    help="Write the result as JSON (and the heat map beside it, as .png, unless --plot is given).",
)
@click.option("--plot", type=click.Path(dir_okay=False), default=None, help="Write the heat map here.")
@click.option("--workers", type=click.IntRange(min=1), default=None, help="Corruption processes (default: CPU count).")
@click.option("--threads", type=click.IntRange(min=1), default=None, help="Runtime threads.")
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of the corruptions.")
def robustness(
    target: str,
    data: str | None,
    reference: str | None,
    corruptions: str,
    severities: str,
    limit: int | None,
    json_out: str | None,
    plot: str | None,
    workers: int | None,
    threads: int | None,
    seed: int,
) -> None:
    """Accuracy under ImageNet-C corruptions (noise, blur, weather, digital; severities 1-5).

    Tests a checkpoint or an artifact folder on the test split of its checkpoint (or, with --data, on every
    image of a folder in the Kaggle layout). An artifact is compared with the FP32 checkpoint it was built
    from on the same corrupted images: mCE and relative mCE (> 1: less robust than FP32).

    \b
    Examples:
      fishopt robustness runs/exp/model.pt --json robustness.json
      fishopt robustness artifacts/openvino-int8 --corruptions quick --severities 3
    """
    setup_logging()
    from pathlib import Path

    from fishopt.errors import ConfigError
    from fishopt.io import atomic_write_json
    from fishopt.monitor.plots import save_robustness_heatmap
    from fishopt.monitor.report import print_robustness
    from fishopt.monitor.robustness import run_robustness

    try:
        sev = [int(s) for s in _split(severities) or []]
    except ValueError as exc:
        raise ConfigError(f"--severities must be a comma list of integers 1-5, got {severities!r}") from exc
    result = run_robustness(
        target,
        reference=reference,
        data=data,
        corruptions=_split(corruptions),
        severities=sev,
        limit=limit,
        seed=seed,
        workers=workers,
        threads=threads,
        progress=True,
    )
    print_robustness(result)
    if json_out:
        atomic_write_json(json_out, result)
    plot = plot or (str(Path(json_out).with_suffix(".png")) if json_out else None)
    if plot:
        save_robustness_heatmap(result, plot)
