"""The micro-batcher: order, batch limits, waiting policy, queue bound, deadlines, failures, shutdown."""

from __future__ import annotations

import asyncio
import threading
import time

import numpy as np
import pytest

from fishopt.serve.batcher import (
    Batcher,
    BatchStats,
    Overloaded,
    RequestTimeout,
    ShuttingDown,
)


class Model:
    """A fake model: output = input * 2 (so every request can check it got its own rows); records batches."""

    def __init__(self, gate: threading.Event | None = None, fail_on: int | None = None) -> None:
        self.batches: list[list[float]] = []
        self.gate = gate
        self.fail_on = fail_on
        self.started = threading.Event()

    def __call__(self, x: np.ndarray):
        self.started.set()
        if self.gate is not None:
            self.gate.wait(10)
        self.batches.append(x[:, 0].tolist())
        if self.fail_on is not None and self.fail_on in x[:, 0]:
            raise RuntimeError("model failed")
        return x * 2, None


def rows(*values: float) -> np.ndarray:
    return np.array([[v] for v in values], dtype=np.float32)


def run(coro):
    return asyncio.run(coro)


def test_results_go_to_their_requests_in_fifo_batches() -> None:
    model = Model(gate=threading.Event())
    stats: list[BatchStats] = []

    async def main():
        b = Batcher(model, max_batch=4, max_delay_s=0.0, max_queue=100, on_batch=stats.append)
        b.start()
        first = asyncio.create_task(b.submit(rows(0), None))
        await asyncio.sleep(0.05)  # request 0 is computing (the gate is closed); 1..9 queue behind it
        tasks = [asyncio.create_task(b.submit(rows(i), None)) for i in range(1, 10)]
        await asyncio.sleep(0.05)
        model.gate.set()
        results = await asyncio.gather(first, *tasks)
        await b.stop()
        return results

    results = run(main())
    for i, r in enumerate(results):
        np.testing.assert_array_equal(r.outputs[0], rows(2 * i))
        assert r.outputs[1] is None
    assert model.batches == [[0], [1, 2, 3, 4], [5, 6, 7, 8], [9]]
    assert [s.rows for s in stats] == [1, 4, 4, 1] and all(s.requests == s.rows for s in stats)
    assert [r.batch_size for r in results] == [1, 4, 4, 4, 4, 4, 4, 4, 4, 1]
    assert results[5].queue_seconds > 0 and results[5].compute_seconds >= 0


def test_multi_row_requests_are_not_split_and_big_ones_run_alone() -> None:
    model = Model(gate=threading.Event())

    async def main():
        b = Batcher(model, max_batch=4, max_delay_s=0.0, max_queue=100)
        b.start()
        blocker = asyncio.create_task(b.submit(rows(0), None))
        await asyncio.sleep(0.05)
        tasks = [asyncio.create_task(b.submit(rows(*v), None)) for v in ([1, 2, 3], [4, 5], [6, 7, 8, 9, 10, 11], [12])]
        await asyncio.sleep(0.05)
        model.gate.set()
        out = await asyncio.gather(blocker, *tasks)
        await b.stop()
        return out

    out = run(main())
    assert model.batches == [[0], [1, 2, 3], [4, 5], [6, 7, 8, 9, 10, 11], [12]]
    np.testing.assert_array_equal(out[3].outputs[0], rows(12, 14, 16, 18, 20, 22))


def test_lone_request_is_not_held_back_by_max_delay() -> None:
    model = Model()

    async def main():
        b = Batcher(model, max_batch=8, max_delay_s=5.0, max_queue=10)
        b.start()
        start = time.perf_counter()
        await b.submit(rows(1), None)
        took = time.perf_counter() - start
        await b.stop()
        return took

    assert run(main()) < 2.5  # nobody else is arriving: no 5 s wait


def test_waits_for_admitted_requests_up_to_max_delay() -> None:
    model = Model()

    async def main():
        b = Batcher(model, max_batch=8, max_delay_s=5.0, max_queue=10)
        b.start()
        with b.arriving() as arrival:
            first = asyncio.create_task(b.submit(rows(1), None))
            await asyncio.sleep(0.1)  # the second request is still "being preprocessed"
            assert model.batches == []
            second = await b.submit(rows(2), None, arrival)
        await first
        # an admitted request that never comes (e.g. a bad body) holds the batch at most max_delay
        b.max_delay_s = 0.2
        with b.arriving():
            start = time.perf_counter()
            await b.submit(rows(3), None)
            waited = time.perf_counter() - start
        await b.stop()
        return second, waited

    second, waited = run(main())
    assert model.batches[0] == [1, 2]
    np.testing.assert_array_equal(second.outputs[0], rows(4))
    assert 0.15 < waited < 2.0


def test_queue_full_is_refused_at_once() -> None:
    model = Model(gate=threading.Event())

    async def main():
        b = Batcher(model, max_batch=1, max_delay_s=0.0, max_queue=2)
        b.start()
        busy = asyncio.create_task(b.submit(rows(0), None))
        await asyncio.sleep(0.05)  # computing, not queued
        queued = [asyncio.create_task(b.submit(rows(i), None)) for i in (1, 2)]
        await asyncio.sleep(0.01)
        start = time.perf_counter()
        with pytest.raises(Overloaded, match="queue is full"):
            await b.submit(rows(3), None)
        with pytest.raises(Overloaded), b.arriving():
            pass
        refused_in = time.perf_counter() - start
        model.gate.set()
        await asyncio.gather(busy, *queued)
        await b.stop()
        return refused_in

    assert run(main()) < 0.5
    assert model.batches == [[0], [1], [2]]


