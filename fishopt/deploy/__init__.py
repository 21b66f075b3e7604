"""Deployment bundles: a self-contained folder that classifies images on an edge box and checks itself.

``build_bundle(checkpoint, target, precision, out)`` (:mod:`fishopt.deploy.bundle`) builds the model with
:func:`fishopt.artifacts.build.build`, then adds everything the device needs and nothing from fishopt: the model
(raw uint8 RGB in, logits and probabilities out), ``labels.json``, ``bundle.json``, the standalone programs
``infer.py``, ``verify.py`` and ``benchmark.py`` (numpy + Pillow + onnxruntime, or TensorRT), golden images
with the reference outputs, ``build_engine.sh`` for Jetson, a ``Dockerfile`` and a ``README.md``.

Importing this package is cheap: torch, onnx and onnxruntime are imported inside the functions that use them.
"""

from __future__ import annotations

from fishopt.deploy.targets import TARGETS, get_target

__all__ = ["TARGETS", "get_target"]
