"""The ``fishopt`` command line: thin click commands that validate input, then call the library.

Subcommands are imported lazily (``COMMANDS`` maps name -> ``"module:attribute"``), so
``fishopt --help`` does not import torch or any runtime.

Exit codes: 0 success; 1 a built artifact or bundle failed its parity / verification check (nothing is
written); 2 bad input (a :class:`fishopt.errors.FishoptError`: one line on stderr, no traceback); 130 interrupted
by Ctrl-C (SIGINT), 143 stopped by SIGTERM. An interrupted command removes its unfinished outputs first.
"""

from __future__ import annotations

import importlib
import signal
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
    "serve": "fishopt.cli.serve:serve",
    "serve-bench": "fishopt.cli.serve:serve_bench",
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
        from fishopt.errors import FishoptError, ParityError

        previous = _catch_signals()
        try:
            return super().invoke(ctx)
        except FishoptError as exc:
            click.secho(f"error: {_one_line(exc)}", fg="red", err=True)
            sys.exit(EXIT_FAILED_CHECK if isinstance(exc, ParityError) else EXIT_BAD_INPUT)
        except KeyboardInterrupt:
            _exit_interrupted()
        except SystemExit:
            if _received:  # a library (Lightning) turned the interrupt into its own exit code
                _exit_interrupted()
            raise
        finally:
            _restore_signals(previous)


EXIT_FAILED_CHECK = 1
EXIT_BAD_INPUT = 2
EXIT_INTERRUPTED = {signal.SIGINT: 130, signal.SIGTERM: 143}
_received: list[int] = []


def _on_signal(signum: int, _frame) -> None:
    """SIGINT and SIGTERM raise KeyboardInterrupt, so every cleanup path (staged output folders, Lightning's
    graceful shutdown) runs the same way for both; the exit code says which one it was."""
    _received.append(signum)
    raise KeyboardInterrupt


def _catch_signals() -> dict[int, object]:
    _received.clear()
    try:
        return {s: signal.signal(s, _on_signal) for s in EXIT_INTERRUPTED}
    except ValueError:  # not the main thread (an embedding application): leave its handlers alone
        return {}


def _restore_signals(previous: dict[int, object]) -> None:
    for signum, handler in previous.items():
        signal.signal(signum, handler)


def _exit_interrupted() -> None:
    signum = _received[0] if _received else signal.SIGINT
    name = signal.Signals(signum).name
    click.secho(f"interrupted ({name}): unfinished outputs were removed", fg="yellow", err=True)
    sys.exit(EXIT_INTERRUPTED[signum])


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split())


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
