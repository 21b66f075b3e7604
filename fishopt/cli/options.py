"""Options shared by several commands."""

from __future__ import annotations

import click

data_option = click.option(
    "--data",
    "data",
    type=click.Path(file_okay=False, path_type=str),
    default=None,
    help="Dataset root (default: $FISHOPT_DATA).",
)

checkpoint_argument = click.argument("checkpoint", type=click.Path(dir_okay=False, path_type=str))


def setup_logging(verbose: bool = False) -> None:
    """Log fishopt's INFO messages to stderr."""
    import logging

    logging.basicConfig(level=logging.DEBUG if verbose else logging.INFO, format="%(levelname)s %(name)s: %(message)s")
