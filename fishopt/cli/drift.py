"""``fishopt drift``."""

from __future__ import annotations

import sys

import click

from fishopt.cli.options import data_option, setup_logging


@click.command()
@click.argument("artifact_dir", type=click.Path(path_type=str))
@click.argument("folder", required=False, type=click.Path(path_type=str))
@click.option(
    "--window",
    type=click.IntRange(min=20),
    default=500,
    show_default=True,
    help="Most images tested (a seeded sample when the folder holds more).",
)
@click.option(
    "--alpha",
    type=click.FloatRange(0.001, 0.5),
    default=0.05,
    show_default=True,
    help="Target false-alarm rate on clean windows.",
)
@click.option(
    "--json",
    "json_out",
    type=click.Path(dir_okay=False),
    default=None,
    help="Write the report as JSON (and the plot beside it, as .png, unless --plot is given).",
)
@click.option("--plot", type=click.Path(dir_okay=False), default=None, help="Write the plot of the statistics here.")
@click.option(
    "--make-profile",
    is_flag=True,
    help="First make the artifact's reference profile (its outputs on the test split of its checkpoint).",
)
@click.option(
    "--checkpoint",
    type=click.Path(dir_okay=False),
    default=None,
    help="With --make-profile: the checkpoint the artifact was built from (default: its manifest's).",
)
@data_option
@click.option("--threads", type=click.IntRange(min=1), default=None, help="Runtime threads.")
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of the sample and the calibration.")
def drift(
    artifact_dir: str,
    folder: str | None,
    window: int,
    alpha: float,
    json_out: str | None,
    plot: str | None,
    make_profile: bool,
    checkpoint: str | None,
    data: str | None,
    threads: int | None,
    seed: int,
) -> None:
    """Compare a folder of new images with an artifact's reference profile.

    Exit status (like diff): 0 no drift detected, 1 drift detected, 2 bad input (no images, no profile, ...).
    Images are found recursively in FOLDER; labels are not needed.

    \b
    Examples:
      fishopt drift artifacts/torch --make-profile              # once, after the export
      fishopt drift artifacts/torch /data/new-photos --json drift.json
    """
    setup_logging()
    if folder is None and not make_profile:
        raise click.UsageError("give the FOLDER of new images (or --make-profile to make the reference profile)")
    if checkpoint and not make_profile:
        raise click.UsageError("--checkpoint goes with --make-profile")
    from pathlib import Path

    from fishopt.io import atomic_write_json
    from fishopt.monitor.offline import check_folder
    from fishopt.monitor.plots import save_drift_plot
    from fishopt.monitor.profile import make_artifact_profile
    from fishopt.monitor.report import print_drift_report

    if make_profile:
        profile = make_artifact_profile(artifact_dir, checkpoint, data=data, threads=threads)
        mmd = "with embeddings (MMD enabled)" if profile.has_embeddings else "without embeddings (MMD skipped)"
        if not profile.has_image_stats:
            mmd += ", without input statistics (ks_image skipped: a camera-size raw-input graph)"
        click.echo(
            f"drift profile: {profile.n} test images, {len(profile.class_names)} classes, {mmd} "
            f"-> {Path(artifact_dir) / 'drift_profile.json'}"
        )
        if folder is None:
            return
    result = check_folder(artifact_dir, folder, window=window, alpha=alpha, seed=seed, threads=threads)
    sampled = f" (a sample of {len(result.used)} of {result.found})" if result.found > len(result.used) else ""
    print_drift_report(result.report, header=f"{result.artifact} vs {folder}{sampled}: ")
    if json_out:
        out = {**result.report.to_dict(), "found": result.found, "artifact": str(artifact_dir), "folder": str(folder)}
        atomic_write_json(json_out, out)
    plot = plot or (str(Path(json_out).with_suffix(".png")) if json_out else None)
    if plot:
        save_drift_plot(result.report, plot)
    sys.exit(1 if result.report.drift else 0)
