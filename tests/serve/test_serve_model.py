"""Loading artifacts for serving (export folders and deploy bundles) and the image decode path."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from serve_helpers import jpeg_bytes

from fishopt.errors import CheckpointError, ConfigError
from fishopt.serve.images import ImageError, decode_image_bytes
from fishopt.serve.model import check_model_name, describe_artifact, load_served_model


def test_normalized_artifact(onnx_artifact: Path, tiny_images: list[Path]) -> None:
    import torch

    from fishopt.data.preprocess import decode_image, eval_transform, fit_to

    served = load_served_model(onnx_artifact, threads=1)
    try:
        meta = served.meta
        assert served.name == "onnx-fp32" and served.info.kind == "manifest" and served.platform == "onnxruntime_onnx"
        assert served.version == meta["source_checkpoint_sha256"][:12]
        assert not served.raw_input and served.input_datatype == "FP32"
        assert served.input_shape == (3, *meta["input_size"]) and served.image_size == tuple(meta["load_size"])
        assert served.fixed_batch is None and served.image_input_name == "image"
        image = decode_image_bytes(tiny_images[0].read_bytes(), served.image_size)
        expected = fit_to(decode_image(tiny_images[0]), meta["load_size"])
        np.testing.assert_array_equal(image, expected.numpy())
        row = served.to_input(image)
        reference = eval_transform(expected.unsqueeze(0), meta["input_size"], meta["mean"], meta["std"])[0]
        np.testing.assert_allclose(row, reference.numpy(), atol=1e-6)
        batch = np.stack([row, row * 0.5])
        logits, embeddings = served.predict(batch)
        assert logits.shape == (2, 3) and logits.dtype == np.float32
        np.testing.assert_allclose(logits, served.runtime(batch), atol=1e-6)
        # the graph's second output, from the same inference
        assert served.provides_embeddings and embeddings is not None and embeddings.shape[0] == 2
        np.testing.assert_array_equal(embeddings, served.runtime.outputs(batch)[1])
        assert torch.is_tensor(reference)
    finally:
        served.close()


def test_raw_static_batch_artifact_pads_and_matches_the_normalized_one(
    onnx_artifact: Path, raw_artifact: Path, tiny_images: list[Path]
) -> None:
    raw = load_served_model(raw_artifact, threads=1)
    norm = load_served_model(onnx_artifact, threads=1)
    try:
        assert raw.raw_input and raw.input_datatype == "UINT8" and raw.fixed_batch == 4
        assert raw.input_shape == (*raw.image_size, 3)
        images = [decode_image_bytes(p.read_bytes(), raw.image_size) for p in tiny_images]
        x_raw = np.stack([raw.to_input(im) for im in images])
        assert x_raw.dtype == np.uint8 and x_raw.shape == (len(images), *raw.input_shape)
        logits_raw, _ = raw.predict(x_raw)  # 6 rows: a chunk of 4 and a padded chunk of 2
        logits_norm, _ = norm.predict(np.stack([norm.to_input(im) for im in images]))
        np.testing.assert_allclose(logits_raw, logits_norm, atol=1e-4)
        one, _ = raw.predict(x_raw[:1])
        np.testing.assert_allclose(one, logits_raw[:1], atol=1e-5)
        raw.warmup(max_batch=6)
    finally:
        raw.close()
        norm.close()


def test_deploy_bundle_layout(raw_artifact: Path, tmp_path: Path) -> None:
    bundle = tmp_path / "bundle"
    bundle.mkdir()
    shutil.copy(raw_artifact / "model.onnx", bundle / "model.onnx")
    (bundle / "bundle.json").write_text(
        json.dumps(
            {
                "format": "fishopt-bundle",
                "version": 1,
                "target": "cpu",
                "precision": "int8",
                "checkpoint": {"file": "model.pt", "sha256": "ab" * 32},
                "model": {"file": "model.onnx"},
            }
        )
    )
    info = describe_artifact(bundle)
    assert (info.kind, info.name, info.version, info.registry_format) == (
        "bundle",
        "bundle-cpu-int8",
        "ab" * 6,
        "onnx-fp32",
    )
    served = load_served_model(bundle, threads=1, name="fish")
    try:
        assert served.name == "fish" and served.raw_input
        logits, _ = served.predict(np.zeros((1, *served.input_shape), dtype=np.uint8))
        assert logits.shape == (1, 3)
    finally:
        served.close()


def test_describe_refuses_bad_folders(tmp_path: Path, onnx_artifact: Path) -> None:
    with pytest.raises(CheckpointError, match="not found"):
        describe_artifact(tmp_path / "missing")
    with pytest.raises(CheckpointError, match="neither manifest.json nor bundle.json"):
        describe_artifact(tmp_path)
    (tmp_path / "manifest.json").write_text("{broken")
    with pytest.raises(CheckpointError, match="cannot read"):
        describe_artifact(tmp_path)
    (tmp_path / "manifest.json").write_text(json.dumps({"format": "onnx-fp99", "artifact": "model.onnx"}))
    with pytest.raises(ConfigError, match="unknown format 'onnx-fp99'; valid choices: .*onnx-fp32"):
        describe_artifact(tmp_path)
    (tmp_path / "manifest.json").write_text(json.dumps({"format": "onnx-fp32", "artifact": "model.onnx"}))
    with pytest.raises(CheckpointError, match="is missing"):
        describe_artifact(tmp_path)
    (tmp_path / "manifest.json").write_text(json.dumps({"format": "onnx-fp32"}))
    with pytest.raises(CheckpointError, match="lacks artifact"):
        describe_artifact(tmp_path)
    (tmp_path / "manifest.json").unlink()
    (tmp_path / "bundle.json").write_text(json.dumps({"format": "something-else"}))
    with pytest.raises(CheckpointError, match="not a fishopt deploy bundle"):
        describe_artifact(tmp_path)


def test_model_names() -> None:
    assert check_model_name("onnxruntime-int8") == "onnxruntime-int8"
    for bad in ("", "a/b", "-x", "a b", "x" * 200):
        with pytest.raises(ConfigError, match="model name"):
            check_model_name(bad)


def test_decode_errors() -> None:
    with pytest.raises(ImageError, match="empty"):
        decode_image_bytes(b"", (8, 8))
    with pytest.raises(ImageError, match="cannot decode the image") as info:
        decode_image_bytes(b"definitely not an image", (8, 8))
    assert not info.value.too_large
    data = jpeg_bytes((40, 60))
    with pytest.raises(ImageError, match="cannot decode"):
        decode_image_bytes(data[: len(data) // 2], (8, 8))  # truncated JPEG
    with pytest.raises(ImageError, match="2,400 pixels") as info:
        decode_image_bytes(data, (8, 8), max_pixels=1000)
    assert info.value.too_large
    out = decode_image_bytes(data, (20, 24))
    assert out.shape == (3, 20, 24) and out.dtype == np.uint8
