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


@pytest.mark.parametrize(
    ("override", "match"),
    [
        ("trainer.nope=1", "unknown key trainer.nope; valid keys of trainer"),
        (
            "augment=wild",
            "unknown augment option 'wild' in augment=wild; valid choices \\(closest first\\): default, none",
        ),
        ("model.width", "bad training override .*missing EQUAL"),
    ],
)
def test_bad_overrides(override: str, match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        compose_config([override])


# -- issue 12, items 9 and 14: the composed config is checked against one schema per group ---------------------------


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("trainer.max_epochs=abc", "trainer.max_epochs='abc' is not valid: expected an integer"),
        ("trainer.max_epochs=-1", "trainer.max_epochs=-1 is not valid: expected >= 1"),
        ("trainer.max_epochs=2.5", "trainer.max_epochs=2.5 is not valid: expected an integer"),
        ("model.width=abc", "model.width='abc' is not valid: expected an integer"),
        ("model.pool=mean", "model.pool='mean' is not valid: expected 'max', 'avg' or 'none'"),
        ("trainer.optimizer=adam", "trainer.optimizer='adam' is not valid: expected 'adamw' or 'sgd'"),
        (
            "trainer.ema_decay=1.5",
            "trainer.ema_decay=1.5 is not valid: expected a decay in \\(0, 1\\), or null \\(off\\)",
        ),
        (
            "trainer.devices=abc",
            "trainer.devices='abc' is not valid: expected a number of devices >= 1, -1 \\(all\\), 'auto'",
        ),
        ("trainer.refit=maybe", "trainer.refit='maybe' is not valid: expected true or false"),
        ("data.input_size=[200,200]", "data.input_size=\\[200, 200\\] must fit inside data.load_size"),
        ("data.fractions=[0.5,0.5,0.5]", "must add up to 1"),
        ("augment.hflip=2", "augment.hflip=2 is not valid: expected <= 1"),
        ("seed=x", "seed='x' is not valid: expected an integer"),
        ("~trainer.lr", "trainer.lr is missing"),
    ],
)
def test_bad_values_name_the_key_the_value_and_what_is_allowed(override: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        compose_config([override])


@pytest.mark.parametrize("override", ["trainer.max_epochz=3", "+trainer.max_epochz=3", "++trainer.max_epochz=3"])
def test_unknown_key_is_an_error_with_or_without_plus(override: str) -> None:
    with pytest.raises(ConfigError) as info:
        compose_config([override])
    message = str(info.value)
    assert "unknown key trainer.max_epochz; valid keys of trainer (closest first): max_epochs, " in message
    assert "+trainer" not in message  # no advice to add a key that does not exist


@pytest.mark.parametrize("override", ["nosuch.key=1", "+nosuch.key=1", "+sead=1"])
def test_unknown_top_level_key_lists_the_top_level_keys_and_groups(override: str) -> None:
    with pytest.raises(ConfigError) as info:
        compose_config([override])
    valid = str(info.value).split("valid keys at the top level (closest first): ")[1].split(", ")
    assert sorted(valid) == ["augment", "data", "distill", "model", "out_dir", "run_name", "seed", "trainer"]
    if override == "+sead=1":
        assert valid[0] == "seed"


def test_every_problem_is_reported_at_once() -> None:
    with pytest.raises(ConfigError) as info:
        compose_config(["trainer.max_epochs=0", "model.width=0", "data.batch_size=x"])
    assert all(k in str(info.value) for k in ("trainer.max_epochs=0", "model.width=0", "data.batch_size='x'"))


def test_valid_values_pass() -> None:
    cfg = to_dict(
        compose_config(
            [
                "trainer.devices=[0,1]",
                "trainer.ema_decay=null",
                "trainer.lr=1",
                "trainer.limit_train_batches=0.5",
                "run_name=x",
                "data.limit_per_class=4",
            ]
        )
    )
    assert cfg["trainer"]["devices"] == [0, 1] and cfg["trainer"]["lr"] == 1


def test_a_new_group_or_model_brings_its_own_schema(monkeypatch) -> None:
    """How the distill group and a second model plug in: a schema each, registered by name."""
    from fishopt.training import config

    @config.register_model_schema("tiny")
    class TinySchema(config.GroupSchema):
        name: str
        pretrained: bool

    monkeypatch.setitem(config.MODEL_SCHEMAS, "tiny", TinySchema)
    base = to_dict(compose_config())
    config.validate_config({**base, "model": {"name": "tiny", "pretrained": True}})
    with pytest.raises(ConfigError, match="model.pretrained='yes' is not valid: expected true or false"):
        config.validate_config({**base, "model": {"name": "tiny", "pretrained": "yes"}})
    with pytest.raises(
        ConfigError, match="model.name='other' has no schema; valid models: baseline, efficientnet_lite0, tiny"
    ):
        config.validate_config({**base, "model": {"name": "other"}})
    monkeypatch.delitem(config.MODEL_SCHEMAS, "tiny")
