"""Distillation: the loss, the teacher's view of the student's batches, an end-to-end run, and the bad inputs."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner
from helpers import make_synthetic_dataset

from fishopt.checkpoint import load_checkpoint
from fishopt.errors import CheckpointError, ConfigError
from fishopt.training.config import compose_config, to_dict
from fishopt.training.distill import DistillConfig, kd_loss
from fishopt.training.train import train

needs_lite = pytest.mark.skipif(
    importlib.util.find_spec("efficientnet_lite_pytorch") is None, reason="the pretrained extra is not installed"
)
SMALL = ["trainer.progress_bar=false", "data.load_size=[36,48]", "data.input_size=[32,32]", "data.batch_size=8"]
TEACHER = [
    *SMALL,
    "model=efficientnet_lite0",
    "model.pretrained=false",
    "model.width=0.25",
    "model.depth=0.25",
    "trainer.max_epochs=3",
]
STUDENT = [*SMALL, "model.width=4", "model.hidden=8", "trainer.max_epochs=2"]


def _cfg(root: Path, out: Path, name: str, *overrides: str) -> dict:
    return to_dict(compose_config([*overrides, f"data.root={root}", f"out_dir={out}", f"run_name={name}"]))


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_synthetic_dataset(tmp_path_factory.mktemp("distill") / "fish", per_group=3)


@pytest.fixture(scope="module")
def teacher(data: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    if importlib.util.find_spec("efficientnet_lite_pytorch") is None:
        pytest.skip("the pretrained extra is not installed")
    return train(_cfg(data, tmp_path_factory.mktemp("teacher"), "teacher", *TEACHER))


def test_kd_loss_is_zero_for_the_teachers_own_logits_and_scales_with_t_squared() -> None:
    t = torch.randn(4, 3)
    assert float(kd_loss(t, t, 4.0)) == pytest.approx(0.0, abs=1e-6)
    s = torch.randn(4, 3)
    assert float(kd_loss(s, t, 1.0)) > 0
    scaled = torch.nn.functional.kl_div(torch.log_softmax(s / 2, 1), torch.softmax(t / 2, 1), reduction="batchmean") * 4
    assert float(kd_loss(s, t, 2.0)) == pytest.approx(float(scaled), rel=1e-5)


@pytest.mark.parametrize(
    ("cfg", "message"),
    [
        ({"alpha": 1.5}, "alpha"),
        ({"temperature": 0}, "temperature"),
        ({"runtime": "tpu"}, "auto, torch, openvino"),
        ({"teacher_view": "both"}, "student, native"),
    ],
)
def test_bad_distill_settings(cfg: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        DistillConfig(**cfg)


@needs_lite
def test_teacher_sees_the_students_views_at_its_own_size_and_normalization(teacher: Path) -> None:
    from fishopt.training.distill import Teacher

    ckpt = load_checkpoint(teacher)
    t = Teacher(ckpt, [0.5] * 3, [0.25] * 3, runtime="torch")
    t._to(torch.device("cpu"))
    pixels = torch.rand(2, 3, 32, 32)
    views = (pixels - 0.5) / 0.25
    expected = (pixels - torch.tensor(ckpt.meta["mean"]).view(1, 3, 1, 1)) / torch.tensor(ckpt.meta["std"]).view(
        1, 3, 1, 1
    )
    torch.testing.assert_close(t.inputs(views), expected)
    assert t(views).shape == (2, 3)


@needs_lite
def test_distilled_student_records_its_teacher(data: Path, teacher: Path, tmp_path: Path) -> None:
    path = train(_cfg(data, tmp_path, "student", *STUDENT, f"distill.teacher={teacher}", "distill.runtime=torch"))
    meta = load_checkpoint(path).meta
    info = meta["distill"]
    assert info["teacher"]["path"] == str(teacher.resolve()) and len(info["teacher"]["sha256"]) == 64
    assert info["teacher"]["split_hash"] == meta["split"]["hash"] and info["alpha"] == 0.5
    header = (path.parent / "metrics.csv").read_text().splitlines()[0]
    assert "train_kd" in header and "train_teacher_acc" in header  # the teacher saw every training batch


@pytest.fixture(scope="module")
def hires_teacher(data: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A teacher that loads its images at 1.5x the student's load size (as the Lite0 teacher does, 1.4x)."""
    if importlib.util.find_spec("efficientnet_lite_pytorch") is None:
        pytest.skip("the pretrained extra is not installed")
    hires = [*TEACHER, "data.load_size=[54,72]", "data.input_size=[48,48]", "trainer.max_epochs=1"]
    return train(_cfg(data, tmp_path_factory.mktemp("hires"), "teacher", *hires))


@needs_lite
def test_native_teacher_view_trains_on_both_resolutions(data: Path, hires_teacher: Path, tmp_path: Path) -> None:
    native = [f"distill.teacher={hires_teacher}", "distill.runtime=torch", "distill.teacher_view=native"]
    path = train(_cfg(data, tmp_path, "student", *STUDENT, *native))
    meta = load_checkpoint(path).meta
    assert meta["distill"]["teacher_view"] == "native"
    assert meta["load_size"] == [36, 48] and meta["input_size"] == [32, 32]  # the student's own, for deployment
    header = (path.parent / "metrics.csv").read_text().splitlines()[0]
    assert "train_kd" in header and "train_teacher_acc" in header


