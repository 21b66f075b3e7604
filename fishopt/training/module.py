"""LightningModule: the classifier, its augmentation on the device, loss, optimizer and schedule."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pytorch_lightning as pl
import torch
from torch import nn

from fishopt.data.augment import AugmentConfig, build_train_augment, build_two_view_augment
from fishopt.data.preprocess import eval_transform
from fishopt.errors import ConfigError
from fishopt.training.distill import DistillConfig, Teacher, kd_loss
from fishopt.training.mixing import MixConfig, mix_batch
from fishopt.training.optim import build_optimizer, warmup_cosine


class FishClassifier(pl.LightningModule):
    """Trains a fishopt model on uint8 batches.

    Args:
        model: The network (takes normalized (N, 3, H, W) input).
        input_size: Model input (H, W).
        mean: Normalization mean (train split statistics).
        std: Normalization std.
        augment: Training augmentation config.
        trainer_cfg: The ``trainer`` config group (optimizer, lr, weight_decay, momentum, label_smoothing,
            warmup_epochs, mixup, cutmix, mix_prob, backbone_lr).
        teacher: A teacher to distill from (function matching: it sees every augmented, mixed batch).
        distill: Weight and temperature of the distillation term (with ``teacher``).
        teacher_region: With ``distill.teacher_view=native``: the training batches arrive at the teacher's load
            size, and this center crop of them is what the student's input size shows
            (:func:`fishopt.data.augment.view_region`); each batch is augmented once and resized to both inputs.

    Raises:
        ConfigError: ``teacher_region`` with mixup/CutMix or erasing (they would have to hit both views alike).
    """

    def __init__(
        self,
        model: nn.Module,
        input_size: Sequence[int],
        mean: Sequence[float],
        std: Sequence[float],
        augment: AugmentConfig,
        trainer_cfg: dict[str, Any],
        teacher: Teacher | None = None,
        distill: DistillConfig | None = None,
        teacher_region: Sequence[int] | None = None,
    ) -> None:
        super().__init__()
        self.model = model
        self.input_size = tuple(int(v) for v in input_size)
        self.mean, self.std = list(mean), list(std)
        self.cfg = trainer_cfg
        self.loss = nn.CrossEntropyLoss(label_smoothing=float(trainer_cfg.get("label_smoothing", 0.0)))
        self.mix = MixConfig.from_trainer(trainer_cfg)
        self.two_views = False
        if teacher is not None and teacher_region is not None:
            self.two_views = True
            if self.mix.enabled or augment.erase > 0:
                raise ConfigError(
                    "distill.teacher_view=native shows the teacher the same augmented image at its own resolution; "
                    "it does not support trainer.mixup, trainer.cutmix or augment.erase yet: set them to 0, or "
                    "use distill.teacher_view=student"
                )
            self.train_aug = build_two_view_augment(
                augment,
                teacher_region,
                (self.input_size, self.mean, self.std),
                (teacher.input_size, teacher.meta["mean"], teacher.meta["std"]),
            )
        else:
            self.train_aug = build_train_augment(augment, self.input_size, self.mean, self.std)
        self.teacher = teacher  # not a submodule: never trained, never saved in the Lightning checkpoint
        self.distill = distill or DistillConfig()
        self._val_preds: list[torch.Tensor] = []
        self._val_targets: list[torch.Tensor] = []

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # noqa: D102
        return self.model(x)

    def on_after_batch_transfer(self, batch, dataloader_idx: int):  # noqa: D102 - Lightning hook
        images, labels = batch
        if self.trainer is not None and self.trainer.training:
            return self.train_aug(images), labels
        return eval_transform(images, self.input_size, self.mean, self.std), labels

    def training_step(self, batch, batch_idx: int) -> torch.Tensor:  # noqa: D102
        x, y = batch
        teacher_x = None
        if self.two_views:
            x, teacher_x = x
        x, y, y_partner, lam = mix_batch(x, y, self.mix)
        logits = self.model(x)
        loss = (
            self.loss(logits, y)
            if lam == 1.0
            else lam * self.loss(logits, y) + (1 - lam) * self.loss(logits, y_partner)
        )
        if self.teacher is not None:
            # the same augmented (and mixed) views the student saw; with two views, at the teacher's resolution
            soft = (self.teacher(x) if teacher_x is None else self.teacher.logits(teacher_x)).to(logits.device)
            kd = kd_loss(logits, soft, self.distill.temperature)
            loss = (1 - self.distill.alpha) * loss + self.distill.alpha * kd
            self.log("train_kd", kd, on_step=False, on_epoch=True, sync_dist=True)
            self.log(
                "train_teacher_acc", (soft.argmax(1) == y).float().mean(), on_step=False, on_epoch=True, sync_dist=True
            )
        self.log("train_loss", loss, prog_bar=True, on_step=False, on_epoch=True, sync_dist=True)
        self.log("train_acc", (logits.argmax(1) == y).float().mean(), on_step=False, on_epoch=True, sync_dist=True)
        return loss

    def validation_step(self, batch, batch_idx: int) -> None:  # noqa: D102
        x, y = batch
        logits = self.model(x)
        self.log("val_loss", self.loss(logits, y), on_epoch=True, sync_dist=True)
        self.log("val_acc", (logits.argmax(1) == y).float().mean(), on_epoch=True, prog_bar=True, sync_dist=True)
        self._val_preds.append(logits.argmax(1).cpu())
        self._val_targets.append(y.cpu())

    def on_validation_epoch_end(self) -> None:  # noqa: D102
        """Log balanced accuracy (mean per-class recall): the checkpoint and early-stopping criterion.

        Split by photo cluster, one class can fill a large share of the validation images (one big
        cluster), so plain accuracy would mostly select for that class.
        """
        if not self._val_preds:
            return
        preds, targets = torch.cat(self._val_preds), torch.cat(self._val_targets)
        self._val_preds.clear()
        self._val_targets.clear()
        if self.trainer is not None and self.trainer.world_size > 1:  # DDP: each process saw a share of val
            preds, targets = self.all_gather(preds).flatten(), self.all_gather(targets).flatten()
        recalls = [(preds[targets == c] == c).float().mean() for c in targets.unique()]
        self.log("val_bacc", torch.stack(recalls).mean(), prog_bar=True, sync_dist=True)  # equal on every rank

    def configure_optimizers(self):  # noqa: D102
        opt = build_optimizer(self.model, self.cfg)
        total = max(1, int(self.trainer.estimated_stepping_batches))
        epochs = max(1, int(self.trainer.max_epochs or 1))
        warmup = min(total - 1, int(total * float(self.cfg.get("warmup_epochs", 0)) / epochs))
        sched = torch.optim.lr_scheduler.LambdaLR(opt, warmup_cosine(total, warmup))
        return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "interval": "step"}}
