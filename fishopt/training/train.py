"""Train a model from a composed config and write the run: config, split, metrics and ``model.pt``."""

from __future__ import annotations

import logging
import os
import shutil
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import torch

from fishopt import __version__
from fishopt.checkpoint import save_checkpoint
from fishopt.data.augment import AugmentConfig, view_region
from fishopt.data.discovery import missing_species
from fishopt.data.preprocess import channel_stats
from fishopt.data.split import save_split
from fishopt.errors import CheckpointError, ConfigError, MissingDependencyError, OutputError
from fishopt.io import atomic_write_json, atomic_write_text, staging_dir
from fishopt.models import count_macs, count_params, create_model, model_info
from fishopt.training.config import validate_config
from fishopt.training.datamodule import FishDataModule
from fishopt.training.distill import DistillConfig, Teacher, load_teacher
from fishopt.training.embeddings import cached_embeddings, fit_head, fresh_head
from fishopt.training.evaluate import evaluate_tensors
from fishopt.training.mixing import MixConfig
from fishopt.training.module import FishClassifier
from fishopt.training.optim import check_optimizer_config
from fishopt.training.teacher import TEACHER_PRESET, cached_teacher, teacher_config

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


def check_logger(kind: str) -> None:
    """Refuse a logger whose package is not installed, naming the extra that installs it.

    Raises:
        ConfigError: Unknown logger.
        MissingDependencyError: ``tensorboard`` or ``wandb`` is not installed (``pip install 'fishopt[loggers]'``).
    """
    import importlib.util

    if kind not in LOGGERS:
        raise ConfigError(f"unknown trainer.logger {kind!r}; valid choices: {', '.join(LOGGERS)}")
    modules = {"tensorboard": ("tensorboard", "tensorboardX"), "wandb": ("wandb",)}.get(kind, ())
    if modules and not any(importlib.util.find_spec(m) is not None for m in modules):
        raise MissingDependencyError(
            f"trainer.logger={kind} needs the {modules[0]} package, which is not installed; install it with: "
            f"pip install 'fishopt[loggers]' (or use trainer.logger=csv, the default)"
        )


def check_lightning_settings(tcfg: dict[str, Any]) -> None:
    """Let Lightning check ``accelerator``, ``devices``, ``strategy`` and ``precision`` before any output.

    Raises:
        ConfigError: With Lightning's account of what is wrong and the valid names.
    """
    import pytorch_lightning as pl
    from lightning_fabric.utilities.exceptions import MisconfigurationException

    keys = ("accelerator", "devices", "strategy", "precision")
    given = ", ".join(f"trainer.{k}={tcfg[k]!r}" for k in keys)
    quiet = [logging.getLogger(n) for n in ("pytorch_lightning", "lightning_fabric", "lightning")]
    levels = [q.level for q in quiet]
    for q in quiet:
        q.setLevel(logging.WARNING)
    try:
        pl.Trainer(
            accelerator=tcfg["accelerator"],
            devices=tcfg["devices"],
            strategy=tcfg["strategy"],
            precision=tcfg["precision"],
            logger=False,
            enable_checkpointing=False,
            enable_progress_bar=False,
            enable_model_summary=False,
        )
    except (MisconfigurationException, ValueError, TypeError, RuntimeError) as exc:
        detail = " ".join(str(exc).split())
        raise ConfigError(f"Lightning refuses {given}: {detail}") from exc
    finally:
        for q, level in zip(quiet, levels, strict=True):
            q.setLevel(level)


def check_resume(path: str | Path) -> None:
    """Check that ``--resume`` names a Lightning checkpoint that loads without running code from it.

    Raises:
        CheckpointError: If it is empty, corrupt, holds Python objects beyond tensors and plain data (refused:
            they could run code), or is not a Lightning training checkpoint.
    """
    import pickle

    path = Path(path)
    what = "--resume takes the last.ckpt (or best.ckpt) that 'fishopt train' writes to <run>/checkpoints/"
    if not path.is_file() or path.stat().st_size == 0:
        raise CheckpointError(f"{str(path)!r} is {'empty' if path.is_file() else 'not a file'}; {what}")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        raise CheckpointError(
            f"{str(path)!r} holds Python objects other than tensors and plain data; fishopt never "
            f"loads those (they could run code); {what}"
        ) from exc
    except Exception as exc:  # torch raises many types for a damaged file
        raise CheckpointError(
            f"{str(path)!r} is corrupt or not a torch checkpoint ({exc.__class__.__name__}); {what}"
        ) from exc
    if not isinstance(state, dict) or not {"state_dict", "epoch", "loops"} <= set(state):
        raise CheckpointError(f"{str(path)!r} is not a Lightning training checkpoint (a model.pt is not one); {what}")


