"""``fishopt quantize``: INT8 post-training quantization with one of the registry's toolkits.

The ``--method``/``--backend`` choices and the table of valid combinations in the help are read from the format
registry (:func:`fishopt.artifacts.registry.quantize_formats`), so a new INT8 format appears here by itself.
"""

from __future__ import annotations

from typing import Any

import click

from fishopt.artifacts.config import DEFAULT_CALIB_SIZE, PACKAGES
from fishopt.artifacts.registry import quantize_formats
from fishopt.cli.options import checkpoint_argument, data_option, setup_logging

_TABLE = quantize_formats()
_METHODS = sorted({m for m, _ in _TABLE})
_TOOLKITS = list(dict.fromkeys(t for _, t in _TABLE))  # registry order: torch first
_COMBOS = "\n".join(f"  --method {m:7s} --backend {t:11s} -> {f.name}" for (m, t), f in _TABLE.items())


@click.command(
    help=f"""INT8 quantization of a checkpoint, verified against it on test images.

\b
Valid combinations (registry format):
{_COMBOS}

\b
Examples:
  fishopt quantize runs/exp/model.pt --backend openvino --out artifacts/ov-int8
  fishopt quantize runs/exp/model.pt --backend inc --max-drop 0.5 --out artifacts/inc-int8
"""
)
@checkpoint_argument
@click.option(
    "--method",
    type=click.Choice(_METHODS),
    default="static",
    show_default=True,
    help="static: weights and activations, calibrated on train images; dynamic: Linear/MatMul weights only.",
)
@click.option(
    "--backend",
    type=click.Choice(_TOOLKITS),
    default="onnxruntime",
    show_default=True,
    help="The toolkit that quantizes (see the combinations above).",
)
@click.option(
    "--calib-size",
    type=click.IntRange(min=1),
    default=None,
    help=f"Calibration images from the TRAIN split, stratified per class (static; default {DEFAULT_CALIB_SIZE}).",
)
@click.option(
    "--max-drop",
    type=click.FloatRange(0, 100),
    default=None,
    help="inc: accepted top-1 drop in points, tuned on the VALIDATION split (default 1). The parity gate "
    "on test images applies to every backend.",
)
@click.option("--seed", type=int, default=None, help="Seed of the calibration draw (static; default 0).")
@click.option("--per-tensor", is_flag=True, help="onnxruntime static: per-tensor weight scales instead of per-channel.")
@click.option(
    "--package",
    type=click.Choice(PACKAGES),
    default=None,
    help="torch/inc: save an AOTInductor package (default; compiled) or a torch.export program.",
)
@click.option("--out", "out_dir", type=click.Path(file_okay=False), required=True, help="Output folder.")
@click.option("--overwrite", is_flag=True, help="Replace a non-empty output folder.")
@click.option("--no-verify", is_flag=True, help="Skip the parity gate (the manifest records it).")
@data_option
def quantize(
    checkpoint: str,
    method: str,
    backend: str,
    calib_size: int | None,
    max_drop: float | None,
    seed: int | None,
    per_tensor: bool,
    package: str | None,
    out_dir: str,
    overwrite: bool,
    no_verify: bool,
    data: str | None,
) -> None:
    setup_logging()
    from fishopt.artifacts.quantize import quantize as run_quantize
    from fishopt.artifacts.registry import quantize_format
    from fishopt.checkpoint import load_checkpoint
    from fishopt.errors import ConfigError

    fmt = quantize_format(method, backend)
    options = {
        "calib_size": calib_size,
        "max_drop": max_drop,
        "seed": seed,
        "package": package,
        "per_channel": False if per_tensor else None,
    }
    given = {k: v for k, v in options.items() if v is not None}
    for option in sorted(set(given) - set(fmt.options())):
        raise ConfigError(
            f"{_flag(option)} applies to {_applies_to(option)} only ({fmt.name} takes "
            f"{', '.join(_flag(o) for o in fmt.options()) or 'no options'}); drop it"
        )
    ckpt = load_checkpoint(checkpoint)
    result = run_quantize(
        ckpt,
        out_dir,
        backend=backend,
        method=method,
        options=given,
        verify=not no_verify,
        overwrite=overwrite,
        data_root=data,
    )
    print_result(result, ckpt)


def _flag(option: str) -> str:
    return "--per-tensor" if option == "per_channel" else "--" + option.replace("_", "-")


def _applies_to(option: str) -> str:
    """Where an option applies, in flags: ``--method static``, or ``--backend torch or inc``."""
    combos = [(m, t) for (m, t), f in _TABLE.items() if option in f.options()]
    methods = {m for m, _ in combos}
    if len(methods) == 1 and all(c in combos for c in _TABLE if c[0] in methods):
        return f"--method {methods.pop()}"
    toolkits = [t for t in _TOOLKITS if any(t == c[1] for c in combos)]
    return "--backend " + " or ".join(toolkits)


def _mb(n: int) -> str:
    return f"{n / 1e6:.3f} MB"


def _ratio(fp32_bytes: int, int8_bytes: int, saved_as: str | None) -> str:
    if int8_bytes <= fp32_bytes:
        return f"{fp32_bytes / max(int8_bytes, 1):.2f}x smaller"
    why = ": the AOTInductor package holds compiled code" if saved_as == "aoti" else ""
    return f"{int8_bytes / max(fp32_bytes, 1):.2f}x larger{why}"


def print_result(result: Any, ckpt: Any) -> None:
    """Print what was quantized, sizes and the parity figures."""
    manifest = result.manifest
    facts = manifest["metadata"].get("quantization", {})
    fp32_bytes = sum(p.numel() * 4 for p in ckpt.model.state_dict().values() if p.is_floating_point())
    click.echo(f"{manifest['format']} -> {result.artifact}")
    click.echo(f"  quantized: {facts.get('quantized', '?')}")
    if "package" in facts:
        click.echo(f"  saved as: {facts['package']}")
    if "calibration" in facts:
        c = facts["calibration"]
        click.echo(f"  calibration: {c['images']} {c['split']} images (seed {c['seed']})")
    if "tuning" in facts:
        t = facts["tuning"]
        click.echo(
            f"  INC tuning on {t['val_images']} val images: FP32 {t['val_top1_fp32']}% -> INT8 "
            f"{t['val_top1_int8']}% after {t['trials']} trial(s)"
        )
        if t.get("val_in_training"):
            click.secho(
                "  note: the checkpoint was refit on train + val, so the val scores above are on trained-on "
                "images; the test parity figures below are the ones to trust",
                fg="yellow",
            )
    click.echo(
        f"  size: {_mb(manifest['total_bytes'])} on disk vs FP32 weights {_mb(fp32_bytes)} "
        f"({_ratio(fp32_bytes, manifest['total_bytes'], facts.get('saved_as'))})"
    )
    click.echo(f"  quantize time: {facts.get('quantize_seconds', manifest['build_seconds'])} s")
    if result.parity is None:
        click.secho("  parity: NOT checked (--no-verify)", fg="yellow")
    else:
        click.echo(f"  parity: {result.parity.summary()} -> {'pass' if result.parity.passed else 'FAIL'}")
