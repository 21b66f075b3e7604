"""Dynamic micro-batching: requests are grouped into one model call, in arrival order, under a bounded queue.

:class:`Batcher` owns a FIFO of pending requests (each one or more rows of model input) and one compute thread.
Its loop takes the oldest request and gathers the following ones into a batch of at most ``max_batch`` rows, then
runs the batch in the compute thread while new requests queue up behind it. It waits for a batch to fill only
for requests that are already inside the server (being received or preprocessed, announced with
:meth:`Batcher.arriving`), and never longer than ``max_delay_s`` after the oldest request was queued: an idle
server answers a lone request at once, a busy one batches what piled up during the previous batch.

Back-pressure and deadlines: :meth:`Batcher.submit` raises :class:`Overloaded` at once when ``max_queue``
requests are waiting, :class:`RequestTimeout` when the request's deadline passes (a queued request is then
dropped from the queue; one already computing is discarded), and :class:`ShuttingDown` after :meth:`Batcher.stop`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np

log = logging.getLogger(__name__)

#: ``run_batch(inputs) -> outputs``: every output has the batch as its first dimension (``None`` allowed).
RunBatch = Callable[[np.ndarray], tuple[np.ndarray | None, ...]]


class Overloaded(Exception):
    """The queue is full (HTTP 503)."""


class RequestTimeout(Exception):
    """The request's deadline passed before its result was ready (HTTP 504)."""


class ShuttingDown(Exception):
    """The batcher is stopping and takes no new requests (HTTP 503)."""


@dataclass
class RequestResult:
    """One request's share of a batch.

    Attributes:
        outputs: Its rows of each output of ``run_batch`` (``None`` stays ``None``).
        queue_seconds: From :meth:`Batcher.submit` to the start of its batch.
        compute_seconds: The batch's compute time (``run_batch``, including concatenating the inputs).
        batch_size: Rows in its batch.
    """

    outputs: tuple[np.ndarray | None, ...]
    queue_seconds: float
    compute_seconds: float
    batch_size: int


@dataclass
class BatchStats:
    """One executed batch, for metrics: rows, requests, compute seconds, outputs (full batch), failed or not."""

    rows: int
    requests: int
    compute_seconds: float
    outputs: tuple[np.ndarray | None, ...] | None
    failed: bool = False


@dataclass(eq=False)  # identity comparison: deque.remove must not compare (or print) the rows
class _Pending:
    rows: np.ndarray
    future: asyncio.Future
    enqueued: float
    taken: bool = False


class Arrival:
    """A request announced to the batcher before it is submitted (see :meth:`Batcher.arriving`)."""

    __slots__ = ("open",)

    def __init__(self) -> None:
        self.open = True


