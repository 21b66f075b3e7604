"""``distill.teacher=auto``: reuse the default teacher trained on this split, or train it once.

The default teacher is ``model=efficientnet_lite0`` (ImageNet-pretrained EfficientNet-Lite0; see that preset for
its recipe) trained with the student's data settings, so both use the same split. It lives in
``<out_dir>/teachers/<key>/`` where ``key`` is a digest of the teacher's composed config and the split's hash:
a teacher is reused only for the same split and the same teacher recipe, and retrained when either changes.
"""

from __future__ import annotations

import hashlib
import json
import logging
from pathlib import Path
from typing import Any

from fishopt.checkpoint import load_checkpoint
from fishopt.errors import FishoptError
from fishopt.training.config import compose_config, to_dict

log = logging.getLogger(__name__)

TEACHER_PRESET = "efficientnet_lite0"
#: Data keys that decide the split (the teacher copies them from the student; its sizes are its own).
SPLIT_KEYS = ("root", "groups_file", "group_by", "leaky_split", "fractions", "split_seed", "split_file", "cache_dir")


def teacher_config(student: dict[str, Any]) -> dict[str, Any]:
    """The default teacher's resolved config for a student config: the preset, the student's data and seed."""
    overrides = [f"model={TEACHER_PRESET}", f"seed={student['seed']}", f"out_dir={student.get('out_dir') or 'runs'}"]
    for key in SPLIT_KEYS:
        value = student["data"].get(key)
        overrides.append(f"data.{key}={json.dumps(value) if value is not None else 'null'}")
    for key in ("accelerator", "devices", "threads", "progress_bar"):
        value = student["trainer"].get(key)
        overrides.append(f"trainer.{key}={json.dumps(value) if value is not None else 'null'}")
    return to_dict(compose_config(overrides))


def teacher_key(cfg: dict[str, Any], split_hash: str) -> str:
    """A digest of the teacher's recipe and the split (what the cached teacher must match)."""
    recipe = {k: v for k, v in cfg.items() if k not in ("out_dir", "run_name")}
    recipe["data"] = {k: v for k, v in cfg["data"].items() if k not in ("root", "cache_dir")}
    recipe["trainer"] = {k: v for k, v in cfg["trainer"].items() if k not in ("progress_bar", "threads")}
    text = json.dumps(recipe, sort_keys=True, default=str) + split_hash
    return hashlib.sha256(text.encode()).hexdigest()[:12]


def cached_teacher(cfg: dict[str, Any], split_hash: str) -> tuple[Path, bool]:
    """Where the default teacher of ``cfg`` (from :func:`teacher_config`) lives for this split, and whether a
    usable one is there already (same split hash; an unreadable one is retrained)."""
    key = teacher_key(cfg, split_hash)
    path = Path(cfg["out_dir"]) / "teachers" / f"{TEACHER_PRESET}-{key}" / "model.pt"
    if path.is_file():
        try:
            if load_checkpoint(path).meta["split"]["hash"] == split_hash:
                return path, True
        except FishoptError as exc:
            log.warning("the cached teacher %s cannot be used (%s); training it again", path, exc)
    return path, False
