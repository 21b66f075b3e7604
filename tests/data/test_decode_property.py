"""Property tests (hypothesis): whatever bytes sit in an image file, the decoder and ``fishopt evaluate --split
all`` either work or raise one FishoptError; never another exception, a traceback or a partial output."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fishopt.cli import main
from fishopt.data.preprocess import decode_image
from fishopt.errors import DataError, FishoptError

MODES = ("1", "L", "LA", "P", "PA", "RGB", "RGBA", "CMYK", "YCbCr", "I", "I;16", "F", "LAB", "HSV")
FORMATS = ("PNG", "JPEG", "TIFF", "BMP", "GIF", "WEBP", "PPM", "ICO")


@st.composite
def image_bytes(draw) -> bytes:
    """A real image of a random mode, size and format, often truncated or with bytes flipped."""
    from PIL import Image

    mode, fmt = draw(st.sampled_from(MODES)), draw(st.sampled_from(FORMATS))
    width, height = draw(st.integers(1, 48)), draw(st.integers(1, 48))
    seed = draw(st.integers(0, 2**16))
    arr = np.random.default_rng(seed).integers(0, 256, (height, width, 3), dtype=np.uint8)
    if mode == "I;16":
        img = Image.fromarray(arr[..., 0].astype(np.uint16) * 257)  # 16-bit grayscale
    else:
        img = Image.fromarray(arr).convert(mode)
    buf = io.BytesIO()
    try:
        img.save(buf, format=fmt)
    except (OSError, ValueError, KeyError):
        img.convert("RGB").save(buf, format="PNG")  # a mode this format cannot store
    data = buf.getvalue()
    damage = draw(st.sampled_from(("none", "truncate", "flip")))
    if damage == "truncate":
        data = data[: draw(st.integers(0, max(0, len(data) - 1)))]
    elif damage == "flip" and data:
        pos = draw(st.integers(0, len(data) - 1))
        data = data[:pos] + bytes([data[pos] ^ draw(st.integers(1, 255))]) + data[pos + 1 :]
    return data


@st.composite
def huge_png_header(draw) -> bytes:
    """A PNG header claiming up to 60000 x 60000 pixels, without the pixels: a decompression bomb's shape."""
    import struct
    import zlib

    width, height = draw(st.integers(1, 60000)), draw(st.integers(10000, 60000))

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 32))


ANY_FILE = st.one_of(st.binary(max_size=512), image_bytes(), huge_png_header())


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=ANY_FILE, suffix=st.sampled_from((".png", ".jpg", ".jpeg")))
def test_decoder_returns_rgb_uint8_or_raises_a_data_error(tmp_path: Path, data: bytes, suffix: str) -> None:
    path = tmp_path / f"image{suffix}"
    path.write_bytes(data)
    try:
        image = decode_image(path)
    except DataError as exc:
        assert str(path) in str(exc)
        return
    assert image.dtype.is_floating_point is False and image.dtype.itemsize == 1
    assert image.ndim == 3 and image.shape[0] == 3 and image.shape[1] >= 1 and image.shape[2] >= 1


@pytest.fixture
def dataset_with_a_slot(tiny_checkpoint: Path, synthetic_root: Path) -> tuple[Path, Path, Path]:
    """The tiny checkpoint, its data, and one image file of it that each example overwrites."""
    slot = next((synthetic_root / "Fish_Dataset" / "Beta Fish" / "Beta Fish").glob("*.png"))
    return tiny_checkpoint, synthetic_root, slot


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=ANY_FILE)
def test_evaluate_all_never_tracebacks_and_never_writes_half(dataset_with_a_slot, tmp_path: Path, data: bytes) -> None:
    checkpoint, root, slot = dataset_with_a_slot
    slot.write_bytes(data)
    out = tmp_path / "eval.json"
    out.unlink(missing_ok=True)
    result = CliRunner().invoke(
        main, ["evaluate", str(checkpoint), "--split", "all", "--data", str(root), "--json", str(out)]
    )
    assert result.exit_code in (0, 2), result.output
    if result.exit_code == 2:
        assert isinstance(result.exception, SystemExit) and "Traceback" not in result.output
        errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
        assert len(errors) == 1 and slot.name in errors[0]
        assert not out.exists()  # no partial output
    else:
        assert out.is_file()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temporary file left


def test_fishopt_errors_are_what_the_cli_catches() -> None:
    assert issubclass(DataError, FishoptError)
