"""Audit: photos, copies per photo, and the copies a split leaks from train into test."""

from __future__ import annotations

from pathlib import Path

import pytest
from helpers import make_synthetic_dataset

from fishopt.data import find_dataset
from fishopt.data.audit import audit, compare_splits, file_split_leaks
from fishopt.data.groups import read_groups, unit_of
from fishopt.data.split import make_split
from fishopt.errors import DataError


@pytest.fixture
def many_copies(tmp_path: Path) -> Path:
    """3 classes x 6 photos x 8 copies, with groups.csv."""
    return make_synthetic_dataset(tmp_path / "fish", per_group=8, groups=6)


def test_audit_counts(many_copies: Path) -> None:
    ds = find_dataset(many_copies)
    entries = read_groups(many_copies / "groups.csv", ds)
    report = audit(ds, entries)
    assert report["images"] == 3 * 6 * 8 and report["classes"] == 3
    assert report["photos"] == 18 and report["clusters"] == 18
    assert report["copies_per_photo"] == {"min": 8, "median": 8, "max": 8}
    assert all(row == {"images": 48, "photos": 6, "clusters": 6} for row in report["per_class"].values())
    assert "split" not in report


def test_group_split_has_no_leak_and_file_split_leaks(many_copies: Path) -> None:
    ds = find_dataset(many_copies)
    entries = read_groups(many_copies / "groups.csv", ds)
    split = make_split(ds, unit_of(entries, "group"), group_by="group", seed=0)
    report = audit(ds, entries, split)
    assert report["split"]["test_with_copy_in_train"] == 0 and report["split"]["leak_fraction"] == 0.0
    leaky = file_split_leaks(ds, entries, seed=0)
    assert leaky["leaky"] and leaky["leak_fraction"] > 0.9
    both = compare_splits(ds, entries)
    assert both["cluster"]["test_with_copy_in_train"] == 0 and both["file"]["leak_fraction"] > 0.9


def test_missing_entries_are_an_error(many_copies: Path) -> None:
    ds = find_dataset(many_copies)
    entries = read_groups(many_copies / "groups.csv", ds)
    entries.pop(ds.samples[0].path)
    with pytest.raises(DataError, match="no group"):
        audit(ds, entries)


@pytest.mark.slow
def test_random_file_split_leaks_on_shared_data(fish_root: Path) -> None:
    ds = find_dataset(fish_root)
    entries = read_groups(fish_root / "groups.csv", ds)
    leaks = compare_splits(ds, entries)
    assert leaks["file"]["leak_fraction"] > 0.95
    assert leaks["cluster"]["test_with_copy_in_train"] == 0


def test_compare_splits_reports_a_unit_that_cannot_split(tmp_path: Path) -> None:
    root = make_synthetic_dataset(tmp_path / "fish", per_group=4, groups=4)
    ds = find_dataset(root)
    entries = read_groups(root / "groups.csv", ds)
    one_cluster = {p: type(e)(e.group, p.split("/")[1] + "/c") for p, e in entries.items()}
    out = compare_splits(ds, one_cluster)
    assert "error" in out["cluster"] and "at least 3" in out["cluster"]["error"]
    assert out["group"]["test_with_copy_in_train"] == 0
