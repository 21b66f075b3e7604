"""The fast mode of a model with a frozen backbone: embeddings computed once per image, the head trained on them.

A pretrained backbone that is not trained gives the same embedding for an image every time, so it is computed
once per image and cached on disk like the decoded images, keyed by the image's content hash and by a digest
of everything that changes the embedding (the backbone's weights, the input and load sizes, the normalization
and the view). Training the classifier head on cached embeddings takes seconds; a later run with the same
backbone and data reads them back.

Views: ``center`` is the evaluation transform (center crop); ``flips`` adds the horizontally, vertically and
doubly flipped center crop (the data set's own copies are flips and rotations of each photo, so flips are
label-preserving here), four embeddings per training image.

The head is trained like the full model (selection on validation balanced accuracy, early stopping, then a
refit on train + val for the selected number of epochs; the test part is never trained on or selected on).
"""

from __future__ import annotations

import copy
import hashlib
import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from fishopt.data.cache import cache_dir
from fishopt.data.preprocess import eval_transform
from fishopt.io import atomic_write, file_sha256
from fishopt.training.accel import openvino_cpu
from fishopt.training.optim import warmup_cosine

log = logging.getLogger(__name__)

VIEWS = ("center", "flips")


def backbone_digest(model: nn.Module, meta: dict[str, Any], view: str) -> str:
    """A digest of what determines an embedding: backbone weights (not the head), sizes, normalization, view."""
    digest = hashlib.sha256()
    head = {id(p) for p in head_parameters(model)}
    for name, tensor in sorted(model.state_dict(keep_vars=True).items()):
        if id(tensor) in head:
            continue
        digest.update(name.encode())
        digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    digest.update(
        repr((list(meta["input_size"]), list(meta["load_size"]), list(meta["mean"]), list(meta["std"]), view)).encode()
    )
    return digest.hexdigest()


def head_parameters(model: nn.Module) -> list[nn.Parameter]:
    """The parameters that train when the backbone is frozen."""
    return [p for p in model.parameters() if p.requires_grad]


def _views(x: torch.Tensor, view: str) -> list[torch.Tensor]:
    if view == "center":
        return [x]
    return [x, x.flip(-1), x.flip(-2), x.flip(-1).flip(-2)]


@torch.no_grad()
def embed(
    model: nn.Module, images: torch.Tensor, meta: dict[str, Any], view: str = "center", batch_size: int = 64
) -> torch.Tensor:
    """Embeddings (float32, (N, V, D)) of uint8 images at the load size through the evaluation transform.

    On a CPU with OpenVINO the backbone runs through it in f32 (:func:`fishopt.training.accel.openvino_cpu`,
    about 10x faster than PyTorch eager on two cores; the embeddings agree to float rounding).
    """
    model.eval()
    fast = openvino_cpu(model, meta["input_size"], features=True) if len(images) >= 2 * batch_size else None

    def features(x: torch.Tensor) -> torch.Tensor:
        if fast is not None:
            return torch.from_numpy(fast(x.numpy()))
        return model.forward_features(x.contiguous(memory_format=torch.channels_last))

    out = []
    for i in range(0, len(images), batch_size):
        x = eval_transform(images[i : i + batch_size], meta["input_size"], meta["mean"], meta["std"])
        out.append(torch.stack([features(v) for v in _views(x, view)], dim=1).float())
    return torch.cat(out) if out else torch.empty(0, len(_views(torch.empty(0), view)), 0)


def cached_embeddings(
    model: nn.Module,
    files: Sequence[Path],
    images: torch.Tensor,
    meta: dict[str, Any],
    view: str = "center",
    cache: str | os.PathLike[str] | None = None,
) -> torch.Tensor:
    """Embeddings of ``images`` (decoded from ``files``), computed only for images not cached yet.

    Layout: ``<cache>/embeddings/<digest[:16]>/<sha256[:2]>/<sha256>.npy`` (float32 (V, D) per image).
    A corrupt entry is computed again.
    """
    root = cache_dir(cache) / "embeddings" / backbone_digest(model, meta, view)[:16]
    entries = [root / (h := file_sha256(f))[:2] / f"{h}.npy" for f in files]
    out: list[torch.Tensor | None] = [None] * len(entries)
    todo = []
    for i, entry in enumerate(entries):
        try:
            out[i] = torch.from_numpy(np.load(entry)) if entry.is_file() else None
        except (OSError, ValueError, EOFError):
            out[i] = None
        if out[i] is None:
            todo.append(i)
    if todo:
        log.info(
            "computing %d embedding(s) of %s (%s view; %d cached)",
            len(todo),
            type(model).__name__,
            view,
            len(entries) - len(todo),
        )
        fresh = embed(model, images[todo], meta, view)
        for i, vec in zip(todo, fresh, strict=True):
            array = vec.numpy()
            atomic_write(entries[i], lambda tmp, a=array: np.save(tmp.open("wb"), a))
            out[i] = vec
    return torch.stack(out) if out else torch.empty(0)


