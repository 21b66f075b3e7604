"""Train a model from a composed config and write the run: config, split, metrics and ``model.pt``."""

from __future__ import annotations

import logging
import os
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import torch

from fishopt import __version__
from fishopt.errors import ConfigError
from fishopt.io import atomic_write_json

log = logging.getLogger(__name__)

LOGGERS = ("csv", "tensorboard", "wandb")
MODEL_KEYS_NOT_CFG = ("name",)
REFIT_SIDES = ("train", "val")


def model_spec(model_cfg: dict[str, Any], num_classes: int) -> tuple[str, dict[str, Any]]:
    """Split the ``model`` config group into the registry name and the model's config."""
    cfg = {k: v for k, v in model_cfg.items() if k not in MODEL_KEYS_NOT_CFG}
    cfg = {k: (tuple(v) if isinstance(v, list) else v) for k, v in cfg.items()}
    cfg["num_classes"] = num_classes
    return model_cfg["name"], cfg


def _logger(kind: str, run_dir: Path):
    from pytorch_lightning import loggers

    if kind == "csv":
        import warnings

        # the run folder already holds config.yaml and split.json; metrics.csv goes beside them
        warnings.filterwarnings("ignore", message=r"Experiment logs directory .* exists and is not empty")
        return loggers.CSVLogger(run_dir, name="", version="")
    if kind == "tensorboard":
        return loggers.TensorBoardLogger(run_dir, name="", version="")
    if kind == "wandb":
        os.environ.setdefault("WANDB_MODE", "offline")
        return loggers.WandbLogger(save_dir=str(run_dir), project="fishopt")
    raise ConfigError(f"unknown trainer.logger {kind!r}; valid choices: {', '.join(LOGGERS)}")


def _run_dir(cfg: dict[str, Any]) -> Path:
    name = cfg.get("run_name") or f"{datetime.now(timezone.utc):%Y%m%d-%H%M%S}-{cfg['model']['name']}"
    run_dir = Path(cfg.get("out_dir") or "runs") / name
    if run_dir.exists() and any(run_dir.iterdir()):
        raise ConfigError(f"run folder {str(run_dir)!r} exists already; pick another run_name or remove it")
    from fishopt.io import ensure_new_dir

    return ensure_new_dir(run_dir)


