"""Knowledge distillation: a student learns from a teacher checkpoint's outputs on the SAME augmented views.

"Function matching" (Beyer et al., CVPR 2022, "Knowledge distillation: A good teacher is patient and
consistent"): every training batch, after the student's augmentation, is also shown to the teacher, so the soft
targets describe exactly the images the student sees; the loss mixes the hard labels with the KL divergence to
the teacher's softened outputs::

    loss = (1 - alpha) * CE(student, label) + alpha * T^2 * KL(softmax(teacher / T) || softmax(student / T))

The teacher has its own input size and normalization (from its checkpoint): the student's normalized view is
mapped back to pixels, resized to the teacher's input size and normalized the teacher's way
(:meth:`Teacher.inputs`). The teacher runs in eval mode without gradients, channels-last, on the student's
device; on a CPU with OpenVINO installed it runs through OpenVINO in bf16 (``distill.runtime=auto``;
:mod:`fishopt.training.accel`), about 20x faster than PyTorch eager for EfficientNet-Lite0 on two cores.

Teacher and student must be trained on the same split (the same split hash), so that no test photo is ever
labelled by a model that trained on it, and the teacher must be a fishopt ``model.pt`` trained on labels
(not itself a distilled student).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

from fishopt.checkpoint import LoadedCheckpoint, load_checkpoint
from fishopt.errors import CheckpointError, ConfigError
from fishopt.io import file_sha256
from fishopt.training.accel import openvino_cpu

log = logging.getLogger(__name__)

RUNTIMES = ("auto", "torch", "openvino")
#: What the teacher is shown (``distill.teacher_view``): the student's own view, resized to the teacher's input
#: size, or the same augmented image at the teacher's own load size (:func:`fishopt.data.augment.build_two_view_augment`).
TEACHER_VIEWS = ("student", "native")


@dataclass(frozen=True)
class DistillConfig:
    """The ``distill`` config group.

    Attributes:
        teacher: Path of the teacher's ``model.pt`` (``None``: no distillation; ``auto``: resolved by the
            caller, see :func:`fishopt.training.teacher.resolve_teacher`).
        alpha: Weight of the distillation term (0: labels only, 1: teacher only).
        temperature: Softmax temperature of both sides of the KL term.
        runtime: How the teacher runs on a CPU: ``auto`` (OpenVINO when installed), ``torch`` or ``openvino``.
        teacher_view: ``student`` (the student's augmented view, upsampled to the teacher's input size) or
            ``native`` (the same augmentation applied once to the image at the teacher's load size, then resized
            to each side's input size: the teacher sees the detail its accuracy comes from).
    """

    teacher: str | None = None
    alpha: float = 0.5
    temperature: float = 4.0
    runtime: str = "auto"
    teacher_view: str = "student"

    def __post_init__(self) -> None:
        if not 0.0 <= float(self.alpha) <= 1.0:
            raise ConfigError(f"distill.alpha must be in [0, 1], got {self.alpha}")
        if float(self.temperature) <= 0:
            raise ConfigError(f"distill.temperature must be positive, got {self.temperature}")
        if self.runtime not in RUNTIMES:
            raise ConfigError(f"distill.runtime must be one of {', '.join(RUNTIMES)}, got {self.runtime!r}")
        if self.teacher_view not in TEACHER_VIEWS:
            raise ConfigError(
                f"distill.teacher_view must be one of {', '.join(TEACHER_VIEWS)}, got {self.teacher_view!r}"
            )

    @classmethod
    def from_cfg(cls, cfg: dict[str, Any] | None) -> DistillConfig:
        """From the composed ``distill`` group (missing group: no distillation)."""
        return cls(**(cfg or {}))


def kd_loss(student: torch.Tensor, teacher: torch.Tensor, temperature: float) -> torch.Tensor:
    """``T^2 * KL(softmax(teacher / T) || softmax(student / T))``, averaged over the batch (Hinton et al. 2015)."""
    t = float(temperature)
    return F.kl_div(
        F.log_softmax(student / t, dim=1), F.log_softmax(teacher / t, dim=1), reduction="batchmean", log_target=True
    ) * (t * t)


class Teacher:
    """A loaded teacher checkpoint that gives logits on the student's augmented, normalized views.

    Args:
        ckpt: The teacher checkpoint.
        student_mean: The student's normalization mean (the views arrive normalized the student's way).
        student_std: The student's normalization std.
        runtime: ``auto``, ``torch`` or ``openvino`` (CPU only; CUDA always runs PyTorch).
    """

    def __init__(
        self, ckpt: LoadedCheckpoint, student_mean: list[float], student_std: list[float], runtime: str = "auto"
    ) -> None:
        self.ckpt = ckpt
        self.meta = ckpt.meta
        self.input_size = tuple(int(v) for v in ckpt.meta["input_size"])
        self.model = ckpt.model.eval()
        for p in self.model.parameters():
            p.requires_grad_(False)
        self.runtime = runtime
        self._shift = self._scale = None
        self._student = (torch.tensor(student_mean).view(1, 3, 1, 1), torch.tensor(student_std).view(1, 3, 1, 1))
        self._teacher = (
            torch.tensor(ckpt.meta["mean"]).view(1, 3, 1, 1),
            torch.tensor(ckpt.meta["std"]).view(1, 3, 1, 1),
        )
        self._ov = None
        self._device: torch.device | None = None

    def __deepcopy__(self, memo: dict[int, Any]) -> Teacher:
        """The same teacher: it is never trained, so copies of the student (weight averaging) share it."""
        return self

    def _to(self, device: torch.device) -> None:
        if self._device == device:
            return
        self._device = device
        self.model = self.model.to(device).to(memory_format=torch.channels_last)
        self._student = tuple(t.to(device) for t in self._student)
        self._teacher = tuple(t.to(device) for t in self._teacher)
        if device.type == "cpu" and self.runtime in ("auto", "openvino"):
            # bf16: the soft targets need the teacher's ranking, not its last bits; about 2x faster than f32
            self._ov = openvino_cpu(self.model, self.input_size, precision="bf16", required=self.runtime == "openvino")

    def inputs(self, views: torch.Tensor) -> torch.Tensor:
        """The student's normalized views as the teacher's input: pixels, resized, normalized the teacher's way."""
        pixels = views * self._student[1] + self._student[0]
        if tuple(pixels.shape[-2:]) != self.input_size:
            pixels = F.interpolate(pixels, size=self.input_size, mode="bilinear", align_corners=False, antialias=True)
        return (pixels - self._teacher[0]) / self._teacher[1]

    @torch.no_grad()
    def __call__(self, views: torch.Tensor) -> torch.Tensor:
        """Teacher logits (float32, on the views' device) for a batch of the student's normalized views."""
        return self.logits(self.inputs(views.float()))

    @torch.no_grad()
    def logits(self, inputs: torch.Tensor) -> torch.Tensor:
        """Teacher logits (float32, on the inputs' device) for a batch already at its input size and normalization."""
        self._to(inputs.device)
        x = inputs.float()
        if self._ov is not None:
            return torch.from_numpy(self._ov(x.numpy()))
        return self.model(x.contiguous(memory_format=torch.channels_last)).float()

    def describe(self) -> dict[str, Any]:
        """What the student's checkpoint records of its teacher."""
        metrics = {
            s: {k: v for k, v in (self.meta.get("metrics", {}).get(s) or {}).items() if k in ("n", "top1", "macro_f1")}
            for s in ("val", "test")
        }
        return {
            "path": str(self.ckpt.path),
            "sha256": file_sha256(self.ckpt.path),
            "model": self.meta["model"],
            "input_size": list(self.input_size),
            "split_hash": self.meta["split"]["hash"],
            "metrics": metrics,
            "runtime": "openvino" if self._ov is not None else "torch",
        }


