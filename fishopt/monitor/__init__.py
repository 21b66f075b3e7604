"""Monitoring a deployed model: drift detection against a reference profile, and robustness to corruptions.

- :class:`DriftDetector` (sliding window, ``update`` / ``check`` -> :class:`DriftReport`) and
  :class:`ServerMonitor` (``observe`` / ``snapshot`` for a server's Prometheus gauges), in :mod:`.drift` and
  :mod:`.server`;
- the reference profile stored with an artifact: :class:`DriftProfile`, :func:`make_artifact_profile`,
  :func:`load_profile` (:mod:`.profile`);
- accuracy under ImageNet-C corruptions: :mod:`.robustness` (``run_robustness``, ``quick_robustness``).

Importing this package imports numpy only; scipy, torch and corrupt-tta are imported where they are used.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "DriftDetector": "fishopt.monitor.drift",
    "DriftReport": "fishopt.monitor.drift",
    "ServerMonitor": "fishopt.monitor.server",
    "DriftProfile": "fishopt.monitor.profile",
    "load_profile": "fishopt.monitor.profile",
    "save_profile": "fishopt.monitor.profile",
    "make_artifact_profile": "fishopt.monitor.profile",
    "run_robustness": "fishopt.monitor.robustness",
    "quick_robustness": "fishopt.monitor.robustness",
}

__all__ = [
    "DriftDetector",
    "DriftProfile",
    "DriftReport",
    "ServerMonitor",
    "load_profile",
    "make_artifact_profile",
    "quick_robustness",
    "run_robustness",
    "save_profile",
]


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'fishopt.monitor' has no attribute {name!r}")
