"""A real (tiny) training run on the shared fish data, end to end."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from fishopt.checkpoint import load_checkpoint
from fishopt.errors import ConfigError, OutputError
from fishopt.training.config import compose_config, to_dict
from fishopt.training.train import train

TINY = [
    "trainer.max_epochs=1",
    "trainer.progress_bar=false",
    "data.limit_per_class=12",
    "data.load_size=[36,48]",
    "data.input_size=[32,32]",
    "data.batch_size=16",
    "model.width=4",
    "model.hidden=16",
]


def _cfg(root: Path, out: Path, *extra: str) -> dict:
    return to_dict(compose_config([*TINY, f"data.root={root}", f"out_dir={out}", "run_name=smoke", *extra]))


@pytest.fixture(scope="module")
def smoke_run(fish_root: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return train(_cfg(fish_root, tmp_path_factory.mktemp("runs")))


def test_run_outputs(smoke_run: Path) -> None:
    run = smoke_run.parent
    for name in ("config.yaml", "split.json", "metrics.csv", "metrics.json", "model.pt"):
        assert (run / name).is_file(), name
    ckpt = load_checkpoint(smoke_run)
    meta = ckpt.meta
    assert meta["class_names"] == sorted(meta["class_names"]) and len(meta["class_names"]) == 9
    assert meta["split"]["group_by"] == "cluster" and meta["split"]["leaky"] is False
    assert meta["input_size"] == [32, 32] and len(meta["mean"]) == 3
    assert 0.0 <= meta["metrics"]["test"]["top1"] <= 1.0
    assert ckpt.load_split().hash == meta["split"]["hash"]
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["test"]["n"] == 9 * 12
    assert ckpt.model(torch.zeros(1, 3, 32, 32)).shape == (1, 9)


def test_existing_run_refused(smoke_run: Path, fish_root: Path) -> None:
    with pytest.raises(ConfigError, match="exists already"):
        train(_cfg(fish_root, smoke_run.parent.parent))


def test_unwritable_output(fish_root: Path, tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(OutputError, match="cannot write to .*choose an output path in a writable folder"):
        train(_cfg(fish_root, blocker / "sub"))


def test_leaky_flag_marks_results(fish_root: Path, tmp_path: Path) -> None:
    path = train(_cfg(fish_root, tmp_path, "data.leaky_split=true"))
    meta = load_checkpoint(path).meta
    assert meta["split"]["leaky"] is True and meta["metrics"]["leaky"] is True
    assert json.loads((path.parent / "split.json").read_text())["note"].startswith("LEAKY")


def test_resume_from_last_checkpoint(smoke_run: Path, fish_root: Path, tmp_path: Path) -> None:
    last = smoke_run.parent / "checkpoints" / "last.ckpt"
    assert last.is_file()
    path = train(_cfg(fish_root, tmp_path, "trainer.max_epochs=2"), resume=last)
    assert load_checkpoint(path).meta["epochs"] == 2


def test_refit_with_ema_trains_on_train_and_val(fish_root: Path, tmp_path: Path) -> None:
    """The refit model sees train + val, keeps the selection run's val score and never the test split."""
    path = train(_cfg(fish_root, tmp_path, "trainer.max_epochs=3", "trainer.refit=true", "trainer.ema_decay=0.9"))
    run = path.parent
    meta = load_checkpoint(path).meta
    best = meta["selection"]["best_epoch"]
    assert meta["selection"]["monitor"] == "val_bacc" and 0 <= best <= 2
    assert meta["refit"]["sides"] == ["train", "val"] and meta["refit"]["schedule_epochs"] == 3
    assert meta["refit"]["epochs"] == best + 1, "the refit stops after the epoch the selection run chose"
    refit_log = (run / "refit" / "metrics.csv").read_text().splitlines()
    assert {int(line.split(",")[0]) for line in refit_log[1:]} == set(range(best + 1))
    selection = json.loads((run / "selection_metrics.json").read_text())
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["val"]["top1"] == selection["val"]["top1"] and "selection run" in metrics["val"]["note"]
    assert (run / "refit" / "checkpoints" / "last.ckpt").is_file()
    # the refit is trained from scratch on more data: its weights differ from the selection run's
    selected = torch.load(run / "checkpoints" / "best.ckpt", map_location="cpu", weights_only=False)["state_dict"]
    final = load_checkpoint(path).model.state_dict()
    assert not torch.equal(selected["model.head.5.weight"], final["head.5.weight"])


def test_ema_checkpoint_holds_the_average(fish_root: Path, tmp_path: Path) -> None:
    path = train(_cfg(fish_root, tmp_path, "trainer.ema_decay=0.5", "trainer.refit=false"))
    ckpt = torch.load(path.parent / "checkpoints" / "best.ckpt", map_location="cpu", weights_only=False)
    assert "current_model_state" in ckpt, "Lightning's EMA callback stores the raw weights beside the average"
    final = load_checkpoint(path).model.state_dict()
    torch.testing.assert_close(final["head.5.weight"], ckpt["state_dict"]["model.head.5.weight"])


@pytest.mark.parametrize("decay", [0.0, 1.0, 1.5])
def test_bad_ema_decay(fish_root: Path, tmp_path: Path, decay: float) -> None:
    with pytest.raises(ConfigError, match="trainer.ema_decay=.* is not valid"):
        train(_cfg(fish_root, tmp_path, f"trainer.ema_decay={decay}"))


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("trainer.optimizer=adam", "expected 'adamw' or 'sgd'"),
        ("trainer.mixup=-1", "trainer.mixup=-1 is not valid: expected >= 0"),
    ],
)
def test_bad_trainer_settings_refused_before_any_output(
    fish_root: Path, tmp_path: Path, override: str, message: str
) -> None:
    with pytest.raises(ConfigError, match=message):
        train(_cfg(fish_root, tmp_path, override))
    assert not (tmp_path / "smoke").exists(), "no half-written run folder"


def test_sgd_trains(fish_root: Path, tmp_path: Path) -> None:
    path = train(_cfg(fish_root, tmp_path, "trainer.optimizer=sgd", "trainer.lr=0.05", "trainer.refit=false"))
    assert load_checkpoint(path).meta["class_names"]
