"""Run the app under uvicorn (one process, one model session) with a graceful SIGTERM.

On SIGTERM or SIGINT: readiness turns 503 at once; after ``drain_s`` (default 0) uvicorn stops accepting
connections, lets every in-flight request finish (up to ``timeout_s + 5`` seconds), runs the app's shutdown (the
batcher finishes its queue) and :func:`run_server` returns. A second signal forces the exit.
"""

from __future__ import annotations

import logging
import threading
from typing import Any

from fishopt.errors import CheckpointError, ConfigError, FishoptError
from fishopt.serve.app import create_app
from fishopt.serve.config import ServeConfig

log = logging.getLogger("fishopt.serve")


def _server_class():
    import uvicorn

    class GracefulServer(uvicorn.Server):
        """uvicorn's server with readiness turned off at the first signal and an optional drain period."""

        def __init__(self, config: uvicorn.Config, state: Any, drain_s: float) -> None:
            super().__init__(config)
            self.state = state
            self.drain_s = drain_s
            self._signalled = False

        def handle_exit(self, sig: int, frame: Any) -> None:  # called by the signal handler
            if self._signalled:  # a second signal: stop waiting for in-flight requests
                self.should_exit = self.force_exit = True
                return
            self._signalled = True
            self.state.begin_drain()
            log.info("signal %d: readiness off; draining %.3g s, then finishing in-flight requests", sig, self.drain_s)
            if self.drain_s > 0:
                timer = threading.Timer(self.drain_s, setattr, (self, "should_exit", True))
                timer.daemon = True
                timer.start()
            else:
                self.should_exit = True

    return GracefulServer


def build_server(config: ServeConfig, monitor: Any = None, on_started: Any = None):
    """Create the app and its uvicorn server (not started).

    Args:
        config: The checked :class:`ServeConfig`.
        monitor: A drift monitor (see :mod:`fishopt.serve.monitor`).
        on_started: Called with the bound ``(host, port)`` once the socket listens.

    Returns:
        ``(server, state)``.
    """
    import uvicorn

    app = create_app(config, monitor)
    state = app.state.fishopt
    uv_config = uvicorn.Config(
        app,
        host=config.host,
        port=config.port,
        log_level=config.log_level,
        access_log=config.access_log,
        lifespan="on",
        loop="auto",
        http="auto",
        timeout_graceful_shutdown=int(config.timeout_s + 5),
        server_header=False,
    )
    server = _server_class()(uv_config, state, config.drain_s)

    def fatal() -> None:
        server.should_exit = True

    state.on_fatal = fatal
    if on_started is not None:
        original = server.startup

        async def startup(sockets=None):
            await original(sockets=sockets)
            if server.started:
                sock = server.servers[0].sockets[0].getsockname()
                on_started(sock[0], sock[1])

        server.startup = startup
    return server, state


def run_server(config: ServeConfig, monitor: Any = None, on_started: Any = None) -> None:
    """Serve until SIGTERM/SIGINT.

    Raises:
        ConfigError: The address cannot be bound.
        FishoptError: The model could not be loaded (the server stops; the CLI exits 2 with the message).
    """
    server, state = build_server(config.check(), monitor, on_started)
    try:
        server.run()
    except SystemExit as exc:  # uvicorn exits 1 when it cannot bind (it logged the OS error)
        if exc.code in (0, None):
            return
        raise ConfigError(
            f"cannot listen on {config.host}:{config.port} (see the error above); choose another "
            "--port or stop what uses it"
        ) from None
    if state.load_error is not None:
        if isinstance(state.load_error, FishoptError):
            raise state.load_error
        raise CheckpointError(f"cannot serve {str(config.artifact)!r}: {state.load_error}") from state.load_error
