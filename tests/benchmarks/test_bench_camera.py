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
