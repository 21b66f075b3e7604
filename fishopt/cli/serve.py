"""``fishopt serve``: an Open Inference Protocol v2 server for one artifact; ``fishopt serve-bench``: load it."""

from __future__ import annotations

import click

from fishopt.cli.options import setup_logging


def _size(text: str) -> tuple[int, int]:
    try:
        h, w = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise click.BadParameter(f"{text!r} is not HEIGHTxWIDTH, e.g. 168x224") from None
    if h < 1 or w < 1:
        raise click.BadParameter(f"{text!r}: both sides must be positive")
    return h, w


@click.command()
@click.argument("artifact_dir", type=click.Path(file_okay=False, path_type=str))
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to bind (0.0.0.0: all interfaces).")
@click.option("--port", type=click.IntRange(0, 65535), default=8000, show_default=True, help="Port (0: any free one).")
@click.option(
    "--threads",
    type=click.IntRange(min=1),
    default=None,
    help="Model runtime threads (default: the runtime's own, usually one per core).",
)
@click.option(
    "--preprocess-threads",
    type=click.IntRange(min=1),
    default=None,
    help="Threads that parse requests and decode images (default: --threads, else 2).",
)
@click.option(
    "--max-batch",
    type=click.IntRange(min=1),
    default=16,
    show_default=True,
    help="Most images per model call; 1 turns batching off.",
)
@click.option(
    "--max-delay-ms",
    type=click.FloatRange(min=0),
    default=2.0,
    show_default=True,
    help="Longest wait of the oldest queued request for requests already arriving to join its batch.",
)
@click.option(
    "--max-queue",
    type=click.IntRange(min=1),
    default=128,
    show_default=True,
    help="Requests admitted and waiting; beyond it requests get 503 at once.",
)
@click.option(
    "--timeout",
    "timeout_s",
    type=click.FloatRange(min=0, min_open=True),
    default=10.0,
    show_default=True,
    help="Per-request deadline in seconds (504 after it).",
)
@click.option(
    "--max-body-mb",
    type=click.FloatRange(min=0, min_open=True),
    default=16.0,
    show_default=True,
    help="Largest request body in MiB (413 above it).",
)
@click.option(
    "--max-request-batch",
    type=click.IntRange(min=1),
    default=64,
    show_default=True,
    help="Most images in one request (400 above it).",
)
@click.option("--model-name", default=None, help="Model name in the URLs (default: the artifact's format name).")
@click.option(
    "--drain",
    "drain_s",
    type=click.FloatRange(min=0),
    default=0.0,
    show_default=True,
    help="After SIGTERM keep serving this many seconds with readiness 503 before closing.",
)
@click.option("--monitor", default=None, help="Drift monitor 'module:factory' (factory(metadata) -> monitor).")
@click.option(
    "--drift",
    is_flag=True,
    help="Live drift statistics against the artifact's reference profile (fishopt drift ARTIFACT_DIR --make-profile "
    "makes it): KS tests on the softmax outputs over a sliding window, exported as fishopt_monitor_drift_* gauges.",
)
@click.option(
    "--drift-window",
    type=click.IntRange(min=20),
    default=500,
    show_default=True,
    help="With --drift: images in the sliding window.",
)
@click.option(
    "--log-level",
    type=click.Choice(["critical", "error", "warning", "info", "debug"]),
    default="info",
    show_default=True,
)
@click.option("--access-log", is_flag=True, help="Log every request.")
def serve(
    artifact_dir: str,
    host: str,
    port: int,
    threads: int | None,
    preprocess_threads: int | None,
    max_batch: int,
    max_delay_ms: float,
    max_queue: int,
    timeout_s: float,
    max_body_mb: float,
    max_request_batch: int,
    model_name: str | None,
    drain_s: float,
    monitor: str | None,
    drift: bool,
    drift_window: int,
    log_level: str,
    access_log: bool,
) -> None:
    """Serve an artifact over KServe's Open Inference Protocol v2 (REST), with batching and Prometheus metrics.

    \b
    ARTIFACT_DIR is a 'fishopt export/quantize/compile --out' folder or a 'fishopt deploy --target cpu' bundle.
    Endpoints: GET /v2/health/live, /v2/health/ready, /v2, /v2/models/NAME[/versions/V][/ready|/config];
    POST /v2/models/NAME[/versions/V]/infer (JSON or Triton binary tensors; input 'image' = encoded JPEG/PNG);
    POST /v1/classify (an image as the body or a multipart file); GET /metrics (Prometheus).

    \b
    Examples:
      fishopt serve artifacts/ort-int8 --threads 2
      curl -s --data-binary @fish.jpg http://127.0.0.1:8000/v1/classify
    """
    setup_logging(log_level == "debug")
    from pathlib import Path

    from fishopt.serve.config import MIB, ServeConfig
    from fishopt.serve.model import check_model_name, describe_artifact
    from fishopt.serve.server import run_server

    if drift and monitor:
        raise click.UsageError("--drift and --monitor both set the drift monitor; pass one of them")
    info = describe_artifact(artifact_dir)
    name = check_model_name(model_name or info.name)
    live = None
    if drift:  # load and calibrate before the port is bound: a missing profile is a bad input, not a 503
        from fishopt.monitor.server import ServerMonitor

        live = ServerMonitor(Path(artifact_dir), window=drift_window)
    config = ServeConfig(
        artifact=Path(artifact_dir),
        host=host,
        port=port,
        threads=threads,
        preprocess_threads=preprocess_threads,
        max_batch=max_batch,
        max_delay_ms=max_delay_ms,
        max_queue=max_queue,
        timeout_s=timeout_s,
        max_body_bytes=int(max_body_mb * MIB),
        max_request_batch=max_request_batch,
        model_name=name,
        drain_s=drain_s,
        log_level=log_level,
        access_log=access_log,
        monitor=monitor,
    ).check()

    def started(bound_host: str, bound_port: int) -> None:
        shown = "127.0.0.1" if bound_host in ("0.0.0.0", "::") else bound_host
        url = f"http://{shown}:{bound_port}"
        click.echo(f"serving {name} (version {info.version}, {info.format}) at {url}", err=True)
        click.echo(f"  ready:    curl -s {url}/v2/health/ready", err=True)
        click.echo(f"  classify: curl -s --data-binary @fish.jpg {url}/v1/classify", err=True)
        click.echo(f"  metrics:  curl -s {url}/metrics", err=True)

    run_server(config, live, on_started=started)


