"""Model registry: the seed's baseline CNN and the pretrained EfficientNet-Lite0 family."""

from __future__ import annotations

from fishopt.models import baseline as _baseline  # noqa: F401 - registers the models
from fishopt.models import efficientnet as _efficientnet  # noqa: F401 - registers the models
from fishopt.models.profile import count_macs, count_params
from fishopt.models.registry import ModelInfo, create_model, list_models, model_config, model_info, register_model

__all__ = [
    "ModelInfo",
    "count_macs",
    "count_params",
    "create_model",
    "list_models",
    "model_config",
    "model_info",
    "register_model",
]
