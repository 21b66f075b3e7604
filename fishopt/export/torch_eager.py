"""The reference "artifact": the checkpoint itself (``model.pt``) plus its metadata sidecar."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

from fishopt.export.metadata import write_sidecar


def build_torch_eager(ckpt, workdir: Path, *, meta: dict[str, Any]) -> Path:
    """Copy the checkpoint into ``workdir`` as ``model.pt`` and write ``model.pt.json``.

    Args:
        ckpt: The loaded checkpoint.
        workdir: Empty output folder.
        meta: Artifact metadata (see :func:`fishopt.export.metadata.artifact_metadata`).

    Returns:
        The copied ``model.pt``.
    """
    dest = Path(workdir) / "model.pt"
    shutil.copyfile(ckpt.path, dest)
    write_sidecar(dest, meta)
    return dest
