"""The server's settings, checked once (``fishopt serve`` options map one to one onto :class:`ServeConfig`)."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from pathlib import Path

from fishopt.errors import ConfigError

MIB = 1024 * 1024


@dataclass(frozen=True)
class ServeConfig:
    """How to serve one artifact.

    Attributes:
        artifact: The artifact folder (``fishopt export/quantize/compile`` output or ``fishopt deploy`` bundle).
        host: Address to bind (``127.0.0.1``: this machine only; ``0.0.0.0``: every interface).
        port: TCP port (``0``: any free port, printed at start).
        threads: Runtime threads for the model (``None``: the runtime's default).
        preprocess_threads: Threads that parse requests and decode images (``None``: ``threads`` or 2).
        max_batch: Most images per model call (``1`` turns batching off).
        max_delay_ms: Longest wait of the oldest queued request for others to join its batch.
        max_queue: Requests admitted and not yet computing; more get 503 at once.
        timeout_s: Per-request deadline from arrival to result (504 after it).
        max_body_bytes: Largest request body (413 above it).
        max_request_batch: Most images in one request (400 above it).
        model_name: Name in the URLs (default: the artifact's format name).
        drain_s: After SIGTERM, keep serving this long with readiness 503 (for load balancers) before closing.
        log_level: uvicorn/fishopt log level.
        access_log: Log every request (off by default: it costs ~10 % at high rates).
        monitor: ``"module:factory"`` of a drift monitor (called with the model metadata), or ``None``.
    """

    artifact: Path
    host: str = "127.0.0.1"
    port: int = 8000
    threads: int | None = None
    preprocess_threads: int | None = None
    max_batch: int = 16
    max_delay_ms: float = 2.0
    max_queue: int = 128
    timeout_s: float = 10.0
    max_body_bytes: int = 16 * MIB
    max_request_batch: int = 64
    model_name: str | None = None
    drain_s: float = 0.0
    log_level: str = "info"
    access_log: bool = False
    monitor: str | None = None

    @property
    def max_delay_s(self) -> float:
        """``max_delay_ms`` in seconds."""
        return self.max_delay_ms / 1000.0

    @property
    def workers(self) -> int:
        """Preprocessing threads."""
        return self.preprocess_threads or self.threads or 2

    def check(self) -> ServeConfig:
        """Return ``self`` if every value is valid.

        Raises:
            ConfigError: Naming the first bad value and the valid range.
        """

        def positive(name: str, value: float | None, allow_none: bool = False) -> None:
            if value is None and allow_none:
                return
            if value is None or isinstance(value, bool) or value <= 0:
                raise ConfigError(f"{name} must be positive, got {value!r}")

        try:
            ipaddress.ip_address(self.host)
        except ValueError:
            if not self.host or any(c.isspace() for c in self.host):
                raise ConfigError(
                    f"host {self.host!r} is not an IP address or host name; e.g. 127.0.0.1 or 0.0.0.0"
                ) from None
        if not 0 <= self.port <= 65535:
            raise ConfigError(f"port must be 0-65535 (0: any free port), got {self.port}")
        positive("threads", self.threads, allow_none=True)
        positive("preprocess_threads", self.preprocess_threads, allow_none=True)
        positive("max_batch", self.max_batch)
        positive("max_queue", self.max_queue)
        positive("timeout_s", self.timeout_s)
        positive("max_body_bytes", self.max_body_bytes)
        positive("max_request_batch", self.max_request_batch)
        if self.max_delay_ms < 0:
            raise ConfigError(f"max_delay_ms must be >= 0, got {self.max_delay_ms}")
        if self.drain_s < 0:
            raise ConfigError(f"drain_s must be >= 0, got {self.drain_s}")
        levels = ("critical", "error", "warning", "info", "debug")
        if self.log_level not in levels:
            raise ConfigError(f"unknown log level {self.log_level!r}; valid: {', '.join(levels)}")
        if self.monitor is not None and ":" not in self.monitor:
            raise ConfigError(f"monitor must be 'module:factory', got {self.monitor!r}")
        return self
