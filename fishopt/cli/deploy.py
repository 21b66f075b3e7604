"""``fishopt deploy``: a self-contained bundle for a Jetson or any CPU box, checked before it is written."""

from __future__ import annotations

import click

from fishopt.cli.options import checkpoint_argument, data_option, setup_logging
from fishopt.deploy.targets import PRECISIONS, TARGETS


@click.command()
@checkpoint_argument
@click.option(
    "--target",
    type=click.Choice(sorted(TARGETS)),
    required=True,
    help="jetson: TensorRT engine built on the device (onnxruntime fallback); cpu: onnxruntime.",
)
@click.option(
    "--precision",
    type=click.Choice(PRECISIONS),
    default=None,
    help="Default: fp16 for jetson, fp32 for cpu. fp16 is jetson only; int8 is QDQ calibrated on train images.",
)
@click.option("--out", "out_dir", type=click.Path(file_okay=False), required=True, help="Bundle folder to create.")
@click.option("--archive", is_flag=True, help="Also write OUT.tar.gz.")
@click.option("--overwrite", is_flag=True, help="Replace an existing bundle folder / archive.")
@data_option
@click.option(
    "--calib-images",
    type=click.IntRange(min=1),
    default=128,
    show_default=True,
    help="int8: TRAIN images to calibrate with.",
)
@click.option(
    "--max-drop",
    type=click.FloatRange(0, 100),
    default=1.0,
    show_default=True,
    help="int8: largest accepted top-1 drop on the test split, in points.",
)
@click.option(
    "--keep-opset",
    is_flag=True,
    help="Keep the exporter's opset (default: lower to 17 when lossless, "
    "so TensorRT 8.5+ / JetPack 5.1+ can parse it).",
)
def deploy(
    checkpoint: str,
    target: str,
    precision: str | None,
    out_dir: str,
    archive: bool,
    overwrite: bool,
    data: str | None,
    calib_images: int,
    max_drop: float,
    keep_opset: bool,
) -> None:
    """Build a deployment bundle: model, labels, infer/verify/benchmark programs, Dockerfile, README.

    \b
    The bundle runs without fishopt or torch (numpy + Pillow + onnxruntime, or TensorRT on a Jetson) and
    is checked on the test split and by its own verify.py before it is written.

    \b
    Examples:
      fishopt deploy runs/exp/model.pt --target jetson --out bundles/jetson-fp16 --archive
      fishopt deploy runs/exp/model.pt --target jetson --precision int8 --out bundles/jetson-int8
      fishopt deploy runs/exp/model.pt --target cpu --out bundles/cpu
    """
    setup_logging()
    from fishopt.checkpoint import load_checkpoint
    from fishopt.deploy.bundle import build_bundle

    result = build_bundle(
        load_checkpoint(checkpoint),
        out_dir,
        target=target,
        precision=precision,
        archive=archive,
        overwrite=overwrite,
        data=data,
        max_drop=max_drop,
        calib_images=calib_images,
        keep_opset=keep_opset,
    )
    _print_result(result)


def _print_result(result) -> None:
    bundle, acc, ver = result.bundle, result.bundle["accuracy"], result.verify
    click.echo(
        f"bundle: {result.out_dir} ({bundle['target']}, {bundle['precision']}, "
        f"{result.size_bytes / 1e6:.2f} MB, opset {bundle['model']['opset']})"
    )
    if result.archive:
        click.echo(f"archive: {result.archive} ({result.archive.stat().st_size / 1e6:.2f} MB)")
    click.echo(
        f"test split: top-1 {acc['top1']:.4f} (checkpoint {acc['checkpoint_top1']:.4f}, agreement "
        f"{acc['top1_agreement_with_checkpoint']:.2%}, n={acc['n']})"
    )
    click.echo(f"verify.py here: {'PASS' if ver['passed'] else 'FAIL'} (max logit diff {ver['max_logit_diff']:.3g})")
    req = bundle["requirements"]
    if "tensorrt" in req:
        click.echo(
            f"device: JetPack {req['jetpack']}, TensorRT {req['tensorrt']}; next: ./build_engine.sh && "
            "python3 verify.py (see README.md)"
        )
