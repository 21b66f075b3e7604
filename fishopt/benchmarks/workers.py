"""Isolated timing: one worker process per variant, timing rounds interleaved across the workers.

Why: timing every runtime in one process lets torch's OpenMP threads (still spinning after a torch call) and
ONNX Runtime's / OpenVINO's own pools fight over the cores, so every row but torch's is penalized (measured: an
OpenVINO INT8 IR at 0.22 ms alone took 0.83 ms right after a few torch calls in the same process). Here each
variant lives in its own process (``spawn``: no thread pool or CUDA context is inherited) and loads only its
own runtime: ONNX Runtime and OpenVINO workers never import torch. The parent asks one worker at a time for a
burst of timed calls, in a fresh shuffled order every round, so machine noise still falls on all variants
alike, and no other runtime's threads run while one is timed. Timestamps are taken inside the worker around
each call (``time.perf_counter``); the pipe is outside the timed region.

Jobs a worker runs (:meth:`Worker.time`): ``model`` (a preprocessed batch -> logits, any batch size), ``e2e``
(encoded JPEG bytes in memory -> label at batch 1 through :func:`fishopt.data.decode.decode_and_fit`, timed as
decode / preprocess / model) and ``today`` (the pipeline before this one: Pillow full decode + torch
``fit_to`` + eval transform + the runtime; the FP32 eager baseline's worker runs it as the reference).

This module imports neither torch nor any runtime at import time.
"""

from __future__ import annotations

import contextlib
import logging
import multiprocessing as mp
import os
import time
import traceback
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from fishopt.artifacts.registry import resolve
from fishopt.benchmarks.profile import profile_runtime
from fishopt.benchmarks.roofline import compute_precision
from fishopt.benchmarks.stats import interleaved_rounds
from fishopt.data.decode import DCT_PIPELINES, decode_rgb, fit_decoded
from fishopt.data.normalize import eval_transform_array

log = logging.getLogger(__name__)

#: Seconds a worker may take to answer one request before it is declared hung (and its row failed).
REPLY_TIMEOUT = 900.0
#: Environment of every worker unless the caller overrides it (see :func:`worker_env`).
DEFAULT_ENV: dict[str, str] = {}


@dataclass(frozen=True)
class WorkerSpec:
    """What a worker loads: one variant's runtime, with its settings, and the inputs it times.

    Attributes:
        name: Variant name (the row).
        runtime: ``"module:Class"`` of the runtime (from the format).
        path: The artifact.
        settings: Keyword arguments of the runtime's ``load`` (the variant's settings).
        device: ``cpu`` or ``cuda``.
        threads: Threads for the runtime (and torch, where the runtime uses it).
        meta: ``input_size``, ``load_size``, ``mean``, ``std`` of the checkpoint.
        images: uint8 (N, 3, H, W) test images at the load size (model-only batches are made from them).
        static_reshape: Compile a static batch per timed batch size where the runtime supports it
            (``latency_settings`` of the runtime class, e.g. OpenVINO ``reshape``).
        env: Environment variables set before the worker starts (e.g. ``OMP_WAIT_POLICY``).
    """

    name: str
    runtime: str
    path: str
    settings: dict = field(default_factory=dict)
    device: str = "cpu"
    threads: int | None = None
    meta: dict = field(default_factory=dict)
    images: Any = None
    static_reshape: bool = True
    env: dict = field(default_factory=dict)


class WorkerError(RuntimeError):
    """A worker failed (its runtime raised, it crashed or hung); the message says which and why."""


