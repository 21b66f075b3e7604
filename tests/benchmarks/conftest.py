"""Fixtures for benchmark tests: fake registry entries added to the one registry for one test."""

from __future__ import annotations

import pytest

from fishopt.export.registry import Format


def fake_format(name: str, **kw) -> Format:
    """A CPU format built by the real eager builder and run by the fake runtime unless overridden."""
    base = dict(name=name, kind="export", runtime="fake", precision="fp32", suffix=".pt",
                builder="fishopt.export.torch_eager:build_torch_eager", runtime_cls="fake_backend:CrashingRuntime",
                backend="fake", description="test only")
    base.update(kw)
    return Format(**base)


@pytest.fixture
def add_formats(monkeypatch: pytest.MonkeyPatch):
    """Register extra formats for the duration of one test."""
    from fishopt.export import registry

    registry.list_formats()  # load the built-in ones first
    table = dict(registry._FORMATS)
    monkeypatch.setattr(registry, "_FORMATS", table)

    def add(*formats: Format) -> None:
        for fmt in formats:
            table[fmt.name] = fmt

    return add
