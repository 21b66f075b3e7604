"""Targets, precisions and the runtime ranges a bundle records."""

from __future__ import annotations

import pytest

from fishopt.deploy.targets import TARGETS, get_target, jetson_requirements, onnxruntime_requirement
from fishopt.errors import ConfigError


def test_unknown_target_lists_valid_ones() -> None:
    with pytest.raises(ConfigError, match="valid choices: cpu, jetson"):
        get_target("raspberry")


@pytest.mark.parametrize("target", sorted(TARGETS))
def test_default_precision_is_supported(target: str) -> None:
    tgt = get_target(target)
    assert tgt.check_precision(None) == tgt.default_precision in tgt.precisions


def test_unsupported_precision_lists_valid_ones() -> None:
    with pytest.raises(ConfigError, match="'fp16'.*valid precisions: fp32, int8"):
        get_target("cpu").check_precision("fp16")
    with pytest.raises(ConfigError, match="valid precisions: fp32, fp16, int8"):
        get_target("jetson").check_precision("bf16")


def test_jetson_range_follows_the_opset() -> None:
    assert jetson_requirements(17)["tensorrt"] == ">=8.5,<11"
    assert jetson_requirements(17)["jetpack"].startswith("5.1")
    assert jetson_requirements(20)["tensorrt"] == ">=10.0,<11"
    with pytest.raises(ConfigError, match="opset 21.*opset 20 or lower"):
        jetson_requirements(21)


def test_onnxruntime_requirement_grows_with_the_opset() -> None:
    assert onnxruntime_requirement(17) == ">=1.14"
    assert onnxruntime_requirement(20) == ">=1.17"
    assert onnxruntime_requirement(30) == ">=1.22"