def train(cfg: dict[str, Any], resume: str | Path | None = None) -> Path:
    """Train, test and save a model.

    Args:
        cfg: The resolved training config (see :func:`fishopt.training.config.compose_config`).
        resume: A Lightning checkpoint (``last.ckpt`` of an earlier run) to resume from.

    Returns:
        Path of the written ``model.pt``.
    """
    import pytorch_lightning as pl
    from omegaconf import OmegaConf

    from fishopt.data.preprocess import channel_stats
    from fishopt.data.split import save_split
    from fishopt.io import atomic_write_text
    from fishopt.models import count_macs, count_params, create_model
    from fishopt.training.datamodule import FishDataModule
    from fishopt.training.mixing import MixConfig
    from fishopt.training.optim import check_optimizer_config

    tcfg = cfg["trainer"]
    if tcfg.get("threads"):
        torch.set_num_threads(int(tcfg["threads"]))
    if tcfg["logger"] not in LOGGERS:
        raise ConfigError(f"unknown trainer.logger {tcfg['logger']!r}; valid choices: {', '.join(LOGGERS)}")
    check_optimizer_config(tcfg)
    MixConfig.from_trainer(tcfg)  # refuse bad settings before the run folder is written
    pl.seed_everything(int(cfg["seed"]), workers=True, verbose=False)
    dm = FishDataModule(cfg["data"], seed=int(cfg["seed"]))
    name, mcfg = model_spec(cfg["model"], len(dm.class_names))
    model = create_model(name, **mcfg)
    run_dir = _run_dir(cfg)
    atomic_write_text(run_dir / "config.yaml", OmegaConf.to_yaml(OmegaConf.create(cfg)))
    split_hash = save_split(dm.split, run_dir / "split.json")
    train_images = dm.load("train").tensors[0]
    mean, std = channel_stats(train_images, cfg["data"]["input_size"])
    module = _module(cfg, model, mean, std)
    trainer = _trainer(tcfg, run_dir)
    start = time.perf_counter()
    trainer.fit(module, datamodule=dm, ckpt_path=str(resume) if resume else None)
    train_seconds = time.perf_counter() - start
    selection = _load_best(trainer, module)
    meta = {
        "class_names": list(dm.class_names),
        "input_size": list(cfg["data"]["input_size"]),
        "load_size": list(cfg["data"]["load_size"]),
        "mean": mean,
        "std": std,
        "model": {"name": name, "cfg": {k: list(v) if isinstance(v, tuple) else v for k, v in mcfg.items()}},
        "split": {"file": "split.json", "hash": split_hash, "group_by": dm.split.group_by, "leaky": dm.split.leaky},
        "data_root": str(dm.dataset.root.resolve()),
        "recipe": "fp32",
        "params": count_params(model),
        "macs": count_macs(model, cfg["data"]["input_size"])["total"],
        "train_seconds": round(train_seconds, 1),
        "epochs": int(trainer.current_epoch),
        "selection": selection,
        "fishopt_version": __version__,
        "torch_version": str(torch.__version__),
    }
    if not tcfg.get("refit"):
        return _finish(run_dir, module, dm, meta)
    selected = _evaluate(module.model, dm, meta, ("val", "test"))
    atomic_write_json(run_dir / "selection_metrics.json", selected)
    epochs = int(selection.get("best_epoch", trainer.current_epoch - 1)) + 1
    refit_module, refit_seconds = _refit(cfg, lambda: create_model(name, **mcfg), dm, mean, std, run_dir,
                                         epochs=epochs)
    meta["train_seconds"] = round(train_seconds + refit_seconds, 1)
    meta["refit"] = {
        "sides": list(REFIT_SIDES),
        "epochs": epochs,
        "schedule_epochs": int(tcfg["max_epochs"]),
        "seconds": round(refit_seconds, 1),
        "selection_run": {s: {k: selected[s][k] for k in ("n", "top1", "macro_f1")} for s in ("val", "test")},
    }
    return _finish(run_dir, refit_module, dm, meta, val=selected["val"])


def _load_best(trainer, module) -> dict[str, Any]:
    """Load the best checkpoint's weights into ``module``; return which epoch it was and its score."""
    best = trainer.checkpoint_callback.best_model_path
    if not best:
        return {}
    state = torch.load(best, map_location="cpu", weights_only=False)
    module.load_state_dict(state["state_dict"])
    score = trainer.checkpoint_callback.best_model_score
    return {"monitor": "val_bacc", "best_epoch": int(state["epoch"]), "best_score": None if score is None else float(score)}


def _module(cfg: dict[str, Any], model, mean: list[float], std: list[float]):
    """The LightningModule for ``model`` with the run's input size, normalization, augmentation and trainer config."""
    from fishopt.data.augment import AugmentConfig
    from fishopt.training.module import FishClassifier

    augment = AugmentConfig(**_aug(cfg["augment"]))
    return FishClassifier(model, cfg["data"]["input_size"], mean, std, augment, cfg["trainer"])


def _refit(cfg, make_model, dm, mean, std, run_dir: Path, *, epochs: int):
    """Retrain from scratch on train + val and stop after the epoch the selection run chose.

    The selection run (train only, validated on val) picked its best epoch; this run sees every photo
    outside the test split, with the same seed, augmentation and learning-rate schedule (laid out for
    ``trainer.max_epochs``), and stops after ``epochs``. There is no validation (val is training data
    here), and the test split stays unseen.
    """
    import pytorch_lightning as pl

    pl.seed_everything(int(cfg["seed"]), workers=True, verbose=False)
    dm.train_sides = REFIT_SIDES
    module = _module(cfg, make_model(), mean, std)  # built after seeding: the same initial weights
    trainer = _trainer(cfg["trainer"], run_dir / "refit", stop_after=epochs)
    log.info("refit: training on %s for %d epochs (the test split stays unseen)", " + ".join(REFIT_SIDES), epochs)
    start = time.perf_counter()
    trainer.fit(module, datamodule=dm)
    return module, time.perf_counter() - start


def _evaluate(model, dm, meta: dict[str, Any], sides: tuple[str, ...]) -> dict[str, Any]:
    from fishopt.training.evaluate import evaluate_tensors

    return {side: evaluate_tensors(model, *dm.load(side).tensors, meta, [dm.split.units[p] for p in dm.paths(side)],
                                   dm.split.group_by) for side in sides}


