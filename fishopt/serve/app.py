"""The FastAPI app: Open Inference Protocol v2 routes, ``/v1/classify`` and ``/metrics`` around one model.

Request path of an inference (``POST /v2/models/{name}/infer`` or ``POST /v1/classify``):

1. admission: 404 for an unknown model, 503 when not ready, 503 at once when ``max_queue`` requests are already
   admitted (nothing is read or decoded then), 413 for a body over ``max_body_bytes``;
2. a preprocessing thread parses the body (:mod:`fishopt.serve.protocol`) and decodes images
   (:func:`fishopt.serve.images.decode_image_bytes` + :meth:`fishopt.serve.model.ServedModel.to_input`); a small
   request that finds the server idle is parsed and decoded on the event loop instead (:data:`INLINE_MAX_BODY`);
3. the :class:`fishopt.serve.batcher.Batcher` groups it with other requests into one model call;
4. the response is encoded (JSON, or Triton binary data) on the event loop.

Errors are ``{"error": "..."}`` with 400 (bad input), 404 (unknown model or route), 405, 413 (too large), 503
(overloaded, loading, shutting down), 504 (deadline passed) or 500 (a bug: logged with its traceback).

The model is loaded and warmed up in the background after the server starts: ``/v2/health/live`` answers at once,
``/v2/health/ready`` only once the model ran. :meth:`ServerState.begin_drain` (SIGTERM) turns readiness to 503 at
once; the runner (:mod:`fishopt.serve.server`) then lets in-flight requests finish before the process exits.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import zlib
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import numpy as np

from fishopt import __version__
from fishopt.errors import FishoptError
from fishopt.monitor.imagestats import image_statistics, model_input_images
from fishopt.serve import protocol as P
from fishopt.serve.batcher import (
    Batcher,
    BatchStats,
    Overloaded,
    RequestTimeout,
    ShuttingDown,
)
from fishopt.serve.config import ServeConfig
from fishopt.serve.images import ImageError, decode_image_bytes, warm_up_decoder
from fishopt.serve.metrics import ServerMetrics
from fishopt.serve.model import load_served_model, single_thread_preprocessing
from fishopt.serve.monitor import Monitor, MonitorWorker, NullMonitor, load_monitor

log = logging.getLogger("fishopt.serve")

LOGITS = "logits"
PROBS = "probs"
OUTPUTS = (LOGITS, PROBS)
SERVER_NAME = "fishopt"
EXTENSIONS = ["binary_tensor_data", "classification", "model_configuration"]
_STATUS_REASON = {
    400: "bad_request",
    404: "not_found",
    405: "method_not_allowed",
    413: "too_large",
    503: "not_ready",
    504: "timeout",
    500: "internal",
}
_TRITON_TYPES = {"BOOL": "TYPE_BOOL", "UINT8": "TYPE_UINT8", "FP32": "TYPE_FP32", "BYTES": "TYPE_STRING"}


class ServeError(Exception):
    """An error answered as ``{"error": message}`` with ``status``; ``reason`` labels the failure metric."""

    def __init__(
        self, status: int, message: str, reason: str | None = None, headers: dict[str, str] | None = None
    ) -> None:
        super().__init__(message)
        self.status = status
        self.reason = reason or _STATUS_REASON.get(status, "internal")
        self.headers = headers


@dataclass
class Prepared:
    """A parsed inference request: model input rows, the parsed v2 request (``None`` for /v1/classify), seconds."""

    rows: np.ndarray
    request: P.InferRequest | None
    seconds: float


class ServerState:
    """Everything the routes share: config, metrics, the model once loaded, the batcher, the pools, counters."""

    def __init__(self, config: ServeConfig, monitor: Monitor | None = None) -> None:
        self.config = config
        self.metrics = ServerMetrics()
        self.monitor: Monitor = monitor or NullMonitor()
        self.metrics.add_monitor(self.monitor)
        self.served: Any = None
        self.batcher: Batcher | None = None
        self.worker: MonitorWorker | None = None
        self.pool: ThreadPoolExecutor | None = None
        self.ready = False
        self.draining = False
        self.load_error: BaseException | None = None
        self.inflight = 0
        self.accepted = 0
        self.answered = 0
        self.on_fatal: Callable[[], None] | None = None
        self._load_task: asyncio.Task | None = None
        self.metrics.bind_gauges(lambda: self.batcher.pending if self.batcher else 0, lambda: self.inflight)

    # -- lifecycle ---------------------------------------------------------------------------------------------
    async def start(self) -> None:
        """Start the preprocessing pool and load the model in the background."""
        self.pool = ThreadPoolExecutor(max_workers=self.config.workers, thread_name_prefix="fishopt-pre")
        self._load_task = asyncio.get_running_loop().create_task(self._load(), name="fishopt-load")

    async def _load(self) -> None:
        cfg = self.config
        served = None
        try:
            # its own thread, not the preprocessing pool: /metrics and health keep answering while it loads
            served = await asyncio.to_thread(load_served_model, cfg.artifact, threads=cfg.threads, name=cfg.model_name)
            single_thread_preprocessing(served)
            await asyncio.to_thread(served.warmup, cfg.max_batch)
            await asyncio.to_thread(lambda: served.to_input(warm_up_decoder(served.image_size)))
            if cfg.monitor is not None and isinstance(self.monitor, NullMonitor):
                self.monitor = load_monitor(cfg.monitor, dict(served.meta))
                self.metrics.add_monitor(self.monitor)
        except Exception as exc:  # reported by the runner: the CLI exits 2 with the message
            log.error("cannot serve %s: %s", cfg.artifact, exc, exc_info=not isinstance(exc, FishoptError))
            if served is not None:
                served.close()
            self.load_error = exc
            if self.on_fatal is not None:
                self.on_fatal()
            return
        self.served = served
        self.metrics.set_model(
            model=served.name,
            version=served.version,
            format=served.info.format,
            precision=served.info.precision,
            runtime=served.info.runtime,
            class_names=served.class_names,
        )
        self.worker = MonitorWorker(self.monitor, self.metrics, image_stats=_image_stats_of(served))
        self.worker.start()
        self.batcher = Batcher(
            self._run_batch,
            max_batch=cfg.max_batch,
            max_delay_s=cfg.max_delay_s,
            max_queue=cfg.max_queue,
            on_batch=self._on_batch,
        )
        self.batcher.start()
        self.ready = not self.draining
        self.metrics.ready.set(1 if self.ready else 0)
        log.info(
            "model %s version %s ready (%s, %s input %s, batch <= %d, delay <= %.3g ms)",
            served.name,
            served.version,
            served.info.format,
            served.input_datatype,
            list(served.input_shape),
            cfg.max_batch,
            cfg.max_delay_ms,
        )

    def begin_drain(self) -> None:
        """Turn readiness off at once (SIGTERM); requests keep being served until the runner closes the server."""
        self.draining = True
        self.ready = False
        self.metrics.ready.set(0)

    async def stop(self) -> None:
        """Finish queued batches, stop the monitor thread, free the model and the pool."""
        self.begin_drain()
        if self._load_task is not None and not self._load_task.done():
            self._load_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._load_task
        if self.batcher is not None:
            await self.batcher.stop()
        if self.worker is not None:
            self.worker.stop()
        if self.served is not None:
            self.served.close()
        if self.pool is not None:
            self.pool.shutdown(wait=True, cancel_futures=True)
        log.info("stopped: answered %d of %d admitted inference requests", self.answered, self.accepted)

    # -- compute (in the batcher's thread) and after each batch (event loop) -----------------------------------
    def _run_batch(self, rows: np.ndarray) -> tuple[np.ndarray | None, ...]:
        logits, embeddings = self.served.predict(rows)
        inputs = rows if self.worker is not None and self.worker.wants_inputs else None
        return logits, softmax(logits), embeddings, inputs

    def _on_batch(self, stats: BatchStats) -> None:
        m = self.metrics
        if stats.failed:
            m.failed_batches.inc()
            return
        m.batches.inc()
        m.inferences.inc(stats.rows)
        m.batch_size.observe(stats.rows)
        m.compute_seconds.observe(stats.compute_seconds)
        if self.worker is not None and stats.outputs is not None:
            self.worker.submit(stats.outputs[1], stats.outputs[2], stats.outputs[3])

    # -- request helpers -----------------------------------------------------------------------------------------
    def model_for(self, name: str, version: str | None) -> Any:
        """The served model if ``name``/``version`` match and it is ready.

        Raises:
            ServeError: 503 while loading (the name cannot be checked yet), 404 for another name or version.
        """
        served = self.served
        if served is None:
            raise ServeError(
                503, "the model is still loading; retry when /v2/health/ready answers 200", headers={"Retry-After": "1"}
            )
        if name != served.name:
            raise ServeError(404, f"unknown model {name!r}; this server serves {served.name!r}")
        if version is not None and version != served.version:
            raise ServeError(
                404, f"unknown version {version!r} of model {name!r}; it serves version {served.version!r}"
            )
        return served

    def check_ready(self) -> None:
        """Raise 503 unless the model is ready (loaded, warmed up, not shutting down)."""
        if not self.ready:
            what = "the server is shutting down" if self.draining else "the model is still loading"
            raise ServeError(503, f"{what}; retry later", headers={"Retry-After": "1"})

    async def in_pool(self, fn: Callable[..., Any], *args: Any) -> Any:
        """Run ``fn(*args)`` in the preprocessing pool."""
        return await asyncio.get_running_loop().run_in_executor(self.pool, fn, *args)


def _image_stats_of(served: Any) -> Any:
    """``model inputs -> input statistics or None`` for the served model (for a drift monitor that observes them)."""
    meta, raw = served.meta, served.raw_input

    def compute(inputs: np.ndarray) -> np.ndarray | None:
        images = model_input_images(inputs, meta, raw)
        return None if images is None else image_statistics(images)

    return compute


def softmax(logits: np.ndarray) -> np.ndarray:
    """Row-wise softmax in float32."""
    z = logits - logits.max(axis=1, keepdims=True)
    e = np.exp(z, dtype=np.float32)
    return e / e.sum(axis=1, keepdims=True)


# -- bodies ------------------------------------------------------------------------------------------------------
async def read_body(request: Any, limit: int) -> bytes:
    """Read the request body, refusing more than ``limit`` bytes (413) before or while it streams in."""
    length = request.headers.get("content-length")
    if length is not None:
        try:
            declared = int(length)
        except ValueError:
            raise ServeError(400, f"Content-Length {length!r} is not an integer") from None
        if declared > limit:
            raise ServeError(
                413,
                f"the body is {declared:,} bytes, more than the {limit:,} accepted (fishopt serve --max-body-bytes)",
            )
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise ServeError(
                413, f"the body is more than the {limit:,} bytes accepted (fishopt serve --max-body-bytes)"
            )
        chunks.append(chunk)
    return b"".join(chunks)


def decompress(body: bytes, encoding: str | None, limit: int) -> bytes:
    """Undo ``Content-Encoding: gzip`` or ``deflate`` (as tritonclient sends), refusing more than ``limit`` bytes."""
    if not encoding or encoding == "identity":
        return body
    if encoding not in ("gzip", "deflate"):
        raise ServeError(400, f"unsupported Content-Encoding {encoding!r}; use gzip, deflate or none")
    inflater = zlib.decompressobj(wbits=31 if encoding == "gzip" else 15)
    try:
        out = inflater.decompress(body, limit + 1)
    except zlib.error as exc:
        raise ServeError(400, f"the body is not valid {encoding} data ({exc})") from None
    if len(out) > limit:
        raise ServeError(413, f"the decompressed body is more than the {limit:,} bytes accepted")
    return out


#: A request that finds the server idle (:attr:`Batcher.idle`) with a body of at most this many bytes is parsed and
#: decoded on the event loop instead of the preprocessing pool: nothing else is inside the server to overlap with,
#: and the two thread hops cost more than they save (c=1 overhead -12 to -22 %, measured side by side with
#: ``benchmarks/serve_compare.py``). A 224x168 JPEG is ~10 KB and takes ~1 ms; the bound keeps a large image,
#: whose decode would hold the loop (health checks, /metrics, new connections), in the pool.
INLINE_MAX_BODY = 64 * 1024


def prepare_images(served: Any, images: list[bytes] | np.ndarray) -> np.ndarray:
    """Decode encoded images into one batch of model input rows (in a preprocessing thread, or on the event loop
    for a small request to an idle server: see :data:`INLINE_MAX_BODY`)."""
    rows = [served.to_input(decode_image_bytes(bytes(data), served.image_size)) for data in images]
    return np.stack(rows)


def prepare_infer(
    served: Any, body: bytes, header_length: str | None, max_rows: int
) -> tuple[P.InferRequest, np.ndarray]:
    """Parse a v2 inference request and turn its one input into model input rows.

    Returns:
        ``(request, rows)``.

    Raises:
        ProtocolError: A malformed request, a wrong input name, datatype or shape, too many images.
        ImageError: An image that cannot be decoded (or is too large).
    """
    request = P.parse_infer_request(body, header_length, base64_inputs=frozenset({served.image_input_name}))
    valid = (
        f"{served.input_name!r} ({served.input_datatype} {[-1, *served.input_shape]}) or "
        f"{served.image_input_name!r} (BYTES [-1], encoded JPEG/PNG images)"
    )
    if len(request.inputs) != 1:
        raise P.ProtocolError(f"send exactly one input, {valid}; got {[t.name for t in request.inputs]}")
    tensor = request.inputs[0]
    n = tensor.shape[0] if tensor.shape else 0
    if tensor.name == served.image_input_name:
        if (
            tensor.datatype != "BYTES"
            or len(tensor.shape) not in (1, 2)
            or (len(tensor.shape) == 2 and tensor.shape[1] != 1)
        ):
            raise P.ProtocolError(
                f"input {tensor.name!r} must be BYTES of shape [N] or [N, 1] (one encoded image "
                f"per element), got {tensor.datatype} {tensor.shape}"
            )
    elif tensor.name == served.input_name:
        expected = [n, *served.input_shape]
        if tensor.datatype != served.input_datatype or list(tensor.shape) != expected:
            raise P.ProtocolError(
                f"input {tensor.name!r} must be {served.input_datatype} {[-1, *served.input_shape]}, "
                f"got {tensor.datatype} {tensor.shape}"
            )
    else:
        raise P.ProtocolError(f"unknown input {tensor.name!r}; this model takes {valid}")
    if not 1 <= n <= max_rows:
        raise P.ProtocolError(f"a request carries 1 to {max_rows} images (fishopt serve --max-request-batch), got {n}")
    if request.outputs is not None:
        for out in request.outputs:
            if out.name not in OUTPUTS:
                raise P.ProtocolError(f"unknown output {out.name!r}; this model has {', '.join(OUTPUTS)}")
    if tensor.name == served.image_input_name:
        rows = prepare_images(served, tensor.data.reshape(-1))
    else:
        rows = tensor.data
    return request, rows


def _infer_outputs(served: Any, request: P.InferRequest, logits: np.ndarray, probs: np.ndarray) -> list[P.OutputTensor]:
    values = {LOGITS: logits, PROBS: probs}
    wanted = request.outputs or [P.RequestedOutput(name) for name in OUTPUTS]
    default_binary = request.binary_output
    out = []
    for item in wanted:
        data = values[item.name]
        if item.classification:
            data = P.classify(data, item.classification, served.class_names)
        binary = default_binary if item.binary is None else item.binary
        out.append(P.OutputTensor(item.name, data, binary=bool(binary)))
    return out


def _json(doc: Any, status: int = 200, headers: dict[str, str] | None = None):
    import json

    from starlette.responses import Response

    return Response(
        json.dumps(doc, separators=(",", ":")), status_code=status, headers=headers, media_type="application/json"
    )


def _error(status: int, message: str, headers: dict[str, str] | None = None):
    return _json({"error": message}, status, headers)


# -- the app -----------------------------------------------------------------------------------------------------
def create_app(config: ServeConfig, monitor: Monitor | None = None):
    """Build the FastAPI app serving ``config.artifact``.

    Args:
        config: The checked :class:`ServeConfig`.
        monitor: A drift monitor (default: ``config.monitor`` if set, else :class:`NullMonitor`).

    Returns:
        The app; its ``state.fishopt`` is the :class:`ServerState`.
    """
    from fastapi import FastAPI, Request
    from fastapi.exceptions import RequestValidationError
    from starlette.exceptions import HTTPException
    from starlette.responses import Response

    state = ServerState(config, monitor)
    metrics = state.metrics

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI):
        await state.start()
        try:
            yield
        finally:
            await state.stop()

    app = FastAPI(title="fishopt serve", lifespan=lifespan, docs_url=None, redoc_url=None, openapi_url=None)
    app.state.fishopt = state

    def endpoint(name: str, inference: bool = False):
        """Count, time and turn errors into ``{"error"}`` responses for one route."""

        def wrap(handler: Callable[..., Awaitable[Any]]):
            async def route(request: Request):
                start = time.perf_counter()
                params = request.path_params
                metrics.requests.labels(name).inc()
                if inference:
                    state.inflight += 1
                try:
                    response = await handler(request, start, **params)
                except ServeError as exc:
                    metrics.failures.labels(name, exc.reason).inc()
                    response = _error(exc.status, str(exc), exc.headers)
                except Exception:
                    metrics.failures.labels(name, "internal").inc()
                    log.exception("%s %s failed", request.method, request.url.path)
                    response = _error(500, "internal server error (logged by the server); report it with the request")
                finally:
                    if inference:
                        state.inflight -= 1
                        metrics.request_seconds.labels(name).observe(time.perf_counter() - start)
                if state.draining:  # shutting down: let clients reconnect elsewhere instead of reusing this one
                    response.headers["Connection"] = "close"
                return response

            route.__name__ = handler.__name__
            route.__doc__ = handler.__doc__
            return route

        return wrap

    async def run_inference(
        request: Request,
        start: float,
        served: Any,
        prepare: Callable[[bytes], tuple[P.InferRequest | None, np.ndarray]],
    ):
        """Admission, body, preprocessing and batching shared by both inference routes."""
        batcher = state.batcher
        if batcher is None:  # still loading; after SIGTERM (readiness off) requests are still served
            state.check_ready()
        cfg = state.config
        try:
            with batcher.arriving() as arrival:  # admission: 503 at once when max_queue requests are admitted
                state.accepted += 1
                try:
                    body = await read_body(request, cfg.max_body_bytes)
                    body = decompress(body, request.headers.get("content-encoding"), cfg.max_body_bytes)
                    t0 = time.perf_counter()
                    try:
                        if batcher.idle and len(body) <= INLINE_MAX_BODY:
                            parsed, rows = prepare(body)  # alone in the server: no thread hops (see INLINE_MAX_BODY)
                            await asyncio.sleep(0)  # let requests that came in meanwhile announce themselves first
                        else:
                            parsed, rows = await asyncio.wait_for(state.in_pool(prepare, body), remaining(start, cfg))
                    except TimeoutError:
                        raise ServeError(
                            504, f"preprocessing took longer than the {cfg.timeout_s:g} s timeout"
                        ) from None
                    except P.ProtocolError as exc:
                        raise ServeError(exc.status, str(exc)) from None
                    except ImageError as exc:
                        raise ServeError(413 if exc.too_large else 400, str(exc)) from None
                    pre = time.perf_counter() - t0
                    metrics.preprocess_seconds.observe(pre)
                    budget = remaining(start, cfg)
                    if parsed is not None and parsed.timeout_s is not None:
                        budget = min(budget, parsed.timeout_s - (time.perf_counter() - start))
                    result = await batcher.submit(rows, max(budget, 0.0), arrival)
                finally:
                    state.answered += 1
        except Overloaded as exc:
            raise ServeError(503, f"overloaded: {exc}; retry later", "overloaded", {"Retry-After": "1"}) from None
        except ShuttingDown as exc:
            raise ServeError(503, f"{exc}; retry on another replica", "not_ready") from None
        except RequestTimeout as exc:
            raise ServeError(504, f"timeout: {exc} (fishopt serve --timeout, or parameters.timeout)") from None
        except P.ProtocolError as exc:
            raise ServeError(exc.status, str(exc)) from None
        metrics.queue_seconds.observe(result.queue_seconds)
        return parsed, result, pre

    def remaining(start: float, cfg: ServeConfig) -> float:
        return max(cfg.timeout_s - (time.perf_counter() - start), 0.0)

    # -- health and metadata ---------------------------------------------------------------------------------------
    @endpoint("health")
    async def live(request: Request, start: float):
        return _json({"live": True})

    @endpoint("health")
    async def ready(request: Request, start: float):
        state.check_ready()
        return _json({"ready": True})

    @endpoint("metadata")
    async def server_metadata(request: Request, start: float):
        return _json({"name": SERVER_NAME, "version": __version__, "extensions": EXTENSIONS})

    @endpoint("metadata")
    async def model_metadata(request: Request, start: float, model_name: str, model_version: str | None = None):
        served = state.model_for(model_name, model_version)
        return _json(
            {
                "name": served.name,
                "versions": [served.version],
                "platform": served.platform,
                "inputs": [
                    P.tensor_metadata(served.input_name, served.input_datatype, [-1, *served.input_shape]),
                    P.tensor_metadata(served.image_input_name, "BYTES", [-1]),
                ],
                "outputs": [
                    P.tensor_metadata(LOGITS, "FP32", [-1, served.num_classes]),
                    P.tensor_metadata(PROBS, "FP32", [-1, served.num_classes]),
                ],
                "parameters": {
                    "class_names": served.class_names,
                    "format": served.info.format,
                    "precision": served.info.precision,
                    "raw_input": served.raw_input,
                    "image_size": list(served.image_size),
                },
            }
        )

    @endpoint("health")
    async def model_ready(request: Request, start: float, model_name: str, model_version: str | None = None):
        served = state.model_for(model_name, model_version)
        state.check_ready()
        return _json({"name": served.name, "version": served.version, "ready": True})

    @endpoint("metadata")
    async def model_config(request: Request, start: float, model_name: str, model_version: str | None = None):
        served = state.model_for(model_name, model_version)
        cfg = state.config
        dims = [-1 if d < 0 else d for d in served.input_shape]
        return _json(
            {
                "name": served.name,
                "platform": served.platform,
                "max_batch_size": cfg.max_request_batch,
                "input": [
                    {
                        "name": served.input_name,
                        "data_type": _TRITON_TYPES[served.input_datatype],
                        "dims": dims,
                        "format": "FORMAT_NHWC" if served.raw_input else "FORMAT_NCHW",
                    },
                    {"name": served.image_input_name, "data_type": "TYPE_STRING", "dims": [1]},
                ],
                "output": [{"name": name, "data_type": "TYPE_FP32", "dims": [served.num_classes]} for name in OUTPUTS],
                "dynamic_batching": {
                    "preferred_batch_size": [cfg.max_batch],
                    "max_queue_delay_microseconds": int(cfg.max_delay_ms * 1000),
                    "default_queue_policy": {
                        "max_queue_size": cfg.max_queue,
                        "default_timeout_microseconds": int(cfg.timeout_s * 1e6),
                    },
                },
                "parameters": {"class_names": {"string_value": ",".join(served.class_names)}},
            }
        )

    @endpoint("metadata")
    async def repository_index(request: Request, start: float):
        served = state.served
        if served is None:
            return _json([])
        return _json(
            [{"name": served.name, "version": served.version, "state": "READY" if state.ready else "UNAVAILABLE"}]
        )

    @endpoint("metrics")
    async def prometheus(request: Request, start: float):
        body, content_type = metrics.render()  # ~1 ms; never queued behind preprocessing under overload
        return Response(body, media_type=content_type)

    # -- inference -------------------------------------------------------------------------------------------------
    @endpoint("infer", inference=True)
    async def infer(request: Request, start: float, model_name: str, model_version: str | None = None):
        served = state.model_for(model_name, model_version)
        header_length = request.headers.get(P.HEADER_LENGTH)
        max_rows = state.config.max_request_batch
        parsed, result, _ = await run_inference(
            request, start, served, lambda body: prepare_infer(served, body, header_length, max_rows)
        )
        logits, probs = result.outputs[:2]
        body, headers = P.encode_infer_response(
            served.name, served.version, _infer_outputs(served, parsed, logits, probs), request_id=parsed.id
        )
        return Response(body, headers=headers)

    @endpoint("classify", inference=True)
    async def classify(request: Request, start: float):
        served = state.served
        if served is None:
            state.check_ready()
        content_type = request.headers.get("content-type", "")
        multipart = content_type.startswith("multipart/form-data")

        def prepare(body: bytes) -> tuple[None, Any]:
            image = _multipart_image(body, content_type) if multipart else body
            return None, prepare_images(served, [image])

        _, result, pre = await run_inference(request, start, served, prepare)
        probs = result.outputs[1][0]
        index = int(probs.argmax())
        return _json(
            {
                "model": served.name,
                "version": served.version,
                "label": served.class_names[index],
                "index": index,
                "confidence": round(float(probs[index]), 6),
                "probabilities": {
                    name: round(float(p), 6) for name, p in zip(served.class_names, probs.tolist(), strict=True)
                },
                "latency_ms": {
                    "total": round((time.perf_counter() - start) * 1e3, 3),
                    "preprocess": round(pre * 1e3, 3),
                    "queue": round(result.queue_seconds * 1e3, 3),
                    "compute": round(result.compute_seconds * 1e3, 3),
                    "batch_size": result.batch_size,
                },
            }
        )

    versioned = ("/v2/models/{model_name}", "/v2/models/{model_name}/versions/{model_version}")
    routes: list[tuple[str, Callable, list[str]]] = [  # the router tries them in order: inference first
        *((base + "/infer", infer, ["POST"]) for base in versioned),
        ("/v1/classify", classify, ["POST"]),
        ("/v2/health/live", live, ["GET"]),
        ("/v2/health/ready", ready, ["GET"]),
        ("/v2", server_metadata, ["GET"]),
        ("/metrics", prometheus, ["GET"]),
        ("/v2/repository/index", repository_index, ["POST"]),
    ]
    for base in versioned:
        routes += [
            (base, model_metadata, ["GET"]),
            (base + "/ready", model_ready, ["GET"]),
            (base + "/config", model_config, ["GET"]),
        ]
    for path, handler, methods in routes:  # plain Starlette routes: no dependency injection on the hot path
        app.router.add_route(path, handler, methods=methods, include_in_schema=False)

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, exc: HTTPException):
        status = exc.status_code
        metrics.requests.labels("other").inc()
        metrics.failures.labels("other", _STATUS_REASON.get(status, "bad_request")).inc()
        message = {
            404: f"no route {request.url.path!r}; see GET /v2 and /v2/models/{{name}}",
            405: f"method {request.method} is not allowed on {request.url.path!r}",
        }.get(status, str(exc.detail))
        return _error(status, message, getattr(exc, "headers", None))

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, exc: RequestValidationError):
        metrics.failures.labels("other", "bad_request").inc()
        return _error(400, f"invalid request: {exc.errors()}")

    return app


def _multipart_image(body: bytes, content_type: str) -> bytes:
    """The first file part of a ``multipart/form-data`` body (python-multipart's parser, in a worker thread)."""
    from python_multipart.multipart import MultipartParser, parse_options_header

    _, options = parse_options_header(content_type)
    boundary = options.get(b"boundary")
    if not boundary:
        raise P.ProtocolError("multipart/form-data without a boundary; let the client build the Content-Type")
    parts: list[dict[str, Any]] = []
    current: dict[str, Any] = {}

    def on_part_begin() -> None:
        current.clear()
        current.update(headers=[], data=[], field=b"", value=b"")

    def on_header_field(data: bytes, start: int, end: int) -> None:
        current["field"] += data[start:end]

    def on_header_value(data: bytes, start: int, end: int) -> None:
        current["value"] += data[start:end]

    def on_header_end() -> None:
        current["headers"].append((current["field"].lower(), current["value"]))
        current["field"], current["value"] = b"", b""

    def on_part_data(data: bytes, start: int, end: int) -> None:
        current["data"].append(data[start:end])

    def on_part_end() -> None:
        parts.append({"headers": list(current["headers"]), "data": b"".join(current["data"])})

    parser = MultipartParser(
        boundary,
        {
            "on_part_begin": on_part_begin,
            "on_header_field": on_header_field,
            "on_header_value": on_header_value,
            "on_header_end": on_header_end,
            "on_part_data": on_part_data,
            "on_part_end": on_part_end,
        },
    )
    try:
        parser.write(body)
        parser.finalize()
    except ValueError as exc:  # python-multipart's MultipartParseError is a ValueError
        raise P.ProtocolError(f"malformed multipart/form-data body ({exc})") from None
    for part in parts:
        disposition = dict(part["headers"]).get(b"content-disposition", b"")
        if b"filename=" in disposition:
            return part["data"]
    raise P.ProtocolError(
        "the multipart/form-data body has no file part; send the image as e.g. curl -F image=@fish.jpg"
    )
