"""The decode-pipeline gate: agreement verdict, its cache, and the choice of pipeline."""

from __future__ import annotations

from pathlib import Path

import pytest

from fishopt.artifacts import pipeline_check


def camera_frames(files: list[Path], size: tuple[int, int], dest: Path) -> list[Path]:
    """JPEG re-encodings of ``files`` at ``size`` (W, H), as a camera would deliver them."""
    from PIL import Image

    dest.mkdir(parents=True, exist_ok=True)
    out = []
    for i, f in enumerate(files):
        with Image.open(f) as img:
            frame = img.convert("RGB").resize(size, Image.Resampling.LANCZOS)
        frame.save(dest / f"{i:03d}.jpg", "JPEG", quality=90)
        out.append(dest / f"{i:03d}.jpg")
    return out


def test_pipeline_agreement_verdict(tiny_checkpoint: Path, tmp_path: Path) -> None:
    from fishopt.checkpoint import load_checkpoint

    ckpt = load_checkpoint(tiny_checkpoint)
    test = ckpt.split_images("test")
    files = camera_frames(test.files[:6], (640, 480), tmp_path / "frames")
    check = pipeline_check.pipeline_agreement(ckpt, files, test.labels[:6], ckpt.meta["load_size"])
    assert check["n"] == 6 and 0.0 <= check["agreement"] <= 1.0 and sum(check["scales"].values()) == 6
    rule = (
        check["agreement"] >= pipeline_check.MIN_AGREEMENT
        and abs(check["delta_points"]) <= pipeline_check.MAX_DELTA_POINTS
    )
    assert check["taken"] == rule


def test_agreement_verdict_is_cached_per_checkpoint_files_and_decoder(
    tiny_checkpoint: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from fishopt.checkpoint import load_checkpoint

    ckpt = load_checkpoint(tiny_checkpoint)
    test = ckpt.split_images("test")
    files = camera_frames(test.files[:3], (320, 240), tmp_path / "frames")
    first = pipeline_check.pipeline_agreement(
        ckpt, files, test.labels[:3], ckpt.meta["load_size"], cache=tmp_path / "c"
    )
    calls = []
    monkeypatch.setattr(pipeline_check, "_agreement", lambda *a: calls.append(a) or {"n": 0})
    assert (
        pipeline_check.pipeline_agreement(ckpt, files, test.labels[:3], ckpt.meta["load_size"], cache=tmp_path / "c")
        == first
    )
    assert not calls
    pipeline_check.pipeline_agreement(ckpt, files[:2], test.labels[:2], ckpt.meta["load_size"], cache=tmp_path / "c")
    pipeline_check.pipeline_agreement(ckpt, files, test.labels[:3], ckpt.meta["load_size"], cache=False)
    assert len(calls) == 2  # other files, and no cache: measured again


@pytest.mark.parametrize(
    "taken,scales,expected,tried",
    [
        ({"turbo": True}, {"2/8": 3}, "turbo", ["turbo"]),
        ({"fast": True}, {"2/8": 3}, "fast", ["turbo", "fast"]),
        ({"full": True}, {"2/8": 3}, "full", ["turbo", "fast", "full"]),
        ({}, {"2/8": 3}, "exact", ["turbo", "fast", "full"]),
        ({}, {"8/8": 3}, "exact", ["turbo", "fast"]),  # nothing DCT-scaled: full would decode exactly as fast did
    ],
)
def test_choose_pipeline_takes_the_fastest_that_agrees(
    monkeypatch: pytest.MonkeyPatch, taken, scales, expected, tried
) -> None:
    calls = []

    def fake(ckpt, files, labels, load_size, batch=64, cache=None, pipeline="fast"):
        calls.append(pipeline)
        ok = taken.get(pipeline, False)
        return {"pipeline": pipeline, "taken": ok, "scales": scales, "agreement": 1.0, "n": 3, "delta_points": 0.0}

    monkeypatch.setattr(pipeline_check, "pipeline_agreement", fake)
    chosen, checks = pipeline_check.choose_pipeline(None, [], [], (120, 160))
    assert chosen == expected and calls == tried
    assert [c["pipeline"] for c in checks] == tried
