"""Small I/O helpers: atomic writes and content hashes."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from fishopt.errors import OutputError


def _tmp_path(dest: Path) -> Path:
    try:
        dest.parent.mkdir(parents=True, exist_ok=True)
        fd, name = tempfile.mkstemp(prefix=f".{dest.name}.", suffix=".tmp", dir=dest.parent)
    except OSError as exc:
        raise OutputError(f"cannot write to {str(dest.parent)!r}: {exc.strerror}; choose a writable output path") from exc
    os.close(fd)
    return Path(name)


def atomic_write(dest: str | os.PathLike[str], writer: Callable[[Path], Any]) -> Path:
    """Write a file through a temporary name in the same folder, then rename it into place.

    Args:
        dest: Final path.
        writer: Called with the temporary path; must write the whole file there.

    Returns:
        The final path.

    Raises:
        OutputError: If the folder cannot be written.
    """
    dest = Path(dest)
    tmp = _tmp_path(dest)
    try:
        writer(tmp)
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
        shutil.copymode(path, tmp)  # the temporary file is 0600; keep the archive's mode
        with zipfile.ZipFile(path) as src, zipfile.ZipFile(tmp, "w") as dst:
            for info in src.infolist():
                dst.writestr(info, src.read(info), compress_type=zipfile.ZIP_DEFLATED, compresslevel=level)

    atomic_write(path, write)
    return path.stat().st_size


def file_sha256(path: str | os.PathLike[str], chunk: int = 1 << 20) -> str:
    """Return the hex SHA-256 of a file's content."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(chunk):
            digest.update(block)
    return digest.hexdigest()


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
        raise OutputError(f"output folder {str(path)!r} exists and is not empty; choose another --out or pass --overwrite")
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
