"""Where a concurrency-1 request's time goes in ``fishopt serve``: two clients, and the preprocessing stages timed.

Two measurements, printed side by side (``--out`` writes them as JSON):

1. **Clients.** A server is started here on the artifact (batching off). Two request kinds go to it at
   concurrency 1: a 224x168 JPEG as a binary ``BYTES`` infer request, and a row of the model's own input tensor.
   Each kind is sent by two clients in turn, for ``--rounds`` rounds:
   - :func:`fishopt.serve.load.run_load`: aiohttp, what ``fishopt serve-bench`` reports;
   - a blocking keep-alive socket client: it sends the same request bytes, prebuilt, and reads the
     ``Content-Length`` body, for a few tens of microseconds of client CPU per request.
   For each, overhead = client latency p50 - the server's compute p50 (``/metrics``, deltas over the run).
   The gap between the clients is the load generator's own cost; on a 2-core machine it is not the server's.
2. **Stages.** The model is loaded in this process as the server loads it, and each step of the server's
   preprocessing is timed (p50 over ``--n`` calls): JPEG decode, the exact fit, the model input, and the model
   itself at batch 1; also Pillow's uint8 resize, the ``turbo`` pipeline's, which the server does not use. Each
   step runs once in a tight loop and once after an idle sleep of ``--gap-ms`` before each call: a concurrency-1
   server is idle between two requests.

Usage::

    python benchmarks/serve_floor.py runs/artifacts/onnxruntime-int8 \\
        --image ../shared/data/fish/Fish_Dataset/Shrimp/Shrimp/00001.png --out serve_floor.json
"""

from __future__ import annotations

import argparse
import asyncio
import json
import socket
import sys
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from serve_compare import jpeg_224x168, server  # noqa: E402 - a sibling script, not a package


class SocketClient:
    """One keep-alive HTTP/1.1 connection sending a prebuilt POST; reads a ``Content-Length`` answer."""

    def __init__(self, url: str, path: str, body: bytes, headers: dict[str, str]) -> None:
        host, port = url.removeprefix("http://").split(":")
        head = f"POST {path} HTTP/1.1\r\nHost: {host}\r\nContent-Length: {len(body)}\r\n"
        head += "".join(f"{k}: {v}\r\n" for k, v in headers.items()) + "\r\n"
        self.request = head.encode() + body
        self.sock = socket.create_connection((host, int(port)))
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def send(self) -> None:
        """One request and its whole answer.

        Raises:
            RuntimeError: An answer other than 200, or one without ``Content-Length``.
        """
        self.sock.sendall(self.request)
        buf = b""
        while b"\r\n\r\n" not in buf:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise RuntimeError("the server closed the connection")
            buf += chunk
        head, _, rest = buf.partition(b"\r\n\r\n")
        lines = head.split(b"\r\n")
        if not lines[0].startswith(b"HTTP/1.1 200"):
            raise RuntimeError(f"the server answered {lines[0].decode(errors='replace')}: {rest[:300]!r}")
        lengths = [line.split(b":", 1)[1] for line in lines[1:] if line.lower().startswith(b"content-length:")]
        if not lengths:
            raise RuntimeError("an answer without Content-Length; this client reads only those")
        need = int(lengths[0])
        while len(rest) < need:
            rest += self.sock.recv(65536)

    def close(self) -> None:
        """Close the connection."""
        self.sock.close()


def metrics(url: str) -> dict[str, Any]:
    """The server's ``/metrics``, parsed."""
    from fishopt.serve.load import parse_metrics

    with urllib.request.urlopen(url + "/metrics", timeout=10) as resp:
        return parse_metrics(resp.read().decode())


def socket_run(url: str, payload: tuple[str, bytes, dict[str, str]], seconds: float) -> dict[str, float]:
    """Closed loop at concurrency 1 for ``seconds`` (after 1 s of warm-up): latency and server compute p50s."""
    from fishopt.serve.load import histogram_delta

    client = SocketClient(url, *payload)
    try:
        end = time.perf_counter() + 1.0
        while time.perf_counter() < end:
            client.send()
        before, latencies = metrics(url), []
        end = time.perf_counter() + seconds
        while time.perf_counter() < end:
            start = time.perf_counter()
            client.send()
            latencies.append(time.perf_counter() - start)
        after = metrics(url)
    finally:
        client.close()
    compute = histogram_delta(before, after, "fishopt_compute_duration_seconds") or {}
    pre = histogram_delta(before, after, "fishopt_preprocess_duration_seconds") or {}
    p50 = float(np.median(latencies))
    return {
        "requests": len(latencies),
        "latency_p50_ms": 1e3 * p50,
        "compute_p50_ms": 1e3 * compute["p50"],
        "preprocess_p50_ms": 1e3 * pre["p50"],
        "overhead_p50_ms": 1e3 * (p50 - compute["p50"]),
    }


def aiohttp_run(url: str, mode: str, image: bytes, seconds: float) -> dict[str, float]:
    """The same load through :func:`fishopt.serve.load.run_load` (aiohttp)."""
    from fishopt.serve.load import run_load

    run = asyncio.run(run_load(url, [image], mode=mode, concurrency=1, duration_s=seconds, warmup_s=1.0))
    if run.errors:
        raise RuntimeError(f"{mode}: errors {run.errors}")
    server_view = run.server
    return {
        "requests": run.ok,
        "latency_p50_ms": 1e3 * run.latency_s["p50"],
        "compute_p50_ms": 1e3 * server_view["compute_duration_seconds"]["p50"],
        "preprocess_p50_ms": 1e3 * server_view["preprocess_duration_seconds"]["p50"],
        "overhead_p50_ms": 1e3 * run.overhead_s["p50"],
    }


