"""Fake registry entries for benchmark tests: a runtime that crashes, a builder that crashes."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from fishopt.artifacts.registry import Format
from fishopt.backends.torch.runtime import TorchEagerRuntime


class CrashingRuntime(TorchEagerRuntime):
    """Loads like the eager runtime; every call after the first ``ok_calls`` raises."""

    ok_calls = 10_000

    def __call__(self, batch: np.ndarray) -> np.ndarray:
        type(self).ok_calls -= 1
        if type(self).ok_calls < 0:
            raise RuntimeError("fake backend crashed")
        return super().__call__(batch)


def build_crash(ckpt, workdir: Path, meta: dict, config) -> Path:
    """A builder that fails."""
    raise RuntimeError("fake builder exploded")


def fake_format(name: str, **kw) -> Format:
    """A CPU format built by the real eager builder and run by the fake runtime unless overridden."""
    base = dict(
        name=name,
        backend="fake",
        precision="fp32",
        suffix=".pt",
        builder="fishopt.backends.torch.eager:build_torch_eager",
        runtime="fake_backend:CrashingRuntime",
        description="test only",
    )
    base.update(kw)
    return Format(**base)
