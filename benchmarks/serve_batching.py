"""Dynamic batching at concurrency N in ``fishopt serve``, with the load generator's own CPU cost measured.

On a 2-core machine the load generator shares the CPU with the server, so every millisecond of client CPU per
request is taken from the server and caps the throughput that batching can free. This script measures batching
with two clients and says what each costs:

- :func:`fishopt.serve.load.run_load` (aiohttp), what ``fishopt serve-bench`` and the slow test use;
- ``N`` blocking keep-alive socket clients in threads (:class:`serve_floor.SocketClient`): prebuilt request bytes,
  the answer read by ``Content-Length``.

Two servers run side by side on the artifact, one unbatched (``--max-batch 1``) and one batched
(``--max-batch 16``), and are loaded in turn, ``--rounds`` times, in a fresh order per round, so a change in the
machine's background load hits both. Each load is closed-loop at ``--concurrency`` for ``--seconds`` after 1 s of
warm-up, for two request kinds: a 224x168 JPEG (the server decodes it) and a row of the model's input tensor.

Reported per server, client and kind: requests/s (total over the rounds), p50/p99 latency (worst round), the
server's mean batch size, and the client's CPU seconds per request (``time.process_time`` of this process over
the run; for the socket client it includes the thread switches; for aiohttp, the event loop, with its warm-up
prorated out, an estimate). The speedup is
batched / unbatched requests per second with the same client and kind.

Usage::

    python benchmarks/serve_batching.py runs/artifacts/onnxruntime-int8 \\
        --image ../shared/data/fish/Fish_Dataset/Black\\ Sea\\ Sprat/Black\\ Sea\\ Sprat/00001.png --out batching.json
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import random
import sys
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from serve_compare import jpeg_224x168, server  # noqa: E402 - sibling scripts, not a package
from serve_floor import SocketClient, metrics, payloads  # noqa: E402

SERVERS = {"unbatched": ("--max-batch", "1"), "batched": ("--max-batch", "16")}


def _batch_mean(before: dict[str, Any], after: dict[str, Any]) -> float | None:
    """Mean batch size between two ``/metrics`` scrapes (the batch-size histogram's sum / count deltas)."""
    from fishopt.serve.load import histogram_delta

    delta = histogram_delta(before, after, "fishopt_batch_size")
    return None if delta is None else delta.get("mean")


def socket_run(
    url: str, payload: tuple[str, bytes, dict[str, str]], concurrency: int, seconds: float
) -> dict[str, Any]:
    """``concurrency`` socket clients in threads, closed loop for ``seconds`` after 1 s of warm-up."""
    clients = [SocketClient(url, *payload) for _ in range(concurrency)]
    latencies: list[list[float]] = [[] for _ in clients]
    errors: list[str] = []
    phase = {"measure_from": 0.0, "end": 0.0}
    start_gate = threading.Barrier(concurrency + 1)

    def work(i: int) -> None:
        client, mine = clients[i], latencies[i]
        start_gate.wait()
        try:
            while True:
                t0 = time.perf_counter()
                if t0 >= phase["end"]:
                    return
                client.send()
                if t0 >= phase["measure_from"]:
                    mine.append(time.perf_counter() - t0)
        except (OSError, RuntimeError) as exc:
            errors.append(f"{type(exc).__name__}: {exc}")

    threads = [threading.Thread(target=work, args=(i,), daemon=True) for i in range(concurrency)]
    for t in threads:
        t.start()
    now = time.perf_counter()
    phase["measure_from"], phase["end"] = now + 1.0, now + 1.0 + seconds
    start_gate.wait()
    time.sleep(1.0)
    before, cpu0 = metrics(url), time.process_time()
    for t in threads:
        t.join()
    cpu, after = time.process_time() - cpu0, metrics(url)
    for c in clients:
        c.close()
    if errors:
        raise RuntimeError(f"socket client: {len(errors)} error(s), first: {errors[0]}")
    flat = [x for mine in latencies for x in mine]
    return {
        "requests": len(flat),
        "seconds": seconds,
        "p50_ms": 1e3 * float(np.percentile(flat, 50)),
        "p99_ms": 1e3 * float(np.percentile(flat, 99)),
        "client_cpu_ms_per_request": 1e3 * cpu / max(len(flat), 1),
        "batch_mean": _batch_mean(before, after),
    }


def aiohttp_run(url: str, mode: str, image: bytes, concurrency: int, seconds: float) -> dict[str, Any]:
    """The same load through :func:`fishopt.serve.load.run_load` (aiohttp)."""
    from fishopt.serve.load import run_load

    cpu0 = time.process_time()
    run = asyncio.run(run_load(url, [image], mode=mode, concurrency=concurrency, duration_s=seconds, warmup_s=1.0))
    cpu = time.process_time() - cpu0
    if run.errors:
        raise RuntimeError(f"aiohttp {mode}: errors {run.errors}")
    return {
        "requests": run.ok,
        "seconds": run.duration_s,
        "p50_ms": 1e3 * run.latency_s["p50"],
        "p99_ms": 1e3 * run.latency_s["p99"],
        # process time of the warm-up and the run, prorated to the measured seconds: an estimate (the socket
        # client's is measured over the run alone)
        "client_cpu_ms_per_request": 1e3 * cpu * seconds / (seconds + 1.0) / max(run.ok, 1),
        "batch_mean": run.server.get("batch_size", {}).get("mean"),
    }


def measure(
    artifact: Path, image: bytes, threads: str, concurrency: int, seconds: float, rounds: int, seed: int
) -> dict[str, list[dict[str, Any]]]:
    """Every (server, client, kind) load, interleaved over ``rounds`` in a shuffled order per round."""
    root = Path(__file__).resolve().parent.parent
    runs: dict[str, list[dict[str, Any]]] = {}
    rng = random.Random(seed)
    with contextlib.ExitStack() as stack:
        urls = {
            name: stack.enter_context(server(root, artifact, "--threads", threads, *args))
            for name, args in SERVERS.items()
        }
        built = payloads(next(iter(urls.values())), image)
        modes = {"jpeg": "infer", "tensor": "tensor"}
        plan = [(s, c, k) for s in SERVERS for c in ("socket", "aiohttp") for k in built]
        for r in range(rounds):
            rng.shuffle(plan)
            for srv, client, kind in plan:
                url = urls[srv]
                if client == "socket":
                    result = socket_run(url, built[kind], concurrency, seconds)
                else:
                    result = aiohttp_run(url, modes[kind], image, concurrency, seconds)
                result["round"] = r
                runs.setdefault(f"{srv}/{client}/{kind}", []).append(result)
                print(
                    f"  round {r} {srv:9s} {client:7s} {kind:6s} {result['requests'] / result['seconds']:7.1f} req/s "
                    f"p99 {result['p99_ms']:6.2f} ms  client CPU {result['client_cpu_ms_per_request']:.3f} ms/req "
                    f"batch {result['batch_mean'] or 0:.2f}",
                    flush=True,
                )
    return runs


def summarize(runs: dict[str, list[dict[str, Any]]]) -> dict[str, dict[str, float]]:
    """Per client and kind: requests/s of each server (totals over rounds), the speedup, the batched p99."""

    def rps(key: str) -> float:
        return sum(r["requests"] for r in runs[key]) / sum(r["seconds"] for r in runs[key])

    out: dict[str, dict[str, float]] = {}
    for client in ("socket", "aiohttp"):
        for kind in ("jpeg", "tensor"):
            un, ba = f"unbatched/{client}/{kind}", f"batched/{client}/{kind}"
            out[f"{client}/{kind}"] = {
                "unbatched_rps": rps(un),
                "batched_rps": rps(ba),
                "speedup": rps(ba) / rps(un),
                "batched_p99_ms": max(r["p99_ms"] for r in runs[ba]),
                "unbatched_p99_ms": max(r["p99_ms"] for r in runs[un]),
                "client_cpu_ms_per_request": float(
                    np.median([r["client_cpu_ms_per_request"] for r in runs[ba] + runs[un]])
                ),
            }
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("artifact", type=Path, help="artifact folder to serve")
    parser.add_argument("--image", type=Path, required=True, help="image sent (re-encoded as a 224x168 JPEG)")
    parser.add_argument("--threads", default="2", help="runtime threads of each server")
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=5.0, help="measured seconds per load and round")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0, help="seed of the per-round order")
    parser.add_argument("--out", type=Path, help="write the numbers as JSON")
    args = parser.parse_args(argv)
    if args.concurrency < 1 or args.seconds <= 0 or args.rounds < 1:
        parser.error("--concurrency and --rounds must be >= 1 and --seconds > 0")
    if not args.image.is_file() or not (args.artifact / "manifest.json").is_file():
        parser.error(
            f"--image must be an image file and ARTIFACT a folder with manifest.json ({args.image}, {args.artifact})"
        )
    image = jpeg_224x168(args.image)
    runs = measure(args.artifact, image, args.threads, args.concurrency, args.seconds, args.rounds, args.seed)
    summary = summarize(runs)
    print(f"concurrency {args.concurrency}, {args.rounds} round(s) x {args.seconds:g} s per load:")
    print("  client/kind       unbatched req/s  batched req/s  speedup  batched p99 ms  client CPU ms/req")
    for key, s in summary.items():
        print(
            f"  {key:16s} {s['unbatched_rps']:15.1f} {s['batched_rps']:14.1f} {s['speedup']:7.2f}x "
            f"{s['batched_p99_ms']:14.2f} {s['client_cpu_ms_per_request']:17.3f}"
        )
    if args.out:
        args.out.write_text(json.dumps({"summary": summary, "runs": runs, "argv": sys.argv[1:]}, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
