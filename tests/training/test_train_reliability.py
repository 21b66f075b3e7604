"""Training fails before the expensive part, leaves nothing half-written, and runs under DDP (issue 12)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from helpers import write_image

import fishopt
from fishopt.checkpoint import load_checkpoint
from fishopt.errors import CheckpointError, ConfigError, DataError, MissingDependencyError
from fishopt.training import train as train_mod
from fishopt.training.config import compose_config, to_dict
from fishopt.training.train import train

REPO = Path(fishopt.__file__).resolve().parents[1]  # the fishopt under test, for the child processes too
TINY = [
    "trainer.max_epochs=1",
    "trainer.progress_bar=false",
    "trainer.refit=false",
    "data.load_size=[36,48]",
    "data.input_size=[32,32]",
    "data.batch_size=8",
    "model.width=4",
    "model.hidden=16",
    "trainer.threads=1",
]


def _cfg(root: Path, out: Path, *extra: str) -> dict:
    return to_dict(compose_config([*TINY, f"data.root={root}", f"out_dir={out}", "run_name=run", *extra]))


@pytest.fixture
def no_fit(monkeypatch):
    """Fail the test if training starts."""
    import pytorch_lightning as pl

    def fit(*args, **kwargs):
        raise AssertionError("Trainer.fit ran: the bad input should have been refused before training")

    monkeypatch.setattr(pl.Trainer, "fit", fit)


def test_bad_images_of_every_side_are_named_before_training(synthetic_root, tmp_path, no_fit):
    split = load_checkpoint(_tiny_ckpt(tmp_path, synthetic_root)).load_split()  # the split training makes too
    broken = [synthetic_root / split.paths("test")[0], synthetic_root / split.paths("val")[0]]
    broken[0].write_bytes(broken[0].read_bytes()[:100])
    broken[1].write_bytes(b"not an image at all")
    out = tmp_path / "runs"
    with pytest.raises(DataError) as info:
        train(_cfg(synthetic_root, out))
    message = str(info.value)
    assert message.startswith("2 of ") and all(p.name in message for p in broken)
    assert not out.exists() or list(out.iterdir()) == []  # no run folder, no checkpoints, no metrics.csv


def _tiny_ckpt(tmp_path: Path, root: Path) -> Path:
    from helpers import make_tiny_checkpoint

    return make_tiny_checkpoint(tmp_path / "ref", root)


def test_failed_run_leaves_no_run_folder_and_a_retry_works(synthetic_root, tmp_path, monkeypatch):
    out = tmp_path / "runs"
    real_finish = train_mod._finish

    def crash(*args, **kwargs):
        raise RuntimeError("disk full while writing model.pt")

    monkeypatch.setattr(train_mod, "_finish", crash)
    with pytest.raises(RuntimeError, match="disk full"):
        train(_cfg(synthetic_root, out))
    kept = list(out.iterdir())
    assert [p.name.startswith("run.failed-") for p in kept] == [True]  # resumable, not in the way of a retry
    assert (kept[0] / "checkpoints" / "last.ckpt").is_file() and not (kept[0] / "model.pt").exists()
    monkeypatch.setattr(train_mod, "_finish", real_finish)
    old = os.umask(0o022)
    try:
        path = train(_cfg(synthetic_root, out))  # the same run_name
    finally:
        os.umask(old)
    assert path == out / "run" / "model.pt" and path.is_file()
    for name in ("model.pt", "config.yaml", "split.json", "metrics.json"):  # item 2: the umask's modes
        assert oct((out / "run" / name).stat().st_mode & 0o777) == "0o644", name
    assert oct((out / "run").stat().st_mode & 0o777) == "0o755"
    assert not [p for p in out.iterdir() if p.name.startswith(".")]


def test_interrupt_before_a_checkpoint_leaves_nothing(synthetic_root, tmp_path, monkeypatch):
    def interrupt(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(train_mod, "_module", interrupt)
    with pytest.raises(KeyboardInterrupt):
        train(_cfg(synthetic_root, tmp_path / "runs"))
    assert list((tmp_path / "runs").iterdir()) == []


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("trainer.accelerator=nosuch", r"Lightning refuses trainer.accelerator='nosuch'.*Available names are: .*cpu"),
        ("trainer.strategy=nosuch", r"Lightning refuses .*trainer.strategy='nosuch'.*invalid strategy"),
        ("trainer.precision=64-mixed", r"Lightning refuses .*precision='64-mixed'"),
    ],
)
def test_lightning_settings_refused_before_any_output(synthetic_root, tmp_path, no_fit, override, message):
    with pytest.raises(ConfigError, match=message):
        train(_cfg(synthetic_root, tmp_path / "runs", override))
    assert not (tmp_path / "runs").exists()


@pytest.mark.parametrize("kind", ["tensorboard", "wandb"])
def test_missing_logger_names_the_extra(synthetic_root, tmp_path, monkeypatch, no_fit, kind):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util,
        "find_spec",
        lambda name, *a: None if name in ("tensorboard", "tensorboardX", "wandb") else real(name, *a),
    )
    with pytest.raises(
        MissingDependencyError, match=rf"trainer.logger={kind} needs .* pip install 'fishopt\[loggers\]'"
    ):
        train(_cfg(synthetic_root, tmp_path / "runs", f"trainer.logger={kind}"))
    assert not (tmp_path / "runs").exists()


def test_resume_refuses_code_carrying_and_foreign_files(synthetic_root, tmp_path, no_fit):
    import pickle

    class Evil:
        def __reduce__(self):
            return (os.system, ("echo pwned",))

    evil = tmp_path / "last.ckpt"
    torch.save({"state_dict": {}, "epoch": 0, "loops": {}, "x": Evil()}, evil, pickle_module=pickle)
    with pytest.raises(CheckpointError, match="never loads those .*--resume takes the last.ckpt"):
        train(_cfg(synthetic_root, tmp_path / "runs"), resume=evil)
    model_pt = _tiny_ckpt(tmp_path, synthetic_root)
    with pytest.raises(CheckpointError, match="not a Lightning training checkpoint"):
        train(_cfg(synthetic_root, tmp_path / "runs"), resume=model_pt)
    assert not (tmp_path / "runs").exists()


def test_data_with_some_species_missing_warns_and_records_it(tmp_path, caplog):
    rng = np.random.default_rng(0)
    root = tmp_path / "fish"
    rows = ["path,class,group,cluster"]
    for ci, name in enumerate(("Shrimp", "Trout", "Sea Bass")):  # 3 of the 9 species
        for g in range(4):
            for k in range(3):
                p = write_image(root / name / f"{g}-{k}.png", rng, color=ci)
                rows.append(f"{name}/{p.name},{name},{name}/g{g},{name}/c{g}")
    (root / "groups.csv").write_text("\n".join(rows) + "\n")
    with caplog.at_level("WARNING"):
        path = train(_cfg(root, tmp_path / "runs"))
    assert "holds 3 of the 9 species of the fish dataset" in caplog.text and "Black Sea Sprat" in caplog.text
    assert load_checkpoint(path).meta["missing_species"][0] == "Black Sea Sprat"


def test_ddp_on_cpu_with_two_processes(synthetic_root, tmp_path):
    """trainer.strategy=ddp through Lightning's launcher: rank 0 writes the run, rank 1 trains with it."""
    out = tmp_path / "runs"
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]),
        "PYTHONWARNINGS": "ignore",
    }
    for key in ("LOCAL_RANK", "RANK", "NODE_RANK", "WORLD_SIZE", "MASTER_PORT"):
        env.pop(key, None)
    cmd = [
        sys.executable,
        "-m",
        "fishopt",
        "train",
        "--data",
        str(synthetic_root),
        *TINY,
        "trainer.max_epochs=2",
        "trainer.refit=true",
        f"out_dir={out}",
        "run_name=ddp",
        "trainer.strategy=ddp",
        "trainer.devices=2",
        "trainer.accelerator=cpu",
    ]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "Starting with 2 processes" in proc.stderr and "distributed_backend=gloo" in proc.stderr
    assert proc.stdout.strip().splitlines() == [str(out / "ddp" / "model.pt")]  # printed once, by rank 0
    assert sorted(p.name for p in out.iterdir()) == ["ddp"]
    run = out / "ddp"
    for name in ("config.yaml", "split.json", "metrics.csv", "metrics.json", "model.pt", "checkpoints/best.ckpt"):
        assert (run / name).is_file(), name
    meta = load_checkpoint(run / "model.pt").meta
    assert meta["refit"]["epochs"] == meta["selection"]["best_epoch"] + 1


def test_sigterm_during_training_exits_143_and_keeps_the_resumable_run(synthetic_root, tmp_path):
    """Lightning's own SIGTERM handler runs first, then fishopt's: the run stops like on Ctrl-C."""
    import signal
    import time

    out = tmp_path / "runs"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])}
    cmd = [
        sys.executable,
        "-m",
        "fishopt",
        "train",
        "--data",
        str(synthetic_root),
        *TINY,
        "trainer.max_epochs=500",
        "trainer.patience=500",
        f"out_dir={out}",
        "run_name=long",
    ]
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while not list(out.glob(".long.build-*/checkpoints/last.ckpt")):
        assert proc.poll() is None and time.monotonic() < deadline, proc.communicate()
        time.sleep(0.1)
    proc.send_signal(signal.SIGTERM)
    _, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 143, stderr[-2000:]
    assert "interrupted (SIGTERM)" in stderr and "Traceback" not in stderr
    kept = [p.name for p in out.iterdir()]
    assert len(kept) == 1 and kept[0].startswith("long.failed-"), kept
    assert (out / kept[0] / "checkpoints" / "last.ckpt").is_file()
