"""``fishopt data``: download the dataset, find its source photos (``groups``) and audit splits (``audit``)."""

from __future__ import annotations

import os
from pathlib import Path

import click

from fishopt.cli.options import setup_logging


@click.group()
def data() -> None:
    """Dataset tools: download it, find the source photos (groups.csv) and audit splits for leaks."""


@data.command()
@click.argument("dest", type=click.Path(path_type=Path))
@click.option(
    "--url", default=None, help="A zip in the Kaggle layout (default: the Kaggle API download; needs credentials)."
)
@click.option("--overwrite", is_flag=True, help="Replace an existing DEST.")
@click.option("--timeout", type=click.FloatRange(min=1), default=60.0, show_default=True, help="Socket timeout (s).")
def download(dest: Path, url: str | None, overwrite: bool, timeout: float) -> None:
    """Download the full fish dataset from Kaggle and unpack it into DEST.

    Needs KAGGLE_USERNAME and KAGGLE_KEY (or ~/.kaggle/kaggle.json). Nothing is left behind when the
    download fails. Then train with --data DEST (run 'fishopt data groups DEST' first, or let training
    find the photos itself).

    \b
    Examples:
      fishopt data download ~/data/fish
      fishopt data download ~/data/fish --url https://example.org/fish.zip
    """
    from fishopt.data.download import KAGGLE_URL, download_dataset

    click.echo(str(download_dataset(dest, url or KAGGLE_URL, timeout=timeout, overwrite=overwrite)))


@data.command()
@click.argument("data_root", type=click.Path(file_okay=False, path_type=Path))
@click.option(
    "--out",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Where to write the groups file (default: DATA_ROOT/groups.csv).",
)
@click.option("--overwrite", is_flag=True, help="Replace an existing groups file.")
@click.option("--workers", type=click.IntRange(min=1), default=None, help="Processes (default: CPU count).")
@click.option(
    "--reference",
    type=click.Path(dir_okay=False, exists=True, path_type=Path),
    default=None,
    help="A reference groups.csv to compare with (prints precision, recall, cluster leaks).",
)
@click.option("--quiet", is_flag=True, help="No progress bars.")
def groups(
    data_root: Path, out: Path | None, overwrite: bool, workers: int | None, reference: Path | None, quiet: bool
) -> None:
    """Find which images are copies of one photo, by image content, and write groups.csv.

    \b
    Examples:
      fishopt data groups ~/data/fish                       # -> ~/data/fish/groups.csv
      fishopt data groups ../shared/data/fish --out /tmp/groups.csv --reference ../shared/data/fish/groups.csv
    """
    setup_logging()
    from fishopt.data import find_dataset
    from fishopt.data.groups import GROUPS_FILE, read_groups, write_groups
    from fishopt.data.photos import find_groups

    dataset = find_dataset(data_root)
    out = _check_out(out or dataset.root / GROUPS_FILE, overwrite)
    entries = find_groups(dataset, workers=workers, progress=not quiet)
    write_groups(out, dataset, entries)
    n_groups = len({e.group for e in entries.values()})
    n_clusters = len({e.cluster for e in entries.values()})
    click.echo(f"{len(entries)} images, {n_groups} photos (groups), {n_clusters} clusters -> {out}")
    if reference is not None:
        from fishopt.data.agreement import agreement

        figures = agreement(entries, read_groups(reference, dataset))
        click.echo(
            f"vs {reference}: precision {figures['precision']:.4f}, recall {figures['recall']:.4f}, "
            f"cluster leaks {figures['cluster_leaks']}, groups {figures['pred_groups']}/{figures['ref_groups']}, "
            f"clusters {figures['pred_clusters']}/{figures['ref_clusters']} (found/reference)"
        )


def _check_out(out: Path, overwrite: bool) -> Path:
    """Refuse to overwrite an existing file without --overwrite, or to write into a read-only folder."""
    from fishopt.errors import OutputError

    if out.exists() and not overwrite:
        raise OutputError(f"{str(out)!r} exists; pass --overwrite to replace it or --out FILE to write elsewhere")
    folder = out.parent
    if folder.exists() and not os.access(folder, os.W_OK):
        raise OutputError(f"cannot write to {str(folder)!r} (read-only); pass --out FILE in a writable folder")
    return out


@data.command()
@click.argument("data_root", type=click.Path(file_okay=False, path_type=Path))
@click.option(
    "--groups",
    "groups_file",
    type=click.Path(dir_okay=False, exists=True, path_type=Path),
    default=None,
    help="Groups file (default: DATA_ROOT/groups.csv).",
)
@click.option(
    "--split",
    "split_file",
    type=click.Path(dir_okay=False, exists=True, path_type=Path),
    default=None,
    help="A split file to check for leaks (default: compare file, group and cluster splits).",
)
def audit(data_root: Path, groups_file: Path | None, split_file: Path | None) -> None:
    """Count photos and copies per photo, and how many test images have a copy in train.

    \b
    Examples:
      fishopt data audit ../shared/data/fish
      fishopt data audit ../shared/data/fish --split runs/baseline/split.json
    """
    from fishopt.data import find_dataset
    from fishopt.data.audit import audit as run_audit
    from fishopt.data.audit import compare_splits, split_leaks
    from fishopt.data.groups import GROUPS_FILE, read_groups
    from fishopt.errors import DataError

    dataset = find_dataset(data_root)
    groups_file = groups_file or dataset.root / GROUPS_FILE
    if not groups_file.is_file():
        raise DataError(
            f"no groups file at {str(groups_file)!r}; run 'fishopt data groups {data_root}' or pass --groups FILE"
        )
    entries = read_groups(groups_file, dataset)
    report = run_audit(dataset, entries)
    if split_file is not None:
        from fishopt.data.split import load_split

        leaks = {str(split_file): split_leaks(load_split(split_file), entries)}
    else:
        leaks = {f"random split by {k}": v for k, v in compare_splits(dataset, entries).items()}
    _print_report(report, leaks)


def _print_report(report: dict, leaks: dict[str, dict]) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console()
    spread = report["copies_per_photo"]
    console.print(
        f"{report['images']} images, {report['classes']} classes, {report['photos']} photos, "
        f"{report['clusters']} clusters; copies per photo min {spread['min']} / median {spread['median']} / "
        f"max {spread['max']}"
    )
    table = Table("class", "images", "photos", "clusters")
    for label, row in report["per_class"].items():
        table.add_row(label, str(row["images"]), str(row["photos"]), str(row["clusters"]))
    console.print(table)
    leak_table = Table("split", "test images", "with a copy in train", "share")
    for name, row in leaks.items():
        if "error" in row:
            leak_table.add_row(name, "-", "-", f"[yellow]cannot split: {row['error']}[/yellow]")
            continue
        style = "red" if row["leak_fraction"] > 0 else "green"
        leak_table.add_row(
            name,
            str(row["test_images"]),
            str(row["test_with_copy_in_train"]),
            f"[{style}]{row['leak_fraction']:.1%}[/{style}]",
        )
    console.print(leak_table)
