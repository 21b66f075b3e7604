"""Benchmark variants: pick them from the registry, build them through the one build verb, load them.

A variant is a registry :class:`fishopt.export.registry.Format`. Each becomes one row: ``skipped``
(it cannot run here: a missing module, no GPU), ``failed`` (its build, parity gate, load or run raised)
or ``ok``. Neither a skip nor a failure stops the run.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fishopt.errors import BackendUnavailableError, MissingDependencyError, unknown_choice

log = logging.getLogger(__name__)

#: The FP32 eager baseline every speedup is measured against; always benchmarked when registered.
BASELINE = "torch-eager-fp32"


def select_formats(names: list[str] | None = None) -> list:
    """Registered formats to benchmark, in registry order, the baseline always included.

    Args:
        names: Registry names, or ``None`` for all.

    Raises:
        ConfigError: For an unknown name (lists the valid ones).
    """
    from fishopt.export.registry import list_formats

    formats = list_formats()
    by_name = {f.name: f for f in formats}
    if not names:
        return formats
    for name in names:
        if name not in by_name:
            raise unknown_choice("variant", name, by_name)
    wanted = set(names) | ({BASELINE} if BASELINE in by_name else set())
    return [f for f in formats if f.name in wanted]


def new_row(fmt: Any) -> dict:
    """A row with every key of the report schema; measurements ``None`` until filled in."""
    return {
        "variant": fmt.name,
        "runtime": fmt.runtime,
        "precision": fmt.precision,
        "mode": fmt.method,
        "kind": fmt.kind,
        "backend": fmt.backend,
        "device": "cuda" if fmt.needs_gpu else "cpu",
        "status": "ok",
        "reason": None,
        "stage": None,
        "artifact": None,
        "raw_input": None,
        "accuracy": None,
        "latency": None,
        "throughput": None,
        "speedup_bs1": None,
        "speedup_throughput": None,
        "size_bytes": None,
        "build_seconds": None,
        "load_seconds": None,
        "peak_mem_mb": None,
        "gops": None,
        "peak_share": None,
    }


def mark(row: dict, status: str, reason: str, stage: str | None = None) -> dict:
    """Set a row's status (``skipped``/``failed``) and reason."""
    row.update(status=status, reason=reason, stage=stage)
    log.warning("%s %s%s: %s", row["variant"], status, f" at {stage}" if stage else "", reason)
    return row


@dataclass
class Loaded:
    """A built, loaded variant: its registry entry, its row and its runtime."""

    fmt: Any
    row: dict
    runtime: Any


def build_variant(fmt: Any, checkpoint: Path, folder: Path, data_root: Path | None = None) -> tuple[dict, Path | None]:
    """Build one variant through :func:`fishopt.export.api.build` (parity gate on ``data_root``'s test images).

    Returns:
        ``(row, artifact)``; ``artifact`` is ``None`` for a skipped or failed row.
    """
    row = new_row(fmt)
    reason = fmt.unavailable_reason()
    if reason:
        return mark(row, "skipped", reason), None
    try:
        from fishopt.export.api import build

        t0 = time.perf_counter()
        result = build(fmt.name, checkpoint, folder, options={}, verify=True, overwrite=True, data_root=data_root)
        row["build_seconds"] = round(time.perf_counter() - t0, 2)
    except (MissingDependencyError, BackendUnavailableError) as exc:
        return mark(row, "skipped", str(exc), "build"), None
    except Exception as exc:  # any backend error: the variant becomes a failed row, the run goes on
        return mark(row, "failed", f"{type(exc).__name__}: {exc}", "build"), None
    row["artifact"] = str(result.artifact)
    row["size_bytes"] = result.manifest["total_bytes"]  # the artifact and its side files, not the manifest
    return row, result.artifact


def load_variant(fmt: Any, row: dict, path: Path, threads: int) -> Any:
    """Load a built variant through its runtime class; ``None`` (and a failed row) if that raises."""
    try:
        t0 = time.perf_counter()
        runtime = fmt.load_runtime_cls().load(path, threads=threads, device=row["device"])
        row["load_seconds"] = round(time.perf_counter() - t0, 3)
    except (MissingDependencyError, BackendUnavailableError) as exc:
        mark(row, "skipped", str(exc), "load")
        return None
    except Exception as exc:  # as in build_variant
        mark(row, "failed", f"{type(exc).__name__}: {exc}", "load")
        return None
    row["raw_input"] = bool(getattr(runtime, "raw_input", False))
    return runtime


def close_all(loaded: list[Loaded]) -> None:
    """Free every runtime (errors while closing are logged, not raised)."""
    for item in loaded:
        try:
            item.runtime.close()
        except Exception as exc:  # closing must never fail the run
            log.debug("closing %s: %s", item.fmt.name, exc)
