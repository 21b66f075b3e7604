#!/usr/bin/env python3
"""Which NNCF settings keep a checkpoint's OpenVINO INT8 closest to its FP32, on the whole test split.

Quantizes the checkpoint with a few ``nncf.quantize`` settings (preset, bias correction, calibration size) and
prints top-1, the change against OpenVINO FP32 and the agreement with it. The table in
``docs/results/distillation.md`` (the EfficientNet-Lite0 teacher) came from this script.

Usage:
    python benchmarks/nncf_settings.py runs/teachers/<run>/model.pt [--data ../shared/data/fish]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("checkpoint", type=Path, help="model.pt written by fishopt train")
    parser.add_argument("--data", default=None, help="data root (default: $FISHOPT_DATA)")
    args = parser.parse_args(argv)

    import nncf
    import numpy as np
    import openvino as ov

    from fishopt.artifacts.calibration import calibration_images
    from fishopt.artifacts.config import GraphConfig
    from fishopt.backends.openvino.export import convert_openvino
    from fishopt.checkpoint import load_checkpoint

    ckpt = load_checkpoint(args.checkpoint)
    test = ckpt.split_images("test", data=args.data)
    x_test = test.model_input(ckpt.meta).numpy()
    labels = np.asarray(test.labels)
    core = ov.Core()
    workdir = Path(tempfile.mkdtemp())
    meta = {**ckpt.meta, "precision": "fp32", "format": "openvino-fp32"}

    def fp32_model() -> object:
        return convert_openvino(ckpt, workdir, meta, GraphConfig())[0]

    def logits(model: object) -> np.ndarray:
        compiled = core.compile_model(model, "CPU", {"INFERENCE_PRECISION_HINT": "f32"})
        return np.concatenate([compiled(x_test[i : i + 64])[0] for i in range(0, len(x_test), 64)])

    ref = logits(fp32_model()).argmax(1)
    base = 100 * float((ref == labels).mean())
    print(f"openvino-fp32: top-1 {base:.2f} on {len(labels)} test images")
    settings = {
        "PERFORMANCE, full bias correction, 256 images (default)": (nncf.QuantizationPreset.PERFORMANCE, False, 256),
        "MIXED, full bias correction, 256 images": (nncf.QuantizationPreset.MIXED, False, 256),
        "PERFORMANCE, full bias correction, 1024 images": (nncf.QuantizationPreset.PERFORMANCE, False, 1024),
        "PERFORMANCE, fast bias correction, 256 images": (nncf.QuantizationPreset.PERFORMANCE, True, 256),
    }
    for name, (preset, fast, size) in settings.items():
        calib = calibration_images(ckpt, size, 0, data=args.data).model_input(ckpt.meta).numpy()
        items = [np.ascontiguousarray(calib[i : i + 32], dtype=np.float32) for i in range(0, len(calib), 32)]
        start = time.perf_counter()
        quantized = nncf.quantize(
            fp32_model(), nncf.Dataset(items), subset_size=len(items), preset=preset, fast_bias_correction=fast
        )
        seconds = time.perf_counter() - start
        preds = logits(quantized).argmax(1)
        top1 = 100 * float((preds == labels).mean())
        agree = 100 * float((preds == ref).mean())
        print(f"{name}: top-1 {top1:.2f} ({top1 - base:+.2f}), agreement {agree:.1f} %, quantize {seconds:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
