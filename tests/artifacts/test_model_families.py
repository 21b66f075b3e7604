"""Every registered model family through every CPU format: build (parity gate on) -> fresh-process round trip.

``test_roundtrip.py`` covers every format on the baseline; this covers the other families (EfficientNet-Lite0)
with a tiny randomly initialized model of the same shape family (``ModelInfo.tiny``: weights don't matter here),
and the deploy bundle for each family. Parametrized over both registries, so a new model or format is collected.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from helpers import make_synthetic_dataset, make_tiny_family_checkpoint
from test_roundtrip import ROUNDTRIP_OPTIONS, _marks, run_fresh

from fishopt.artifacts.registry import list_formats
from fishopt.models import list_models, model_info

FAMILIES = [m for m in list_models() if m != "baseline"]
CPU_FORMATS = [f for f in list_formats() if not f.needs_gpu]


def _requires(model: str) -> str | None:
    import importlib.util

    missing = [m for m in model_info(model).requires if importlib.util.find_spec(m) is None]
    return f"{model} needs {', '.join(missing)} (pip install 'fishopt[pretrained]')" if missing else None


@pytest.fixture(scope="module")
def family_checkpoints(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = make_synthetic_dataset(tmp_path_factory.mktemp("family-data") / "fish", per_group=4)
    out = {}
    for model in FAMILIES:
        if _requires(model) is None:
            out[model] = make_tiny_family_checkpoint(tmp_path_factory.mktemp(f"{model}-run"), root, model)
    return out


def test_there_is_a_family_besides_the_baseline() -> None:
    assert FAMILIES, "the pretrained family is registered"


@pytest.mark.parametrize("model", FAMILIES)
@pytest.mark.parametrize("name", [pytest.param(f.name, id=f.name, marks=_marks(f)) for f in CPU_FORMATS])
def test_family_round_trip(model: str, name: str, family_checkpoints: dict[str, Path], tmp_path: Path) -> None:
    from fishopt.artifacts.build import build
    from fishopt.artifacts.registry import get_format

    if reason := _requires(model) or get_format(name).unavailable_reason():
        pytest.skip(reason)
    ckpt = family_checkpoints[model]
    result = build(name, ckpt, tmp_path / name, options=ROUNDTRIP_OPTIONS[name], parity_images=64)
    assert result.manifest["verified"] is True and result.manifest["parity"]["passed"]
    fresh = run_fresh(name, result.artifact, ckpt)
    assert fresh["report"]["passed"], fresh["report"]
    assert fresh["meta"]["input_size"] == list(model_info(model).tiny["image_size"])


@pytest.mark.parametrize("model", FAMILIES)
def test_family_cpu_bundle(model: str, family_checkpoints: dict[str, Path], tmp_path: Path) -> None:
    """The deploy bundle works for either model: built, verified against the checkpoint, self-checked."""
    from fishopt.deploy.bundle import build_bundle

    if reason := _requires(model):
        pytest.skip(reason)
    result = build_bundle(family_checkpoints[model], tmp_path / "bundle", target="cpu")
    assert (result.out_dir / "model.onnx").is_file() and (result.out_dir / "bundle.json").is_file()
    assert result.bundle["input_size"] == list(model_info(model).tiny["image_size"])
    assert result.bundle["model"]["exporter_parity"]["passed"] and result.verify, "verified against the checkpoint"
