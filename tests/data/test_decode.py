"""decode_and_fit: the JPEG DCT-scaling fast path, the general path, odd modes, sizes, errors, and agreement with
today's pipeline (decode_image + fit_to) on real images."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
import torch

from fishopt.data import decode as D
from fishopt.data.preprocess import decode_image, fit_to
from fishopt.errors import DataError


def _jpeg(w: int, h: int, mode: str = "RGB", quality: int = 90, seed: int = 0, **save) -> bytes:
    from PIL import Image

    rng = np.random.default_rng(seed)
    # smooth content (a blurred gradient + noise), like an upscaled photo
    yy, xx = np.mgrid[0:h, 0:w]
    base = np.stack([(xx * 255 // max(w - 1, 1)), (yy * 255 // max(h - 1, 1)), ((xx + yy) * 127 // max(w + h, 1))], -1)
    img = np.clip(base + rng.integers(-20, 20, (h, w, 3)), 0, 255).astype(np.uint8)
    buf = io.BytesIO()
    Image.fromarray(img).convert(mode).save(buf, "JPEG", quality=quality, **save)
    return buf.getvalue()


def _today(data: bytes, size: tuple[int, int], tmp_path: Path) -> np.ndarray:
    path = tmp_path / "x.img"
    path.write_bytes(data)
    return fit_to(decode_image(path), size).numpy()


@pytest.mark.parametrize(
    "h,w,target,k",
    [
        (1080, 1920, (120, 213), 2),
        (445, 590, (121, 160), 4),
        (168, 224, (120, 160), 8),
        (720, 1280, (120, 213), 2),
        (360, 480, (120, 160), 4),
        (200, 300, (120, 160), 8),
        (445, 590, (169, 224), 5),  # the teacher's load size: 369x279 covers 1.5x
        (300, 400, (168, 224), 8),  # 7/8 would be needed: above MAX_DCT_SCALE
    ],
)
def test_dct_scale_covers_oversampled_target_up_to_the_max_scale(h: int, w: int, target, k: int) -> None:
    assert D.dct_scale(h, w, target) == k
    if k < 8:
        assert -(-h * k // 8) >= 1.5 * target[0] and -(-w * k // 8) >= 1.5 * target[1] and k <= D.MAX_DCT_SCALE
    assert D.dct_scale(445, 590, (169, 224), powers_of_two=True) == 8  # Pillow's draft has no 5/8
    assert D.dct_scale(1080, 1920, (120, 213), oversample=1.0) == 1
    assert D.dct_scale(445, 590, (121, 160), oversample=1.0) == 3
    assert D.dct_scale(445, 590, (121, 160), oversample=1.0, powers_of_two=True) == 4  # Pillow's draft: 1/2, not 3/8


def test_cover_size_matches_fit_to() -> None:
    for h, w in ((1080, 1920), (445, 590), (168, 224), (30, 30), (50, 40)):
        x = torch.zeros(3, h, w, dtype=torch.uint8)
        nh, nw = D.cover_size(h, w, (36, 48))
        assert fit_to(x, (36, 48)).shape[-2:] == (36, 48) and nh >= 36 and nw >= 48


@pytest.mark.parametrize(
    "src,dst",
    [
        ((40, 52), (36, 48)),
        ((168, 224), (120, 160)),
        ((30, 30), (36, 48)),
        ((445, 590), (120, 160)),
        ((135, 240), (120, 160)),
        ((50, 40), (32, 32)),
    ],
)
def test_fit_array_reproduces_torch_fit_to(src, dst, monkeypatch: pytest.MonkeyPatch) -> None:
    image = np.random.default_rng(sum(src)).integers(0, 256, (*src, 3), dtype=np.uint8)
    ref = fit_to(torch.from_numpy(image).permute(2, 0, 1), dst).permute(1, 2, 0).numpy()
    assert np.array_equal(D.fit_array(image, dst), ref)  # torch is loaded here: its own resize, bit for bit
    monkeypatch.setattr(D, "_torch", lambda: None)  # as in a bundle: the numpy port
    got = D.fit_array(image, dst)
    assert got.shape == (*dst, 3) and got.dtype == np.uint8
    diff = np.abs(ref.astype(int) - got.astype(int))
    assert diff.max() <= 1 and (diff > 0).mean() < 1e-4  # measured: 7 of 4.2 M values differ, by one level


def test_exact_fit_takes_views_and_read_only_arrays() -> None:
    image = np.random.default_rng(3).integers(0, 256, (90, 70, 3), dtype=np.uint8)
    ref = D.fit_array(image.copy(), (40, 48))
    flipped = image[::-1][::-1]  # a view with negative strides, then back
    frozen = image.copy()
    frozen.flags.writeable = False
    assert np.array_equal(D.fit_array(flipped, (40, 48)), ref)
    assert np.array_equal(D.fit_array(frozen, (40, 48)), ref)
    mirrored = np.ascontiguousarray(image[:, ::-1])
    assert np.array_equal(D.fit_array(image[:, ::-1], (40, 48)), D.fit_array(mirrored, (40, 48)))


def test_same_size_is_untouched() -> None:
    image = np.zeros((12, 16, 3), np.uint8)
    assert D.fit_array(image, (12, 16)) is image


def test_camera_jpeg_takes_the_fast_path_and_stays_close(tmp_path: Path) -> None:
    data = _jpeg(1920, 1080)
    fast = D.decode_rgb(data, (120, 160))
    assert fast.fast and fast.scale == 2 and fast.rgb.shape == (270, 480, 3) and fast.source_size == (1080, 1920)
    full = D.decode_rgb(data, (120, 160), fast=False)
    assert not full.fast and full.rgb.shape == (1080, 1920, 3)
    got = D.decode_and_fit(data, (120, 160)).astype(int)
    ref = _today(data, (120, 160), tmp_path).astype(int)
    assert got.shape == ref.shape == (3, 120, 160)
    assert np.abs(got - ref).mean() < 3.0  # DCT scaling is a different low-pass filter: close, not equal


def test_full_decode_gives_todays_pixels(tmp_path: Path) -> None:
    data = _jpeg(224, 168)
    assert not D.decode_rgb(data, (120, 160)).fast  # < 2x the target: no DCT scaling
    assert np.array_equal(D.decode_and_fit(data, (120, 160)), _today(data, (120, 160), tmp_path))
    assert np.array_equal(
        D.decode_and_fit(_jpeg(1920, 1080), (120, 160), pipeline="exact"),
        _today(_jpeg(1920, 1080), (120, 160), tmp_path),
    )


def test_pillow_draft_is_the_fallback_with_the_same_pixels(monkeypatch: pytest.MonkeyPatch) -> None:
    data = _jpeg(1920, 1080)
    with_sj = D.decode_rgb(data, (120, 160))
    monkeypatch.setattr(D, "_simplejpeg", lambda: None)
    pil = D.decode_rgb(data, (120, 160))
    assert pil.decoder == "pillow-draft" and pil.scale == 2
    if with_sj.decoder == "simplejpeg":
        assert np.array_equal(pil.rgb, with_sj.rgb)  # both are libjpeg-turbo at 2/8
    odd = D.decode_rgb(_jpeg(800, 600), (120, 160))  # simplejpeg would take 3/8; Pillow can only do 4/8
    assert odd.decoder == "pillow-draft" and odd.scale == 4 and odd.rgb.shape == (300, 400, 3)


@pytest.mark.parametrize("mode", ["L", "RGBA", "P", "LA", "CMYK"])
def test_odd_modes_become_rgb(tmp_path: Path, mode: str) -> None:
    from PIL import Image

    fmt = "JPEG" if mode in ("L", "CMYK") else "PNG"
    buf = io.BytesIO()
    Image.new("RGB", (64, 48), (200, 40, 90)).convert(mode).save(buf, fmt)
    out = D.decode_and_fit(buf.getvalue(), (24, 32), layout="hwc")
    assert out.shape == (24, 32, 3) and out.dtype == np.uint8 and out.flags["C_CONTIGUOUS"]
    path = tmp_path / f"x.{fmt.lower()}"
    path.write_bytes(buf.getvalue())
    assert np.array_equal(D.decode_and_fit(path, (24, 32)), fit_to(decode_image(path), (24, 32)).numpy())


def test_png_takes_the_general_path() -> None:
    from PIL import Image

    buf = io.BytesIO()
    Image.new("RGB", (1920, 1080), (10, 20, 30)).save(buf, "PNG")
    decoded = D.decode_rgb(buf.getvalue(), (120, 160))
    assert decoded.decoder == "pillow" and not decoded.fast and decoded.rgb.shape == (1080, 1920, 3)


def test_grayscale_jpeg_fast_path() -> None:
    out = D.decode_rgb(_jpeg(1920, 1080, mode="L"), (120, 160))
    assert out.fast and out.rgb.shape == (270, 480, 3)
    assert np.array_equal(out.rgb[..., 0], out.rgb[..., 1])


def test_progressive_jpeg_header_is_read() -> None:
    data = _jpeg(800, 600, progressive=True)
    assert D._jpeg_header(data) == (600, 800, 3)
    assert D.decode_rgb(data, (120, 160)).scale == 3


@pytest.mark.parametrize("payload", [b"not an image", b"\xff\xd8\xff\xe0" + b"\x00" * 40, b""])
def test_unreadable_input_is_a_data_error(payload: bytes) -> None:
    with pytest.raises(DataError, match="cannot decode image bytes"):
        D.decode_and_fit(payload, (12, 16))


def test_truncated_jpeg_is_refused() -> None:
    data = _jpeg(640, 480)
    with pytest.raises(D.ImageDecodeError, match="corrupt, truncated"):
        D.decode_and_fit(data[: len(data) // 2], (120, 160))


def test_missing_file_and_bad_layout(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="cannot read image"):
        D.decode_and_fit(tmp_path / "missing.jpg", (12, 16))
    with pytest.raises(ValueError, match="layout"):
        D.decode_and_fit(_jpeg(32, 24), (12, 16), layout="nchw")


def test_huge_header_is_refused_before_decoding(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(D, "MAX_PIXELS", 1000)
    with pytest.raises(DataError, match="decompression bomb"):
        D.decode_and_fit(_jpeg(64, 48), (12, 16))


@pytest.mark.parametrize("fmt", ["JPEG", "PNG"])
def test_max_pixels_refuses_from_the_header(fmt: str) -> None:
    """A per-call limit (the server's) names the declared size; one pixel more than the image passes."""
    from PIL import Image

    buf = io.BytesIO()
    Image.new("RGB", (48, 64), (10, 20, 30)).save(buf, format=fmt)
    with pytest.raises(D.ImageTooLargeError, match="64x48 pixels") as info:
        D.decode_and_fit(buf.getvalue(), (12, 16), max_pixels=48 * 64 - 1)
    assert (info.value.height, info.value.width, info.value.limit) == (64, 48, 48 * 64 - 1)
    assert isinstance(info.value, DataError)
    assert D.decode_and_fit(buf.getvalue(), (12, 16), max_pixels=48 * 64).shape == (3, 12, 16)


def test_real_images_match_todays_pipeline(fish_root: Path) -> None:
    files = sorted((fish_root / "Fish_Dataset").rglob("*.jpg"))[::700][:8]
    for path in files:
        assert np.array_equal(D.decode_and_fit(path, (120, 160)), fit_to(decode_image(path), (120, 160)).numpy()), path


def test_module_is_standalone() -> None:
    """The bundle copies this file: it may import only numpy, Pillow and simplejpeg (fishopt.errors optionally)."""
    import ast

    tree = ast.parse(Path(D.__file__).read_text())
    imported = {
        n.split(".")[0]
        for node in ast.walk(tree)
        if isinstance(node, (ast.Import, ast.ImportFrom))
        for n in ([a.name for a in node.names] if isinstance(node, ast.Import) else [node.module or ""])
    }
    assert imported <= {
        "__future__",
        "functools",
        "io",
        "math",
        "os",
        "sys",
        "threading",
        "collections",
        "concurrent",
        "dataclasses",
        "pathlib",
        "typing",
        "numpy",
        "PIL",
        "simplejpeg",
        "fishopt",
    }


def test_fast_resize_is_pillows_float_filter_and_nearly_exact() -> None:
    image = np.random.default_rng(5).integers(0, 256, (270, 480, 3), dtype=np.uint8)
    exact, fast = D.fit_array(image, (120, 160)), D.fit_array(image, (120, 160), exact=False)
    assert fast.shape == exact.shape == (120, 160, 3) and fast.dtype == np.uint8
    diff = np.abs(fast.astype(int) - exact.astype(int))
    assert diff.max() <= 1 and (diff > 0).mean() < 1e-3


def test_fast_path_uses_the_fast_resize(monkeypatch: pytest.MonkeyPatch) -> None:
    seen = []
    real = D.fit_array
    monkeypatch.setattr(
        D, "fit_array", lambda rgb, size, exact=True, uint8=False: seen.append(exact) or real(rgb, size, exact, uint8)
    )
    D.decode_and_fit(_jpeg(1920, 1080), (120, 160))
    D.decode_and_fit(_jpeg(224, 168), (120, 160))
    assert seen == [False, True]  # DCT-scaled: Pillow's float resize; full decode: the exact (cache) arithmetic


@pytest.mark.parametrize(
    "pipeline,scale,exact,uint8",
    [("turbo", 2, False, True), ("fast", 2, False, False), ("full", 8, False, False), ("exact", 8, True, False)],
)
def test_pipelines_decode_and_resize_as_documented(
    monkeypatch: pytest.MonkeyPatch, pipeline, scale, exact, uint8
) -> None:
    data = _jpeg(1920, 1080)
    seen = []
    real = D.fit_array

    def spy(rgb, size, exact=True, uint8=False):
        seen.append((rgb.shape, exact, uint8))
        return real(rgb, size, exact, uint8)

    monkeypatch.setattr(D, "fit_array", spy)
    out = D.decode_and_fit(data, (120, 160), pipeline=pipeline)
    assert out.shape == (3, 120, 160) and out.dtype == np.uint8 and out.flags.c_contiguous
    assert seen == [((1080 * scale // 8, 1920 * scale // 8, 3), exact, uint8)]


def test_turbo_stays_within_a_level_of_fast() -> None:
    data = _jpeg(1920, 1080)
    turbo = D.decode_and_fit(data, (120, 160), pipeline="turbo").astype(int)
    fast = D.decode_and_fit(data, (120, 160), pipeline="fast").astype(int)
    assert np.abs(turbo - fast).max() <= 1  # Pillow's fixed-point uint8 resize vs its float resize, same filter
    # near the target size (no DCT scaling, less than 2x reduction) every pipeline takes the exact arithmetic
    small = _jpeg(224, 168)
    np.testing.assert_array_equal(
        D.decode_and_fit(small, (120, 160), pipeline="turbo"), D.decode_and_fit(small, (120, 160), pipeline="exact")
    )


def test_full_pipeline_stays_next_to_todays_pixels(tmp_path: Path) -> None:
    data = _jpeg(1920, 1080)
    full = D.decode_and_fit(data, (120, 160), pipeline="full").astype(int)
    diff = np.abs(full - _today(data, (120, 160), tmp_path).astype(int))
    assert diff.max() <= 1 and (diff > 0).mean() < 1e-3


def test_float_fit_rule() -> None:
    big = D.Decoded(np.zeros((1080, 1920, 3), np.uint8), (1080, 1920), 8, "pillow")
    near = D.Decoded(np.zeros((168, 224, 3), np.uint8), (168, 224), 8, "pillow")
    scaled = D.Decoded(np.zeros((223, 295, 3), np.uint8), (445, 590), 4, "simplejpeg")
    assert D.float_fit(big, (120, 160)) and D.float_fit(big, (120, 160), "full")
    assert not D.float_fit(big, (120, 160), "exact")
    assert not D.float_fit(near, (120, 160))  # < 2x: the cache's exact arithmetic (ties are common there)
    assert D.float_fit(scaled, (168, 224))


def test_unknown_pipeline_is_refused() -> None:
    with pytest.raises(ValueError, match="pipeline must be one of"):
        D.decode_and_fit(_jpeg(64, 48), (12, 16), pipeline="fastest")


@pytest.mark.parametrize(
    "shape,size,exact",
    [((445, 590), (168, 224), True), ((270, 480), (120, 160), True), ((401, 333), (121, 97), False)],
)
def test_banded_uint8_resize_gives_the_single_calls_pixels(
    monkeypatch: pytest.MonkeyPatch, shape, size, exact: bool
) -> None:
    rng = np.random.default_rng(1)
    rgb = rng.integers(0, 256, (*shape, 3), dtype=np.uint8)
    monkeypatch.setattr(D, "BANDED_MIN_PIXELS", 1)
    monkeypatch.setattr(D.os, "cpu_count", lambda: 2)
    assert D.resize_bands(shape[0] * shape[1], size[0]) == D.RESIZE_BANDS == 2
    banded = D.fit_array(rgb, size, exact=False, uint8=True)
    monkeypatch.setattr(D, "RESIZE_BANDS", 1)
    single = D.fit_array(rgb, size, exact=False, uint8=True)
    assert banded.shape == (*size, 3) and banded.flags.c_contiguous
    if exact:  # the camera sizes the benchmark times
        np.testing.assert_array_equal(banded, single)
    else:  # a band's box can round its filter weights differently: one level, rarely
        diff = np.abs(banded.astype(int) - single)
        assert diff.max() <= 1 and (diff > 0).mean() < 1e-3


def test_resize_bands_rule(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(D.os, "cpu_count", lambda: 2)
    assert D.resize_bands(590 * 445, 168) == 2
    assert D.resize_bands(295 * 223, 120) == 1  # small input: a thread hand-off costs more than it saves
    assert D.resize_bands(590 * 445, 20) == 1  # too few output rows to split
    monkeypatch.setattr(D.os, "cpu_count", lambda: 1)
    assert D.resize_bands(590 * 445, 168) == 1  # one core: nothing runs at once


def _resize_in_child(queue) -> None:  # module level: a fork child runs it
    rgb = np.random.default_rng(2).integers(0, 256, (445, 590, 3), dtype=np.uint8)
    queue.put(D.fit_array(rgb, (168, 224), exact=False, uint8=True).sum(dtype=np.int64))


def test_banded_resize_works_in_a_forked_child(monkeypatch: pytest.MonkeyPatch) -> None:
    import multiprocessing as mp

    monkeypatch.setattr(D.os, "cpu_count", lambda: 2)
    rgb = np.random.default_rng(2).integers(0, 256, (445, 590, 3), dtype=np.uint8)
    expected = D.fit_array(rgb, (168, 224), exact=False, uint8=True).sum(dtype=np.int64)  # the parent's pool exists
    assert D._pool is not None
    ctx = mp.get_context("fork")
    queue = ctx.Queue()
    child = ctx.Process(target=_resize_in_child, args=(queue,))
    child.start()
    got = queue.get(timeout=60)  # a child reusing the parent's (threadless) pool would hang here
    child.join(timeout=60)
    assert child.exitcode == 0 and got == expected
