from __future__ import annotations

import json
from pathlib import Path

import pytest

from fishopt.data import find_dataset
from fishopt.data.groups import read_groups, unit_of
from fishopt.data.split import SPLITS, leak_report, load_split, make_split, save_split
from fishopt.errors import SplitError


def _split(root: Path, seed: int = 0, by: str = "cluster"):
    ds = find_dataset(root)
    return ds, make_split(ds, unit_of(read_groups(root / "groups.csv", ds), by), group_by=by, seed=seed)


def test_no_unit_on_two_sides_and_every_class_everywhere(synthetic_root: Path) -> None:
    ds, split = _split(synthetic_root)
    sides: dict[str, set[str]] = {}
    for path, side in split.assignment.items():
        sides.setdefault(split.units[path], set()).add(side)
    assert all(len(s) == 1 for s in sides.values())
    counts = split.counts()
    assert all(counts[s][c] > 0 for s in SPLITS for c in ds.class_names)
    assert not split.leaky


def test_deterministic_and_seeded(synthetic_root: Path) -> None:
    _, a = _split(synthetic_root, seed=1)
    _, b = _split(synthetic_root, seed=1)
    assert a.assignment == b.assignment and a.hash == b.hash
    hashes = {_split(synthetic_root, seed=s)[1].hash for s in range(6)}
    assert len(hashes) > 1


def test_save_load_and_tamper(synthetic_root: Path, tmp_path: Path) -> None:
    _, split = _split(synthetic_root)
    h = save_split(split, tmp_path / "split.json")
    loaded = load_split(tmp_path / "split.json", expected_hash=h)
    assert loaded.assignment == split.assignment
    data = json.loads((tmp_path / "split.json").read_text())
    data["items"][0]["split"] = "test" if data["items"][0]["split"] != "test" else "train"
    (tmp_path / "split.json").write_text(json.dumps(data))
    with pytest.raises(SplitError, match="edited"):
        load_split(tmp_path / "split.json")
    with pytest.raises(SplitError, match="not found"):
        load_split(tmp_path / "nope.json")
    (tmp_path / "bad.json").write_text("{")
    with pytest.raises(SplitError, match="not valid JSON"):
        load_split(tmp_path / "bad.json")


def test_expected_hash_mismatch(synthetic_root: Path, tmp_path: Path) -> None:
    _, split = _split(synthetic_root)
    save_split(split, tmp_path / "split.json")
    with pytest.raises(SplitError, match="checkpoint expects"):
        load_split(tmp_path / "split.json", expected_hash="0" * 64)


def test_too_few_units(synthetic_root: Path) -> None:
    ds = find_dataset(synthetic_root)
    units = {s.path: "one" for s in ds.samples}
    with pytest.raises(SplitError, match="at least 3"):
        make_split(ds, units)


def test_bad_fractions(synthetic_root: Path) -> None:
    ds = find_dataset(synthetic_root)
    with pytest.raises(SplitError, match="summing to 1"):
        make_split(ds, None, fractions=(0.5, 0.5, 0.5))


def test_file_split_is_leaky(synthetic_root: Path) -> None:
    ds = find_dataset(synthetic_root)
    groups = unit_of(read_groups(synthetic_root / "groups.csv", ds), "group")
    split = make_split(ds, None, seed=0)
    assert split.leaky and split.group_by == "file"
    assert leak_report(split, groups)["test_with_copy_in_train"] > 0
    _, honest = _split(synthetic_root)
    assert leak_report(honest, groups)["test_with_copy_in_train"] == 0


def test_shared_data_cluster_split_has_no_leak(fish_root: Path) -> None:
    ds = find_dataset(fish_root)
    entries = read_groups(fish_root / "groups.csv", ds)
    split = make_split(ds, unit_of(entries, "cluster"), seed=0)
    report = leak_report(split, unit_of(entries, "group"))
    assert report["test_with_copy_in_train"] == 0
    leaky = leak_report(make_split(ds, None, seed=0), unit_of(entries, "group"))
    assert leaky["test_with_copy_in_train"] / leaky["test_images"] > 0.95
    counts = split.counts()
    assert all(counts[s][c] > 0 for s in SPLITS for c in ds.class_names)


def test_stratified_sample_balances_classes_and_is_seeded():
    from fishopt.data.split import stratified_sample

    labels = {f"a/{i}": "a" for i in range(50)} | {f"b/{i}": "b" for i in range(3)} | {f"c/{i}": "c" for i in range(50)}
    picked = stratified_sample(list(labels), labels, 30, seed=0)
    counts = {c: sum(labels[p] == c for p in picked) for c in "abc"}
    assert len(picked) == 30 and counts["b"] == 3 and abs(counts["a"] - counts["c"]) <= 1
    assert picked == stratified_sample(list(labels), labels, 30, seed=0)
    assert picked != stratified_sample(list(labels), labels, 30, seed=1)
