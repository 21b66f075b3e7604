from __future__ import annotations

from pathlib import Path

import pytest

from fishopt.data import find_dataset
from fishopt.data.groups import read_groups, unit_of, write_groups
from fishopt.errors import ConfigError, DataError


def test_read_and_roundtrip(synthetic_root: Path, tmp_path: Path) -> None:
    ds = find_dataset(synthetic_root)
    entries = read_groups(synthetic_root / "groups.csv", ds)
    assert len(entries) == len(ds.samples)
    write_groups(tmp_path / "g.csv", ds, entries)
    assert read_groups(tmp_path / "g.csv", ds) == entries
    assert set(unit_of(entries, "group").values()) == {e.group for e in entries.values()}
    with pytest.raises(ConfigError, match="valid choices: cluster, group"):
        unit_of(entries, "file")


def _edit(root: Path, old: str, new: str) -> None:
    p = root / "groups.csv"
    p.write_text(p.read_text().replace(old, new, 1))


def test_missing_file_named(synthetic_root: Path) -> None:
    _edit(synthetic_root, "00001.png", "99999.png")
    with pytest.raises(DataError, match="not an image under the data root"):
        read_groups(synthetic_root / "groups.csv", find_dataset(synthetic_root))


def test_unknown_class(synthetic_root: Path) -> None:
    _edit(synthetic_root, ",Alpha Fish,", ",Omega Fish,")
    with pytest.raises(DataError, match="unknown class 'Omega Fish'"):
        read_groups(synthetic_root / "groups.csv", find_dataset(synthetic_root))


def test_missing_column_and_row(synthetic_root: Path) -> None:
    ds = find_dataset(synthetic_root)
    lines = (synthetic_root / "groups.csv").read_text().splitlines()
    (synthetic_root / "groups.csv").write_text("\n".join(lines[:-1]) + "\n")
    with pytest.raises(DataError, match="have no row"):
        read_groups(synthetic_root / "groups.csv", ds)
    (synthetic_root / "groups.csv").write_text("path,class,group\n")
    with pytest.raises(DataError, match="missing column"):
        read_groups(synthetic_root / "groups.csv", ds)
