"""``fishopt data groups`` and ``fishopt data audit`` through click's CliRunner."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from fishopt.cli import main

cv2 = pytest.importorskip("cv2")


def make_photo_dataset(root: Path, photos: dict[str, list[int]]) -> None:
    """Write 5 copies (turned, mirrored, resized unevenly, JPEG) of textured random photos per class."""
    for label, seeds in photos.items():
        for seed in seeds:
            rng = np.random.default_rng(seed)
            noise = rng.integers(0, 255, (20, 26, 3), dtype=np.uint8)
            photo = cv2.resize(noise, (208, 160), interpolation=cv2.INTER_CUBIC)
            for _ in range(30):
                x, y = int(rng.integers(0, 200)), int(rng.integers(0, 150))
                cv2.circle(photo, (x, y), int(rng.integers(3, 12)), tuple(int(c) for c in rng.integers(0, 255, 3)), -1)
            copies = [photo, np.rot90(photo), photo[:, ::-1], np.rot90(photo, 2)[:, ::-1], np.rot90(photo, 3)]
            for k, copy in enumerate(copies):
                image = cv2.resize(np.ascontiguousarray(copy), (224, 168), interpolation=cv2.INTER_AREA)
                (root / label).mkdir(parents=True, exist_ok=True)
                cv2.imwrite(str(root / label / f"{seed:03d}{k}.jpg"), image, [cv2.IMWRITE_JPEG_QUALITY, 85])


@pytest.fixture(scope="module")
def photo_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("cli-photos")
    make_photo_dataset(root, {"Alpha": [1, 2, 3], "Beta": [4, 5, 6]})
    return root


def test_groups_writes_file_and_refuses_overwrite(photo_root: Path, tmp_path: Path) -> None:
    out = tmp_path / "groups.csv"
    runner = CliRunner()
    result = runner.invoke(main, ["data", "groups", str(photo_root), "--out", str(out), "--workers", "1", "--quiet"])
    assert result.exit_code == 0, result.output
    assert "6 photos (groups)" in result.output
    assert out.read_text().startswith("path,class,group,cluster\n")
    again = runner.invoke(main, ["data", "groups", str(photo_root), "--out", str(out), "--quiet"])
    assert again.exit_code == 2 and "--overwrite" in again.output
    ref = runner.invoke(
        main,
        [
            "data",
            "groups",
            str(photo_root),
            "--out",
            str(out),
            "--overwrite",
            "--workers",
            "1",
            "--quiet",
            "--reference",
            str(out),
        ],
    )
    assert ref.exit_code == 0, ref.output
    assert "precision 1.0000, recall 1.0000, cluster leaks 0" in ref.output


def test_groups_on_read_only_root_says_to_pass_out(photo_root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import fishopt.cli.data as cli_data

    real_access = os.access

    def access(path, mode, **kwargs) -> bool:
        return False if mode == os.W_OK and Path(path) == photo_root else real_access(path, mode, **kwargs)

    monkeypatch.setattr(cli_data.os, "access", access)
    result = CliRunner().invoke(main, ["data", "groups", str(photo_root), "--quiet"])
    assert result.exit_code == 2 and "read-only" in result.output and "--out" in result.output


def test_audit_prints_tables(photo_root: Path, tmp_path: Path) -> None:
    out = tmp_path / "groups.csv"
    runner = CliRunner()
    found = runner.invoke(main, ["data", "groups", str(photo_root), "--out", str(out), "--workers", "1", "--quiet"])
    assert found.exit_code == 0, found.output
    result = runner.invoke(main, ["data", "audit", str(photo_root), "--groups", str(out)])
    assert result.exit_code == 0, result.output
    assert "30 images, 2 classes, 6 photos" in result.output
    assert "random split by file" in result.output and "random split by cluster" in result.output


def test_audit_without_groups_file_explains(photo_root: Path) -> None:
    result = CliRunner().invoke(main, ["data", "audit", str(photo_root)])
    assert result.exit_code == 2 and "fishopt data groups" in result.output


def test_download_command_without_credentials(tmp_path, monkeypatch) -> None:
    from click.testing import CliRunner

    from fishopt.cli import main

    monkeypatch.delenv("KAGGLE_USERNAME", raising=False)
    monkeypatch.delenv("KAGGLE_KEY", raising=False)
    monkeypatch.setenv("KAGGLE_CONFIG_DIR", str(tmp_path))
    result = CliRunner().invoke(main, ["data", "download", str(tmp_path / "fish")])
    assert result.exit_code == 2 and "no Kaggle credentials" in result.output
    assert not (tmp_path / "fish").exists()
