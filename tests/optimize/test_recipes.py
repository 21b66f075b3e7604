"""Recipes: validation with the valid choices in the message, serialization into the artifact metadata."""

from __future__ import annotations

import json

import pytest

from fishopt.errors import ConfigError
from fishopt.export.registry import list_formats
from fishopt.optimize.recipes import FORMAT_OF, QuantRecipe, recipe_from_options


def test_recipe_round_trips_through_json():
    recipe = QuantRecipe(method="static", backend="inc", calib_size=64, seed=2, max_drop=0.5)
    data = json.loads(json.dumps(recipe.to_dict()))
    assert data["name"] == "int8-static-inc" and data["precision"] == "int8"
    assert QuantRecipe.from_dict(data) == recipe


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"method": "qat"}, "valid choices: dynamic, static"),
    ({"backend": "tflite"}, "valid choices: inc, onnxruntime, openvino, torch"),
    ({"method": "dynamic", "backend": "openvino"}, "valid combinations: .*--method static --backend openvino"),
    ({"calib_size": 0}, "positive"),
    ({"max_drop": -1}, "points"),
])
def test_bad_recipes_list_the_valid_choices(kwargs, message):
    with pytest.raises(ConfigError, match=message):
        QuantRecipe(**kwargs)


def test_every_recipe_has_a_registered_quantize_format():
    registered = {f.name: f for f in list_formats(kind="quantize")}
    for (method, backend), name in FORMAT_OF.items():
        assert registered[name].method == method and registered[name].backend == backend
        assert registered[name].precision == "int8"
    assert set(registered) == set(FORMAT_OF.values())


def test_recipe_from_builder_options():
    recipe = recipe_from_options("onnxruntime-int8", {"calib_images": 40, "per_tensor": True, "seed": 5})
    assert (recipe.calib_size, recipe.per_channel, recipe.seed) == (40, False, 5)


def test_every_quantize_format_has_a_round_trip_test():
    from pathlib import Path

    text = "".join(p.read_text() for p in Path(__file__).parent.glob("test_*.py") if p.name != Path(__file__).name)
    missing = [f.name for f in list_formats(kind="quantize") if f'"{f.name}"' not in text]
    assert not missing, f"quantize formats without a test: {missing}"
