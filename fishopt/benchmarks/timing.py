"""Timing plans, model inputs, memory and GOPS; the in-process interleaving helper.

The benchmark times every variant in its own worker process (:mod:`fishopt.benchmarks.workers`) with the plans
here. :func:`time_interleaved` is the same round structure for callables in one process (for tools and tests
that time plain functions).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from fishopt.benchmarks.stats import interleaved_rounds
from fishopt.data.preprocess import eval_transform


@dataclass(frozen=True)
class TimingPlan:
    """How long to time one measurement.

    Attributes:
        warmup: Untimed calls per variant before the first round.
        rounds: Interleaved rounds.
        calls: Timed calls per variant per round.
    """

    warmup: int = 5
    rounds: int = 20
    calls: int = 10


#: Plans per measurement: bs1 model-only, bs1 end-to-end (per input size), throughput at larger batch sizes.
PLANS = {
    "full": {"bs1": TimingPlan(20, 20, 25), "e2e": TimingPlan(4, 10, 8), "throughput": TimingPlan(2, 8, 3)},
    "quick": {"bs1": TimingPlan(10, 8, 20), "e2e": TimingPlan(2, 4, 5), "throughput": TimingPlan(1, 3, 2)},
}
#: Batch sizes of the throughput sweep.
BATCH_SIZES = {"full": (1, 8, 32, 128), "quick": (1, 32)}
#: Idle seconds between two workers' bursts (see benchmarks/method_check.py for the measurement behind it).
SETTLE_SECONDS = 0.002


def set_threads(threads: int | None) -> int:
    """Fix torch's intra-op threads (default: the CPUs this process may use) and return the number."""
    import os

    import torch

    if threads is None:
        threads = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    torch.set_num_threads(int(threads))
    return int(threads)


def time_interleaved(
    calls: dict[str, Callable[[], Any]],
    plan: TimingPlan,
    seed: int = 0,
    on_round: Callable[[int], None] | None = None,
) -> tuple[dict[str, list[float]], dict[str, str]]:
    """Time callables interleaved in rounds.

    Args:
        calls: Variant name -> callable running one call.
        plan: Warm-up, rounds and calls per round.
        seed: Seed of the round orders.
        on_round: Called after each round with its index (progress bars).

    Returns:
        ``(times, errors)``: name -> per-call seconds, and name -> error text for callables that
        raised (they are dropped from later rounds; their times are discarded).
    """
    errors: dict[str, str] = {}
    for name, fn in calls.items():
        try:
            for _ in range(plan.warmup):
                fn()
        except Exception as exc:  # any backend error: the variant becomes a failed row
            errors[name] = f"{type(exc).__name__}: {exc}"
    live = [n for n in calls if n not in errors]
    times: dict[str, list[float]] = {n: [] for n in live}
    for r, order in enumerate(interleaved_rounds(live, plan.rounds, seed)):
        for name in order:
            if name in errors:
                continue
            try:
                times[name].extend(_timed(calls[name], plan.calls))
            except Exception as exc:  # as above
                errors[name] = f"{type(exc).__name__}: {exc}"
        if on_round is not None:
            on_round(r)
    return {n: t for n, t in times.items() if n not in errors}, errors


def _timed(fn: Callable[[], Any], n: int) -> list[float]:
    out = []
    for _ in range(n):
        t0 = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t0)
    return out


def model_input(images: Any, meta: dict, raw_input: bool, batch: int) -> np.ndarray:
    """A batch of ``batch`` images for a runtime, repeating the images if there are fewer.

    Args:
        images: uint8 tensor (N, 3, H, W) at the load size.
        meta: Checkpoint metadata (input_size, mean, std).
        raw_input: The runtime takes uint8 NHWC images (it preprocesses itself).
        batch: Batch size.

    Returns:
        float32 normalized NCHW at the input size, or uint8 NHWC at the load size.
    """
    import torch

    idx = torch.arange(batch) % len(images)
    x = images[idx]
    if raw_input:
        return np.ascontiguousarray(x.permute(0, 2, 3, 1).numpy())
    return np.ascontiguousarray(eval_transform(x, meta["input_size"], meta["mean"], meta["std"]).numpy())


def _status_kb(key: str) -> int | None:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(key + ":"):
                return int(line.split()[1])
    except (OSError, ValueError):
        pass
    return None


class MemoryProbe:
    """Peak resident memory of this process while a block runs.

    Resets the kernel's high-water mark (``/proc/self/clear_refs``) on entry where allowed, and reads
    ``VmHWM`` on exit; where the reset is not possible the peak is the process's lifetime peak
    (``ru_maxrss``), which is then stated in ``method``.
    """

    def __enter__(self) -> MemoryProbe:
        try:
            Path("/proc/self/clear_refs").write_text("5")
            self.method = "VmHWM reset per variant"
        except OSError:
            self.method = "process lifetime ru_maxrss"
        self.rss_before_kb = _status_kb("VmRSS")
        return self

    def __exit__(self, *exc: object) -> None:
        import resource

        hwm = _status_kb("VmHWM") if self.method.startswith("VmHWM") else None
        self.peak_kb = hwm if hwm is not None else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        self.rss_after_kb = _status_kb("VmRSS")

    @property
    def peak_mb(self) -> float:
        """Peak resident memory in MiB."""
        return round(self.peak_kb / 1024.0, 1)

    @property
    def peak_extra_mb(self) -> float:
        """Peak resident memory above what the process held on entry, in MiB."""
        return round(max(self.peak_kb - (self.rss_before_kb or 0), 0) / 1024.0, 1)

    @property
    def delta_mb(self) -> float | None:
        """Growth of resident memory over the block in MiB."""
        if self.rss_before_kb is None or self.rss_after_kb is None:
            return None
        return round((self.rss_after_kb - self.rss_before_kb) / 1024.0, 1)


def achieved_gops(macs_per_image: int | None, images_per_s: float | None) -> float | None:
    """Achieved GOPS (2 operations per MAC) at a throughput, or ``None`` when unknown."""
    if not macs_per_image or not images_per_s:
        return None
    return round(2.0 * macs_per_image * images_per_s / 1e9, 3)
