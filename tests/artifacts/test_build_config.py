"""Build options: one config dataclass per format family, validated with the valid choices in the message,
serialized into the artifact's ``recipe``; the quantize table is derived from the registry."""

from __future__ import annotations

import dataclasses
import json

import pytest

from fishopt.artifacts.config import IncInt8Config, OrtInt8Config, make_config, recipe
from fishopt.artifacts.registry import get_format, list_formats, quantize_format, quantize_formats
from fishopt.errors import ConfigError


def test_config_round_trips_through_json():
    config = IncInt8Config(calib_size=64, seed=2, max_drop=0.5)
    data = json.loads(json.dumps(recipe(config, format="inc-int8", precision="int8")))
    assert data["format"] == "inc-int8" and data["precision"] == "int8"
    fields = {f.name for f in dataclasses.fields(IncInt8Config)}
    assert IncInt8Config(**{k: v for k, v in data.items() if k in fields}) == config


@pytest.mark.parametrize(
    ("method", "toolkit", "message"),
    [
        ("qat", "torch", "valid choices: dynamic, static"),
        ("static", "tflite", "valid choices: inc, onnxruntime, openvino, torch"),
        ("dynamic", "openvino", "valid combinations: .*--method static --backend openvino"),
    ],
)
def test_bad_combinations_list_the_valid_choices(method, toolkit, message):
    with pytest.raises(ConfigError, match=message):
        quantize_format(method, toolkit)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"calib_size": 0}, "positive"),
        ({"max_drop": -1}, "points"),
        ({"package": "zip"}, "valid choices: aoti, exported"),
        ({"calib_sise": 3}, "did you mean calib_size"),
    ],
)
def test_bad_options_say_what_is_valid(options, message):
    with pytest.raises(ConfigError, match=message):
        get_format("inc-int8").make_config(options)


def test_every_quantize_format_is_in_the_table():
    table = quantize_formats()
    registered = {f.name: f for f in list_formats(command="quantize")}
    for (method, toolkit), fmt in table.items():
        assert registered[fmt.name].method == method and registered[fmt.name].toolkit == toolkit
        assert fmt.precision == "int8"
    assert {f.name for f in table.values()} == set(registered)


def test_options_become_the_format_config():
    config = make_config(
        OrtInt8Config, {"calib_size": 40, "per_channel": False, "seed": 5, "with_preprocessing": False}
    )
    assert (config.calib_size, config.per_channel, config.seed) == (40, False, 5)
    with pytest.raises(ConfigError, match="does not support option"):
        make_config(OrtInt8Config, {"with_preprocessing": True})


def test_every_quantize_format_has_a_round_trip_test():
    from pathlib import Path

    tests = Path(__file__).parents[1] / "backends"
    text = "".join(p.read_text() for p in tests.rglob("test_*.py"))
    missing = [f.name for f in list_formats(command="quantize") if f'"{f.name}"' not in text]
    assert not missing, f"quantize formats without a test: {missing}"
