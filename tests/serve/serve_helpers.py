"""Helpers of the server tests (import as ``from serve_helpers import ...``).

``running_server(artifact, **config)`` starts ``fishopt serve``'s app under uvicorn in a background thread, on a
free loopback port, and yields a :class:`Running` (its base URL and the app's ``ServerState``); leaving the ``with``
block shuts it down the way SIGTERM does.
"""

from __future__ import annotations

import contextlib
import io
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np


def jpeg_bytes(size: tuple[int, int] = (48, 64), seed: int = 0) -> bytes:
    """A random RGB JPEG of (height, width)."""
    from PIL import Image

    rng = np.random.default_rng(seed)
    buf = io.BytesIO()
    Image.fromarray(rng.integers(0, 255, (*size, 3), dtype=np.uint8)).save(buf, format="JPEG")
    return buf.getvalue()


@dataclass
class Running:
    """A started server: ``url`` (``http://127.0.0.1:PORT``), ``port``, ``state`` (ServerState), ``server``."""

    url: str
    port: int
    state: Any
    server: Any

    @property
    def hostport(self) -> str:
        return f"127.0.0.1:{self.port}"


def http(
    method: str, url: str, body: bytes | None = None, headers: dict[str, str] | None = None, timeout: float = 30.0
) -> tuple[int, dict[str, str], bytes]:
    """One HTTP request with the standard library: ``(status, headers (lower-case names), body)``, errors included."""
    request = urllib.request.Request(url, data=body, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as resp:
            return resp.status, {k.lower(): v for k, v in resp.headers.items()}, resp.read()
    except urllib.error.HTTPError as err:
        return err.code, {k.lower(): v for k, v in err.headers.items()}, err.read()


@contextlib.contextmanager
def running_server(artifact: Path, monitor: Any = None, wait_ready: bool = True, **overrides: Any):
    """Start the real server (uvicorn + app) in a thread on a free loopback port; stop it on exit."""
    from fishopt.serve.config import ServeConfig
    from fishopt.serve.server import build_server

    settings = {"host": "127.0.0.1", "port": 0, "threads": 1, "log_level": "warning", **overrides}
    config = ServeConfig(artifact=Path(artifact), **settings).check()
    bound: dict[str, int] = {}
    server, state = build_server(config, monitor, on_started=lambda host, port: bound.setdefault("port", port))
    thread = threading.Thread(target=server.run, name="fishopt-test-server", daemon=True)
    thread.start()
    deadline = time.monotonic() + 60
    while "port" not in bound:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("the test server did not start")
        time.sleep(0.02)
    running = Running(url=f"http://127.0.0.1:{bound['port']}", port=bound["port"], state=state, server=server)
    try:
        if wait_ready:
            while not state.ready:
                if state.load_error is not None:
                    raise RuntimeError(f"the model did not load: {state.load_error}")
                if time.monotonic() > deadline:
                    raise RuntimeError("the model did not become ready")
                time.sleep(0.02)
        yield running
    finally:
        server.handle_exit(15, None)
        thread.join(30)


@dataclass
class ServerProcess:
    """A ``fishopt serve`` process: its base URL, the ``Popen`` and the file its stderr goes to."""

    url: str
    proc: Any
    log_path: Path

    def log(self) -> str:
        """Its stderr so far."""
        return self.log_path.read_text(errors="replace")

    def stop(self, timeout: float = 60.0) -> tuple[int, str]:
        """SIGTERM, wait; return ``(exit code, the whole stderr)``."""
        import signal

        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        self.proc.wait(timeout=timeout)
        return self.proc.returncode, self.log()


@contextlib.contextmanager
def server_process(artifact: Path, *args: str, ready_timeout: float = 180.0):
    """Run ``fishopt serve ARTIFACT --port 0 ARGS`` in its own process (this checkout first on the path)."""
    import os
    import re
    import subprocess
    import sys
    import tempfile

    repo = Path(__file__).resolve().parents[2]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(repo), os.environ.get("PYTHONPATH", "")])}
    code = "import sys; from fishopt.cli import main; sys.argv[0] = 'fishopt'; main()"
    with tempfile.TemporaryDirectory(prefix="fishopt-serve-") as tmp:
        log_path = Path(tmp) / "stderr.log"
        with open(log_path, "w") as err:
            proc = subprocess.Popen(
                [sys.executable, "-c", code, "serve", str(artifact), "--port", "0", *args],
                stderr=err,
                stdout=subprocess.DEVNULL,
                env=env,
                cwd=repo,
            )
        try:
            deadline = time.monotonic() + ready_timeout
            url = None
            while url is None:
                match = re.search(r" at (http://127\.0\.0\.1:\d+)\n", log_path.read_text(errors="replace"))
                url = match.group(1) if match else None
                if url is None and (proc.poll() is not None or time.monotonic() > deadline):
                    raise RuntimeError("fishopt serve did not start:\n" + log_path.read_text(errors="replace"))
                time.sleep(0.05)
            while http("GET", url + "/v2/health/ready")[0] != 200:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("fishopt serve did not become ready:\n" + log_path.read_text(errors="replace"))
                time.sleep(0.05)
            yield ServerProcess(url=url, proc=proc, log_path=log_path)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
