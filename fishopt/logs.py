"""Logging helpers: keep third-party toolkits' progress output out of the user's terminal."""

from __future__ import annotations

import contextlib
import io
import logging
from collections.abc import Iterator


@contextlib.contextmanager
def quiet(*loggers: str, level: int = logging.WARNING, stdout: bool = False) -> Iterator[None]:
    """Raise the level of the named loggers (and optionally swallow stdout) while the block runs.

    Args:
        loggers: Logger names, e.g. ``"neural_compressor"`` or ``"onnxscript"``.
        level: The level they get meanwhile (messages below it are dropped).
        stdout: Also drop what the block prints to stdout (toolkits that ``print`` their progress).
    """
    handles = [logging.getLogger(name) for name in loggers]
    levels = [h.level for h in handles]
    for handle in handles:
        handle.setLevel(level)
    try:
        with contextlib.redirect_stdout(io.StringIO()) if stdout else contextlib.nullcontext():
            yield
    finally:
        for handle, old in zip(handles, levels, strict=True):
            handle.setLevel(old)
