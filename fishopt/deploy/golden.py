"""Test-split data for a bundle: reference outputs, golden images and the accuracy of the bundled model.

Everything here uses the checkpoint's TEST split only. Images are the decode cache's uint8 images at the
load size (``fit_to`` of the decoded file), which is exactly what the bundle's graph takes, so the reference
(the checkpoint through :meth:`fishopt.checkpoint.LoadedCheckpoint.logits`) and the bundle see the same pixels.
"""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path
from typing import Any

import numpy as np

from fishopt.checkpoint import LoadedCheckpoint, SplitImages
from fishopt.errors import DataError
from fishopt.io import file_sha256

GOLDEN_DIR = "golden"
GOLDEN_JSON = "golden.json"


def load_test_set(ckpt: LoadedCheckpoint, data: str | os.PathLike[str] | None = None) -> SplitImages:
    """The checkpoint's whole test part (a bundle's golden data and its accuracy check).

    Raises:
        DataError: If the data is not found, does not match the checkpoint's classes, or the split has no test part.
        SplitError: If the split file is missing or its hash differs.
    """
    if not ckpt.split.paths("test"):
        raise DataError("the checkpoint's test split is empty; a bundle needs test images for its golden data")
    return ckpt.split_images("test", data=data)


def pick_golden(logits: np.ndarray, labels: np.ndarray, per_class: int = 1) -> list[int]:
    """Indices of golden images: per class, the correctly classified ones with the clearest top-1 margin.

    A clear margin keeps top-1 stable under FP16/INT8 noise, so a top-1 mismatch on the device means a real
    fault. Classes the reference gets wholly wrong contribute their clearest image anyway.
    """
    ordered = np.sort(logits, axis=1)
    margin = ordered[:, -1] - ordered[:, -2] if logits.shape[1] > 1 else ordered[:, -1]
    correct = logits.argmax(1) == labels
    picks: list[int] = []
    for cls in np.unique(labels):
        members = np.flatnonzero(labels == cls)
        ranked = sorted(members, key=lambda i: (not correct[i], -margin[i], i))
        picks.extend(int(i) for i in ranked[:per_class])
    return picks


def _slug(name: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-") or "class"


def write_golden(
    folder: Path,
    test: SplitImages,
    picks: list[int],
    reference: np.ndarray,
    artifact: np.ndarray,
    class_names: list[str],
) -> dict[str, Any]:
    """Copy the golden image files into ``folder/golden`` and return the content of ``golden.json``.

    Args:
        folder: The bundle folder being built.
        test: The test set.
        picks: Indices into the test set.
        reference: Reference (checkpoint) logits of the whole test set.
        artifact: The bundled model's logits (onnxruntime on the build machine) of the whole test set.
        class_names: The class map.
    """

    (folder / GOLDEN_DIR).mkdir()
    items = []
    for n, i in enumerate(picks):
        source = test.root / test.paths[i]
        dest = folder / GOLDEN_DIR / f"{n:02d}_{_slug(class_names[int(test.labels[i])])}{source.suffix.lower()}"
        shutil.copyfile(source, dest)
        items.append(
            {
                "file": dest.relative_to(folder).as_posix(),
                "sha256": file_sha256(dest),
                "source": test.paths[i],
                "label": class_names[int(test.labels[i])],
                "reference_label": class_names[int(reference[i].argmax())],
                "reference_logits": [float(v) for v in reference[i]],
                "artifact_logits": [float(v) for v in artifact[i]],
            }
        )
    return {
        "about": "reference_logits: the fishopt checkpoint (PyTorch, FP32) on these files; artifact_logits: this "
        "bundle's model on onnxruntime (CPU) on the build machine",
        "class_names": list(class_names),
        "images": items,
    }
