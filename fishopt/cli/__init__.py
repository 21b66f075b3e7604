"""The ``fishopt`` command line: thin click commands that validate input, then call the library.

Subcommands are imported lazily (``COMMANDS`` maps name -> ``"module:attribute"``), so
``fishopt --help`` does not import torch or any runtime.
"""

from __future__ import annotations

import importlib
import sys

import click

from fishopt import __version__

COMMANDS: dict[str, str] = {
    "data": "fishopt.cli.data:data",
    "train": "fishopt.cli.train:train",
    "evaluate": "fishopt.cli.evaluate:evaluate",
    "export": "fishopt.cli.export:export",
    "compile": "fishopt.cli.compile:compile_",
    "quantize": "fishopt.cli.quantize:quantize",
    "benchmark": "fishopt.cli.benchmark:benchmark",
    "deploy": "fishopt.cli.deploy:deploy",
    "drift": "fishopt.cli.drift:drift",
    "robustness": "fishopt.cli.robustness:robustness",
}


class LazyGroup(click.Group):
    """A click group whose subcommands are imported on first use."""

    def list_commands(self, ctx: click.Context) -> list[str]:  # noqa: D102
        return sorted(COMMANDS)

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:  # noqa: D102
        if name not in COMMANDS:
            return None
        module, _, attr = COMMANDS[name].partition(":")
        return getattr(importlib.import_module(module), attr)

    def invoke(self, ctx: click.Context):  # noqa: D102
        from fishopt.errors import FishoptError

        try:
            return super().invoke(ctx)
        except FishoptError as exc:
            click.secho(f"error: {exc}", fg="red", err=True)
            sys.exit(2)


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="fishopt")
def main() -> None:
    """fishopt: train, optimize, export, benchmark and deploy the fish classifier.

    \b
    Typical path:
      fishopt train --data ../shared/data/fish          # -> runs/<name>/model.pt
      fishopt evaluate runs/<name>/model.pt
      fishopt export runs/<name>/model.pt --onnx --out artifacts/onnx
      fishopt benchmark --checkpoint runs/<name>/model.pt
    """
