"""A bounded load generator for ``fishopt serve`` (``fishopt serve-bench``): closed loop or Poisson arrivals.

Closed loop (``concurrency=C``): C workers each send a request, wait for the answer, send the next. Open loop
(``rate=R``): requests start at Poisson arrival times at R per second whatever the answers do (at most
``max_outstanding`` in flight; arrivals beyond it are counted as ``client_skipped``, never queued). Every run has a
fixed duration after a warm-up and then stops.

Each :class:`RunResult` has the client's view (latency percentiles of successful requests, throughput, errors by
kind, the latency of refusals), the server's view from ``/metrics`` scraped before and after (mean and quantiles of
queue, preprocess and compute seconds, mean batch size, resident memory), the derived server overhead
(end-to-end minus model compute), and the CPU load of other processes during the run.

Requests: ``classify`` posts the raw image to ``/v1/classify``; ``infer`` posts it as a Triton binary ``BYTES``
tensor to ``/v2/models/{name}/infer``; ``infer-json`` as base64 in JSON; ``tensor`` sends a random row of the model's
own input tensor (binary), so the server decodes nothing: it measures the server and the model without JPEG cost.
"""

from __future__ import annotations

import asyncio
import base64
import errno
import io
import json
import math
import random
import struct
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from fishopt.benchmarks.fingerprint import LoadSampler
from fishopt.errors import ConfigError, DataError
from fishopt.serve.protocol import DATATYPES

MODES = ("classify", "infer", "infer-json", "tensor")


def load_images(paths: list[str | Path], resize: tuple[int, int] | None = None, quality: int = 90) -> list[bytes]:
    """Read image files as request payloads; with ``resize`` (height, width), re-encode them as JPEG at that size.

    Raises:
        DataError: A file is missing or not an image.
    """
    from PIL import Image, UnidentifiedImageError

    out = []
    for path in paths:
        path = Path(path)
        try:
            data = path.read_bytes()
        except OSError as exc:
            raise DataError(f"cannot read image {str(path)!r}: {exc.strerror}") from exc
        if resize is not None:
            try:
                with Image.open(io.BytesIO(data)) as img:
                    small = img.convert("RGB").resize((resize[1], resize[0]), Image.Resampling.BILINEAR)
            except (UnidentifiedImageError, OSError) as exc:
                raise DataError(f"{str(path)!r} is not an image ({exc})") from exc
            buf = io.BytesIO()
            small.save(buf, format="JPEG", quality=quality)
            data = buf.getvalue()
        out.append(data)
    if not out:
        raise DataError("no images given; pass at least one --image")
    return out


def build_payload(mode: str, image: bytes, model: str | None) -> tuple[str, bytes, dict[str, str]]:
    """``(path, body, headers)`` of one request of ``mode`` carrying ``image``."""
    if mode == "classify":
        return "/v1/classify", image, {"Content-Type": "application/octet-stream"}
    if model is None:
        raise ConfigError(f"mode {mode!r} needs the model name")
    path = f"/v2/models/{model}/infer"
    if mode == "infer":
        blob = struct.pack("<I", len(image)) + image
        head = json.dumps(
            {
                "inputs": [
                    {"name": "image", "datatype": "BYTES", "shape": [1], "parameters": {"binary_data_size": len(blob)}}
                ],
                "outputs": [{"name": "probs", "parameters": {"binary_data": False}}],
            }
        ).encode()
        return (
            path,
            head + blob,
            {"Content-Type": "application/octet-stream", "Inference-Header-Content-Length": str(len(head))},
        )
    if mode == "infer-json":
        doc = {
            "inputs": [
                {"name": "image", "datatype": "BYTES", "shape": [1], "data": [base64.b64encode(image).decode()]}
            ],
            "outputs": [{"name": "probs"}],
        }
        return path, json.dumps(doc).encode(), {"Content-Type": "application/json"}
    raise ConfigError(f"unknown mode {mode!r}; valid: {', '.join(MODES)}")