# ------------------------------------------------------------------------------------------- the worker side
class _Server:
    """Runs inside the worker process: loads runtimes per batch size and answers requests."""

    def __init__(self, spec: WorkerSpec) -> None:
        self.spec = spec
        self.cls = resolve(spec.runtime)
        self.runtimes: dict[int, Any] = {}
        self.applied: dict[str, dict] = {}
        self.jpegs: dict[str, list[bytes]] = {}
        self.cursor: dict[str, int] = {}
        self.warm: set = set()
        self.runtime(1)  # load errors surface at start

    def runtime(self, batch: int) -> Any:
        """The runtime to time batch ``batch`` with (a static compile per batch where the runtime supports it)."""
        key = batch if self._reshapes() else 0
        if key not in self.runtimes:
            extra = self.cls.latency_settings(batch) if self._reshapes() else {}
            settings = {**extra, **self.spec.settings}  # a variant's own setting wins
            t0 = time.perf_counter()
            self.runtimes[key] = self.cls.load(
                self.spec.path, threads=self.spec.threads, device=self.spec.device, **settings
            )
            self.applied[str(batch) if key else "any"] = {**extra, "load_seconds": round(time.perf_counter() - t0, 3)}
        return self.runtimes[key]

    def _reshapes(self) -> bool:
        spec = self.spec
        return spec.static_reshape and hasattr(self.cls, "latency_settings") and "reshape" not in spec.settings

    def batch(self, size: int) -> np.ndarray:
        rt = self.runtime(size)
        images = self.spec.images
        idx = np.arange(size) % len(images)
        x = images[idx]
        if getattr(rt, "raw_input", False):
            return np.ascontiguousarray(x.transpose(0, 2, 3, 1))
        return normalize(x, self.spec.meta)

    def handle(self, request: tuple) -> Any:
        op, *args = request
        if op == "jpegs":
            key, files = args
            self.jpegs[key] = [Path(f).read_bytes() for f in files]
            self.cursor[key] = 0
            return len(self.jpegs[key])
        if op == "time":
            return self.time(*args)
        if op == "info":
            return self.info()
        if op == "profile":
            return profile_runtime(self.runtime(1), self.batch(1), *args)
        raise ValueError(f"unknown request {op!r}")

    def info(self) -> dict:
        rt = self.runtime(1)
        return {
            "pid": os.getpid(),
            "raw_input": bool(getattr(rt, "raw_input", False)),
            "applied": self.applied,
            "compute_precision": compute_precision(rt),
            # what the device compiled the timed runtime in (OpenVINO's INFERENCE_PRECISION_HINT), if it says
            "inference_precision": getattr(rt, "inference_precision", None),
            "torch_imported": "torch" in __import__("sys").modules,
            "env": {k: os.environ.get(k) for k in ("OMP_WAIT_POLICY", "OMP_NUM_THREADS", "KMP_BLOCKTIME")},
        }

    def time(self, job: dict, calls: int, warmup: int = 0) -> dict:
        kind = job["kind"]
        if kind == "model":
            fn = self._model_call(int(job.get("batch", 1)))
        elif kind in ("e2e", "today"):
            fn = self._e2e_call(job["key"], kind, str(job.get("pipeline", "fast")))
        else:
            raise ValueError(f"unknown job kind {kind!r}")
        for _ in range(warmup):
            fn()
        stages: dict[str, list[float]] = {}
        for _ in range(calls):
            for name, seconds in fn().items():
                stages.setdefault(name, []).append(seconds)
        return stages

    def _model_call(self, batch: int) -> Callable[[], dict]:
        rt, x = self.runtime(batch), self.batch(batch)

        def call() -> dict:
            t0 = time.perf_counter()
            rt(x)
            return {"total": time.perf_counter() - t0}

        return call

    def _e2e_call(self, key: str, kind: str, pipeline: str) -> Callable[[], dict]:
        rt, meta = self.runtime(1), self.spec.meta
        load = meta["load_size"]
        raw = bool(getattr(rt, "raw_input", False))
        jpegs = self.jpegs[key]
        if kind == "today":
            return self._today_call(rt, jpegs, key)

        def call() -> dict:
            data = jpegs[self.cursor[key] % len(jpegs)]
            self.cursor[key] += 1
            t0 = time.perf_counter()
            decoded = decode_rgb(data, load, fast=pipeline in DCT_PIPELINES)
            t1 = time.perf_counter()
            fitted = fit_decoded(decoded, load, pipeline)
            x = np.ascontiguousarray(fitted[None]) if raw else normalize(fitted.transpose(2, 0, 1)[None], meta)
            t2 = time.perf_counter()
            rt(x)
            t3 = time.perf_counter()
            return {"total": t3 - t0, "decode": t1 - t0, "preprocess": t2 - t1, "model": t3 - t2}

        return call

    def _today_call(self, rt: Any, jpegs: list[bytes], key: str) -> Callable[[], dict]:
        """Pillow full decode + torch fit_to + eval transform + the runtime (the pipeline before decode_and_fit)."""
        import io

        import torch
        from PIL import Image

        from fishopt.data.preprocess import eval_transform, fit_to

        meta = self.spec.meta
        raw = bool(getattr(rt, "raw_input", False))

        def call() -> dict:
            data = jpegs[self.cursor[key] % len(jpegs)]
            self.cursor[key] += 1
            t0 = time.perf_counter()
            with Image.open(io.BytesIO(data)) as img:
                img.load()
                rgb = img.convert("RGB")
            x = torch.from_numpy(np.asarray(rgb).copy()).permute(2, 0, 1).contiguous()
            t1 = time.perf_counter()
            x = fit_to(x, meta["load_size"]).unsqueeze(0)
            batch = (
                np.ascontiguousarray(x.permute(0, 2, 3, 1).numpy())
                if raw
                else eval_transform(x, meta["input_size"], meta["mean"], meta["std"]).numpy()
            )
            t2 = time.perf_counter()
            rt(batch)
            t3 = time.perf_counter()
            return {"total": t3 - t0, "decode": t1 - t0, "preprocess": t2 - t1, "model": t3 - t2}

        return call