class Batcher:
    """Groups requests into batches for one model session.

    Args:
        run_batch: Called in the compute thread with the concatenated rows of a batch.
        max_batch: Most rows per batch (``1``: no batching). A request with more rows runs alone.
        max_delay_s: Longest time the oldest queued request waits for others to join its batch.
        max_queue: Most requests waiting (not counting the batch being computed); more are refused.
        on_batch: Called on the event loop after each batch's results were handed out (metrics, monitoring).
    """

    def __init__(
        self,
        run_batch: RunBatch,
        *,
        max_batch: int,
        max_delay_s: float,
        max_queue: int,
        on_batch: Callable[[BatchStats], None] | None = None,
    ) -> None:
        if max_batch < 1 or max_queue < 1 or max_delay_s < 0:
            raise ValueError("max_batch and max_queue must be >= 1 and max_delay_s >= 0")
        self.run_batch = run_batch
        self.max_batch = max_batch
        self.max_delay_s = max_delay_s
        self.max_queue = max_queue
        self.on_batch = on_batch
        self._queue: deque[_Pending] = deque()
        self._arriving = 0
        self._wakeup: asyncio.Event | None = None
        self._task: asyncio.Task | None = None
        self._executor: ThreadPoolExecutor | None = None
        self._stopping = False
        self.computing = 0

    @property
    def pending(self) -> int:
        """Requests waiting in the queue."""
        return len(self._queue)

    @property
    def idle(self) -> bool:
        """Whether nothing is queued or computing and at most one request (the caller's) is inside the server.

        A request that finds the server idle gains nothing from the preprocessing pool (no other request's work
        to overlap with) and pays its two thread hops: the server preprocesses such a request on the event loop.
        """
        return not self._queue and not self.computing and self._arriving <= 1 and not self._stopping

    @property
    def stopping(self) -> bool:
        """Whether :meth:`stop` was called."""
        return self._stopping

    def start(self) -> None:
        """Start the loop on the running event loop."""
        self._wakeup = asyncio.Event()
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="fishopt-compute")
        self._task = asyncio.get_running_loop().create_task(self._loop(), name="fishopt-batcher")

    async def stop(self) -> None:
        """Refuse new requests, finish the queued ones, stop the loop and the compute thread."""
        self._stopping = True
        if self._wakeup is not None:
            self._wakeup.set()
        if self._task is not None:
            await self._task
            self._task = None
        if self._executor is not None:
            self._executor.shutdown(wait=True)
            self._executor = None

    @contextlib.contextmanager
    def arriving(self) -> Iterator[Arrival]:
        """Admit a request that will be submitted soon, while it is read and preprocessed.

        The loop waits (up to ``max_delay_s``) for admitted requests to join the current batch; admitted plus
        queued requests never exceed ``max_queue``, so nothing unbounded piles up in front of the queue either.

        Raises:
            Overloaded: ``max_queue`` requests are admitted or queued already.
            ShuttingDown: :meth:`stop` was called.
        """
        if self._stopping or self._task is None:
            raise ShuttingDown("the server is shutting down")
        if len(self._queue) + self._arriving >= self.max_queue:
            raise Overloaded(f"the queue is full ({self.max_queue} requests admitted)")
        arrival = Arrival()
        self._arriving += 1
        try:
            yield arrival
        finally:
            self._leave(arrival)

    def _leave(self, arrival: Arrival | None) -> None:
        if arrival is not None and arrival.open:
            arrival.open = False
            self._arriving -= 1
            if self._wakeup is not None:
                self._wakeup.set()

    async def submit(self, rows: np.ndarray, timeout_s: float | None, arrival: Arrival | None = None) -> RequestResult:
        """Queue a request's rows and wait for its result.

        Args:
            rows: Model input rows (first dimension: rows), already preprocessed.
            timeout_s: Seconds to wait in all (``None``: no limit).
            arrival: The request's :meth:`arriving` token, if it was announced.

        Raises:
            Overloaded: ``max_queue`` requests are waiting already.
            ShuttingDown: :meth:`stop` was called.
            RequestTimeout: ``timeout_s`` passed first.
        """
        self._leave(arrival)
        if self._stopping or self._task is None:
            raise ShuttingDown("the server is shutting down")
        if arrival is None and len(self._queue) >= self.max_queue:
            raise Overloaded(f"the queue is full ({self.max_queue} requests waiting)")
        future = asyncio.get_running_loop().create_future()
        item = _Pending(rows, future, time.perf_counter())
        self._queue.append(item)
        assert self._wakeup is not None
        self._wakeup.set()
        try:
            return await asyncio.wait_for(future, timeout_s)
        except TimeoutError:
            raise RequestTimeout(f"no result within {timeout_s:.3g} s") from None
        finally:
            if not future.done():
                future.cancel()
            if not item.taken:  # timed out or cancelled while queued: free its place at once
                self._queue.remove(item)

    def _queued_rows(self) -> int:
        return sum(len(p.rows) for p in self._queue if not p.future.done())

    def _take(self) -> list[_Pending]:
        batch: list[_Pending] = []
        rows = 0
        while self._queue:
            head = self._queue[0]
            if head.future.done():  # timed out or cancelled while queued
                self._queue.popleft().taken = True
                continue
            n = len(head.rows)
            if batch and rows + n > self.max_batch:
                break
            head.taken = True
            batch.append(self._queue.popleft())
            rows += n
            if rows >= self.max_batch:
                break
        return batch

    async def _fill(self) -> None:
        """Wait for announced requests to join the oldest one's batch, until full or its delay is up."""
        assert self._wakeup is not None
        deadline = self._queue[0].enqueued + self.max_delay_s
        while self._arriving > 0 and not self._stopping and self._queued_rows() < self.max_batch:
            remaining = deadline - time.perf_counter()
            if remaining <= 0:
                return
            self._wakeup.clear()
            try:
                await asyncio.wait_for(self._wakeup.wait(), remaining)
            except TimeoutError:
                return

    async def _loop(self) -> None:
        assert self._wakeup is not None
        loop = asyncio.get_running_loop()
        while True:
            if not self._queue:
                if self._stopping:
                    return
                self._wakeup.clear()
                await self._wakeup.wait()
                continue
            if self.max_batch > 1 and self.max_delay_s > 0:
                await self._fill()
            batch = self._take()
            if not batch:
                continue
            started = time.perf_counter()
            self.computing = len(batch)
            try:
                outputs, seconds = await loop.run_in_executor(self._executor, self._compute, [p.rows for p in batch])
            except Exception as exc:  # the model failed: every request of the batch gets the error
                log.exception("batch of %d requests failed", len(batch))
                for p in batch:
                    if not p.future.done():
                        p.future.set_exception(exc)
                self._report(BatchStats(sum(len(p.rows) for p in batch), len(batch), 0.0, None, failed=True))
                continue
            finally:
                self.computing = 0
            total = sum(len(p.rows) for p in batch)
            offset = 0
            for p in batch:
                n = len(p.rows)
                if not p.future.done():  # else: timed out or cancelled while computing
                    share = tuple(None if o is None else o[offset : offset + n] for o in outputs)
                    p.future.set_result(RequestResult(share, started - p.enqueued, seconds, total))
                offset += n
            self._report(BatchStats(total, len(batch), seconds, outputs))

    def _report(self, stats: BatchStats) -> None:
        if self.on_batch is None:
            return
        try:
            self.on_batch(stats)
        except Exception:  # metrics must never take the server down
            log.exception("on_batch callback failed")

    def _compute(self, parts: list[np.ndarray]) -> tuple[tuple[np.ndarray | None, ...], float]:
        start = time.perf_counter()
        x = parts[0] if len(parts) == 1 else np.concatenate(parts)
        outputs = self.run_batch(x)
        return outputs, time.perf_counter() - start
