#!/usr/bin/env python3
"""Check this bundle's runtime on this device against the reference outputs recorded when it was built.

Runs the golden images (golden/, real test images) through the same path as infer.py and compares with
golden.json: top-1 agreement must be 100 % and the largest |logit difference| at most the bundle's tolerance
for the runtime's precision. FP32/FP16 runtimes are compared with the reference model (the fishopt
checkpoint); an INT8 runtime with the INT8 model's own outputs on the build machine (its accuracy against the
reference was measured on the whole test split when the bundle was built: bundle.json "accuracy").

Usage:
    python3 verify.py [--runtime auto|onnxruntime|tensorrt] [--json]

Exit status: 0 pass, 1 mismatch, 2 the bundle is unusable (damaged model or golden file, missing engine, ...).
"""

from __future__ import annotations

import argparse
import json
import sys

import numpy as np

from infer import HERE, BundleError, ImageError, load_bundle, load_image, input_hw, open_model, sha256_of


def load_golden(bundle: dict) -> tuple[dict, list]:
    """golden.json and the golden image paths, after checking each image's SHA-256."""
    path = HERE / bundle["verify"]["golden"]
    try:
        golden = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise BundleError(f"cannot read {path} ({exc}); restore the bundle from its archive") from exc
    files = []
    for item in golden["images"]:
        image = HERE / item["file"]
        if not image.is_file() or sha256_of(image) != item["sha256"]:
            raise BundleError(f"golden image {image} is missing or changed; restore the bundle from its archive")
        files.append(image)
    return golden, files


def compare(golden: dict, logits: np.ndarray, tolerance: float, key: str = "reference_logits") -> dict:
    """Top-1 agreement and largest |logit difference| against the expected logits (``key`` in golden.json)."""
    reference = np.asarray([item[key] for item in golden["images"]], dtype=np.float32)
    scale = max(1.0, float(np.abs(reference).max()))
    agree = float(np.mean(reference.argmax(1) == logits.argmax(1)))
    max_diff = float(np.abs(reference - logits).max())
    return {
        "n": len(reference),
        "top1_agreement": agree,
        "max_logit_diff": max_diff,
        "allowed_logit_diff": tolerance * scale,
        "passed": agree >= 1.0 and max_diff <= tolerance * scale,
        "compared_with": key,
    }


def run(runtime: str) -> dict:
    """Verify the bundle with a runtime; return the result."""
    bundle = load_bundle()
    golden, files = load_golden(bundle)
    model = open_model(bundle, runtime)
    size = input_hw(bundle)
    logits, probs = [], []
    for path in files:  # one at a time: works with any batch dimension
        batch = load_image(path, size, pipeline="exact")[None]  # the golden logits come from the exact pixels
        shape0 = bundle["model"]["input"]["shape"][0]
        if isinstance(shape0, int) and shape0 > 1:
            batch = np.repeat(batch, shape0, axis=0)
        out_logits, out_probs = model(batch)
        logits.append(out_logits[0])
        probs.append(out_probs[0])
    logits, probs = np.stack(logits), np.stack(probs)
    rules = bundle["verify"]
    result = compare(golden, logits, float(rules["tolerance"][model.precision]), rules["compare_with"][model.precision])
    softmax = np.exp(logits - logits.max(1, keepdims=True))
    softmax /= softmax.sum(1, keepdims=True)
    result["max_prob_error"] = float(np.abs(softmax - probs).max())
    result["passed"] = result["passed"] and result["max_prob_error"] <= 1e-3
    result.update({"runtime": model.name, "runtime_version": model.version, "precision": model.precision})
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Check the runtime's outputs on the golden images.")
    parser.add_argument("--runtime", choices=("auto", "onnxruntime", "tensorrt"), default="auto",
                        help="auto: the TensorRT engine when ./build_engine.sh has built it, else onnxruntime")
    parser.add_argument("--json", action="store_true", help="print the result as one JSON object")
    args = parser.parse_args(argv)
    try:
        result = run(args.runtime)
    except (BundleError, ImageError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps(result))
    else:
        verdict = "PASS" if result["passed"] else "FAIL"
        print(f"{verdict}: {result['runtime']} {result['runtime_version']} ({result['precision']}) on "
              f"{result['n']} golden images: top-1 agreement {result['top1_agreement']:.0%}, max logit diff "
              f"{result['max_logit_diff']:.3g} (allowed {result['allowed_logit_diff']:.3g}), "
              f"max prob error {result['max_prob_error']:.2g}")
    return 0 if result["passed"] else 1


if __name__ == "__main__":
    sys.exit(main())
