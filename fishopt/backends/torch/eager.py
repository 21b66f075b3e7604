"""The reference "artifact": the checkpoint itself (``model.pt``) plus its metadata sidecar."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

from fishopt.artifacts.build import BuildOutput
from fishopt.artifacts.config import NoOptions
from fishopt.artifacts.metadata import write_sidecar
from fishopt.checkpoint import LoadedCheckpoint


def build_torch_eager(ckpt: LoadedCheckpoint, workdir: Path, meta: dict[str, Any], config: NoOptions) -> BuildOutput:
    """Builder of ``torch-eager-fp32``: copy the checkpoint as ``model.pt`` and write ``model.pt.json``."""
    dest = Path(workdir) / "model.pt"
    shutil.copyfile(ckpt.path, dest)
    facts = {"raw_input": False, "dynamic_batch": True, "batch_size": None}
    write_sidecar(dest, {**meta, **facts})
    return BuildOutput(dest, facts)