def is_global_zero() -> bool:
    """Whether this process is the first of a distributed run (or the only one).

    Lightning's DDP launcher starts the same command again for the other local ranks (``LOCAL_RANK``);
    other launchers set ``RANK`` (torchrun), ``NODE_RANK``/``GROUP_RANK`` (other nodes) or ``SLURM_PROCID``.
    """
    return all(
        int(os.environ.get(k) or 0) == 0 for k in ("RANK", "LOCAL_RANK", "NODE_RANK", "GROUP_RANK", "SLURM_PROCID")
    )


def _run_dir(cfg: dict[str, Any]) -> Path:
    """The run folder to create (checked: it must not exist yet)."""
    name = cfg.get("run_name") or f"{datetime.now(timezone.utc):%Y%m%d-%H%M%S}-{cfg['model']['name']}"
    run_dir = Path(cfg.get("out_dir") or "runs") / name
    if run_dir.exists() and not run_dir.is_dir():
        raise OutputError(f"run folder {str(run_dir)!r} exists and is a file; pick another run_name or out_dir")
    if run_dir.exists() and any(run_dir.iterdir()):
        raise ConfigError(f"run folder {str(run_dir)!r} exists already; pick another run_name or remove it")
    return run_dir


def resolve_model_defaults(cfg: dict[str, Any]) -> dict[str, Any]:
    """Fill what the config leaves to the model (in place): ``data.load_size``/``input_size`` from the model
    registry, and a model's ``image_size`` (EfficientNet's static padding) from ``data.input_size``.

    Raises:
        ConfigError: Unknown model. MissingDependencyError: its optional modules are not installed.
    """
    info = model_info(cfg["model"]["name"])
    info.check_available()
    data = cfg["data"]
    data["load_size"] = list(data.get("load_size") or info.load_size)
    data["input_size"] = list(data.get("input_size") or info.input_size)
    if any(i > s for i, s in zip(data["input_size"], data["load_size"], strict=True)):
        raise ConfigError(
            f"data.input_size={data['input_size']} must fit inside data.load_size={data['load_size']} "
            "(it is a center crop of the loaded image)"
        )
    if "image_size" in cfg["model"] and cfg["model"]["image_size"] is None:
        cfg["model"]["image_size"] = list(data["input_size"])
    return cfg


def train(cfg: dict[str, Any], resume: str | Path | None = None) -> Path | None:
    """Train, test and save a model.

    Everything that can be checked is checked before the run folder exists: the config against its schema,
    the logger's package, Lightning's device settings, the ``resume`` checkpoint, and every image of every
    side of the split (all bad files named at once). The run is built in a hidden folder beside
    ``out_dir/run_name`` and moved into place when ``model.pt`` is written; a failed or interrupted run
    leaves nothing, or, when it has a ``last.ckpt`` to resume from, ``<run_name>.failed-<UTC time>``.

    With ``trainer.strategy=ddp`` (several devices or nodes) every process runs this function: the first
    (global rank 0) writes the run folder, split, checkpoints and ``model.pt``; the others train with it.

    Args:
        cfg: The resolved training config (see :func:`fishopt.training.config.compose_config`).
        resume: A Lightning checkpoint (``last.ckpt`` of an earlier run) to resume from.

    Returns:
        Path of the written ``model.pt`` (``None`` in the other processes of a distributed run).
    """

    validate_config(cfg)
    resolve_model_defaults(cfg)
    tcfg = cfg["trainer"]
    if tcfg.get("threads"):
        torch.set_num_threads(int(tcfg["threads"]))
    check_logger(tcfg["logger"])
    check_optimizer_config(tcfg)
    MixConfig.from_trainer(tcfg)  # refuse bad settings before the run folder is written
    _averaging(tcfg)
    DistillConfig.from_cfg(cfg.get("distill"))
    if cfg["model"].get("freeze_backbone") and "ddp" in str(tcfg["strategy"]):
        raise ConfigError(
            "a frozen backbone trains its classifier on cached embeddings in one process; "
            "drop trainer.strategy=ddp (or set model.freeze_backbone=false to fine-tune)"
        )
    check_lightning_settings(tcfg)
    if resume:
        check_resume(resume)
    final_dir = _run_dir(cfg)
    if not is_global_zero():
        return _train_other_rank(cfg, final_dir, resume)
    with staging_dir(final_dir) as run_dir:  # an unwritable out_dir fails here, before the data is read
        log.info("training in %s; it becomes %s when model.pt is written", run_dir, final_dir)
        try:
            path = _train_in(run_dir, cfg, resume)
        except BaseException:
            _keep_resumable(run_dir, final_dir)
            raise
    return final_dir / path.name


