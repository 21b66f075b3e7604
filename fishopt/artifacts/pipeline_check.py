"""Which decode pipeline keeps a checkpoint's answers: the gate in front of every fast input path.

:func:`pipeline_agreement` decodes image files through a pipeline of :func:`fishopt.data.decode.decode_and_fit`
(``turbo``: DCT scaling and the uint8 resize; ``fast``: DCT scaling and the float resize; ``full``: the float
resize only) and through today's pipeline (full decode + torch ``fit_to``, the decode cache's pixels), runs the
checkpoint on both and compares: a pipeline is taken only when top-1 agreement is at least :data:`MIN_AGREEMENT`
and top-1 accuracy moves by at most :data:`MAX_DELTA_POINTS`. :func:`choose_pipeline` tries ``turbo``, ``fast``,
then ``full``, and falls back to ``exact`` (today's pixels). The benchmark gates each camera size with it; a deployment bundle gates the pipeline its
``infer.py`` uses.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from fishopt.data import decode
from fishopt.data.cache import cache_dir
from fishopt.data.decode import decode_and_fit, decode_rgb
from fishopt.io import atomic_write, file_sha256

MIN_AGREEMENT = 0.995
MAX_DELTA_POINTS = 0.2
#: Version of the agreement method (part of its cache key).
AGREEMENT_METHOD = 3


def pipeline_agreement(
    ckpt: Any,
    files: Sequence[Path],
    labels: Any,
    load_size: Sequence[int],
    batch: int = 64,
    cache: str | Path | None = None,
    pipeline: str = "fast",
) -> dict:
    """Top-1 of the checkpoint on ``files`` through ``pipeline`` and through today's pipeline, and their agreement.

    The verdict is cached under the decode cache folder (``<cache>/pipeline-agreement``), keyed by the checkpoint's
    and the files' content and the source of :mod:`fishopt.data.decode` (a changed decoder is measured again);
    ``cache=False`` skips the cache.

    Returns:
        ``{"pipeline", "n", "agreement", "top1_fast", "top1_today", "delta_points", "taken", "scales": {k/8: count},
        "rule"}`` (``top1_fast``: top-1 through ``pipeline``); ``taken`` is the verdict for these files.
    """
    import hashlib
    import json

    key = hashlib.sha256()
    for part in (
        f"method {AGREEMENT_METHOD}",
        f"pipeline {pipeline}",
        file_sha256(ckpt.path),
        Path(decode.__file__).read_bytes(),
        repr(list(load_size)),
        *(file_sha256(f) for f in files),
    ):
        key.update(part if isinstance(part, bytes) else str(part).encode())
    entry = cache_dir(None if cache is False else cache) / "pipeline-agreement" / f"{key.hexdigest()}.json"
    if cache is not False and entry.is_file():
        return json.loads(entry.read_text())
    result = _agreement(ckpt, files, labels, load_size, batch, pipeline)
    if cache is not False:
        atomic_write(entry, lambda tmp: tmp.write_text(json.dumps(result)))
    return result


def _agreement(
    ckpt: Any, files: Sequence[Path], labels: Any, load_size: Sequence[int], batch: int, pipeline: str = "fast"
) -> dict:
    import torch

    from fishopt.data.preprocess import fit_to

    load = tuple(int(v) for v in load_size)
    preds: dict[str, list[np.ndarray]] = {"fast": [], "today": []}
    scales: dict[str, int] = {}
    for i in range(0, len(files), batch):
        chunk = files[i : i + batch]
        fast, today = [], []
        for path in chunk:
            data = Path(path).read_bytes()
            decoded = decode_rgb(data, load, fast=pipeline in decode.DCT_PIPELINES)
            scales[f"{decoded.scale}/8"] = scales.get(f"{decoded.scale}/8", 0) + 1
            fast.append(torch.from_numpy(decode_and_fit(data, load, pipeline=pipeline)))
            full = decode_rgb(data, None, fast=False).rgb  # the same pixels as Pillow's full decode
            today.append(fit_to(torch.from_numpy(np.ascontiguousarray(full.transpose(2, 0, 1))), load))
        today_pred = np.asarray(ckpt.logits(torch.stack(today))).argmax(1)
        fast_pred = today_pred.copy()  # identical pixels give the same answer: run the model only where they differ
        differ = [j for j, (a, b) in enumerate(zip(fast, today, strict=True)) if not torch.equal(a, b)]
        if differ:
            fast_pred[differ] = np.asarray(ckpt.logits(torch.stack([fast[j] for j in differ]))).argmax(1)
        preds["fast"].append(fast_pred)
        preds["today"].append(today_pred)
    fast_p, today_p = np.concatenate(preds["fast"]), np.concatenate(preds["today"])
    y = np.asarray(labels)[: len(fast_p)]
    agreement = float((fast_p == today_p).mean()) if len(y) else 1.0
    top1_fast, top1_today = float((fast_p == y).mean()), float((today_p == y).mean())
    delta = round(100.0 * (top1_fast - top1_today), 3)
    return {
        "pipeline": pipeline,
        "n": int(len(y)),
        "agreement": round(agreement, 6),
        "top1_fast": round(top1_fast, 6),
        "top1_today": round(top1_today, 6),
        "delta_points": delta,
        "scales": scales,
        "taken": bool(agreement >= MIN_AGREEMENT and abs(delta) <= MAX_DELTA_POINTS),
        "rule": f"agreement >= {MIN_AGREEMENT:.1%} and |top-1 change| <= {MAX_DELTA_POINTS} points",
    }


def choose_pipeline(
    ckpt: Any, files: Sequence[Path], labels: Any, load_size: Sequence[int], cache: str | Path | None = None
) -> tuple[str, list[dict]]:
    """The fastest pipeline of :func:`fishopt.data.decode.decode_and_fit` that keeps the checkpoint's answers here.

    Tries ``turbo``, ``fast`` and ``full`` in that order and takes the first whose agreement check passes, else
    ``exact`` (today's pixels, nothing to check). ``full`` is not checked when no file was DCT-scaled: it would
    decode and resize exactly as ``fast`` did.

    Returns:
        ``(pipeline, checks)``: the checks that ran, in order (the last one is the taken pipeline's, unless
        ``exact`` was taken).
    """
    checks: list[dict] = []
    for name in ("turbo", "fast", "full"):
        if name == "full" and set(checks[-1]["scales"]) <= {"8/8"}:
            break
        check = pipeline_agreement(ckpt, files, labels, load_size, cache=cache, pipeline=name)
        checks.append(check)
        if check["taken"]:
            return name, checks
    return "exact", checks
