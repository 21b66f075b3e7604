"""``fishopt train``."""

from __future__ import annotations

import click

from fishopt.cli.options import data_option, setup_logging


@click.command(context_settings={"ignore_unknown_options": False})
@click.argument("overrides", nargs=-1)
@data_option
@click.option(
    "--resume", type=click.Path(dir_okay=False, exists=True), default=None, help="Resume from a Lightning last.ckpt."
)
@click.option("--print-config", is_flag=True, help="Print the composed config and exit.")
def train(overrides: tuple[str, ...], data: str | None, resume: str | None, print_config: bool) -> None:
    """Train the fish classifier; takes Hydra overrides.

    Writes runs/<name>/ with config.yaml, split.json, metrics.csv, metrics.json and model.pt, and
    prints the checkpoint path last. By default a selection run (train, validated on val, EMA weights)
    picks the epoch, then a refit on train + val up to that epoch gives model.pt; the test split is
    never trained on. trainer.refit=false keeps the selection run's model.

    \b
    Examples:
      fishopt train --data ../shared/data/fish
      fishopt train trainer.max_epochs=30 model.width=48
      fishopt train data.group_by=group augment=none
      fishopt train trainer.refit=false trainer.ema_decay=null seed=1
      fishopt train data.leaky_split=true      # split by FILE: inflated, marked LEAKY
      fishopt train trainer.strategy=ddp trainer.devices=2   # several GPUs (or CPU processes)

    Every key is checked before anything is written; an unknown key (with or without +) is an error that
    lists the valid keys of its group.
    """
    setup_logging()
    from fishopt.training.config import compose_config, to_dict

    overrides = list(overrides)
    if data:
        overrides.append(f"data.root={data}")
    cfg = compose_config(overrides)
    if print_config:
        from omegaconf import OmegaConf

        click.echo(OmegaConf.to_yaml(cfg))
        return
    from fishopt.training.train import train as run_training

    path = run_training(to_dict(cfg), resume=resume)
    if path is not None:  # None: another process of a distributed run (rank 0 prints the path)
        click.echo(str(path))
