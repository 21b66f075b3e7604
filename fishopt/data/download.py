"""Download the full Kaggle fish dataset (or any zip in the same layout) and unpack it safely.

Nothing downloads at import time or in tests; tests serve a small zip from a loopback HTTP server.
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import urllib.error
import urllib.request
import zipfile
from pathlib import Path
from urllib.parse import urlsplit

from fishopt.data.discovery import find_dataset
from fishopt.errors import DataError, DownloadError, OutputError
from fishopt.io import make_staging_dir

KAGGLE_DATASET = "crowww/a-large-scale-fish-dataset"
KAGGLE_HOST = "www.kaggle.com"
KAGGLE_URL = f"https://{KAGGLE_HOST}/api/v1/datasets/download/{KAGGLE_DATASET}"


def kaggle_credentials() -> tuple[str, str] | None:
    """Return (username, key) from ``KAGGLE_USERNAME``/``KAGGLE_KEY`` or ``~/.kaggle/kaggle.json``."""
    user, key = os.environ.get("KAGGLE_USERNAME"), os.environ.get("KAGGLE_KEY")
    if user and key:
        return user, key
    config = Path(os.environ.get("KAGGLE_CONFIG_DIR", Path.home() / ".kaggle")) / "kaggle.json"
    if config.is_file():
        try:
            data = json.loads(config.read_text())
            return data["username"], data["key"]
        except (json.JSONDecodeError, KeyError) as exc:
            raise DownloadError(f"{config} is not a valid kaggle.json (needs 'username' and 'key')") from exc
    return None


def is_kaggle_api(url: str) -> bool:
    """Whether ``url`` is the Kaggle API over HTTPS: the only place Kaggle credentials are ever sent."""
    parts = urlsplit(url)
    return parts.scheme == "https" and parts.hostname == KAGGLE_HOST and parts.port in (None, 443)


def _request(url: str, credentials: tuple[str, str] | None) -> urllib.request.Request:
    """The GET request; credentials go only to the Kaggle API over HTTPS, and never along a redirect.

    The Authorization header is an "unredirected" header: urllib drops it when the server redirects (the
    Kaggle API redirects to a signed storage URL that needs no credentials).
    """
    req = urllib.request.Request(url, headers={"User-Agent": "fishopt"})
    if credentials and is_kaggle_api(url):
        token = base64.b64encode(f"{credentials[0]}:{credentials[1]}".encode()).decode()
        req.add_unredirected_header("Authorization", f"Basic {token}")
    return req


def _fetch(url: str, credentials: tuple[str, str] | None, dest: Path, timeout: float) -> None:
    try:
        with urllib.request.urlopen(_request(url, credentials), timeout=timeout) as resp, dest.open("wb") as out:
            shutil.copyfileobj(resp, out, length=1 << 20)
    except urllib.error.HTTPError as exc:
        if exc.code in (401, 403) and is_kaggle_api(url):
            raise DownloadError(
                f"{url} refused the download (HTTP {exc.code}): Kaggle credentials are missing or invalid; set "
                "KAGGLE_USERNAME and KAGGLE_KEY or put kaggle.json in ~/.kaggle (kaggle.com > Settings > API)"
            ) from exc
        if exc.code in (401, 403):
            raise DownloadError(
                f"{url} refused the download (HTTP {exc.code}); fishopt sends Kaggle credentials only to the "
                f"Kaggle API (https://{KAGGLE_HOST}), never to another host: use a URL that needs no login"
            ) from exc
        raise DownloadError(f"download of {url} failed: HTTP {exc.code} {exc.reason}") from exc
    except (urllib.error.URLError, TimeoutError, OSError) as exc:
        raise DownloadError(
            f"cannot reach {url} ({getattr(exc, 'reason', exc)}): are you offline? Download the zip by hand "
            "and unpack it, then pass its folder as --data"
        ) from exc


def _safe_extract(archive: Path, dest: Path) -> None:
    try:
        with zipfile.ZipFile(archive) as zf:
            for member in zf.infolist():
                target = (dest / member.filename).resolve()
                if not target.is_relative_to(dest.resolve()):
                    raise DownloadError(f"archive member {member.filename!r} would unpack outside the target folder")
            zf.extractall(dest)
    except zipfile.BadZipFile as exc:
        raise DownloadError(f"the download is not a valid zip archive ({exc}); try again") from exc


def download_dataset(
    dest: str | os.PathLike[str],
    url: str = KAGGLE_URL,
    *,
    timeout: float = 60.0,
    overwrite: bool = False,
) -> Path:
    """Download and unpack the dataset into ``dest`` (atomically: a partial download leaves nothing).

    Args:
        dest: Folder to create; it becomes the data root to pass as ``--data``.
        url: Zip URL; the default is the Kaggle API download of the fish dataset (needs credentials). Kaggle
            credentials are sent only to the Kaggle API over HTTPS; any other URL is fetched without them.
        timeout: Socket timeout in seconds.
        overwrite: Replace an existing ``dest``.

    Returns:
        ``dest``.

    Raises:
        DownloadError: Offline, missing credentials, HTTP error, bad archive, or no fish classes inside.
        OutputError: ``dest`` exists (without ``overwrite``) or cannot be written.
    """

    dest = Path(dest)
    if dest.exists() and not overwrite:
        raise OutputError(f"{str(dest)!r} exists already; choose another folder or pass --overwrite")
    credentials = kaggle_credentials()
    if url == KAGGLE_URL and credentials is None:
        raise DownloadError(
            "no Kaggle credentials: set KAGGLE_USERNAME and KAGGLE_KEY or put kaggle.json in ~/.kaggle "
            "(kaggle.com > Settings > API > Create New Token)"
        )

    work = make_staging_dir(dest)
    try:
        archive = work / "download.zip"
        _fetch(url, credentials, archive, timeout)
        unpacked = work / "data"
        _safe_extract(archive, unpacked)
        archive.unlink()
        try:
            find_dataset(unpacked)
        except DataError as exc:
            raise DownloadError(f"the downloaded archive does not hold the fish dataset layout: {exc}") from exc
        if dest.exists():
            shutil.rmtree(dest)
        os.replace(unpacked, dest)
    finally:  # any exception, Ctrl-C or SIGTERM
        shutil.rmtree(work, ignore_errors=True)
    return dest
