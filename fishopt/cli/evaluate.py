"""``fishopt evaluate``."""

from __future__ import annotations

import click

from fishopt.cli.options import checkpoint_argument, data_option, setup_logging


@click.command()
@checkpoint_argument
@data_option
@click.option(
    "--split",
    type=click.Choice(["test", "val", "train", "all"]),
    default="test",
    show_default=True,
    help="Side of the checkpoint's split, or 'all' images of --data (an external test set).",
)
@click.option("--json", "json_out", type=click.Path(dir_okay=False), default=None, help="Write the metrics as JSON.")
@click.option("--confusion", type=click.Path(dir_okay=False), default=None, help="Write the confusion matrix PNG here.")
def evaluate(checkpoint: str, data: str | None, split: str, json_out: str | None, confusion: str | None) -> None:
    """Top-1, macro-F1, per-class recall and confusion matrix of a checkpoint.

    \b
    Examples:
      fishopt evaluate runs/exp/model.pt
      fishopt evaluate runs/exp/model.pt --split all --data /path/to/new/photos --json eval.json
    """
    setup_logging()
    from fishopt.io import atomic_write_json
    from fishopt.training.evaluate import evaluate_checkpoint
    from fishopt.training.report import print_report, save_confusion_png

    report = evaluate_checkpoint(checkpoint, data=data, split=split)
    print_report(report)
    if json_out:
        keys = (
            "top1",
            "top1_ci95",
            "macro_f1",
            "per_class",
            "n",
            "confusion",
            "split",
            "leaky",
            "units",
            "ignored_folders",
        )
        atomic_write_json(json_out, {k: report[k] for k in keys if k in report})
    if confusion:
        save_confusion_png(report, confusion)