@click.command("serve-bench")
@click.option("--url", default="http://127.0.0.1:8000", show_default=True, help="The server's base URL.")
@click.option(
    "--image",
    "images",
    type=click.Path(dir_okay=False, exists=True),
    multiple=True,
    help="Image file to send (repeat for several; sent in random order). Not used by --mode tensor.",
)
@click.option(
    "--resize", type=str, default=None, help="Re-encode the images as JPEG of HEIGHTxWIDTH first (e.g. 168x224)."
)
@click.option(
    "--mode",
    type=click.Choice(["classify", "infer", "infer-json", "tensor"]),
    default="infer",
    show_default=True,
    help="classify: raw image to /v1/classify; infer: v2 binary BYTES tensor; infer-json: "
    "v2 base64 JSON; tensor: a random row of the model's own input (nothing to decode).",
)
@click.option("--model", default=None, help="Model name for the infer modes (default: the server's first model).")
@click.option(
    "--concurrency", type=str, default=None, help="Closed loop: comma-separated worker counts, one run each (e.g. 1,8)."
)
@click.option("--rate", type=str, default=None, help="Open loop: comma-separated Poisson rates in requests/s.")
@click.option(
    "--duration",
    type=click.FloatRange(min=0, min_open=True),
    default=10.0,
    show_default=True,
    help="Measured seconds per run.",
)
@click.option(
    "--warmup", type=click.FloatRange(min=0), default=2.0, show_default=True, help="Unmeasured seconds first."
)
@click.option(
    "--max-outstanding",
    type=click.IntRange(min=1),
    default=512,
    show_default=True,
    help="Open loop: most requests in flight (later arrivals are skipped and counted).",
)
@click.option("--out", "out_file", type=click.Path(dir_okay=False), default=None, help="Write the results as JSON.")
def serve_bench(
    url: str,
    images: tuple[str, ...],
    resize: str | None,
    mode: str,
    model: str | None,
    concurrency: str | None,
    rate: str | None,
    duration: float,
    warmup: float,
    max_outstanding: int,
    out_file: str | None,
) -> None:
    """Load a running 'fishopt serve': closed-loop concurrency or open-loop Poisson arrivals, bounded in time.

    \b
    Reports per run: client latency p50/p90/p99, throughput, errors by kind, 503 latency, and from the server's
    /metrics: preprocess, queue and compute seconds, batch size, resident memory, the overhead (end-to-end minus
    compute) and the CPU used by the server, this client and other processes.

    \b
    Examples:
      fishopt serve-bench --image fish.png --resize 168x224 --concurrency 1,8 --duration 10
      fishopt serve-bench --image fish.png --resize 168x224 --rate 200 --duration 20 --out load.json
      fishopt serve-bench --mode tensor --concurrency 8
    """
    import asyncio

    from fishopt.errors import ConfigError
    from fishopt.io import atomic_write_json
    from fishopt.serve.load import format_result, load_images, run_load

    if (concurrency is None) == (rate is None):
        raise ConfigError("give --concurrency (closed loop) or --rate (open loop), not both and not neither")
    try:
        levels = [int(v) for v in concurrency.split(",")] if concurrency else [float(v) for v in rate.split(",")]
    except ValueError:
        raise ConfigError(
            f"--concurrency/--rate must be comma-separated numbers, got {concurrency or rate!r}"
        ) from None
    if not images and mode != "tensor":
        raise ConfigError(f"--mode {mode} sends images: pass at least one --image")
    payloads = load_images(list(images), _size(resize) if resize else None) if images else []
    results = []
    for level in levels:
        kwargs = {"concurrency": level} if concurrency else {"rate": level}
        result = asyncio.run(
            run_load(
                url,
                payloads,
                mode=mode,
                model=model,
                duration_s=duration,
                warmup_s=warmup,
                max_outstanding=max_outstanding,
                **kwargs,
            )
        )
        click.echo(format_result(result))
        results.append(result.to_dict())
    if out_file:
        atomic_write_json(
            out_file, {"url": url, "mode": mode, "image_bytes": [len(p) for p in payloads], "runs": results}
        )
        click.echo(f"wrote {out_file}")
