"""``fishopt export``: ONNX, OpenVINO, TensorRT (and the eager reference) from a checkpoint."""

from __future__ import annotations

import click

from fishopt.cli.options import checkpoint_argument, data_option, setup_logging
from fishopt.errors import ConfigError

BACKEND_PREFIX = {"onnx": "onnx", "openvino": "openvino", "tensorrt": "tensorrt", "torch": "torch-eager"}


def parse_size(ctx: click.Context | None, param: click.Parameter | None, value: str | None) -> list[int] | None:
    """Parse ``HxW`` (e.g. ``168x224``) into ``[H, W]``."""
    if value is None:
        return None
    try:
        h, w = (int(v) for v in value.lower().split("x"))
    except ValueError as exc:
        raise click.BadParameter(f"expected HxW, e.g. 168x224, got {value!r}") from exc
    return [h, w]


def common_options(func):
    """Output, verification and batch options shared by ``export`` and ``compile``."""
    decorators = [
        click.option("--out", "out", required=True, type=click.Path(file_okay=False), help="Output folder (created)."),
        click.option("--overwrite", is_flag=True, help="Replace a non-empty --out folder."),
        click.option(
            "--no-verify",
            is_flag=True,
            help="Skip the parity check against the checkpoint (recorded in manifest.json).",
        ),
        click.option(
            "--parity-images",
            type=click.IntRange(min=1),
            default=256,
            show_default=True,
            help="Test-split images for the parity check.",
        ),
        click.option(
            "--dynamic-batch/--static-batch",
            default=True,
            show_default=True,
            help="Dynamic batch dimension, or a fixed one of --batch-size.",
        ),
        click.option(
            "--batch-size", type=click.IntRange(min=1), default=None, help="Batch size with --static-batch (default 1)."
        ),
        click.option(
            "--threads", type=click.IntRange(min=1), default=None, help="Runtime threads for the parity check."
        ),
        data_option,
    ]
    for decorator in reversed(decorators):
        func = decorator(func)
    return func


def pick_one(group: str, flags: dict[str, bool]) -> str | None:
    """The one set flag of a group (``--onnx``/``--openvino``/...), or None.

    Raises:
        ConfigError: If two flags of the group are set (click would keep the last one silently).
    """
    chosen = [name for name, on in flags.items() if on]
    if len(chosen) > 1:
        raise ConfigError(f"choose one {group}, got {' and '.join('--' + c for c in chosen)}")
    return chosen[0] if chosen else None


def resolve_format(backend: str | None, precision: str, format_name: str | None) -> str:
    """The registry name for ``--onnx``/``--openvino``/``--tensorrt``/``--torch`` + precision, or ``--format``.

    Raises:
        ConfigError: If neither or both are given, or the backend has no format of that precision (lists
            the precisions it has).
    """
    from fishopt.artifacts.registry import get_format, list_formats

    if format_name:
        if backend or precision != "fp32":
            raise ConfigError(
                "--format names the format completely; drop --onnx/--openvino/--tensorrt/--fp16/--bf16/--int8"
            )
        return get_format(format_name).name
    if backend is None:
        raise ConfigError("choose a backend: --onnx, --openvino, --tensorrt or --torch (or --format NAME)")
    prefix = BACKEND_PREFIX[backend]
    name = f"{prefix}-{precision}"
    names = [f.name for f in list_formats() if f.name.rsplit("-", 1)[0] == prefix]
    if name not in names:
        have = ", ".join(_flag(n) for n in sorted(names)) or "none"
        raise ConfigError(f"--{backend} has no {precision} format; it supports: {have}")
    return name


def _flag(name: str) -> str:
    precision = name.rsplit("-", 1)[1]
    return f"no precision flag ({name})" if precision == "fp32" else f"--{precision} ({name})"


def report(result) -> None:
    """Print where the artifact went, its size and the parity figures."""
    m = result.manifest
    click.echo(
        f"wrote {result.out_dir} ({m['format']}): {m['artifact']}, {m['total_bytes'] / 1e6:.2f} MB in "
        f"{len(m['files'])} file(s), built in {m['build_seconds']:.1f} s"
    )
    if result.parity is not None:
        click.echo(f"parity: {result.parity.summary()} -> pass")
    else:
        click.secho("parity: not checked (--no-verify)", fg="yellow")
    for key, value in m["runtime_info"].items():
        click.echo(f"{key}: {value:.3f}" if isinstance(value, float) else f"{key}: {value}")


