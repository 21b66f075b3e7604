from __future__ import annotations

import http.server
import io
import threading
import zipfile
from pathlib import Path

import numpy as np
import pytest

from helpers import write_image
from fishopt.data import find_dataset
from fishopt.data.download import KAGGLE_URL, download_dataset
from fishopt.errors import DownloadError, OutputError


def _zip(tmp_path: Path, with_classes: bool = True) -> bytes:
    rng = np.random.default_rng(0)
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        if with_classes:
            for name in ("A Fish", "B Fish"):
                img = write_image(tmp_path / "src" / f"{name}.png", rng)
                zf.write(img, f"Fish_Dataset/Fish_Dataset/{name}/{name}/00001.png")
        else:
            zf.writestr("readme.txt", "nothing")
    return buf.getvalue()


@pytest.fixture
def server():
    payloads: dict[str, tuple[int, bytes]] = {}

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802
            code, body = payloads.get(self.path, (404, b""))
            self.send_response(code)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}", payloads
    httpd.shutdown()


def test_download_from_loopback(server, tmp_path: Path) -> None:
    base, payloads = server
    payloads["/fish.zip"] = (200, _zip(tmp_path))
    dest = download_dataset(tmp_path / "data", url=f"{base}/fish.zip")
    assert find_dataset(dest).class_names == ("A Fish", "B Fish")
    with pytest.raises(OutputError, match="exists already"):
        download_dataset(dest, url=f"{base}/fish.zip")


def test_http_errors_leave_nothing(server, tmp_path: Path) -> None:
    base, payloads = server
    payloads["/denied.zip"] = (403, b"")
    payloads["/bad.zip"] = (200, b"not a zip")
    payloads["/empty.zip"] = (200, _zip(tmp_path, with_classes=False))
    with pytest.raises(DownloadError, match="credentials"):
        download_dataset(tmp_path / "d1", url=f"{base}/denied.zip")
    with pytest.raises(DownloadError, match="not a valid zip"):
        download_dataset(tmp_path / "d2", url=f"{base}/bad.zip")
    with pytest.raises(DownloadError, match="layout"):
        download_dataset(tmp_path / "d3", url=f"{base}/empty.zip")
    assert [p.name for p in tmp_path.iterdir() if p.name != "src"] == []


def test_offline(tmp_path: Path) -> None:
    with pytest.raises(DownloadError, match="offline"):
        download_dataset(tmp_path / "d", url="http://127.0.0.1:9/fish.zip", timeout=2)


def test_kaggle_needs_credentials(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("KAGGLE_USERNAME", raising=False)
    monkeypatch.delenv("KAGGLE_KEY", raising=False)
    monkeypatch.setenv("KAGGLE_CONFIG_DIR", str(tmp_path))
    with pytest.raises(DownloadError, match="no Kaggle credentials"):
        download_dataset(tmp_path / "d", url=KAGGLE_URL)
