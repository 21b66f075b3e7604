"""fishopt: train, optimize, export and benchmark an image classifier for the Kaggle fish dataset.

Importing :mod:`fishopt` is cheap: it does not import torch runtimes such as onnxruntime,
openvino, neural_compressor or tensorrt. Those are imported inside the functions that need them.
"""

from __future__ import annotations

__version__ = "0.1.0"

__all__ = ["__version__"]