def normalize(images: np.ndarray, meta: dict) -> np.ndarray:
    """uint8 (N, 3, H, W) at the load size -> the checkpoint's normalized float32 center crop (numpy; no torch)."""
    return eval_transform_array(images, meta["input_size"], meta["mean"], meta["std"])


def _worker_main(conn: Any, spec: WorkerSpec) -> None:
    """Entry point of a worker process: load, then answer requests until ``close`` (or the pipe closes)."""
    try:
        server = _Server(spec)
    except BaseException as exc:  # report any load error to the parent, then exit
        conn.send(("error", f"{type(exc).__name__}: {exc}", traceback.format_exc()))
        return
    conn.send(("ok", os.getpid(), None))
    while True:
        try:
            request = conn.recv()
        except (EOFError, OSError):
            return
        if request[0] == "close":
            for rt in server.runtimes.values():
                with contextlib.suppress(Exception):  # closing must not fail the worker
                    rt.close()
            conn.send(("ok", None, None))
            return
        try:
            conn.send(("ok", server.handle(request), None))
        except BaseException as exc:  # a runtime error: report it, keep serving (the parent drops the variant)
            conn.send(("error", f"{type(exc).__name__}: {exc}", traceback.format_exc()))


# ------------------------------------------------------------------------------------------- the parent side
@contextmanager
def _environment(values: dict[str, str]) -> Iterator[None]:
    """Set environment variables for the duration of a block (a spawned child inherits them)."""
    old = {k: os.environ.get(k) for k in values}
    os.environ.update({k: str(v) for k, v in values.items()})
    try:
        yield
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


