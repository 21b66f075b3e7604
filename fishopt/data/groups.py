"""Read ``groups.csv``: the source photo (``group``) and the looser ``cluster`` of every image."""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

from fishopt.data.discovery import FishDataset
from fishopt.errors import DataError, unknown_choice
from fishopt.io import atomic_write_text

GROUPS_FILE = "groups.csv"
COLUMNS = ("path", "class", "group", "cluster")
GROUP_BY_CHOICES = ("cluster", "group")


@dataclass(frozen=True)
class GroupEntry:
    """The group and cluster of one image."""

    group: str
    cluster: str


def read_groups(path: str | Path, dataset: FishDataset) -> dict[str, GroupEntry]:
    """Read a groups file and check it against the dataset.

    Args:
        path: The CSV file (columns ``path,class,group,cluster``; paths relative to the data root).
        dataset: The dataset it describes.

    Returns:
        Mapping image path -> :class:`GroupEntry`, one for every sample of the dataset.

    Raises:
        DataError: If columns are missing, a row names a missing file or an unknown class, the class
            disagrees with the folder, or an image of the dataset has no row.
    """
    path = Path(path)
    known = {s.path: s.label for s in dataset.samples}
    entries: dict[str, GroupEntry] = {}
    with path.open(newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        missing_cols = [c for c in COLUMNS if c not in (reader.fieldnames or [])]
        if missing_cols:
            raise DataError(f"{path}: missing column(s) {', '.join(missing_cols)}; expected {','.join(COLUMNS)}")
        for line, row in enumerate(reader, start=2):
            _check_row(path, line, row, known, dataset.class_names)
            entries[row["path"]] = GroupEntry(group=row["group"], cluster=row["cluster"])
    absent = sorted(set(known) - set(entries))
    if absent:
        raise DataError(
            f"{path}: {len(absent)} image(s) have no row, e.g. {absent[0]!r}; regenerate it with "
            "'fishopt data groups' or remove it"
        )
    return entries


def _check_row(path: Path, line: int, row: dict[str, str], known: dict[str, str], classes: tuple[str, ...]) -> None:
    if row["class"] not in classes:
        raise DataError(f"{path}:{line}: unknown class {row['class']!r}; classes found on disk: {', '.join(classes)}")
    if row["path"] not in known:
        raise DataError(
            f"{path}:{line}: names {row['path']!r}, which is not an image under the data root; "
            "fix the path or regenerate the file with 'fishopt data groups'"
        )
    if known[row["path"]] != row["class"]:
        raise DataError(
            f"{path}:{line}: {row['path']!r} is in folder {known[row['path']]!r} but listed as {row['class']!r}"
        )
    if not row["group"] or not row["cluster"]:
        raise DataError(f"{path}:{line}: empty group or cluster for {row['path']!r}")


def write_groups(path: str | Path, dataset: FishDataset, entries: dict[str, GroupEntry]) -> None:
    """Write a groups file atomically, in the format :func:`read_groups` reads.

    Args:
        path: Destination CSV.
        dataset: The dataset the entries describe.
        entries: Mapping image path -> group entry, one per sample.
    """
    import io

    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(COLUMNS)
    writer.writerows([s.path, s.label, entries[s.path].group, entries[s.path].cluster] for s in dataset.samples)
    atomic_write_text(path, out.getvalue())


def unit_of(entries: dict[str, GroupEntry], by: str) -> dict[str, str]:
    """Return image path -> split unit (its cluster or group).

    Raises:
        ConfigError: If ``by`` is not ``cluster`` or ``group``.
    """

    if by not in GROUP_BY_CHOICES:
        raise unknown_choice("group-by", by, GROUP_BY_CHOICES)
    return {p: getattr(e, by) for p, e in entries.items()}
