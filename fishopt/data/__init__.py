"""Data: find the fish images, split them by source photo, decode and cache them, preprocess them."""

from __future__ import annotations

from fishopt.data.discovery import FishDataset, Sample, data_root_from_env, find_dataset

__all__ = ["FishDataset", "Sample", "data_root_from_env", "find_dataset"]