@dataclass
class HeadFit:
    """The result of training a head on embeddings.

    Attributes:
        epochs: Epochs trained.
        best_epoch: The epoch with the best validation balanced accuracy (0-based), when validated.
        best_score: That balanced accuracy.
        history: Per epoch: train loss and, when validated, val balanced accuracy.
    """

    epochs: int
    best_epoch: int | None
    best_score: float | None
    history: list[dict[str, float]]


def balanced_accuracy(logits: torch.Tensor, labels: torch.Tensor) -> float:
    """Mean per-class recall."""
    preds = logits.argmax(1)
    recalls = [(preds[labels == c] == c).float().mean() for c in labels.unique()]
    return float(torch.stack(recalls).mean()) if recalls else 0.0


def fit_head(
    model: nn.Module,
    train_x: torch.Tensor,
    train_y: torch.Tensor,
    cfg: dict[str, Any],
    *,
    val_x: torch.Tensor | None = None,
    val_y: torch.Tensor | None = None,
    epochs: int | None = None,
    seed: int = 0,
) -> HeadFit:
    """Train the head of ``model`` (``forward_head``) on embeddings, in place.

    Args:
        model: The model (its trainable parameters are the head).
        train_x: Embeddings (N, V, D); each view is one training example with the image's label.
        train_y: Labels (N,).
        cfg: The ``trainer`` group (``max_epochs``, ``lr``, ``weight_decay``, ``label_smoothing``,
            ``warmup_epochs``, ``patience``; ``batch_size`` from the data group is not used: 256).
        val_x: Validation embeddings (N, V, D); the center view (index 0) is scored each epoch.
        val_y: Validation labels.
        epochs: Train exactly this many epochs without validation (the refit).
        seed: Seed of the shuffling.

    Returns:
        The :class:`HeadFit`; with validation, the head holds the best epoch's weights.
    """
    torch.manual_seed(seed)
    x = train_x.reshape(-1, train_x.shape[-1])
    y = train_y.repeat_interleave(train_x.shape[1])
    params = head_parameters(model)
    total_epochs = int(cfg["max_epochs"])
    run_epochs = epochs if epochs is not None else total_epochs
    batch = 256
    steps_per_epoch = max(1, (len(x) + batch - 1) // batch)
    decay = [p for p in params if p.ndim > 1]
    groups = [
        {"params": decay, "weight_decay": float(cfg["weight_decay"])},
        {"params": [p for p in params if p.ndim <= 1], "weight_decay": 0.0},
    ]
    opt = torch.optim.AdamW([g for g in groups if g["params"]], lr=float(cfg["lr"]))
    total = steps_per_epoch * total_epochs
    warmup = int(steps_per_epoch * float(cfg.get("warmup_epochs", 0)))
    sched = torch.optim.lr_scheduler.LambdaLR(opt, warmup_cosine(total, min(warmup, total - 1)))
    smoothing = float(cfg.get("label_smoothing", 0.0))
    patience = int(cfg.get("patience", 10))
    generator = torch.Generator().manual_seed(seed)
    history: list[dict[str, float]] = []
    best: tuple[float, int, dict[str, torch.Tensor]] | None = None
    for epoch in range(run_epochs):
        model.train()
        order = torch.randperm(len(x), generator=generator)
        losses = []
        for i in range(0, len(x), batch):
            idx = order[i : i + batch]
            loss = F.cross_entropy(model.forward_head(x[idx]), y[idx], label_smoothing=smoothing)
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
            losses.append(loss.item())
        row = {"epoch": epoch, "train_loss": float(np.mean(losses))}
        if val_x is not None and val_y is not None and epochs is None:
            model.eval()
            with torch.no_grad():
                score = balanced_accuracy(model.forward_head(val_x[:, 0]), val_y)
            row["val_bacc"] = score
            if best is None or score > best[0]:
                best = (score, epoch, {k: v.detach().clone() for k, v in model.state_dict().items()})
            elif epoch - best[1] >= patience:
                history.append(row)
                break
        history.append(row)
    model.eval()
    if best is not None:
        model.load_state_dict(best[2])
        return HeadFit(len(history), best[1], best[0], history)
    return HeadFit(len(history), None, None, history)


def fresh_head(model: nn.Module, seed: int) -> nn.Module:
    """A copy of ``model`` whose trainable (head) parameters are re-initialized (seeded) the way the model did."""
    torch.manual_seed(seed)
    clone = copy.deepcopy(model)
    for module in clone.modules():
        if any(p.requires_grad for p in module.parameters(recurse=False)) and hasattr(module, "reset_parameters"):
            module.reset_parameters()
    return clone
