"""Camera-size inputs: size parsing, cached re-encoding, the fast-path agreement verdict."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from fishopt.benchmarks import camera
from fishopt.errors import ConfigError


def test_parse_size() -> None:
    assert camera.parse_size(" 1920X1080 ") == "1920x1080" and camera.parse_size("native") == "native"
    for bad in ("1920", "ax3", "8x8", "100000x100000"):
        with pytest.raises(ConfigError, match="1920x1080"):
            camera.parse_size(bad)


def test_camera_jpeg_is_made_once_and_cached(tmp_path: Path) -> None:
    from PIL import Image

    src = tmp_path / "a.jpg"
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (168, 224, 3), dtype=np.uint8)).save(src)
    out = camera.camera_jpeg(src, "320x180", cache=tmp_path / "cache")
    assert out.is_file() and str(out).startswith(str(tmp_path / "cache" / "camera" / "320x180-q90"))
    with Image.open(out) as img:
        assert img.size == (320, 180) and img.format == "JPEG"
    stamp = out.stat().st_mtime_ns
    assert camera.camera_jpeg(src, "320x180", cache=tmp_path / "cache") == out and out.stat().st_mtime_ns == stamp
    assert camera.camera_jpegs([src], "native") == [src]


def test_fast_path_agreement_verdict(tiny_checkpoint: Path, tmp_path: Path) -> None:
    from fishopt.checkpoint import load_checkpoint

    ckpt = load_checkpoint(tiny_checkpoint)
    test = ckpt.split_images("test")
    files = camera.camera_jpegs(test.files[:6], "640x480", cache=tmp_path / "cache")
    check = camera.fast_path_agreement(ckpt, files, test.labels[:6], ckpt.meta["load_size"])
    assert check["n"] == 6 and 0.0 <= check["agreement"] <= 1.0 and sum(check["scales"].values()) == 6
    rule = check["agreement"] >= camera.MIN_AGREEMENT and abs(check["delta_points"]) <= camera.MAX_DELTA_POINTS
    assert check["taken"] == rule


def test_agreement_verdict_is_cached_per_checkpoint_files_and_decoder(
    tiny_checkpoint: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from fishopt.checkpoint import load_checkpoint

    ckpt = load_checkpoint(tiny_checkpoint)
    test = ckpt.split_images("test")
    files = camera.camera_jpegs(test.files[:3], "320x240", cache=tmp_path / "c")
    first = camera.fast_path_agreement(ckpt, files, test.labels[:3], ckpt.meta["load_size"], cache=tmp_path / "c")
    calls = []
    monkeypatch.setattr(camera, "_agreement", lambda *a: calls.append(a) or {"n": 0})
    assert (
        camera.fast_path_agreement(ckpt, files, test.labels[:3], ckpt.meta["load_size"], cache=tmp_path / "c") == first
    )
    assert not calls
    camera.fast_path_agreement(ckpt, files[:2], test.labels[:2], ckpt.meta["load_size"], cache=tmp_path / "c")
    camera.fast_path_agreement(ckpt, files, test.labels[:3], ckpt.meta["load_size"], cache=False)
    assert len(calls) == 2  # other files, and no cache: measured again


@pytest.mark.parametrize(
    "fast_taken,scales,full_taken,expected",
    [
        (True, {"2/8": 3}, None, "fast"),
        (False, {"2/8": 3}, True, "full"),
        (False, {"2/8": 3}, False, "exact"),
        (False, {"8/8": 3}, None, "exact"),  # nothing DCT-scaled: full would decode exactly as fast did
    ],
)
def test_choose_pipeline_takes_the_fastest_that_agrees(
    monkeypatch: pytest.MonkeyPatch, fast_taken, scales, full_taken, expected
) -> None:
    calls = []

    def fake(ckpt, files, labels, load_size, batch=64, cache=None, pipeline="fast"):
        calls.append(pipeline)
        taken = fast_taken if pipeline == "fast" else full_taken
        return {"pipeline": pipeline, "taken": taken, "scales": scales, "agreement": 1.0, "n": 3, "delta_points": 0.0}

    monkeypatch.setattr(camera, "fast_path_agreement", fake)
    chosen, fast, full = camera.choose_pipeline(None, [], [], (120, 160))
    assert chosen == expected and fast["pipeline"] == "fast"
    assert calls == (["fast"] if full_taken is None else ["fast", "full"])
    assert (full is None) == (full_taken is None)
