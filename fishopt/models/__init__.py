"""Model registry and the baseline fish CNN."""

from __future__ import annotations

from fishopt.models import baseline as _baseline  # noqa: F401 - registers the models
from fishopt.models.profile import count_macs, count_params
from fishopt.models.registry import create_model, list_models, model_config, register_model

__all__ = ["count_macs", "count_params", "create_model", "list_models", "model_config", "register_model"]