def _prepare(cfg: dict[str, Any]):
    """Seed, find and split the data, decode every image of every side, build the model (every rank alike)."""
    import pytorch_lightning as pl

    pl.seed_everything(int(cfg["seed"]), workers=True, verbose=False)
    dm = FishDataModule(cfg["data"], seed=int(cfg["seed"]))
    missing = missing_species(dm.class_names)
    if missing:
        log.warning(
            "the data holds %d of the %d species of the fish dataset (%s missing): this trains a %d-class "
            "model that can never predict %s",
            len(dm.class_names),
            len(dm.class_names) + len(missing),
            ", ".join(missing),
            len(dm.class_names),
            " or ".join(missing),
        )
    dm.check_images()  # decode every side now: a bad image fails here, not after training
    name, mcfg = model_spec(cfg["model"], len(dm.class_names))
    return dm, create_model(name, **mcfg), name, mcfg, missing


def _train_in(run_dir: Path, cfg: dict[str, Any], resume: str | Path | None) -> Path:
    """The run of global rank 0, writing into ``run_dir``; returns ``model.pt``.

    A selection run (train, validated on val) picks the epoch; with ``trainer.refit`` a second run from the same
    start trains on train + val for that many epochs. A model with a frozen backbone runs both on cached
    embeddings (:mod:`fishopt.training.embeddings`); the others through Lightning.
    """
    from omegaconf import OmegaConf

    dm, model, name, mcfg, missing = _prepare(cfg)
    tcfg = cfg["trainer"]
    atomic_write_text(run_dir / "config.yaml", OmegaConf.to_yaml(OmegaConf.create(cfg)))
    split_hash = save_split(dm.split, run_dir / "split.json")
    mean, std = normalization(cfg, dm)
    frozen = bool(getattr(model, "frozen", False))
    teacher = None if frozen else _teacher(cfg, split_hash, dm, mean, std)
    start = time.perf_counter()
    if frozen:
        chosen, selection, epochs_run = select_head(model, dm, cfg, mean, std)
    else:
        module = _module(cfg, model, mean, std, teacher)
        trainer = _trainer(tcfg, run_dir)
        trainer.fit(module, datamodule=dm, ckpt_path=str(resume) if resume else None, weights_only=True)
        selection = trainer.strategy.broadcast(_load_best(trainer, module))
        chosen, epochs_run = module.model, int(trainer.current_epoch)
    train_seconds = time.perf_counter() - start
    meta = {
        "class_names": list(dm.class_names),
        "input_size": list(cfg["data"]["input_size"]),
        "load_size": list(cfg["data"]["load_size"]),
        "mean": mean,
        "std": std,
        "model": {"name": name, "cfg": {k: list(v) if isinstance(v, tuple) else v for k, v in mcfg.items()}},
        "split": {"file": "split.json", "hash": split_hash, "group_by": dm.split.group_by, "leaky": dm.split.leaky},
        "data_root": str(dm.dataset.root.resolve()),
        "normalization": "fixed by the model" if model_info(name).mean else "train split statistics",
        "params": count_params(model),
        "macs": count_macs(model, cfg["data"]["input_size"])["total"],
        "train_seconds": round(train_seconds, 1),
        "epochs": epochs_run,
        "selection": selection,
        "fishopt_version": __version__,
        "torch_version": str(torch.__version__),
    }
    if frozen:
        meta["training"] = (
            f"frozen pretrained backbone; the classifier trained on cached embeddings ({tcfg['feature_views']} view)"
        )
    if missing:
        meta["missing_species"] = missing
    if teacher is not None:
        meta["distill"] = {"teacher": teacher.describe(), **_distill_settings(cfg)}
    if not tcfg.get("refit"):
        return _finish(run_dir, chosen, dm, meta)
    selected = _evaluate(chosen, dm, meta, ("val", "test"))
    atomic_write_json(run_dir / "selection_metrics.json", selected)
    epochs = int(selection.get("best_epoch", epochs_run - 1)) + 1
    start = time.perf_counter()
    if frozen:
        refit_model = refit_head(model, dm, cfg, mean, std, epochs)
    else:
        refit_model = _refit(
            cfg, lambda: create_model(name, **mcfg), dm, mean, std, run_dir, epochs=epochs, teacher=teacher
        ).model
    refit_seconds = time.perf_counter() - start
    meta["train_seconds"] = round(train_seconds + refit_seconds, 1)
    meta["refit"] = {
        "sides": list(REFIT_SIDES),
        "epochs": epochs,
        "schedule_epochs": int(tcfg["max_epochs"]),
        "seconds": round(refit_seconds, 1),
        "selection_run": {s: {k: selected[s][k] for k in ("n", "top1", "macro_f1")} for s in ("val", "test")},
    }
    return _finish(run_dir, refit_model, dm, meta, val=selected["val"])


