"""Benchmark variants: pick them from the registry, build their formats once through the one build verb, load them.

A variant is a registry :class:`fishopt.artifacts.registry.Variant`: a format plus runtime settings. Each
becomes one row: ``skipped`` (it cannot run here: a missing module, no GPU), ``failed`` (its build, parity gate,
load or run raised) or ``ok``. Neither a skip nor a failure stops the run.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fishopt.artifacts.build import build
from fishopt.artifacts.registry import Format, Variant, list_variants
from fishopt.checkpoint import LoadedCheckpoint, SplitImages
from fishopt.errors import BackendUnavailableError, MissingDependencyError, unknown_choice

log = logging.getLogger(__name__)

#: The FP32 eager baseline every speedup is measured against; always benchmarked when registered.
BASELINE = "torch-eager-fp32"


def select_variants(names: list[str] | None = None, device: str | None = "cpu") -> list[Variant]:
    """Registered variants to benchmark, in registry order, the baseline always included.

    Args:
        names: Registry variant names (a format's name is its default variant), or ``None`` for all of ``device``.
        device: With ``names`` unset: ``cpu``, ``cuda`` or ``None`` for every device.

    Raises:
        ConfigError: For an unknown name (lists the valid ones).
    """
    variants = list_variants()
    by_name = {v.name: v for v in variants}
    if not names:
        return [v for v in variants if device is None or v.device == device or v.name == BASELINE]
    for name in names:
        if name not in by_name:
            raise unknown_choice("variant", name, by_name)
    wanted = set(names) | ({BASELINE} if BASELINE in by_name else set())
    return [v for v in variants if v.name in wanted]


def new_row(variant: Variant) -> dict:
    """A row with every key of the report schema; measurements ``None`` until filled in."""
    fmt = variant.fmt
    return {
        "variant": variant.name,
        "format": fmt.name,
        "runtime": fmt.backend,
        "precision": fmt.precision,
        "mode": fmt.method,
        "command": fmt.command,
        "toolkit": fmt.toolkit,
        "settings": dict(variant.settings),
        "device": variant.device,
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

    variant: Variant
    row: dict
    runtime: Any

    @property
    def name(self) -> str:
        """The variant's name."""
        return self.variant.name


@dataclass
class Built:
    """A format built once for every variant that runs it: the artifact (or why there is none) and its facts."""

    artifact: Path | None
    size_bytes: int | None = None
    build_seconds: float | None = None
    status: str = "ok"
    reason: str | None = None


def build_format(fmt: Format, ckpt: LoadedCheckpoint, folder: Path, parity_set: SplitImages | None = None) -> Built:
    """Build one format through :func:`fishopt.artifacts.build.build` (parity gate on) for the benchmark."""
    reason = fmt.unavailable_reason()
    if reason:
        return Built(None, status="skipped", reason=reason)
    try:
        t0 = time.perf_counter()
        result = build(fmt.name, ckpt, folder, verify=True, overwrite=True, parity_set=parity_set)
    except (MissingDependencyError, BackendUnavailableError) as exc:
        return Built(None, status="skipped", reason=str(exc))
    except Exception as exc:  # any backend error: the variant becomes a failed row, the run goes on
        return Built(None, status="failed", reason=f"{type(exc).__name__}: {exc}")
    # the artifact and its side files, not the manifest
    return Built(result.artifact, result.manifest["total_bytes"], round(time.perf_counter() - t0, 2))


def load_variant(variant: Variant, row: dict, path: Path, threads: int) -> Any:
    """Load a built format with the variant's settings; ``None`` (and a skipped/failed row) if that raises."""
    reason = variant.unavailable_reason()
    if reason:
        mark(row, "skipped", reason, "load")
        return None
    try:
        t0 = time.perf_counter()
        runtime = variant.load(path, threads=threads)
        row["load_seconds"] = round(time.perf_counter() - t0, 3)
    except (MissingDependencyError, BackendUnavailableError) as exc:
        mark(row, "skipped", str(exc), "load")
        return None
    except Exception as exc:  # as in build_format
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
            log.debug("closing %s: %s", item.name, exc)
