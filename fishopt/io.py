"""Small I/O helpers: atomic writes, staged output folders, file modes and content hashes.

Every file and folder fishopt writes follows the user's umask (0644 / 0755 with umask 022), like files any
other tool writes; temporary names are hidden (``.<name>.*``) and never outlive the process that made them
(a killed process's are removed by the next build into the same place).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import re
import secrets
import shutil
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from fishopt.errors import DataError, OutputError

log = logging.getLogger(__name__)


def umask() -> int:
    """The process's umask (read without changing it where the OS allows)."""
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    mask = os.umask(0o022)  # no read-only query elsewhere: set and restore at once
    os.umask(mask)
    return mask


def file_mode(executable: bool = False) -> int:
    """The mode a new file gets from the umask: 0644 (0755 when ``executable``) with umask 022."""
    return (0o777 if executable else 0o666) & ~umask()


def publish_modes(folder: str | os.PathLike[str], executable_suffixes: tuple[str, ...] = ()) -> None:
    """Give a finished folder tree the umask's modes: folders and files with ``executable_suffixes`` 0755,
    other files 0644 (with umask 022)."""
    folder = Path(folder)
    for path in [folder, *folder.rglob("*")]:
        if path.is_symlink():
            continue
        os.chmod(path, file_mode(executable=path.is_dir() or path.suffix in executable_suffixes))


def _tmp_path(dest: Path) -> Path:
    try:
        dest.parent.mkdir(parents=True, exist_ok=True)
        fd, name = tempfile.mkstemp(prefix=f".{dest.name}.", suffix=".tmp", dir=dest.parent)
    except OSError as exc:
        raise OutputError(
            f"cannot write to {str(dest.parent)!r}: {exc.strerror}; choose a writable output path"
        ) from exc
    os.close(fd)
    return Path(name)


def atomic_write(dest: str | os.PathLike[str], writer: Callable[[Path], Any], mode: int | None = None) -> Path:
    """Write a file through a temporary name in the same folder, then rename it into place.

    Args:
        dest: Final path.
        writer: Called with the temporary path; must write the whole file there.
        mode: The file's mode (default: what the umask gives a new file, 0644 with umask 022; the temporary
            file itself is created 0600).

    Returns:
        The final path.

    Raises:
        OutputError: If the folder cannot be written.
    """
    dest = Path(dest)
    tmp = _tmp_path(dest)
    try:
        writer(tmp)
        os.chmod(tmp, file_mode() if mode is None else mode)
        os.replace(tmp, dest)
    finally:
        if tmp.exists():
            tmp.unlink()
    return dest


def atomic_write_text(dest: str | os.PathLike[str], text: str) -> Path:
    """Atomically write ``text`` (UTF-8) to ``dest``."""
    return atomic_write(dest, lambda p: p.write_text(text, encoding="utf-8"))


def atomic_write_json(dest: str | os.PathLike[str], obj: Any) -> Path:
    """Atomically write ``obj`` as indented JSON to ``dest``."""
    return atomic_write_text(dest, json.dumps(obj, indent=2, sort_keys=False) + "\n")


def deflate_zip(path: str | os.PathLike[str], level: int = 9) -> int:
    """Rewrite a zip archive in place (atomically) with every record deflated; return the new size in bytes.

    ``torch.export.save`` and AOTInductor write their ``.pt2`` archives with every record stored
    uncompressed; their readers (``torch.export.load``, ``aoti_load_package`` and the C++ package loader)
    are standard zip readers and read deflated records too.
    """
    import zipfile

    path = Path(path)

    def write(tmp: Path) -> None:
        with zipfile.ZipFile(path) as src, zipfile.ZipFile(tmp, "w") as dst:
            for info in src.infolist():
                dst.writestr(info, src.read(info), compress_type=zipfile.ZIP_DEFLATED, compresslevel=level)

    atomic_write(path, write, mode=path.stat().st_mode & 0o7777)  # keep the archive's mode
    return path.stat().st_size


def file_sha256(path: str | os.PathLike[str], chunk: int = 1 << 20) -> str:
    """Return the hex SHA-256 of a file's content.

    Raises:
        DataError: If the file cannot be read (missing, permission denied, a folder); names the file.
    """
    digest = hashlib.sha256()
    try:
        with open(path, "rb") as handle:
            while block := handle.read(chunk):
                digest.update(block)
    except OSError as exc:
        raise DataError(f"cannot read {str(path)!r}: {exc.strerror or exc}; {_read_fix(exc)}") from exc
    return digest.hexdigest()


def _read_fix(exc: OSError) -> str:
    if isinstance(exc, PermissionError):
        return "make it readable (chmod a+r) or remove it"
    if isinstance(exc, FileNotFoundError):
        return "it disappeared while fishopt ran; check the path"
    return "check the file, or remove it"


