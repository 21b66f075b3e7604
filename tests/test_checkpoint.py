from __future__ import annotations

from pathlib import Path

import pytest
import torch

from fishopt.checkpoint import check_compatible, load_checkpoint
from fishopt.errors import CheckpointError


def test_roundtrip_weights_only(tiny_checkpoint: Path) -> None:
    blob = torch.load(tiny_checkpoint, weights_only=True)
    assert blob["format"] == "fishopt-checkpoint"
    ckpt = load_checkpoint(tiny_checkpoint)
    assert ckpt.class_names == ["Alpha Fish", "Beta Fish", "Gamma Fish"]
    assert not ckpt.model.training
    assert ckpt.load_split().hash == ckpt.meta["split"]["hash"]


def test_loading_leaves_the_callers_random_stream_alone(tiny_checkpoint: Path) -> None:
    """Rebuilding the module draws a random init; the caller's generator must not see it (a seeded training
    run that loads its teacher would otherwise train another model)."""
    torch.manual_seed(0)
    expected = torch.rand(4)
    torch.manual_seed(0)
    load_checkpoint(tiny_checkpoint)
    assert torch.equal(torch.rand(4), expected)


def test_missing_corrupt_foreign(tmp_path: Path) -> None:
    with pytest.raises(CheckpointError, match="not found"):
        load_checkpoint(tmp_path / "none.pt")
    (tmp_path / "bad.pt").write_bytes(b"garbage")
    with pytest.raises(CheckpointError, match="corrupt"):
        load_checkpoint(tmp_path / "bad.pt")
    torch.save({"a": 1}, tmp_path / "other.pt")
    with pytest.raises(CheckpointError, match="not a fishopt checkpoint"):
        load_checkpoint(tmp_path / "other.pt")


def test_weights_mismatch(tiny_checkpoint: Path) -> None:
    blob = torch.load(tiny_checkpoint, weights_only=True)
    blob["meta"]["model"]["cfg"]["width"] = 8
    torch.save(blob, tiny_checkpoint)
    with pytest.raises(CheckpointError, match="do not match its model config"):
        load_checkpoint(tiny_checkpoint)


def test_compatibility(tiny_checkpoint: Path) -> None:
    meta = load_checkpoint(tiny_checkpoint).meta
    check_compatible(meta, meta["class_names"], meta["input_size"])
    with pytest.raises(CheckpointError, match="classes"):
        check_compatible(meta, ["x", "y"])
    with pytest.raises(CheckpointError, match="input size"):
        check_compatible(meta, input_size=[64, 64])


def test_split_images_is_a_seeded_stratified_sample_of_one_part(fish_checkpoint):
    from collections import Counter

    from fishopt.checkpoint import load_checkpoint

    ckpt = load_checkpoint(fish_checkpoint)
    split = ckpt.load_split()
    side = ckpt.split_images("test", limit=18)
    assert len(side.paths) == len(side.files) == len(side.images) == len(side.labels) == 18
    assert set(side.paths) <= set(split.paths("test"))
    assert [ckpt.class_names[i] for i in side.labels.tolist()] == [split.labels[p] for p in side.paths]
    assert max(Counter(side.labels.tolist()).values()) - min(Counter(side.labels.tolist()).values()) <= 1
    assert side.paths == ckpt.split_images("test", limit=18).paths  # seeded
    assert tuple(side.images.shape[2:]) == tuple(ckpt.meta["load_size"])
    small = ckpt.split_images("test", limit=4, size=(24, 32))
    assert small.images.dtype.is_floating_point is False and tuple(small.images.shape[1:]) == (3, 24, 32)
    assert len(ckpt.split_images("val").paths) == len(split.paths("val"))


# -- issue 12, items 8, 13 and 15 -----------------------------------------------------------------------------------


def test_random_bytes_empty_and_pickled_code_say_what_the_file_is(tmp_path: Path) -> None:
    import os
    import pickle

    (tmp_path / "empty.pt").write_bytes(b"")
    (tmp_path / "random.pt").write_bytes(os.urandom(4096))

    class Evil:
        def __reduce__(self):
            return (print, ("pwned",))

    torch.save({"format": "fishopt-checkpoint", "x": Evil()}, tmp_path / "evil.pt", pickle_module=pickle)
    messages = {}
    for name in ("empty.pt", "random.pt", "evil.pt"):
        with pytest.raises(CheckpointError) as info:
            load_checkpoint(tmp_path / name)
        messages[name] = str(info.value)
        assert "weights_only" not in messages[name] and "likely succeed" not in messages[name]
        assert "fishopt train" in messages[name]
    assert "is empty (0 bytes)" in messages["empty.pt"]
    assert "is not a fishopt checkpoint: not a torch archive" in messages["random.pt"]
    assert "never loads those (they could run code)" in messages["evil.pt"]


@pytest.mark.parametrize(
    ("edit", "match"),
    [
        (lambda m: m.pop("model"), "lacks metadata key\\(s\\) model;"),
        (lambda m: m.pop("class_names"), "lacks metadata key\\(s\\) class_names"),
        (lambda m: m.update(model={"name": "baseline"}), "lacks metadata key\\(s\\) model.name, model.cfg"),
        (lambda m: m.update(split={"file": "split.json"}), "lacks metadata key\\(s\\) split.file, split.hash"),
        (lambda m: m["model"]["cfg"].update(colour="red"), "does not fit model 'baseline'"),
        (lambda m: m.update(class_names=m["class_names"][:2]), "its model has 3 outputs but 2 class names"),
    ],
)
def test_altered_metadata_is_a_checkpoint_error(tiny_checkpoint: Path, edit, match) -> None:
    blob = torch.load(tiny_checkpoint, weights_only=True)
    edit(blob["meta"])
    torch.save(blob, tiny_checkpoint)
    with pytest.raises(CheckpointError, match=match):
        load_checkpoint(tiny_checkpoint)


def test_fewer_classes_than_the_split_is_named(tiny_checkpoint: Path) -> None:
    from fishopt.checkpoint import save_checkpoint
    from fishopt.models import create_model

    ckpt = load_checkpoint(tiny_checkpoint)
    meta = dict(ckpt.meta, class_names=ckpt.class_names[:2])
    meta["model"] = {"name": "baseline", "cfg": dict(meta["model"]["cfg"], num_classes=2)}
    save_checkpoint(tiny_checkpoint, create_model("baseline", **meta["model"]["cfg"]), meta)
    two = load_checkpoint(tiny_checkpoint)
    with pytest.raises(CheckpointError, match="split .* has class\\(es\\) the checkpoint does not know: Gamma Fish"):
        two.split_images("test")


def test_missing_split_file_message_names_no_missing_option(tiny_checkpoint: Path) -> None:
    from fishopt.errors import SplitError

    (tiny_checkpoint.parent / "split.json").unlink()
    with pytest.raises(SplitError) as info:
        load_checkpoint(tiny_checkpoint).load_split()
    assert "--split-file" not in str(info.value) and "beside model.pt" in str(info.value)