def _embeddings(model, dm, cfg: dict[str, Any], mean: list[float], std: list[float], part: str) -> torch.Tensor:
    meta = {"input_size": cfg["data"]["input_size"], "load_size": cfg["data"]["load_size"], "mean": mean, "std": std}
    images, _ = dm.load(part).tensors
    files = [dm.dataset.root / p for p in dm.paths(part)]
    return cached_embeddings(model, files, images, meta, cfg["trainer"]["feature_views"], cfg["data"].get("cache_dir"))


def select_head(model, dm, cfg: dict[str, Any], mean: list[float], std: list[float]) -> tuple[Any, dict[str, Any], int]:
    """Selection run of a frozen-backbone model: the head trained on train embeddings, validated on val's."""

    seed = int(cfg["seed"])
    train_x, val_x = (_embeddings(model, dm, cfg, mean, std, p) for p in ("train", "val"))
    head = fresh_head(model, seed)
    fit = fit_head(
        head,
        train_x,
        dm.load("train").tensors[1],
        cfg["trainer"],
        val_x=val_x,
        val_y=dm.load("val").tensors[1],
        seed=seed,
    )
    return head, {"monitor": "val_bacc", "best_epoch": fit.best_epoch, "best_score": fit.best_score}, fit.epochs


def refit_head(model, dm, cfg: dict[str, Any], mean: list[float], std: list[float], epochs: int) -> Any:
    """Refit of a frozen-backbone model: the head from the same start on train + val embeddings, ``epochs`` epochs."""

    seed = int(cfg["seed"])
    x = torch.cat([_embeddings(model, dm, cfg, mean, std, p) for p in REFIT_SIDES])
    y = torch.cat([dm.load(p).tensors[1] for p in REFIT_SIDES])
    head = fresh_head(model, seed)
    log.info("refit: the classifier on train + val embeddings for %d epochs (the test split stays unseen)", epochs)
    fit_head(head, x, y, cfg["trainer"], epochs=epochs, seed=seed)
    return head


def _train_other_rank(cfg: dict[str, Any], final_dir: Path, resume: str | Path | None) -> None:
    """A non-zero rank of a distributed run: train in step with rank 0, write nothing.

    Lightning writes logs and checkpoints from rank 0 only and broadcasts rank 0's checkpoint folder, so
    the paths given here are never written.
    """

    dm, model, name, mcfg, _ = _prepare(cfg)
    mean, std = normalization(cfg, dm)
    teacher = _teacher(cfg, dm.split.hash, dm, mean, std)
    trainer = _trainer(cfg["trainer"], final_dir)
    trainer.fit(
        _module(cfg, model, mean, std, teacher),
        datamodule=dm,
        ckpt_path=str(resume) if resume else None,
        weights_only=True,
    )
    selection = trainer.strategy.broadcast(None)  # rank 0's best epoch: the refit stops after it on every rank
    if cfg["trainer"].get("refit"):
        _refit(
            cfg,
            lambda: create_model(name, **mcfg),
            dm,
            mean,
            std,
            final_dir,
            epochs=_refit_epochs(selection, trainer),
            teacher=teacher,
        )
    return None