def tensor_payload(model: str, metadata: dict[str, Any], seed: int = 0) -> tuple[str, bytes, dict[str, str]]:
    """A v2 request carrying one random row of the model's own input tensor as binary data (no image decoding).

    ``metadata`` is the server's model metadata; its first input is the model's tensor (``FP32`` or ``UINT8``).
    """

    spec = metadata["inputs"][0]
    shape = [1, *spec["shape"][1:]]
    rng = np.random.default_rng(seed)
    dtype = DATATYPES[spec["datatype"]]
    if dtype.kind == "f":
        data = rng.normal(size=shape).astype(dtype)
    else:
        data = rng.integers(0, 255, size=shape).astype(dtype)
    blob = data.tobytes()
    head = json.dumps(
        {
            "inputs": [
                {
                    "name": spec["name"],
                    "datatype": spec["datatype"],
                    "shape": shape,
                    "parameters": {"binary_data_size": len(blob)},
                }
            ],
            "outputs": [{"name": "probs", "parameters": {"binary_data": False}}],
        }
    ).encode()
    return (
        f"/v2/models/{model}/infer",
        head + blob,
        {"Content-Type": "application/octet-stream", "Inference-Header-Content-Length": str(len(head))},
    )


# -- /metrics ----------------------------------------------------------------------------------------------------
def parse_metrics(text: str) -> dict[str, Any]:
    """The server's histograms (``{name: {"sum", "count", "buckets": [(le, cumulative)]}}``), counters and gauges."""
    from prometheus_client.parser import text_string_to_metric_families

    out: dict[str, Any] = {"histograms": {}, "values": {}}
    for family in text_string_to_metric_families(text):
        if family.type == "histogram":
            for sample in family.samples:
                key = family.name + _labels(sample.labels, drop="le")
                h = out["histograms"].setdefault(key, {"sum": 0.0, "count": 0.0, "buckets": []})
                if sample.name.endswith("_bucket"):
                    h["buckets"].append((float(sample.labels["le"]), sample.value))
                elif sample.name.endswith("_sum"):
                    h["sum"] = sample.value
                elif sample.name.endswith("_count"):
                    h["count"] = sample.value
        else:
            for sample in family.samples:
                out["values"][sample.name + _labels(sample.labels)] = sample.value
    return out


def _labels(labels: dict[str, str], drop: str | None = None) -> str:
    items = sorted((k, v) for k, v in labels.items() if k != drop)
    return "{" + ",".join(f'{k}="{v}"' for k, v in items) + "}" if items else ""


def histogram_delta(before: dict[str, Any], after: dict[str, Any], key: str) -> dict[str, Any] | None:
    """Mean and p50/p90/p99 (linear within buckets, as PromQL's histogram_quantile) of what a run added."""
    b, a = before["histograms"].get(key), after["histograms"].get(key)
    if a is None:
        return None
    b = b or {"sum": 0.0, "count": 0.0, "buckets": []}
    count = a["count"] - b["count"]
    if count <= 0:
        return {"count": 0}
    prev = dict(b["buckets"])
    buckets = [(le, c - prev.get(le, 0.0)) for le, c in sorted(a["buckets"])]
    out = {"count": int(count), "mean": (a["sum"] - b["sum"]) / count}
    for q in (0.5, 0.9, 0.99):
        out[f"p{round(q * 100)}"] = _bucket_quantile(buckets, q)
    return out


def _bucket_quantile(buckets: list[tuple[float, float]], q: float) -> float | None:
    total = buckets[-1][1] if buckets else 0
    if total <= 0:
        return None
    rank = q * total
    lower, seen = 0.0, 0.0
    for le, cum in buckets:
        if cum >= rank:
            if math.isinf(le):
                return lower
            width = cum - seen
            return lower + (le - lower) * ((rank - seen) / width if width else 1.0)
        lower, seen = le, cum
    return lower