@click.command()
@checkpoint_argument
@click.option("--onnx", "onnx", is_flag=True, help="ONNX (torch dynamo exporter), run by ONNX Runtime.")
@click.option("--openvino", "openvino", is_flag=True, help="OpenVINO IR.")
@click.option("--tensorrt", "tensorrt", is_flag=True, help="TensorRT engine (CUDA GPU + TensorRT).")
@click.option("--torch", "torch_", is_flag=True, help="The eager reference (model.pt + metadata).")
@click.option("--fp16", "fp16", is_flag=True, help="FP16 variant.")
@click.option("--bf16", "bf16", is_flag=True, help="BF16 variant (OpenVINO).")
@click.option(
    "--int8",
    "int8",
    is_flag=True,
    help="Static INT8 variant calibrated on train images: with --openvino "
    "(NNCF) or --tensorrt. More INT8 recipes and options (ONNX Runtime, torch, INC): fishopt quantize.",
)
@click.option("--format", "format_name", default=None, help="Any registered format by name, e.g. openvino-bf16.")
@click.option(
    "--with-preprocessing",
    is_flag=True,
    help="Graph takes raw uint8 RGB images (N, H, W, 3) and preprocesses inside (ONNX, OpenVINO).",
)
@click.option(
    "--raw-size",
    callback=parse_size,
    default=None,
    help="HxW of the raw images with --with-preprocessing (default: the checkpoint's load size; "
    "another size adds an antialiased resize).",
)
@click.option("--opset", type=click.IntRange(min=18), default=None, help="ONNX opset (default: the exporter's).")
@click.option("--sanitize", is_flag=True, help="Constant-fold and clean the ONNX graph (polygraphy; TensorRT-ready).")
@common_options
def export(
    checkpoint: str,
    format_name: str | None,
    with_preprocessing: bool,
    raw_size: list[int] | None,
    opset: int | None,
    sanitize: bool,
    out: str,
    overwrite: bool,
    no_verify: bool,
    parity_images: int,
    dynamic_batch: bool,
    batch_size: int | None,
    threads: int | None,
    data: str | None,
    **flags: bool,
) -> None:
    """Export a checkpoint to a deployable artifact, check it against the checkpoint, write manifest.json.

    The artifact is built in a temporary folder and moved to --out only after it passes the parity
    check on --parity-images test images (FP32: max |logit diff| <= 1e-3 and 100 % top-1 agreement;
    FP16/BF16/INT8: >= 98 % agreement and accuracy within 1 point).

    \b
    Examples:
      fishopt export runs/exp/model.pt --onnx --out artifacts/onnx
      fishopt export runs/exp/model.pt --onnx --fp16 --out artifacts/onnx-fp16
      fishopt export runs/exp/model.pt --onnx --with-preprocessing --raw-size 168x224 --out artifacts/onnx-raw
      fishopt export runs/exp/model.pt --openvino --out artifacts/ov          # f32 weights and inference
      fishopt export runs/exp/model.pt --openvino --fp16 --out artifacts/ov16 # fp16 weights
      fishopt export runs/exp/model.pt --tensorrt --fp16 --static-batch --batch-size 8 --out artifacts/trt
      fishopt export runs/exp/model.pt --format openvino-bf16 --out artifacts/ov-bf16
    """
    setup_logging()
    from fishopt.artifacts.build import build
    from fishopt.checkpoint import load_checkpoint

    if batch_size is not None and dynamic_batch:
        raise ConfigError("--batch-size sets the static batch; add --static-batch (or drop --batch-size)")
    backend = pick_one("backend", {k.rstrip("_"): flags[k] for k in ("onnx", "openvino", "tensorrt", "torch_")})
    precision = pick_one("precision", {k: flags[k] for k in ("fp16", "bf16", "int8")})
    name = resolve_format(backend, precision or "fp32", format_name)
    options = {
        "with_preprocessing": with_preprocessing,
        "raw_size": raw_size,
        "opset": opset,
        "sanitize": sanitize,
        "static_batch": not dynamic_batch,
        "batch_size": batch_size,
    }
    if raw_size is not None and not with_preprocessing:
        raise ConfigError("--raw-size applies to --with-preprocessing graphs; add --with-preprocessing")
    result = build(
        name,
        load_checkpoint(checkpoint),
        out,
        options=options,
        verify=not no_verify,
        overwrite=overwrite,
        parity_images=parity_images,
        threads=threads,
        data_root=data,
    )
    report(result)