def _refit_epochs(selection: dict[str, Any], trainer) -> int:
    return int(selection.get("best_epoch", trainer.current_epoch - 1)) + 1


def _keep_resumable(run_dir: Path, final_dir: Path) -> None:
    """After a failure or interrupt: keep a run that has a ``last.ckpt`` as ``<name>.failed-<UTC time>`` (the
    staged folder is removed otherwise), so it can be resumed, and ``run_name`` is free for a retry."""
    last = run_dir / "checkpoints" / "last.ckpt"
    if not last.is_file():
        return
    failed = final_dir.with_name(f"{final_dir.name}.failed-{datetime.now(timezone.utc):%Y%m%d-%H%M%S}")
    try:
        os.replace(run_dir, failed)
    except OSError:
        return
    log.warning(
        "the run did not finish; its checkpoints are kept in %s: resume with --resume %s",
        failed,
        failed / "checkpoints" / "last.ckpt",
    )


def _load_best(trainer, module) -> dict[str, Any]:
    """Load the best checkpoint's weights into ``module``; return which epoch it was and its score."""
    best = trainer.checkpoint_callback.best_model_path
    if not best:
        return {}
    state = torch.load(best, map_location="cpu", weights_only=True)  # written by this run: tensors and plain data
    module.load_state_dict(state["state_dict"])
    score = trainer.checkpoint_callback.best_model_score
    return {
        "monitor": "val_bacc",
        "best_epoch": int(state["epoch"]),
        "best_score": None if score is None else float(score),
    }


def _module(cfg: dict[str, Any], model, mean: list[float], std: list[float], teacher: Teacher | None = None):
    """The LightningModule for ``model`` with the run's input size, normalization, augmentation, trainer config
    and, when distilling, the teacher."""

    augment = AugmentConfig(**_aug(cfg["augment"]))
    dcfg = DistillConfig.from_cfg(cfg.get("distill"))
    region = None
    if teacher is not None and dcfg.teacher_view == "native":
        data = cfg["data"]
        region = view_region(data["input_size"], data["load_size"], teacher.meta["load_size"])
    return FishClassifier(
        model,
        cfg["data"]["input_size"],
        mean,
        std,
        augment,
        cfg["trainer"],
        teacher=teacher,
        distill=dcfg,
        teacher_region=region,
    )


def normalization(cfg: dict[str, Any], dm) -> tuple[list[float], list[float]]:
    """The model's fixed input normalization (pretrained weights), else the train split's channel statistics."""

    info = model_info(cfg["model"]["name"])
    if info.mean is not None and info.std is not None:
        return list(info.mean), list(info.std)
    return channel_stats(dm.load("train").tensors[0], cfg["data"]["input_size"])


def _distill_settings(cfg: dict[str, Any]) -> dict[str, Any]:
    d = DistillConfig.from_cfg(cfg.get("distill"))
    return {
        "alpha": d.alpha,
        "temperature": d.temperature,
        "teacher_view": d.teacher_view,
        "mode": "function matching (teacher on the augmented views)",
    }


def _teacher(cfg: dict[str, Any], split_hash: str, dm, mean: list[float], std: list[float]) -> Teacher | None:
    """The teacher of ``distill.teacher`` (``auto``: found or trained on this split), checked against the student.

    With ``distill.teacher_view=native`` the data module then serves training batches at the teacher's load size
    (``dm.train_load_size``).

    Raises:
        ConfigError: ``teacher_view=native`` with a teacher whose load size is smaller than the student's.
    """
    from pytorch_lightning.utilities.seed import isolate_rng

    dcfg = DistillConfig.from_cfg(cfg.get("distill"))
    if not dcfg.teacher:
        return None
    # Finding, training or loading the teacher must not move the student's random stream: the same seed gives
    # the same student whether the teacher is named by path or by ``auto``, cached or trained in this process.
    with isolate_rng():
        path = _default_teacher(cfg, split_hash) if dcfg.teacher == "auto" else dcfg.teacher
        teacher = load_teacher(path, split_hash, list(dm.class_names), mean, std, dcfg.runtime)
    if dcfg.teacher_view == "native":
        hires, student = [int(v) for v in teacher.meta["load_size"]], [int(v) for v in cfg["data"]["load_size"]]
        if any(h < s for h, s in zip(hires, student, strict=True)):
            raise ConfigError(
                f"distill.teacher_view=native needs a teacher that loads images at least as large as the student; "
                f"the teacher's load size is {hires}, the student's {student}: use distill.teacher_view=student"
            )
        dm.train_load_size = tuple(hires)
    return teacher