# -- the run -----------------------------------------------------------------------------------------------------
@dataclass
class RunResult:
    """One closed- or open-loop run: client latencies (seconds), counts, throughput and the server's view."""

    mode: str
    concurrency: int | None
    rate: float | None
    duration_s: float
    sent: int = 0
    ok: int = 0
    errors: dict[str, int] = field(default_factory=dict)
    client_skipped: int = 0
    throughput_rps: float = 0.0
    latency_s: dict[str, float | None] = field(default_factory=dict)
    refusal_latency_s: dict[str, float | None] = field(default_factory=dict)
    server: dict[str, Any] = field(default_factory=dict)
    overhead_s: dict[str, float | None] = field(default_factory=dict)
    load: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON types."""
        return asdict(self)


def percentiles(values: list[float]) -> dict[str, float | None]:
    """p50/p90/p99/mean/max of ``values`` (``None`` when empty)."""
    if not values:
        return {"p50": None, "p90": None, "p99": None, "mean": None, "max": None}
    arr = np.asarray(values)
    return {
        "p50": float(np.percentile(arr, 50)),
        "p90": float(np.percentile(arr, 90)),
        "p99": float(np.percentile(arr, 99)),
        "mean": float(arr.mean()),
        "max": float(arr.max()),
    }


class _Recorder:
    def __init__(self) -> None:
        self.recording = False
        self.latencies: list[float] = []
        self.refusals: list[float] = []
        self.errors: dict[str, int] = {}
        self.sent = 0
        self.ok = 0
        self.skipped = 0

    def add(self, kind: str, seconds: float) -> None:
        if not self.recording:
            return
        self.sent += 1
        if kind == "ok":
            self.ok += 1
            self.latencies.append(seconds)
            return
        self.errors[kind] = self.errors.get(kind, 0) + 1
        if kind == "http_503":
            self.refusals.append(seconds)


async def _one(
    session, base: str, payloads: list[tuple[str, bytes, dict[str, str]]], rec: _Recorder, rng: random.Random
) -> None:
    import aiohttp

    path, body, headers = payloads[rng.randrange(len(payloads))]
    start = time.perf_counter()
    try:
        async with session.post(base + path, data=body, headers=headers) as resp:
            await resp.read()
            kind = "ok" if resp.status == 200 else f"http_{resp.status}"
    except aiohttp.ClientConnectorError:
        kind = "connect_refused"
    except aiohttp.ServerDisconnectedError:
        kind = "disconnected"
    except aiohttp.ClientConnectionResetError:  # "cannot write to closing transport": closed as the request went out
        kind = "reset"
    except aiohttp.ClientOSError as exc:  # a connection the server closed (or reset) as the request went out
        kind = "reset" if exc.errno in (None, errno.ECONNRESET, errno.EPIPE) else f"os_error_{exc.errno}"
    except (TimeoutError, aiohttp.ClientError) as exc:
        kind = type(exc).__name__
    rec.add(kind, time.perf_counter() - start)


async def _scrape(session, base: str) -> dict[str, Any] | None:
    import aiohttp

    try:
        async with session.get(base + "/metrics") as resp:
            if resp.status != 200:
                return None
            return parse_metrics(await resp.text())
    except (TimeoutError, aiohttp.ClientError):
        return None


def _server_view(before: dict[str, Any] | None, after: dict[str, Any] | None) -> dict[str, Any]:
    if before is None or after is None:
        return {}
    view: dict[str, Any] = {}
    for name in ("queue_duration_seconds", "preprocess_duration_seconds", "compute_duration_seconds", "batch_size"):
        view[name] = histogram_delta(before, after, f"fishopt_{name}")
    for endpoint in ("infer", "classify"):
        delta = histogram_delta(before, after, f'fishopt_request_duration_seconds{{endpoint="{endpoint}"}}')
        if delta and delta.get("count"):
            view[f"request_duration_seconds_{endpoint}"] = delta
    values_b, values_a = before["values"], after["values"]
    cpu_b, cpu_a = values_b.get("process_cpu_seconds_total"), values_a.get("process_cpu_seconds_total")
    view["cpu_seconds"] = None if cpu_a is None or cpu_b is None else cpu_a - cpu_b
    view["rss_bytes_before"] = values_b.get("process_resident_memory_bytes")
    view["rss_bytes_after"] = values_a.get("process_resident_memory_bytes")
    failures = {}
    for key, value in values_a.items():
        if key.startswith("fishopt_request_failures_total"):
            delta = value - values_b.get(key, 0.0)
            if delta:
                failures[key.split("{", 1)[1].rstrip("}")] = int(delta)
    view["failures"] = failures
    return view


async def run_load(
    base_url: str,
    images: list[bytes],
    *,
    mode: str = "classify",
    model: str | None = None,
    concurrency: int | None = None,
    rate: float | None = None,
    duration_s: float = 10.0,
    warmup_s: float = 2.0,
    max_outstanding: int = 512,
    timeout_s: float = 30.0,
    seed: int = 0,
) -> RunResult:
    """Run one bounded load test against a running server.

    Args:
        base_url: ``http://host:port``.
        images: Encoded images, sent in random order (unused by ``tensor``).
        mode: ``classify``, ``infer`` (binary BYTES), ``infer-json`` (base64) or ``tensor`` (the model's input).
        model: Model name (``infer`` modes; default: asked from the server's repository index).
        concurrency: Closed loop with this many workers (exclusive with ``rate``).
        rate: Open loop, Poisson arrivals per second.
        duration_s: Measured seconds (after the warm-up).
        warmup_s: Unmeasured seconds first.
        max_outstanding: Open loop: most requests in flight; later arrivals are skipped and counted.
        timeout_s: Client timeout per request.
        seed: Seed of the arrival times and image order.

    Returns:
        The :class:`RunResult`.

    Raises:
        ConfigError: Neither or both of ``concurrency`` and ``rate``, or non-positive values.
    """
    import aiohttp

    if (concurrency is None) == (rate is None):
        raise ConfigError("give exactly one of concurrency (closed loop) or rate (open loop)")
    if (concurrency is not None and concurrency < 1) or (rate is not None and rate <= 0) or duration_s <= 0:
        raise ConfigError("concurrency must be >= 1, rate and duration > 0")
    base = base_url.rstrip("/")
    rng = random.Random(seed)
    limit = concurrency if concurrency is not None else max_outstanding
    connector = aiohttp.TCPConnector(limit=limit + 1, force_close=False)
    timeout = aiohttp.ClientTimeout(total=timeout_s)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
        if mode != "classify" and model is None:
            model = await _model_name(session, base)
        if mode == "tensor":
            async with session.get(f"{base}/v2/models/{model}") as resp:
                if resp.status != 200:
                    raise ConfigError(f"cannot read the metadata of model {model!r} (HTTP {resp.status})")
                payloads = [tensor_payload(model, await resp.json(), seed=seed)]
        else:
            payloads = [build_payload(mode, image, model) for image in images]
        rec = _Recorder()
        loop = asyncio.get_running_loop()
        stop_at = loop.time() + warmup_s + duration_s
        before: dict[str, Any] | None = None
        sampler = LoadSampler()

        async def begin_measuring() -> None:
            nonlocal before
            await asyncio.sleep(warmup_s)
            before = await _scrape(session, base)
            sampler.start()
            rec.recording = True

        measuring = asyncio.create_task(begin_measuring())
        if concurrency is not None:

            async def worker() -> None:
                while loop.time() < stop_at:
                    await _one(session, base, payloads, rec, rng)

            await asyncio.gather(*(worker() for _ in range(concurrency)))
        else:
            tasks: set[asyncio.Task] = set()
            next_at = loop.time()
            while True:
                next_at += rng.expovariate(rate)
                if next_at >= stop_at:
                    break
                await asyncio.sleep(max(0.0, next_at - loop.time()))
                if len(tasks) >= max_outstanding:
                    if rec.recording:
                        rec.skipped += 1
                    continue
                task = asyncio.create_task(_one(session, base, payloads, rec, rng))
                tasks.add(task)
                task.add_done_callback(tasks.discard)
            if tasks:
                await asyncio.gather(*tasks)
        rec.recording = False
        load = sampler.stop()
        await measuring
        after = await _scrape(session, base)
    result = RunResult(
        mode=mode,
        concurrency=concurrency,
        rate=rate,
        duration_s=duration_s,
        sent=rec.sent,
        ok=rec.ok,
        errors=rec.errors,
        client_skipped=rec.skipped,
        throughput_rps=rec.ok / duration_s,
        latency_s=percentiles(rec.latencies),
        refusal_latency_s=percentiles(rec.refusals),
        server=_server_view(before, after),
        load=load,
    )
    seconds, server_cpu = load.get("seconds"), result.server.get("cpu_seconds")
    if seconds and server_cpu is not None and load.get("background_cpus") is not None:
        load["server_cpus"] = round(server_cpu / seconds, 3)
        load["other_cpus"] = round(max(load["background_cpus"] - load["server_cpus"], 0.0), 3)
    compute = result.server.get("compute_duration_seconds") or {}
    if result.latency_s["p50"] is not None and compute.get("p50") is not None:
        result.overhead_s = {
            "p50": result.latency_s["p50"] - compute["p50"],
            "mean": result.latency_s["mean"] - compute["mean"],
        }
    return result


async def _model_name(session, base: str) -> str:
    async with session.post(base + "/v2/repository/index") as resp:
        if resp.status != 200:
            raise ConfigError(f"cannot list the server's models (HTTP {resp.status}); pass --model")
        index = await resp.json()
    if not index:
        raise ConfigError("the server lists no model; pass --model")
    return index[0]["name"]


def format_result(r: RunResult) -> str:
    """One human-readable block per run."""

    def ms(v: float | None) -> str:
        return "-" if v is None else f"{v * 1e3:.2f}"

    how = f"concurrency {r.concurrency}" if r.concurrency is not None else f"Poisson {r.rate:g}/s"
    lat = r.latency_s
    lines = [
        (
            f"{r.mode}, {how}, {r.duration_s:g} s: {r.ok}/{r.sent} ok, {r.throughput_rps:.1f} req/s; "
            f"latency ms p50 {ms(lat['p50'])} p90 {ms(lat['p90'])} p99 {ms(lat['p99'])} max {ms(lat['max'])}"
        )
    ]
    if r.errors or r.client_skipped:
        refused = r.refusal_latency_s
        lines.append(
            f"  errors {dict(sorted(r.errors.items()))}, client skipped {r.client_skipped}; 503 latency ms "
            f"p50 {ms(refused['p50'])} p99 {ms(refused['p99'])}"
        )
    s = r.server
    if s:

        def part(name: str, label: str) -> str:
            h = s.get(name) or {}
            return f"{label} {ms(h.get('mean'))}/{ms(h.get('p50'))}/{ms(h.get('p99'))}" if h.get("count") else ""

        batch = s.get("batch_size") or {}
        pieces = [
            part("preprocess_duration_seconds", "preprocess"),
            part("queue_duration_seconds", "queue"),
            part("compute_duration_seconds", "compute/batch"),
        ]
        lines.append(
            "  server ms mean/p50/p99: "
            + ", ".join(p for p in pieces if p)
            + (f"; batch size mean {batch['mean']:.2f}" if batch.get("count") else "")
        )
        if s.get("rss_bytes_after"):
            lines.append(
                f"  server RSS MB {s['rss_bytes_before'] / 1e6:.1f} -> {s['rss_bytes_after'] / 1e6:.1f}; "
                f"failures {s.get('failures') or {}}"
            )
    if r.overhead_s:
        lines.append(
            f"  overhead (end-to-end - compute) ms p50 {ms(r.overhead_s['p50'])}, mean {ms(r.overhead_s['mean'])}"
        )
    if r.load.get("other_cpus") is not None:
        lines.append(
            f"  CPU cores busy (of {_cpus()}): server {r.load['server_cpus']:.2f}, this client "
            f"{r.load['own_cpus']:.2f}, other processes {r.load['other_cpus']:.2f}"
        )
    elif r.load.get("background_cpus") is not None:
        lines.append(
            f"  CPU cores busy (of {_cpus()}): this client {r.load['own_cpus']:.2f}, all others "
            f"{r.load['background_cpus']:.2f}"
        )
    return "\n".join(lines)


def _cpus() -> int:
    import os

    return os.cpu_count() or 1
