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


# -- file modes follow the umask (issue 12, item 2) -----------------------------------------------------------------


@pytest.fixture
def umask_022():
    old = os.umask(0o022)
    yield
    os.umask(old)


def test_atomic_write_follows_the_umask(tmp_path, umask_022):
    from fishopt.io import atomic_write_json, atomic_write_text, umask

    assert umask() == 0o022
    for path in (atomic_write_json(tmp_path / "manifest.json", {"a": 1}), atomic_write_text(tmp_path / "x.yaml", "a")):
        assert oct(path.stat().st_mode & 0o777) == "0o644"  # the temporary file is 0600; the final one is not
    os.umask(0o077)
    assert oct(atomic_write_text(tmp_path / "private.txt", "a").stat().st_mode & 0o777) == "0o600"


def test_staged_folder_follows_the_umask(tmp_path, umask_022):
    from fishopt.io import atomic_write_text, staging_dir

    with staging_dir(tmp_path / "out") as tmp:
        atomic_write_text(tmp / "manifest.json", "{}")
    assert oct((tmp_path / "out").stat().st_mode & 0o777) == "0o755"
    assert oct((tmp_path / "out" / "manifest.json").stat().st_mode & 0o777) == "0o644"


# -- staged builds leave nothing behind (items 11 and 19) ------------------------------------------------------------


@pytest.mark.parametrize("exc", [RuntimeError("boom"), KeyboardInterrupt(), SystemExit(143)])
def test_staging_dir_removes_the_build_on_any_exception(tmp_path, exc):
    from fishopt.io import staging_dir

    with pytest.raises(type(exc)), staging_dir(tmp_path / "out") as tmp:
        (tmp / "model.onnx").write_bytes(b"half")
        raise exc
    assert list(tmp_path.iterdir()) == []


def test_staging_dir_moves_into_place_and_replaces(tmp_path):
    from fishopt.io import staging_dir

    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "old.txt").write_text("old")
    with staging_dir(tmp_path / "out") as tmp:
        assert tmp.parent == tmp_path and tmp.name.startswith(f".out.build-{os.getpid()}-")
        (tmp / "new.txt").write_text("new")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]
    assert [p.name for p in (tmp_path / "out").iterdir()] == ["new.txt"]


def test_next_build_removes_stale_builds_of_dead_processes_only(tmp_path):
    import subprocess

    from fishopt.io import staging_dir

    proc = subprocess.Popen(["true"])
    proc.wait()  # a pid that no longer runs
    stale = tmp_path / f".out.build-{proc.pid}-0123abcd"
    stale_old = tmp_path / f".out.old-{proc.pid}"
    running = tmp_path / f".out.build-{os.getpid()}-feedbeef"  # a build of a live process
    other = tmp_path / f".other.build-{proc.pid}-0123abcd"  # another destination's
    for folder in (stale, stale_old, running, other):
        folder.mkdir()
        (folder / "model.onnx").write_bytes(b"x" * 10)
    with staging_dir(tmp_path / "out") as tmp:
        (tmp / "a").write_text("a")
    assert not stale.exists() and not stale_old.exists()
    assert running.exists() and other.exists()


def test_staging_dir_in_an_unwritable_place_is_an_output_error(tmp_path):
    from fishopt.io import staging_dir

    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(OutputError, match="cannot write to .*choose an output path in a writable folder"):
        with staging_dir(blocker / "out"):
            pass
    if os.geteuid() != 0:  # root writes anywhere
        ro = tmp_path / "ro"
        ro.mkdir(mode=0o555)
        with pytest.raises(OutputError, match="Permission denied"), staging_dir(ro / "out"):
            pass


def test_file_sha256_names_an_unreadable_file(tmp_path, monkeypatch):
    from fishopt.errors import DataError
    from fishopt.io import file_sha256

    with pytest.raises(DataError, match="cannot read .*missing.jpg"):
        file_sha256(tmp_path / "missing.jpg")
    locked = tmp_path / "locked.jpg"
    locked.write_bytes(b"x")
    locked.chmod(0)
    if os.geteuid() == 0:  # root reads anything: make open() refuse the way it does for other users
        import builtins

        real_open = builtins.open

        def refusing_open(file, *args, **kwargs):
            if str(file) == str(locked):
                raise PermissionError(13, "Permission denied", str(file))
            return real_open(file, *args, **kwargs)

        monkeypatch.setattr(builtins, "open", refusing_open)
    with pytest.raises(
        DataError, match=r"cannot read .*locked.jpg.*Permission denied; make it readable \(chmod a\+r\)"
    ):
        file_sha256(locked)
