"""Model registry: ``@register_model`` adds a factory with what the model needs from the data pipeline.

Each entry declares its config dataclass (the valid config keys), its default load and input sizes, its input
normalization (fixed constants for pretrained weights, or ``None``: the train split's statistics), a tiny config
for tests, and the optional modules it needs. Training reads the sizes and normalization from here, the
checkpoint stores them, and everything downstream follows the checkpoint.

Every registered model implements ``forward_features(x) -> (N, D)`` (the penultimate embedding) and
``forward_head(z) -> logits``, with ``forward(x) == forward_head(forward_features(x))``.
"""

from __future__ import annotations

import dataclasses
import fnmatch
import importlib.util
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from torch import nn

from fishopt.errors import ConfigError, MissingDependencyError, unknown_choice


@dataclass(frozen=True)
class ModelInfo:
    """A registered model.

    Attributes:
        name: Registry name.
        factory: ``factory(config) -> nn.Module``.
        config: Dataclass of the factory's config; its fields are the valid config keys.
        input_size: Default model input (H, W).
        load_size: Default decode size (H, W) the input is center cropped from.
        mean: Fixed normalization mean on the [0, 1] scale, or ``None`` for the train split's statistics.
        std: Fixed normalization std (with ``mean``).
        tiny: Config overrides of a tiny, randomly initialized model of the same shape family (for tests).
        requires: Importable modules the model needs.
        extra: The pip extra that installs them.
        description: One line for help texts.
    """

    name: str
    factory: Callable[[Any], nn.Module]
    config: type
    input_size: tuple[int, int]
    load_size: tuple[int, int]
    mean: tuple[float, float, float] | None = None
    std: tuple[float, float, float] | None = None
    tiny: dict[str, Any] = field(default_factory=dict)
    requires: tuple[str, ...] = ()
    extra: str | None = None
    description: str = ""

    def check_available(self) -> None:
        """Raise :class:`MissingDependencyError` (naming the extra) if a required module is missing."""
        missing = [m for m in self.requires if importlib.util.find_spec(m) is None]
        if missing:
            raise MissingDependencyError(
                f"model {self.name!r} needs {', '.join(missing)}; install it with: pip install 'fishopt[{self.extra}]'"
            )


_MODELS: dict[str, ModelInfo] = {}


def register_model(
    name: str,
    config: type,
    *,
    input_size: tuple[int, int],
    load_size: tuple[int, int],
    mean: tuple[float, float, float] | None = None,
    std: tuple[float, float, float] | None = None,
    tiny: dict[str, Any] | None = None,
    requires: tuple[str, ...] = (),
    extra: str | None = None,
    description: str = "",
) -> Callable[[Callable[..., nn.Module]], Callable[..., nn.Module]]:
    """Register a model factory under ``name`` (see :class:`ModelInfo` for the arguments).

    Raises:
        ValueError: If the name is registered already.
    """

    def wrap(factory: Callable[..., nn.Module]) -> Callable[..., nn.Module]:
        if name in _MODELS:
            raise ValueError(f"model {name!r} registered twice")
        _MODELS[name] = ModelInfo(
            name,
            factory,
            config,
            (int(input_size[0]), int(input_size[1])),
            (int(load_size[0]), int(load_size[1])),
            mean,
            std,
            dict(tiny or {}),
            tuple(requires),
            extra,
            description,
        )
        return factory

    return wrap


def list_models(pattern: str = "*") -> list[str]:
    """The sorted registered model names matching a shell-style ``pattern``."""
    return sorted(n for n in _MODELS if fnmatch.fnmatch(n, pattern))


def model_info(name: str) -> ModelInfo:
    """The registry entry of a model.

    Raises:
        ConfigError: If the name is unknown (lists the valid ones).
    """
    if name not in _MODELS:
        raise unknown_choice("model", name, _MODELS)
    return _MODELS[name]


def model_config(name: str, **cfg: Any) -> Any:
    """The validated config dataclass of model ``name`` with ``cfg`` applied.

    Raises:
        ConfigError: If the name is unknown or a key is not a config field.
    """
    config_cls = model_info(name).config
    fields = {f.name for f in dataclasses.fields(config_cls)}
    bad = sorted(set(cfg) - fields)
    if bad:
        raise ConfigError(
            f"unknown config key(s) {', '.join(bad)} for model {name!r}; valid keys: {', '.join(sorted(fields))}"
        )
    return config_cls(**cfg)


def create_model(name: str, **cfg: Any) -> nn.Module:
    """Build a registered model.

    Args:
        name: Registry name (see :func:`list_models`).
        **cfg: Config overrides (fields of the model's config dataclass).

    Raises:
        ConfigError: If the name or a config key is unknown, or a value is invalid.
        MissingDependencyError: If the model's optional modules are not installed (names the extra).
    """
    info = model_info(name)
    config = model_config(name, **cfg)
    info.check_available()
    return info.factory(config)