@needs_lite
@pytest.mark.parametrize(
    ("extra", "match"),
    [
        (["trainer.mixup=0.2"], "does not support trainer.mixup"),
        (["augment.erase=0.5"], "does not support trainer.mixup, trainer.cutmix or augment.erase"),
        (["data.load_size=[60,80]", "data.input_size=[56,56]"], "at least as large as the student"),
    ],
)
def test_native_teacher_view_refusals(data: Path, hires_teacher: Path, tmp_path: Path, extra: list, match: str) -> None:
    native = [f"distill.teacher={hires_teacher}", "distill.runtime=torch", "distill.teacher_view=native"]
    _refused(_cfg(data, tmp_path, "s", *STUDENT, *native, *extra), ConfigError, match)


def _refused(cfg: dict, error: type, match: str) -> None:
    out = Path(cfg["out_dir"]) / cfg["run_name"]
    with pytest.raises(error, match=match):
        train(cfg)
    assert not out.exists() and not list(out.parent.glob(f".{out.name}.build-*"))


@needs_lite
def test_teacher_of_another_split_is_refused(data: Path, teacher: Path, tmp_path: Path) -> None:
    _refused(
        _cfg(data, tmp_path, "s", *STUDENT, f"distill.teacher={teacher}", "data.split_seed=1"),
        CheckpointError,
        "trained on another split",
    )


@needs_lite
def test_teacher_with_other_classes_is_refused(teacher: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import helpers

    monkeypatch.setattr(helpers, "CLASSES", ("Alpha Trout", "Beta Trout", "Gamma Trout"))
    other = helpers.make_synthetic_dataset(tmp_path / "other", per_group=3)
    _refused(_cfg(other, tmp_path, "s", *STUDENT, f"distill.teacher={teacher}"), CheckpointError, "classes")


@needs_lite
def test_distilled_student_as_teacher_is_refused(data: Path, teacher: Path, tmp_path: Path) -> None:
    student = train(_cfg(data, tmp_path, "student", *STUDENT, f"distill.teacher={teacher}", "distill.runtime=torch"))
    _refused(_cfg(data, tmp_path, "s2", *STUDENT, f"distill.teacher={student}"), CheckpointError, "distilled student")


@pytest.mark.parametrize("kind", ["corrupt", "artifact", "missing"])
def test_bad_teacher_files_are_refused(data: Path, tmp_path: Path, kind: str) -> None:
    bad = {"corrupt": tmp_path / "model.pt", "artifact": tmp_path / "model.onnx", "missing": tmp_path / "none.pt"}[kind]
    if kind != "missing":
        bad.write_bytes(b"\x00junk" * 100)
    _refused(
        _cfg(data, tmp_path, "s", *STUDENT, f"distill.teacher={bad}"),
        CheckpointError,
        {"corrupt": "not a fishopt checkpoint", "artifact": "not a model.pt", "missing": "not found"}[kind],
    )


def test_bad_teacher_through_the_cli_is_one_line_exit_2(data: Path, tmp_path: Path) -> None:
    from fishopt.cli import main

    result = CliRunner().invoke(
        main,
        [
            "train",
            *STUDENT,
            f"data.root={data}",
            f"out_dir={tmp_path}",
            "run_name=s",
            f"distill.teacher={tmp_path / 'none.pt'}",
        ],
    )
    assert result.exit_code == 2 and "Traceback" not in result.output and "not found" in result.output
    assert not (tmp_path / "s").exists()


@needs_lite
def test_auto_teacher_is_trained_once_then_reused(data: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """distill.teacher=auto trains the default teacher (the efficientnet_lite0 preset) on the student's split."""
    import logging

    # Selection runs only: a refit reseeds, so the saved model shows the selection run's random stream.
    auto = [*STUDENT, "distill.teacher=auto", "distill.runtime=torch", "trainer.refit=false"]
    first = train(_cfg(data, tmp_path, "a", *auto))
    teachers = list((tmp_path / "teachers").glob("efficientnet_lite0-*/model.pt"))
    assert len(teachers) == 1 and load_checkpoint(first).meta["distill"]["teacher"]["path"] == str(
        teachers[0].resolve()
    )
    assert load_checkpoint(teachers[0]).meta["split"]["hash"] == load_checkpoint(first).meta["split"]["hash"]
    with caplog.at_level(logging.INFO, logger="fishopt.training.train"):
        second = train(_cfg(data, tmp_path, "b", *auto))
    assert "reusing the teacher" in caplog.text
    assert json.loads((first.parent / "metrics.json").read_text())["test"]["n"] > 0
    # The same seed gives the same student whether the teacher was trained in this process, found in the
    # cache, or named by its path: getting the teacher never moves the student's random stream.
    by_path = train(
        _cfg(
            data,
            tmp_path,
            "c",
            *STUDENT,
            f"distill.teacher={teachers[0]}",
            "distill.runtime=torch",
            "trainer.refit=false",
        )
    )
    weights = [load_checkpoint(p).model.state_dict() for p in (first, second, by_path)]
    for other in weights[1:]:
        assert all(torch.equal(weights[0][k], other[k]) for k in weights[0])