def load_teacher(
    path: str | Path,
    split_hash: str,
    class_names: list[str],
    student_mean: list[float],
    student_std: list[float],
    runtime: str = "auto",
) -> Teacher:
    """Load and check a teacher for a student trained on ``split_hash`` with ``class_names``.

    Raises:
        CheckpointError: The file is not a fishopt ``model.pt`` (or is corrupt), it is a distilled student, its
            classes differ from the data's, or it was trained on another split.
    """
    path = Path(path)
    if path.is_dir() or path.suffix in (".ckpt", ".onnx", ".xml", ".pt2", ".engine"):
        raise CheckpointError(
            f"distill.teacher={str(path)!r} is not a model.pt written by 'fishopt train' (artifacts "
            "and Lightning .ckpt files are refused); pass the teacher run's model.pt"
        )
    ckpt = load_checkpoint(path)
    if ckpt.meta.get("distill"):
        raise CheckpointError(
            f"distill.teacher={str(path)!r} is a distilled student (it learned from "
            f"{ckpt.meta['distill'].get('teacher', {}).get('path')!r}); distill from a model trained on "
            "labels, e.g. 'fishopt train model=efficientnet_lite0'"
        )
    if list(ckpt.meta["class_names"]) != list(class_names):
        raise CheckpointError(
            f"the teacher's classes {ckpt.meta['class_names']} differ from the data's {list(class_names)}; "
            "train the teacher on the same data"
        )
    if ckpt.meta["split"]["hash"] != split_hash:
        raise CheckpointError(
            f"the teacher {str(path)!r} was trained on another split (hash {ckpt.meta['split']['hash'][:12]}, the "
            f"student's is {split_hash[:12]}): its soft targets could come from photos the student is tested on. "
            "Train the teacher with the same data and split settings (or data.split_file=<the teacher's split.json>)"
        )
    return Teacher(ckpt, student_mean, student_std, runtime)
