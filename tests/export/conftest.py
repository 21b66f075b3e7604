"""Fixtures for the export tests: a cache of artifacts built from the trained tiny checkpoint (tests/conftest.py)."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def built(trained_tiny: Path, tmp_path_factory: pytest.TempPathFactory):
    """``built(format_name, **options) -> BuildResult``, built once per session and options."""
    from fishopt.export.api import build

    cache: dict = {}

    def get(name: str, **options):
        key = (name, tuple(sorted((k, str(v)) for k, v in options.items())))
        if key not in cache:
            out = tmp_path_factory.mktemp("artifact") / name
            cache[key] = build(name, trained_tiny, out, options=options, parity_images=64)
        return cache[key]

    return get