class Worker:
    """The parent's handle of one worker process."""

    def __init__(self, spec: WorkerSpec, timeout: float = REPLY_TIMEOUT) -> None:
        self.spec = spec
        self.name = spec.name
        self.timeout = timeout
        ctx = mp.get_context("spawn")
        self.conn, child = ctx.Pipe()
        self.process = ctx.Process(
            target=_worker_main, args=(child, spec), name=f"fishopt-bench-{spec.name}", daemon=True
        )
        with _environment({**DEFAULT_ENV, **spec.env}):
            self.process.start()
        child.close()
        self.pid: int | None = None
        self.error: str | None = None

    def ready(self) -> Worker:
        """Wait until the worker has loaded its runtime.

        Raises:
            WorkerError: If loading failed or the worker died.
        """
        self.pid = self._reply()
        return self

    def _reply(self) -> Any:
        if not self.conn.poll(self.timeout):
            self.kill()
            raise WorkerError(f"worker {self.name!r} did not answer within {self.timeout:.0f} s (hung); it was killed")
        try:
            status, value, trace = self.conn.recv()
        except (EOFError, OSError):
            self.process.join(5)
            raise WorkerError(f"worker {self.name!r} died (exit code {self.process.exitcode})") from None
        if status == "error":
            log.debug("worker %s: %s", self.name, trace)
            raise WorkerError(value)
        return value

    def request(self, *request: Any) -> Any:
        """Send one request and return its answer.

        Raises:
            WorkerError: If the worker's runtime raised, or the worker crashed or hung.
        """
        try:
            self.conn.send(request)
        except (BrokenPipeError, OSError):
            raise WorkerError(f"worker {self.name!r} is gone (exit code {self.process.exitcode})") from None
        return self._reply()

    def time(self, job: dict, calls: int, warmup: int = 0) -> dict[str, list[float]]:
        """Run ``warmup`` untimed and ``calls`` timed calls of ``job``; per-stage seconds per call."""
        return self.request("time", job, calls, warmup)

    def close(self) -> None:
        """Ask the worker to exit, then make sure it has."""
        if self.process.is_alive():
            try:
                self.conn.send(("close",))
                if self.conn.poll(30):
                    self.conn.recv()
            except (BrokenPipeError, EOFError, OSError):
                pass
        self.process.join(10)
        self.kill()
        self.conn.close()

    def kill(self) -> None:
        """Terminate the process if it is still running."""
        if self.process.is_alive():
            self.process.kill()
            self.process.join(5)


def start_workers(
    specs: Sequence[WorkerSpec], on_ready: Callable[[str], None] | None = None
) -> tuple[dict[str, Worker], dict[str, str]]:
    """Start one worker per spec (all at once, so their imports overlap) and wait for each to load.

    Returns:
        ``(workers, errors)``: the workers that loaded, and name -> error text for those that did not.
    """
    pending = [Worker(spec) for spec in specs]
    workers, errors = {}, {}
    for worker in pending:
        try:
            workers[worker.name] = worker.ready()
        except WorkerError as exc:
            errors[worker.name] = str(exc)
            worker.close()
        if on_ready is not None:
            on_ready(worker.name)
    return workers, errors


def time_rounds(
    workers: dict[str, Worker],
    jobs: dict[str, dict],
    warmup: int,
    rounds: int,
    calls: int,
    seed: int = 0,
    settle: float = 0.0,
    on_round: Callable[[int], None] | None = None,
) -> tuple[dict[str, dict[str, list[float]]], dict[str, str]]:
    """Time one job per worker, interleaved: every round each worker runs ``calls`` timed calls, in a fresh order.

    Only one worker runs at a time. Args: ``jobs`` maps a worker name to its job (workers without one sit the
    measurement out); ``settle`` seconds of idle between two workers' bursts (lets spinning threads of the
    previous one go to sleep; measured in ``benchmarks/method_check.py``).

    Returns:
        ``(stages, errors)``: name -> stage -> per-call seconds, and name -> error text for workers whose job
        raised (they are dropped from later rounds; their times are discarded).
    """
    errors: dict[str, str] = {}
    live = [n for n in jobs if n in workers]
    times: dict[str, dict[str, list[float]]] = {n: {} for n in live}
    for name in live:
        try:
            workers[name].time(jobs[name], 0, warmup)
        except WorkerError as exc:
            errors[name] = str(exc)
    for r, order in enumerate(interleaved_rounds([n for n in live if n not in errors], rounds, seed)):
        for name in order:
            if name in errors:
                continue
            try:
                for stage, values in workers[name].time(jobs[name], calls).items():
                    times[name].setdefault(stage, []).extend(values)
            except WorkerError as exc:
                errors[name] = str(exc)
            if settle:
                time.sleep(settle)
        if on_round is not None:
            on_round(r)
    return {n: t for n, t in times.items() if n not in errors}, errors


def close_workers(workers: dict[str, Worker]) -> None:
    """Close every worker (never raises)."""
    for worker in workers.values():
        try:
            worker.close()
        except Exception as exc:  # closing must never fail the run
            log.debug("closing worker %s: %s", worker.name, exc)