def payloads(url: str, image: bytes) -> dict[str, tuple[str, bytes, dict[str, str]]]:
    """The served model's two request kinds, prebuilt: ``jpeg`` (a binary ``BYTES`` infer request carrying
    ``image``) and ``tensor`` (a row of the model's own input), as (path, body, headers)."""
    from fishopt.serve.load import build_payload, tensor_payload

    req = urllib.request.Request(url + "/v2/repository/index", method="POST")
    with urllib.request.urlopen(req, timeout=10) as resp:
        model = json.load(resp)[0]["name"]
    with urllib.request.urlopen(f"{url}/v2/models/{model}", timeout=10) as resp:
        tensor = tensor_payload(model, json.load(resp))
    return {"jpeg": build_payload("infer", image, model), "tensor": tensor}


def clients(artifact: Path, image: bytes, threads: str, seconds: float, rounds: int) -> dict[str, list[dict]]:
    """Both clients x both request kinds against one server, interleaved over ``rounds``."""
    out: dict[str, list[dict]] = {}
    root = Path(__file__).resolve().parent.parent
    with server(root, artifact, "--threads", threads, "--max-batch", "1") as url:
        built = payloads(url, image)
        for _ in range(rounds):
            for mode, payload in (("infer", built["jpeg"]), ("tensor", built["tensor"])):
                out.setdefault(f"{mode}_socket", []).append(socket_run(url, payload, seconds))
                out.setdefault(f"{mode}_aiohttp", []).append(aiohttp_run(url, mode, image, seconds))
    return out


def p50_ms(fn: Callable[[], Any], n: int, gap_s: float) -> float:
    """Median milliseconds of ``fn()`` over ``n`` calls, each after sleeping ``gap_s`` (0: a tight loop)."""
    times = []
    for _ in range(n):
        if gap_s:
            time.sleep(gap_s)
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return 1e3 * float(np.median(times))


def stages(artifact: Path, image: bytes, threads: int, n: int, gap_s: float) -> dict[str, dict[str, float]]:
    """Each preprocessing step and the model at batch 1, in a tight loop and after an idle gap."""
    import torch  # noqa: F401 - loaded as in the server: the exact fit then runs torch's own resize

    from fishopt.data.decode import decode_rgb, fit_array
    from fishopt.serve.images import decode_image_bytes
    from fishopt.serve.model import load_served_model, single_thread_preprocessing

    served = load_served_model(artifact, threads=threads)
    single_thread_preprocessing(served)  # as the server does
    size = served.image_size
    rgb = decode_rgb(image, size, fast=False).rgb
    chw = np.ascontiguousarray(fit_array(rgb, size).transpose(2, 0, 1))
    row = served.to_input(chw)[None]
    steps: dict[str, Callable[[], Any]] = {
        "decode (simplejpeg, full)": lambda: decode_rgb(image, size, fast=False),
        "exact fit (torch resize + crop + round)": lambda: fit_array(rgb, size),
        "Pillow uint8 fit (turbo; not the server's)": lambda: fit_array(rgb, size, exact=False, uint8=True),
        "model input (normalize)": lambda: served.to_input(chw),
        "all three (decode_image_bytes + to_input)": lambda: served.to_input(decode_image_bytes(image, size)),
        "model, batch 1": lambda: served.predict(row),
    }
    return {name: {"tight_ms": p50_ms(fn, n, 0.0), "after_gap_ms": p50_ms(fn, n, gap_s)} for name, fn in steps.items()}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("artifact", type=Path, help="artifact folder to serve")
    parser.add_argument("--image", type=Path, required=True, help="image sent (re-encoded as a 224x168 JPEG)")
    parser.add_argument("--threads", default="2")
    parser.add_argument("--seconds", type=float, default=5.0, help="measured seconds per client, kind and round")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--n", type=int, default=2000, help="calls per stage timing")
    parser.add_argument("--gap-ms", type=float, default=1.5, help="idle sleep before each call of the gap timing")
    parser.add_argument("--out", type=Path, help="write the numbers as JSON")
    args = parser.parse_args(argv)
    image = jpeg_224x168(args.image)
    runs = clients(args.artifact, image, args.threads, args.seconds, args.rounds)
    result: dict[str, Any] = {"clients": {}, "runs": runs}
    print("concurrency 1, p50 ms (median of rounds): client latency, server preprocess, server compute, overhead")
    for key, values in runs.items():
        med = {k: float(np.median([v[k] for v in values])) for k in values[0] if k != "requests"}
        result["clients"][key] = med
        print(
            f"  {key:16s} {med['latency_p50_ms']:6.3f} {med['preprocess_p50_ms']:6.3f} "
            f"{med['compute_p50_ms']:6.3f}  overhead {med['overhead_p50_ms']:6.3f}"
        )
    result["stages"] = stages(args.artifact, image, int(args.threads), args.n, args.gap_ms / 1e3)
    print(f"in-process p50 ms: tight loop / after a {args.gap_ms:g} ms idle gap")
    for name, t in result["stages"].items():
        print(f"  {name:45s} {t['tight_ms']:6.3f} / {t['after_gap_ms']:6.3f}")
    if args.out:
        args.out.write_text(json.dumps(result, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
