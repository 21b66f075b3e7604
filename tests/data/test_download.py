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


def _serve(headers_seen: list | None = None):
    payloads: dict[str, tuple[int, bytes]] = {}

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802
            if headers_seen is not None:
                headers_seen.append(dict(self.headers))
            code, body = payloads.get(self.path, (404, b""))
            self.send_response(code)
            if 300 <= code < 400:
                self.send_header("Location", body.decode())
                body = b""
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    return httpd, f"http://127.0.0.1:{httpd.server_address[1]}", payloads


@pytest.fixture
def server():
    httpd, base, payloads = _serve()
    yield base, payloads
    httpd.shutdown()


@pytest.fixture
def kaggle_env(monkeypatch):
    monkeypatch.setenv("KAGGLE_USERNAME", "alice")
    monkeypatch.setenv("KAGGLE_KEY", "s3cret-key")


def test_credentials_never_go_to_a_custom_url(kaggle_env, tmp_path: Path) -> None:
    seen: list[dict] = []
    httpd, base, payloads = _serve(seen)
    try:
        payloads["/fish.zip"] = (200, _zip(tmp_path))
        download_dataset(tmp_path / "data", url=f"{base}/fish.zip")
        payloads["/denied.zip"] = (401, b"")
        with pytest.raises(DownloadError, match="only to the Kaggle API .* never to another host"):
            download_dataset(tmp_path / "d2", url=f"{base}/denied.zip")
    finally:
        httpd.shutdown()
    assert len(seen) == 2 and not any("Authorization" in h for h in seen)


def test_credentials_only_to_the_kaggle_api_over_https_and_not_after_a_redirect(kaggle_env, tmp_path, monkeypatch):
    from fishopt.data import download

    assert download.is_kaggle_api(KAGGLE_URL)
    for url in (
        "http://www.kaggle.com/api/v1/datasets/download/x",
        "https://www.kaggle.com.evil.org/x",
        "https://evil.org/www.kaggle.com",
        "https://www.kaggle.com:8443/x",
    ):
        assert not download.is_kaggle_api(url)
        assert download._request(url, ("alice", "s3cret-key")).get_header("Authorization") is None
    # the trusted host answers with a redirect to another host: the second host gets no credentials
    seen_a: list[dict] = []
    seen_b: list[dict] = []
    httpd_a, base_a, payloads_a = _serve(seen_a)
    httpd_b, base_b, payloads_b = _serve(seen_b)
    monkeypatch.setattr(download, "is_kaggle_api", lambda url: url.startswith(base_a))
    try:
        payloads_a["/fish.zip"] = (302, f"{base_b}/signed.zip".encode())
        payloads_b["/signed.zip"] = (200, _zip(tmp_path))
        download_dataset(tmp_path / "data", url=f"{base_a}/fish.zip")
    finally:
        httpd_a.shutdown()
        httpd_b.shutdown()
    assert seen_a[0]["Authorization"].startswith("Basic ")
    assert len(seen_b) == 1 and "Authorization" not in seen_b[0]


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
