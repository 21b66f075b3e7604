from __future__ import annotations

import pytest

from fishopt.errors import ConfigError
from fishopt.training.config import compose_config, to_dict


def test_defaults_and_overrides() -> None:
    cfg = to_dict(compose_config(["trainer.max_epochs=3", "model.width=48", "augment=none"]))
    assert cfg["model"]["name"] == "baseline"
    assert cfg["trainer"]["max_epochs"] == 3 and cfg["model"]["width"] == 48
    assert cfg["augment"]["rotate"] == 0.0
    assert cfg["data"]["group_by"] == "cluster" and cfg["data"]["leaky_split"] is False


@pytest.mark.parametrize("override", ["trainer.nope=1", "augment=wild", "model.width"])
def test_bad_overrides(override: str) -> None:
    with pytest.raises(ConfigError, match="bad training override"):
        compose_config([override])
