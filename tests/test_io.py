"""fishopt.io: atomic writes and archive deflation."""

from __future__ import annotations

import os
import zipfile

import pytest

from fishopt.errors import OutputError
from fishopt.io import atomic_write, deflate_zip


def test_atomic_write_leaves_nothing_when_the_writer_fails(tmp_path):
    def broken(tmp):
        tmp.write_text("half")
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError, match="disk full"):
        atomic_write(tmp_path / "out.txt", broken)
    assert list(tmp_path.iterdir()) == []


def test_atomic_write_into_an_unwritable_folder_names_the_path(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(OutputError, match="writable"):
        atomic_write(blocker / "out.txt", lambda p: p.write_text("x"))


def test_deflate_zip_keeps_records_and_mode(tmp_path):
    path = tmp_path / "a.pt2"
    records = {"model/models/model.json": b'{"graph": []}' * 500, "model/data/weights/w0": bytes(range(256)) * 8}
    with zipfile.ZipFile(path, "w") as zf:
        for name, data in records.items():
            zf.writestr(name, data)
    os.chmod(path, 0o644)
    before = path.stat().st_size
    after = deflate_zip(path)
    assert after == path.stat().st_size < before
    assert oct(path.stat().st_mode & 0o777) == "0o644"
    with zipfile.ZipFile(path) as zf:
        assert {i.filename: i.compress_type for i in zf.infolist()} == dict.fromkeys(records, zipfile.ZIP_DEFLATED)
        assert {name: zf.read(name) for name in records} == records
    assert [p.name for p in tmp_path.iterdir()] == ["a.pt2"]  # no temporary file left
