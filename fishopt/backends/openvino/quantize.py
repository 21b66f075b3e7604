"""INT8 with OpenVINO: NNCF post-training quantization of the OpenVINO model.

The FP32 model comes from :func:`fishopt.backends.openvino.export.convert_openvino` (in memory); ``nncf.quantize`` inserts
FakeQuantize nodes calibrated on TRAIN images (min/max for activations, per-channel symmetric weights,
full bias correction) and the result is saved with ``compress_to_fp16=False`` (its weights are int8 anyway;
this keeps the few float constants FP32). Quantizing the OpenVINO model, not the torch module, avoids
NNCF's torch backend, which compiles a C++ extension on first use (~60 s).
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

import numpy as np

from fishopt.artifacts.build import BuildOutput
from fishopt.artifacts.calibration import calibration_images
from fishopt.artifacts.config import CalibratedConfig, GraphConfig
from fishopt.artifacts.metadata import set_openvino_metadata
from fishopt.backends.openvino.export import convert_openvino
from fishopt.checkpoint import LoadedCheckpoint

log = logging.getLogger(__name__)


def quantize_ov_model(model: Any, calib: np.ndarray, batch_size: int = 32) -> Any:
    """Quantize an ``openvino.Model`` with NNCF over a preprocessed float32 batch (N, 3, H, W).

    All N images are used (``subset_size`` counts dataset items, here batches; NNCF's default stops at
    300 items). On the fish model batches of 32 gave the same accuracy as batch 1 with a lower mean
    logit error (0.088 vs 0.116 on the test split). Full bias correction (``fast_bias_correction=False``)
    instead of NNCF's fast one: on the EMA-trained default model the fast one agreed with FP32 on only
    97.3 % of 256 test images (below the 98 % gate), the full one on 100 %.
    """
    import nncf

    items = [
        np.ascontiguousarray(calib[i : i + batch_size], dtype=np.float32) for i in range(0, len(calib), batch_size)
    ]
    return nncf.quantize(
        model,
        nncf.Dataset(items),
        subset_size=len(items),
        preset=nncf.QuantizationPreset.PERFORMANCE,
        fast_bias_correction=False,
    )


def count_fake_quantize(model: Any) -> int:
    """Number of FakeQuantize nodes in an ``openvino.Model``."""
    return sum(op.get_type_name() == "FakeQuantize" for op in model.get_ops())


def build_openvino_int8(
    ckpt: LoadedCheckpoint, workdir: Path, meta: dict[str, Any], config: CalibratedConfig
) -> BuildOutput:
    """Builder of ``openvino-int8``: NNCF on the converted FP32 model, ``workdir/model.xml`` (int8 weights in ``model.bin``)."""
    import nncf
    import openvino as ov

    start = time.perf_counter()
    calib = calibration_images(ckpt, config.calib_size, config.seed)
    model, facts = convert_openvino(
        ckpt, workdir, {**meta, "precision": "fp32", "format": "openvino-fp32"}, GraphConfig()
    )
    quantized = quantize_ov_model(model, calib.model_input(ckpt.meta).numpy())
    facts.update(
        weights="int8",
        inference_precision=None,
        quantization={
            "quantized": f"Conv and MatMul inputs and weights ({count_fake_quantize(quantized)} FakeQuantize nodes, "
            "per-channel weights)",
            "calibration": {"split": "train", "images": len(calib), "seed": config.seed},
            "quantize_seconds": round(time.perf_counter() - start, 2),
            "nncf_version": nncf.__version__,
        },
    )
    set_openvino_metadata(quantized, {**meta, **facts})
    path = Path(workdir) / "model.xml"
    ov.save_model(quantized, str(path), compress_to_fp16=False)
    return BuildOutput(path, facts)