def text_sha256(text: str) -> str:
    """Return the hex SHA-256 of a string (UTF-8)."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def ensure_new_dir(path: str | os.PathLike[str], overwrite: bool = False) -> Path:
    """Check that an output folder may be written, and create it.

    Args:
        path: The folder.
        overwrite: Allow an existing, non-empty folder.

    Raises:
        OutputError: If it exists and is not empty (unless ``overwrite``) or cannot be created.
    """
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise OutputError(f"output path {str(path)!r} exists and is a file; choose another --out")
    if path.is_dir() and any(path.iterdir()) and not overwrite:
        raise OutputError(
            f"output folder {str(path)!r} exists and is not empty; choose another --out or pass --overwrite"
        )
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OutputError(f"cannot create output folder {str(path)!r}: {exc.strerror}; choose a writable path") from exc
    if not os.access(path, os.W_OK):
        raise OutputError(f"output folder {str(path)!r} is not writable; choose a writable path")
    return path


def replace_dir(src: str | os.PathLike[str], dest: str | os.PathLike[str]) -> Path:
    """Move a finished folder into place, replacing ``dest`` (an empty or existing folder) in one rename.

    The old ``dest`` is renamed aside first and removed only after ``src`` is in place, so a reader sees
    either the old folder or the new one, never a half-written one.
    """
    src, dest = Path(src), Path(dest)
    if dest.is_dir() and not any(dest.iterdir()):
        dest.rmdir()
    elif dest.exists():
        old = dest.with_name(f".{dest.name}.old-{os.getpid()}")
        os.replace(dest, old)
        os.replace(src, dest)
        shutil.rmtree(old, ignore_errors=True)
        return dest
    os.replace(src, dest)
    return dest


def pid_alive(pid: int) -> bool:
    """Whether a process with this id runs on this machine (one of another user counts as running)."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _stale_pattern(name: str) -> re.Pattern[str]:
    return re.compile(rf"^\.{re.escape(name)}\.(?:build|old)-(\d+)(?:-[0-9a-f]+)?$")


def remove_stale_builds(dest: str | os.PathLike[str]) -> list[Path]:
    """Remove the hidden build folders (``.<name>.build-<pid>-<random>``, ``.<name>.old-<pid>``) that a killed
    process (SIGKILL, power loss) left beside ``dest``; folders of running processes stay.

    Returns:
        The folders removed.
    """
    dest = Path(dest)
    parent = dest.parent
    if not parent.is_dir():
        return []
    pattern = _stale_pattern(dest.name)
    removed = []
    for entry in parent.iterdir():
        match = pattern.match(entry.name)
        if match and entry.is_dir() and not entry.is_symlink() and not pid_alive(int(match.group(1))):
            shutil.rmtree(entry, ignore_errors=True)
            removed.append(entry)
    if removed:
        log.warning(
            "removed %d unfinished build folder(s) of stopped processes beside %s: %s",
            len(removed),
            dest,
            ", ".join(p.name for p in removed),
        )
    return removed


def make_staging_dir(dest: str | os.PathLike[str]) -> Path:
    """Create the hidden build folder ``.<name>.build-<pid>-<random>`` beside ``dest`` (mode from the umask),
    after removing stale ones of stopped processes.

    Raises:
        OutputError: If the folder beside ``dest`` cannot be created (read-only, not a folder, no space).
    """
    dest = Path(dest)
    parent = dest.absolute().parent
    try:
        parent.mkdir(parents=True, exist_ok=True)
        remove_stale_builds(dest)
        tmp = parent / f".{dest.name}.build-{os.getpid()}-{secrets.token_hex(4)}"
        tmp.mkdir()
    except OSError as exc:
        raise OutputError(
            f"cannot write to {str(parent)!r} ({exc.strerror or exc}); choose an output path in a writable folder"
        ) from exc
    return tmp


@contextlib.contextmanager
def staging_dir(dest: str | os.PathLike[str]) -> Iterator[Path]:
    """Build a folder beside ``dest`` and move it into place only when the block finishes.

    The block writes into the yielded hidden folder ``.<name>.build-<pid>-<random>``; on success it replaces
    ``dest`` in one rename (:func:`replace_dir`); on any exception, including ``KeyboardInterrupt`` and the
    ``SystemExit`` of a SIGTERM, it is removed. A build killed outright (SIGKILL) leaves it behind, and the next
    build into the same place removes it (its process is gone).

    Args:
        dest: The final folder; the caller checks whether it may be replaced.

    Yields:
        The build folder.

    Raises:
        OutputError: If the build folder cannot be created.
    """
    tmp = make_staging_dir(dest)
    try:
        yield tmp
        replace_dir(tmp, dest)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def check_new_dir(path: str | os.PathLike[str], overwrite: bool = False) -> Path:
    """Check that an output folder may be written (without creating it).

    Raises:
        OutputError: If it is a file, or exists and is not empty (unless ``overwrite``).
    """
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise OutputError(f"output path {str(path)!r} exists and is a file; choose another --out")
    if path.is_dir() and any(path.iterdir()) and not overwrite:
        raise OutputError(
            f"output folder {str(path)!r} exists and is not empty; choose another --out or pass --overwrite"
        )
    return path