def test_admitted_requests_count_against_the_queue() -> None:
    async def main():
        b = Batcher(Model(), max_batch=1, max_delay_s=0.0, max_queue=2)
        b.start()
        with b.arriving(), b.arriving(), pytest.raises(Overloaded), b.arriving():
            pass
        with b.arriving():  # released again
            pass
        await b.stop()

    run(main())


def test_timeout_while_queued_drops_the_request() -> None:
    model = Model(gate=threading.Event())

    async def main():
        b = Batcher(model, max_batch=4, max_delay_s=0.0, max_queue=10)
        b.start()
        busy = asyncio.create_task(b.submit(rows(0), None))
        await asyncio.sleep(0.05)
        with pytest.raises(RequestTimeout, match="no result within"):
            await b.submit(rows(1), 0.05)
        assert b.pending == 0
        later = asyncio.create_task(b.submit(rows(2), None))
        await asyncio.sleep(0.01)
        model.gate.set()
        await asyncio.gather(busy, later)
        await b.stop()

    run(main())
    assert model.batches == [[0], [2]]  # the timed-out request never reached the model


def test_timeout_while_computing_leaves_the_others_alone() -> None:
    model = Model(gate=threading.Event())

    async def main():
        b = Batcher(model, max_batch=4, max_delay_s=0.0, max_queue=10)
        b.start()
        patient = asyncio.create_task(b.submit(rows(1), None))
        hasty = asyncio.create_task(b.submit(rows(2), 0.05))  # same batch as the patient one
        with pytest.raises(RequestTimeout):
            await hasty
        assert model.started.is_set()  # it timed out while its batch was computing
        model.gate.set()
        result = await patient
        await b.stop()
        return result

    np.testing.assert_array_equal(run(main()).outputs[0], rows(2))
    assert model.batches == [[1, 2]]


def test_a_failing_batch_fails_its_requests_only() -> None:
    model = Model(gate=threading.Event(), fail_on=2)
    stats: list[BatchStats] = []

    async def main():
        b = Batcher(model, max_batch=2, max_delay_s=0.0, max_queue=10, on_batch=stats.append)
        b.start()
        first = asyncio.create_task(b.submit(rows(0), None))
        await asyncio.sleep(0.05)
        doomed = [asyncio.create_task(b.submit(rows(v), None)) for v in (1, 2)]
        fine = asyncio.create_task(b.submit(rows(3), None))
        await asyncio.sleep(0.01)
        model.gate.set()
        await first
        for task in doomed:
            with pytest.raises(RuntimeError, match="model failed"):
                await task
        result = await fine
        await b.stop()
        return result

    np.testing.assert_array_equal(run(main()).outputs[0], rows(6))
    assert [s.failed for s in stats] == [False, True, False]


def test_stop_finishes_the_queue_then_refuses() -> None:
    model = Model(gate=threading.Event())

    async def main():
        b = Batcher(model, max_batch=1, max_delay_s=0.0, max_queue=10)
        b.start()
        tasks = [asyncio.create_task(b.submit(rows(i), None)) for i in range(3)]
        await asyncio.sleep(0.02)
        stopping = asyncio.create_task(b.stop())
        await asyncio.sleep(0.02)
        with pytest.raises(ShuttingDown):
            await b.submit(rows(9), None)
        with pytest.raises(ShuttingDown), b.arriving():
            pass
        model.gate.set()
        results = await asyncio.gather(*tasks)
        await stopping
        return results

    results = run(main())
    assert [float(r.outputs[0][0, 0]) for r in results] == [0.0, 2.0, 4.0]


def test_bad_settings_are_refused() -> None:
    with pytest.raises(ValueError):
        Batcher(Model(), max_batch=0, max_delay_s=0, max_queue=1)
    with pytest.raises(ValueError):
        Batcher(Model(), max_batch=1, max_delay_s=-1, max_queue=1)


class Loud(np.ndarray):
    """Rows that must never be printed (a repr of every request's array once cost ~1 ms per request)."""

    def __repr__(self) -> str:
        raise AssertionError("the batcher printed a request's rows")


def test_finished_requests_are_not_compared_or_printed() -> None:
    async def main():
        b = Batcher(Model(), max_batch=4, max_delay_s=0.0, max_queue=10)
        b.start()
        results = await asyncio.gather(*(b.submit(rows(i).view(Loud), None) for i in range(6)))
        await b.stop()
        return results

    assert len(run(main())) == 6


def test_idle_only_when_nothing_else_is_inside() -> None:
    model = Model(gate=threading.Event())

    async def main():
        b = Batcher(model, max_batch=4, max_delay_s=0.0, max_queue=10)
        b.start()
        seen = [b.idle]
        with b.arriving():
            seen.append(b.idle)  # the caller's own arrival
            with b.arriving():
                seen.append(b.idle)  # a second request is being read
        computing = asyncio.create_task(b.submit(rows(1), None))
        await asyncio.sleep(0.05)  # computing behind the closed gate
        seen.append(b.idle)
        queued = asyncio.create_task(b.submit(rows(2), None))
        await asyncio.sleep(0)
        seen.append(b.idle)
        model.gate.set()
        await asyncio.gather(computing, queued)
        seen.append(b.idle)
        await b.stop()
        seen.append(b.idle)
        return seen

    assert run(main()) == [True, True, False, False, False, True, False]