def _default_teacher(cfg: dict[str, Any], split_hash: str) -> Path:
    """``distill.teacher=auto``: the default teacher of this split, trained now unless cached."""

    tcfg = teacher_config(cfg)
    path, usable = cached_teacher(tcfg, split_hash)
    if usable:
        log.info("distillation: reusing the teacher %s (same split and recipe)", path)
        return path
    log.info(
        "distillation: training the default teacher (%s) once for this split; cached in %s", TEACHER_PRESET, path.parent
    )
    if path.parent.exists():
        shutil.rmtree(path.parent)
    tcfg.update(out_dir=str(path.parent.parent), run_name=path.parent.name)
    written = train(tcfg)
    if written is None:  # not rank 0 of a distributed run
        raise ConfigError(
            f"distill.teacher=auto is not available in a distributed run: train the teacher first "
            f"('fishopt train model={TEACHER_PRESET}') and pass distill.teacher=PATH"
        )
    return written


def _refit(cfg, make_model, dm, mean, std, run_dir: Path, *, epochs: int, teacher: Teacher | None = None):
    """Retrain from scratch on train + val and stop after the epoch the selection run chose.

    The selection run (train only, validated on val) picked its best epoch; this run sees every photo
    outside the test split, with the same seed, augmentation and learning-rate schedule (laid out for
    ``trainer.max_epochs``), and stops after ``epochs``. There is no validation (val is training data
    here), and the test split stays unseen.
    """
    import pytorch_lightning as pl

    pl.seed_everything(int(cfg["seed"]), workers=True, verbose=False)
    dm.train_sides = REFIT_SIDES
    module = _module(cfg, make_model(), mean, std, teacher)  # built after seeding: the same initial weights
    trainer = _trainer(cfg["trainer"], run_dir / "refit", stop_after=epochs)
    log.info("refit: training on %s for %d epochs (the test split stays unseen)", " + ".join(REFIT_SIDES), epochs)
    trainer.fit(module, datamodule=dm)
    return module


def _evaluate(model, dm, meta: dict[str, Any], sides: tuple[str, ...]) -> dict[str, Any]:
    return {
        side: evaluate_tensors(
            model, *dm.load(side).tensors, meta, [dm.split.units[p] for p in dm.paths(side)], dm.split.group_by
        )
        for side in sides
    }


def _finish(run_dir: Path, model, dm, meta: dict[str, Any], val: dict[str, Any] | None = None) -> Path:
    """Evaluate, then write ``model.pt`` and ``metrics.json``.

    Args:
        val: Validation metrics of the selection run, when ``module`` was refit on train + val (its own
            validation score would be a training score).
    """

    metrics = _evaluate(model, dm, meta, ("test",) if val is not None else ("val", "test"))
    if val is not None:
        metrics["val"] = {**val, "note": "selection run (trained on train only); the refit model trained on val"}
    metrics["leaky"] = dm.split.leaky
    meta["metrics"] = {s: {k: metrics[s][k] for k in ("n", "top1", "macro_f1", "per_class")} for s in ("val", "test")}
    meta["metrics"]["leaky"] = dm.split.leaky
    path = save_checkpoint(run_dir / "model.pt", model, meta)
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
        ckpt = ModelCheckpoint(
            dirpath=run_dir / "checkpoints", filename="best", monitor="val_bacc", mode="max", save_last=True
        )
        stop = EarlyStopping(monitor="val_bacc", mode="max", patience=int(tcfg["patience"]))
        callbacks = [ckpt, stop, *_averaging(tcfg)]
    else:
        callbacks = [
            ModelCheckpoint(dirpath=run_dir / "checkpoints", save_last=True, save_top_k=0),
            *_averaging(tcfg),
            _stop_after(stop_after),
        ]
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
