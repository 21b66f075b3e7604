"""Model registry: ``@register_model`` adds a factory, ``create_model`` builds one by name."""

from __future__ import annotations

import dataclasses
import fnmatch
from collections.abc import Callable
from typing import Any

from torch import nn

from fishopt.errors import ConfigError, unknown_choice

_MODELS: dict[str, tuple[Callable[..., nn.Module], type]] = {}


def register_model(name: str, config: type) -> Callable[[Callable[..., nn.Module]], Callable[..., nn.Module]]:
    """Register a model factory under ``name``.

    Args:
        name: Registry name.
        config: Dataclass of the factory's config; its fields are the valid config keys.
    """

    def wrap(factory: Callable[..., nn.Module]) -> Callable[..., nn.Module]:
        _MODELS[name] = (factory, config)
        return factory

    return wrap


def list_models(pattern: str = "*") -> list[str]:
    """Return the sorted registered model names matching a shell-style ``pattern``."""
    return sorted(n for n in _MODELS if fnmatch.fnmatch(n, pattern))


def model_config(name: str, **cfg: Any) -> Any:
    """Return the validated config dataclass of model ``name`` with ``cfg`` applied.

    Raises:
        ConfigError: If the name is unknown or a key is not a config field.
    """
    if name not in _MODELS:
        raise unknown_choice("model", name, _MODELS)
    config_cls = _MODELS[name][1]
    fields = {f.name for f in dataclasses.fields(config_cls)}
    bad = sorted(set(cfg) - fields)
    if bad:
        raise ConfigError(f"unknown config key(s) {', '.join(bad)} for model {name!r}; valid keys: {', '.join(sorted(fields))}")
    return config_cls(**cfg)


def create_model(name: str, **cfg: Any) -> nn.Module:
    """Build a registered model.

    Args:
        name: Registry name (see :func:`list_models`).
        **cfg: Config overrides (fields of the model's config dataclass).

    Raises:
        ConfigError: If the name or a config key is unknown, or a value is invalid.
    """
    config = model_config(name, **cfg)
    return _MODELS[name][0](config)
