"""``fishopt quantize``: INT8 post-training quantization with one of four toolkits."""

from __future__ import annotations

import click

from fishopt.cli.options import checkpoint_argument, setup_logging
from fishopt.optimize.recipes import BACKENDS, DEFAULT_CALIB_SIZE, METHODS


@click.command()
@checkpoint_argument
@click.option("--method", type=click.Choice(METHODS), default="static", show_default=True,
              help="static: weights and activations, calibrated on train images; dynamic: Linear/MatMul weights only.")
@click.option("--backend", type=click.Choice(BACKENDS), default="onnxruntime", show_default=True,
              help="Toolkit: torch (torchao PT2E / quantize_), onnxruntime, openvino (NNCF), inc (Neural Compressor).")
@click.option("--calib-size", type=click.IntRange(min=1), default=None,
              help="Calibration images from the TRAIN split, stratified per class (static; default 256).")
@click.option("--max-drop", type=click.FloatRange(0, 100), default=1.0, show_default=True,
              help="Accepted top-1 drop in points: INC tunes against it on the VALIDATION split "
                   "(the parity gate always allows at most 1 point on test images).")
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of the calibration draw.")
@click.option("--package", type=click.Choice(["aoti", "exported"]), default=None,
              help="torch/inc: save an AOTInductor package (default; compiled) or a torch.export program.")
@click.option("--out", "out_dir", type=click.Path(file_okay=False), required=True, help="Output folder.")
@click.option("--overwrite", is_flag=True, help="Replace a non-empty output folder.")
@click.option("--no-verify", is_flag=True, help="Skip the parity gate (the manifest records it).")
def quantize(checkpoint: str, method: str, backend: str, calib_size: int | None, max_drop: float, seed: int,
             package: str | None, out_dir: str, overwrite: bool, no_verify: bool) -> None:
    """INT8 quantization of a checkpoint, verified against it on test images.

    \b
    Valid combinations (registry format):
      --method static  --backend torch        torch-int8 (PT2E, AOTInductor package)
      --method dynamic --backend torch        torch-int8-dynamic (Linear layers only)
      --method static  --backend onnxruntime  onnxruntime-int8 (QDQ, per-channel)
      --method dynamic --backend onnxruntime  onnxruntime-int8-dynamic (MatMul/Gemm only)
      --method static  --backend openvino     openvino-int8 (NNCF)
      --method static  --backend inc          inc-int8 (accuracy-aware, --max-drop on val)

    \b
    Examples:
      fishopt quantize runs/exp/model.pt --backend openvino --out artifacts/ov-int8
      fishopt quantize runs/exp/model.pt --backend inc --max-drop 0.5 --out artifacts/inc-int8
    """
    setup_logging()
    from fishopt.errors import ConfigError
    from fishopt.optimize.quantize import quantize as run_quantize
    from fishopt.optimize.recipes import QuantRecipe

    if method == "dynamic" and calib_size is not None:
        raise ConfigError("--calib-size applies to --method static only (dynamic INT8 needs no calibration); drop it")
    if package is not None and backend not in ("torch", "inc"):
        raise ConfigError(f"--package applies to --backend torch or inc only; {backend} writes its own format: drop it")
    recipe = QuantRecipe(method=method, backend=backend, calib_size=calib_size or DEFAULT_CALIB_SIZE, seed=seed,
                         max_drop=max_drop, package=package or "aoti")
    result = run_quantize(checkpoint, recipe, out_dir, verify=not no_verify, overwrite=overwrite)
    print_result(result)


def _mb(n: int) -> str:
    return f"{n / 1e6:.3f} MB"


def _ratio(fp32_bytes: int, int8_bytes: int, saved_as: str | None) -> str:
    if int8_bytes <= fp32_bytes:
        return f"{fp32_bytes / max(int8_bytes, 1):.2f}x smaller"
    why = ": the AOTInductor package holds compiled code" if saved_as == "aoti" else ""
    return f"{int8_bytes / max(fp32_bytes, 1):.2f}x larger{why}"


def print_result(result) -> None:
    """Print what was quantized, sizes and the parity figures."""
    from fishopt.training.checkpoint import load_checkpoint

    manifest = result.manifest
    facts = manifest["metadata"].get("quantization", {})
    ckpt = load_checkpoint(manifest["source_checkpoint"])
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
        click.echo(f"  INC tuning on {t['val_images']} val images: FP32 {t['val_top1_fp32']}% -> INT8 "
                   f"{t['val_top1_int8']}% after {t['trials']} trial(s)")
        if t.get("val_in_training"):
            click.secho("  note: the checkpoint was refit on train + val, so the val scores above are on trained-on "
                        "images; the test parity figures below are the ones to trust", fg="yellow")
    click.echo(f"  size: {_mb(manifest['total_bytes'])} on disk vs FP32 weights {_mb(fp32_bytes)} "
               f"({_ratio(fp32_bytes, manifest['total_bytes'], facts.get('saved_as'))})")
    click.echo(f"  quantize time: {facts.get('quantize_seconds', manifest['build_seconds'])} s")
    if result.parity is None:
        click.secho("  parity: NOT checked (--no-verify)", fg="yellow")
    else:
        click.echo(f"  parity: {result.parity.summary()} -> {'pass' if result.parity.passed else 'FAIL'}")
