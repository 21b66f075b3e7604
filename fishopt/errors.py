"""Error types raised by fishopt.

Every error is a subclass of :class:`FishoptError` and of ``ValueError`` (bad input the user can fix)
or ``RuntimeError`` (the environment or a computation failed). Messages say what is wrong and how to
fix it; where the problem is a choice, they list the valid choices.
"""

from __future__ import annotations

from collections.abc import Iterable


class FishoptError(Exception):
    """Base class of all fishopt errors."""


class DataError(FishoptError, ValueError):
    """The dataset is missing, malformed or inconsistent."""


class SplitError(FishoptError, ValueError):
    """A split file is missing, corrupt or does not match the data."""


class ConfigError(FishoptError, ValueError):
    """An unknown name, option or configuration key."""


class CheckpointError(FishoptError, ValueError):
    """A checkpoint is missing, corrupt or does not match what it is used with."""


class OutputError(FishoptError, ValueError):
    """An output path exists already or cannot be written."""


class MissingDependencyError(FishoptError, RuntimeError):
    """An optional dependency is not installed."""


class BackendUnavailableError(FishoptError, RuntimeError):
    """A backend cannot run on this machine (no GPU, no TensorRT, ...)."""


class ParityError(FishoptError, RuntimeError):
    """An artifact disagrees with the reference model beyond its tolerance."""


class DownloadError(FishoptError, RuntimeError):
    """A download failed (offline, missing credentials, bad archive)."""


def unknown_choice(kind: str, name: object, choices: Iterable[str]) -> ConfigError:
    """Build a :class:`ConfigError` for an unknown choice, listing the valid ones.

    Args:
        kind: What was chosen, e.g. ``"model"`` or ``"backend"``.
        name: The value that was given.
        choices: The valid values.

    Returns:
        The error, ready to raise.
    """
    valid = ", ".join(sorted(choices)) or "(none)"
    return ConfigError(f"unknown {kind} {name!r}; valid choices: {valid}")


def require(module: str, extra: str) -> None:
    """Raise :class:`MissingDependencyError` unless ``module`` can be imported.

    Args:
        module: Importable module name, e.g. ``"onnxruntime"``.
        extra: The fishopt extra that installs it, e.g. ``"onnx"``.

    Raises:
        MissingDependencyError: If the module is not installed.
    """
    import importlib.util

    if importlib.util.find_spec(module) is None:
        raise MissingDependencyError(f"{module} is not installed; install it with: pip install 'fishopt[{extra}]'")
