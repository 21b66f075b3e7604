"""Torch-free fake runtimes for the worker tests: they log each call's start/end time, sleep, or crash."""

from __future__ import annotations

import os
import time
from pathlib import Path

import numpy as np


class LoggingRuntime:
    """Sleeps ``sleep`` seconds per call and appends ``name pid start end`` to ``log`` (absolute perf_counter)."""

    raw_input = False
    meta: dict = {}
    settings: dict = {}

    def __init__(self, log: str, name: str, sleep: float, crash_after: int | None, exit_after: int | None) -> None:
        self.log, self.name, self.sleep = log, name, sleep
        self.crash_after, self.exit_after, self.calls = crash_after, exit_after, 0

    @classmethod
    def load(
        cls,
        path,
        *,
        threads=None,
        device="cpu",
        log="",
        name="",
        sleep=0.001,
        crash_after=None,
        exit_after=None,
        fail_load=False,
        reshape=None,
    ):
        if fail_load:
            raise RuntimeError("fake load failure")
        rt = cls(log, name, sleep, crash_after, exit_after)
        rt.reshape = reshape
        return rt

    def __call__(self, batch: np.ndarray) -> np.ndarray:
        self.calls += 1
        if self.crash_after is not None and self.calls > self.crash_after:
            raise RuntimeError("fake runtime crashed")
        if self.exit_after is not None and self.calls > self.exit_after:
            os._exit(3)
        start = time.perf_counter()
        time.sleep(self.sleep)
        end = time.perf_counter()
        with open(self.log, "a") as handle:
            handle.write(f"{self.name} {os.getpid()} {start:.6f} {end:.6f} {len(batch)}\n")
        return np.zeros((len(batch), 2), np.float32)

    def close(self) -> None:
        pass


class ReshapingRuntime(LoggingRuntime):
    """Declares a static compile per batch size and the precision it compiled in, as OpenVINORuntime does."""

    inference_precision = "bf16"

    @classmethod
    def latency_settings(cls, batch: int) -> dict:
        return {"reshape": int(batch)}

    def __call__(self, batch: np.ndarray) -> np.ndarray:
        if self.reshape is not None and len(batch) != self.reshape:
            raise RuntimeError(f"compiled for batch {self.reshape}, got {len(batch)}")
        return super().__call__(batch)


def read_log(path: Path) -> list[tuple[str, int, float, float, int]]:
    rows = []
    for line in Path(path).read_text().splitlines():
        name, pid, start, end, n = line.split()
        rows.append((name, int(pid), float(start), float(end), int(n)))
    return rows