def _finish(run_dir: Path, module, dm, meta: dict[str, Any], val: dict[str, Any] | None = None) -> Path:
    """Evaluate, then write ``model.pt`` and ``metrics.json``.

    Args:
        val: Validation metrics of the selection run, when ``module`` was refit on train + val (its own
            validation score would be a training score).
    """
    from fishopt.checkpoint import save_checkpoint

    metrics = _evaluate(module.model, dm, meta, ("test",) if val is not None else ("val", "test"))
    if val is not None:
        metrics["val"] = {**val, "note": "selection run (trained on train only); the refit model trained on val"}
    metrics["leaky"] = dm.split.leaky
    meta["metrics"] = {s: {k: metrics[s][k] for k in ("n", "top1", "macro_f1", "per_class")} for s in ("val", "test")}
    meta["metrics"]["leaky"] = dm.split.leaky
    path = save_checkpoint(run_dir / "model.pt", module.model, meta)
    atomic_write_json(run_dir / "metrics.json", metrics)
    tag = " (LEAKY split by file: inflated)" if dm.split.leaky else f" (split by {dm.split.group_by})"
    log.info("test top-1 %.4f, macro-F1 %.4f%s", metrics["test"]["top1"], metrics["test"]["macro_f1"], tag)
    return path


def _aug(aug_cfg: dict[str, Any]) -> dict[str, Any]:
    return {k: (tuple(v) if isinstance(v, list) else v) for k, v in aug_cfg.items()}


def _trainer(tcfg: dict[str, Any], run_dir: Path, stop_after: int | None = None):
    """The Lightning trainer: validated, checkpointed on val and early-stopped, or (``stop_after`` set, the
    refit) without validation, stopped after ``stop_after`` epochs of the ``max_epochs`` schedule."""
    import pytorch_lightning as pl
    from pytorch_lightning.callbacks import EarlyStopping, ModelCheckpoint

    validate = stop_after is None
    if validate:
        ckpt = ModelCheckpoint(dirpath=run_dir / "checkpoints", filename="best", monitor="val_bacc", mode="max",
                               save_last=True)
        stop = EarlyStopping(monitor="val_bacc", mode="max", patience=int(tcfg["patience"]))
        callbacks = [ckpt, stop, *_averaging(tcfg)]
    else:
        callbacks = [ModelCheckpoint(dirpath=run_dir / "checkpoints", save_last=True, save_top_k=0),
                     *_averaging(tcfg), _stop_after(stop_after)]
    return pl.Trainer(
        max_epochs=int(tcfg["max_epochs"]),
        accelerator=tcfg["accelerator"],
        devices=tcfg["devices"],
        strategy=tcfg["strategy"],
        precision=tcfg["precision"],
        logger=_logger(tcfg["logger"], run_dir),
        callbacks=callbacks,
        enable_progress_bar=bool(tcfg.get("progress_bar", True)),
        limit_train_batches=tcfg.get("limit_train_batches") or 1.0,
        limit_val_batches=1.0 if validate else 0,
        deterministic=False,
        enable_model_summary=False,
        log_every_n_steps=10,
    )


def _averaging(tcfg: dict[str, Any]) -> list:
    """An EMA of the weights (and BatchNorm statistics) when ``trainer.ema_decay`` is set.

    The average is what validation sees, what the best checkpoint stores and what ``model.pt`` holds.
    """
    decay = tcfg.get("ema_decay")
    if decay is None:
        return []
    if not 0.0 < float(decay) < 1.0:
        raise ConfigError(f"trainer.ema_decay must be in (0, 1) or null, got {decay}")
    from pytorch_lightning.callbacks import EMAWeightAveraging

    return [EMAWeightAveraging(decay=float(decay))]


def _stop_after(epochs: int):
    """A Lightning callback that stops after ``epochs`` epochs; the schedule stays laid out for ``max_epochs``."""
    from pytorch_lightning.callbacks import Callback

    class StopAfter(Callback):
        def on_train_epoch_end(self, trainer, pl_module) -> None:  # noqa: D102 - Lightning hook
            if trainer.current_epoch + 1 >= epochs:
                trainer.should_stop = True

    return StopAfter()
