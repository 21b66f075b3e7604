"""Finding source photos from image content: copies (rotated, flipped, rescaled, re-encoded) group together."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest

from fishopt.data.agreement import agreement
from fishopt.data.discovery import FishDataset, find_dataset
from fishopt.data.groups import GroupEntry
from fishopt.errors import DataError

cv2 = pytest.importorskip("cv2")


def make_photo(seed: int, size: tuple[int, int] = (150, 200)) -> np.ndarray:
    """A textured synthetic 'photo': random blobs, boxes and lines on smooth noise, so SIFT finds corners."""
    rng = np.random.default_rng(seed)
    h, w = size
    base = cv2.resize(rng.integers(0, 255, (h // 8, w // 8, 3), dtype=np.uint8), (w, h), interpolation=cv2.INTER_CUBIC)
    for _ in range(40):
        color = tuple(int(c) for c in rng.integers(0, 255, 3))
        kind = rng.integers(0, 3)
        x, y = int(rng.integers(0, w)), int(rng.integers(0, h))
        if kind == 0:
            cv2.circle(base, (x, y), int(rng.integers(3, 15)), color, -1)
        elif kind == 1:
            cv2.rectangle(base, (x, y), (x + int(rng.integers(4, 25)), y + int(rng.integers(4, 25))), color, -1)
        else:
            cv2.line(base, (x, y), (int(rng.integers(0, w)), int(rng.integers(0, h))), color, 2)
    return base


def make_copy(photo: np.ndarray, angle: float, flip: bool, out_size: tuple[int, int] = (224, 168)) -> np.ndarray:
    """Rotate by ``angle`` with the frame enlarged to fit, optionally mirror, then resize to a fixed size."""
    h, w = photo.shape[:2]
    matrix = cv2.getRotationMatrix2D((w / 2, h / 2), angle, 1.0)
    cos, sin = abs(matrix[0, 0]), abs(matrix[0, 1])
    nw, nh = int(h * sin + w * cos), int(h * cos + w * sin)
    matrix[0, 2] += nw / 2 - w / 2
    matrix[1, 2] += nh / 2 - h / 2
    rotated = cv2.warpAffine(photo, matrix, (nw, nh))
    if flip:
        rotated = rotated[:, ::-1]
    return cv2.resize(np.ascontiguousarray(rotated), out_size, interpolation=cv2.INTER_AREA)


def write_jpeg(path: Path, image: np.ndarray, quality: int = 80) -> str:
    path.parent.mkdir(parents=True, exist_ok=True)
    ok, buf = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, quality])
    assert ok
    path.write_bytes(buf.tobytes())
    return path.name


COPIES = [(0.0, False), (37.0, False), (123.0, True), (250.0, False), (301.0, True)]


def make_photo_dataset(root: Path, photos: dict[str, list[int]], shuffle_seed: int = 0) -> dict[str, str]:
    """Write copies of synthetic photos under ``root/<class>/`` with shuffled names; return path -> photo id."""
    rng = np.random.default_rng(shuffle_seed)
    truth: dict[str, str] = {}
    for label, seeds in photos.items():
        items = [(seed, angle, flip) for seed in seeds for angle, flip in COPIES]
        names = rng.permutation(len(items))
        for (seed, angle, flip), name in zip(items, names, strict=True):
            quality = int(rng.integers(70, 95))
            write_jpeg(root / label / f"{name:05d}.jpg", make_copy(make_photo(seed), angle, flip), quality)
            truth[f"{label}/{name:05d}.jpg"] = f"{label}/{seed}"
    return truth


@pytest.fixture(scope="module")
def photo_root(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, str]]:
    root = tmp_path_factory.mktemp("photos")
    return root, make_photo_dataset(root, {"Alpha": [1, 2, 3], "Beta": [4, 5]})


def test_copies_land_in_one_group_and_unrelated_photos_do_not(photo_root, tmp_path: Path) -> None:
    from fishopt.data.photos import find_groups

    root, truth = photo_root
    ds = find_dataset(root)
    found = find_groups(ds, workers=1, cache=tmp_path / "cache", progress=False)
    ref = {p: GroupEntry(g, g) for p, g in truth.items()}
    figures = agreement(found, ref)
    assert figures["precision"] == 1.0 and figures["recall"] == 1.0
    assert figures["cluster_leaks"] == 0
    assert all(e.group.startswith(p.split("/")[0] + "/g") for p, e in found.items())
    assert all(e.cluster.startswith(p.split("/")[0] + "/c") for p, e in found.items())


def test_features_are_cached_by_content(photo_root, tmp_path: Path) -> None:
    from fishopt.data.features import FEATURE_VERSION, extract_all

    root, truth = photo_root
    paths = [root / p for p in sorted(truth)[:3]]
    first = extract_all(paths, cache=tmp_path, workers=1, progress=False)
    files = list((tmp_path / "features" / FEATURE_VERSION).rglob("*.npz"))
    assert len(files) == 3
    again = extract_all(paths, cache=tmp_path, workers=1, progress=False)
    assert all(np.array_equal(a.desc, b.desc) for a, b in zip(first, again, strict=True))


def test_mirror_permutation_matches_flipped_image(tmp_path: Path) -> None:
    from fishopt.data.features import extract

    photo = make_photo(7)
    cv2.imwrite(str(tmp_path / "a.png"), photo)
    cv2.imwrite(str(tmp_path / "b.png"), np.ascontiguousarray(photo[:, ::-1]))
    a, b = extract(tmp_path / "a.png"), extract(tmp_path / "b.png")
    width = photo.shape[1]
    dist = np.abs(a.xy[:, None, 0] - (width - 1 - b.xy[None, :, 0])) + np.abs(a.xy[:, None, 1] - b.xy[None, :, 1])
    ia, ib = np.nonzero(dist < 0.5)
    assert len(ia) >= 10
    mirrored = np.linalg.norm(a.mirrored_desc()[ia].astype(float) - b.desc[ib], axis=1).mean()
    plain = np.linalg.norm(a.desc[ia].astype(float) - b.desc[ib], axis=1).mean()
    assert mirrored < 0.5 * plain


def test_unreadable_image_names_the_file(tmp_path: Path) -> None:
    from fishopt.data.photos import find_groups

    root = tmp_path / "data"
    write_jpeg(root / "Alpha" / "00001.jpg", make_photo(1))
    (root / "Alpha" / "00002.jpg").write_bytes(b"not an image")
    with pytest.raises(DataError, match="00002.jpg"):
        find_groups(find_dataset(root), workers=1, cache=tmp_path / "cache", progress=False)


def test_single_image_class_and_blank_image(tmp_path: Path) -> None:
    from fishopt.data.photos import find_groups

    root = tmp_path / "data"
    write_jpeg(root / "Alpha" / "00001.jpg", make_photo(1))
    write_jpeg(root / "Beta" / "00001.jpg", np.zeros((60, 80, 3), np.uint8))
    write_jpeg(root / "Beta" / "00002.jpg", make_photo(2))
    found = find_groups(find_dataset(root), workers=1, cache=tmp_path / "cache", progress=False)
    assert found["Alpha/00001.jpg"] == GroupEntry("Alpha/g000", "Alpha/c000")
    assert found["Beta/00001.jpg"].group != found["Beta/00002.jpg"].group


def test_empty_dataset_is_an_error(tmp_path: Path) -> None:
    from fishopt.data.photos import find_groups

    with pytest.raises(DataError, match="no images"):
        find_groups(FishDataset(tmp_path, (), ()), workers=1, progress=False)


def test_components() -> None:
    from fishopt.data.photos import components

    assert components(5, [(0, 3), (3, 4)]) == [0, 1, 2, 0, 0]


def _entries(groups: list[str], clusters: list[str] | None = None) -> dict[str, GroupEntry]:
    clusters = clusters or groups
    return {f"img{i}": GroupEntry(g, c) for i, (g, c) in enumerate(zip(groups, clusters, strict=True))}


def test_agreement_counts_pairs() -> None:
    ref = _entries(["a", "a", "a", "b", "b"])
    assert agreement(ref, ref)["precision"] == 1.0
    # predicted: {0,1}, {2,3,4}: same-group pairs (0,1) (2,3) (2,4) (3,4); true: (0,1) (3,4)
    pred = _entries(["x", "x", "y", "y", "y"])
    figures = agreement(pred, ref)
    assert figures["pred_pairs"] == 4 and figures["ref_pairs"] == 4 and figures["true_pairs"] == 2
    assert figures["precision"] == 0.5 and figures["recall"] == 0.5
    # ref pairs (0,2) (1,2) are split across predicted clusters x/y
    assert figures["cluster_leaks"] == 2
    merged = agreement(_entries(["x", "x", "y", "y", "y"], ["c"] * 5), ref)
    assert merged["cluster_leaks"] == 0


def test_agreement_singletons_and_mismatch() -> None:
    single = _entries(["a", "b", "c"])
    assert agreement(single, single)["precision"] == 1.0 and agreement(single, single)["recall"] == 1.0
    with pytest.raises(DataError, match="different images"):
        agreement(_entries(["a"]), _entries(["a", "b"]))


def _cpu_seconds() -> float:
    import resource

    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


@pytest.mark.slow
def test_shared_data_agrees_with_reference(fish_root: Path) -> None:
    """The targets on all shared images: precision and recall >= 0.95, no cluster-level leak, < 5 min.

    Time is checked as CPU time (< 300 s: under 5 minutes on 2 free cores) because the wall time
    depends on whatever else loads the machine; the wall time is printed.
    """
    from fishopt.data.groups import read_groups
    from fishopt.data.photos import find_groups

    ds = find_dataset(fish_root)
    start, cpu = time.perf_counter(), _cpu_seconds()
    found = find_groups(ds, workers=2, progress=False)
    wall, cpu = time.perf_counter() - start, _cpu_seconds() - cpu
    figures = agreement(found, read_groups(fish_root / "groups.csv", ds))
    print(f"shared data: {figures}, wall {wall:.0f} s, cpu {cpu:.0f} s")
    assert figures["precision"] >= 0.95
    assert figures["recall"] >= 0.95
    assert figures["cluster_leaks"] == 0
    assert cpu < 300


def test_training_finds_and_caches_groups_without_groups_csv(photo_root, tmp_path: Path, monkeypatch) -> None:
    import fishopt.data.photos as photos
    from fishopt.training.datamodule import resolve_units

    monkeypatch.setenv("FISHOPT_CACHE", str(tmp_path / "cache"))
    root, truth = photo_root
    ds = find_dataset(root)
    units = resolve_units(ds, {"group_by": "group"})
    assert len(set(units.values())) == len(set(truth.values()))
    assert len(list((tmp_path / "cache" / "groups").glob("*.csv"))) == 1

    def fail(*args, **kwargs):
        raise AssertionError("groups should come from the cache")

    monkeypatch.setattr(photos, "find_groups", fail)
    assert resolve_units(ds, {"group_by": "group"}) == units
    assert resolve_units(ds, {"leaky_split": True}) is None
    with pytest.raises(DataError, match="not found"):
        resolve_units(ds, {"groups_file": str(tmp_path / "missing.csv")})
