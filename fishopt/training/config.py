"""Compose the training configuration with Hydra's compose API (no working-directory changes)."""

from __future__ import annotations

from collections.abc import Sequence

from fishopt.errors import ConfigError

CONFIG_MODULE = "fishopt.training.conf"


def compose_config(overrides: Sequence[str] = ()):
    """Compose ``config.yaml`` with Hydra overrides such as ``trainer.max_epochs=30``.

    Returns:
        An OmegaConf ``DictConfig`` in struct mode (unknown keys are errors).

    Raises:
        ConfigError: If an override names an unknown key or group option, or is malformed.
    """
    from hydra import compose, initialize_config_module
    from hydra.core.global_hydra import GlobalHydra
    from hydra.errors import HydraException
    from omegaconf.errors import OmegaConfBaseException

    GlobalHydra.instance().clear()
    try:
        with initialize_config_module(config_module=CONFIG_MODULE, version_base="1.3"):
            return compose(config_name="config", overrides=list(overrides))
    except (HydraException, OmegaConfBaseException) as exc:
        raise ConfigError(
            f"bad training override in {list(overrides)}: {exc}. Keys look like trainer.max_epochs=30 or "
            "model.width=48; groups: data, model, augment (default|none), trainer"
        ) from exc
    finally:
        GlobalHydra.instance().clear()


def to_dict(cfg) -> dict:
    """Resolve a DictConfig to plain containers."""
    from omegaconf import OmegaConf

    return OmegaConf.to_container(cfg, resolve=True)
