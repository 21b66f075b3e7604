"""Graph artifacts carry the penultimate embeddings as a second output, from the same inference as the logits.

Parametrized over the registry: every CPU format of the ONNX and OpenVINO backends must have the ``embeddings``
output (the drift monitor's MMD test reads it in serving); the other runtimes say they have none.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from fishopt.artifacts.registry import get_format, list_formats
from fishopt.checkpoint import load_checkpoint

CPU_FORMATS = [f for f in list_formats() if not f.needs_gpu]


def _available(fmt) -> None:
    import importlib.util

    missing = [m for m in fmt.requires if importlib.util.find_spec(m) is None]
    if missing:
        pytest.skip(f"{fmt.name} needs {', '.join(missing)}")


@pytest.mark.parametrize("name", [f.name for f in CPU_FORMATS])
def test_every_cpu_format_outputs_the_embeddings(name: str, built, trained_tiny) -> None:
    fmt = get_format(name)
    _available(fmt)
    result = built(name)
    runtime = fmt.load_runtime().load(result.artifact, threads=1)
    ckpt = load_checkpoint(trained_tiny)
    x = torch.randn(5, 3, *ckpt.meta["input_size"], generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        ref = ckpt.model.eval().forward_features(x).flatten(1).numpy()
    assert runtime.has_embeddings
    if name != "torch-eager-fp32":  # the checkpoint itself: forward_features, no graph
        assert runtime.meta["outputs"] == ["logits", "embeddings"]
    logits, emb = runtime.outputs(x.numpy())
    np.testing.assert_allclose(logits, runtime(x.numpy()), rtol=0, atol=1e-6)  # the same inference
    assert emb is not None and emb.shape == ref.shape and emb.dtype == np.float32
    if fmt.precision == "fp32":
        np.testing.assert_allclose(emb, ref, atol=1e-4, rtol=1e-4)
    else:  # fp16/bf16 rounding, INT8 quantization: the same features, up to their noise
        assert np.corrcoef(emb.ravel(), ref.ravel())[0, 1] > 0.9


def test_a_graph_without_the_output_says_so(built, trained_tiny, tmp_path) -> None:
    """An artifact built before graphs carried the embeddings: logits only, and ``outputs`` says ``None``."""
    pytest.importorskip("onnxruntime")
    from fishopt.backends.onnx.export import export_onnx, wrap_for_export
    from fishopt.backends.onnx.graph import save_onnx
    from fishopt.backends.onnx.runtime import OnnxRuntime

    meta = dict(OnnxRuntime.load(built("onnx-fp32").artifact).meta)
    module, example, facts = wrap_for_export(load_checkpoint(trained_tiny))
    path = tmp_path / "old.onnx"
    save_onnx(export_onnx(module, example, path), path, {**meta, **facts})
    runtime = OnnxRuntime.load(path, threads=1)
    x = np.zeros((2, 3, *meta["input_size"]), np.float32)
    logits, emb = runtime.outputs(x)
    assert facts["outputs"] == ["logits"] and not runtime.has_embeddings and emb is None
    np.testing.assert_array_equal(logits, runtime(x))
