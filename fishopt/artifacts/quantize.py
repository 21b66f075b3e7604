"""The one quantization verb: ``quantize(checkpoint, out_dir, backend=, method=, options=)``.

Like torchao's ``quantize_(model, config)``: the method (``static``/``dynamic``) and the toolkit
(``--backend``: torch, onnxruntime, openvino, inc) pick the registry format
(:func:`fishopt.artifacts.registry.quantize_format`), the options become that format's config dataclass
(:mod:`fishopt.artifacts.config`, recorded in the artifact as its ``recipe``), and the shared build verb does
the rest (:func:`fishopt.artifacts.build.build`: build, parity gate on test images, ``manifest.json``, atomic
move into ``out_dir``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fishopt.artifacts.build import BuildResult, build
from fishopt.artifacts.registry import quantize_format
from fishopt.checkpoint import LoadedCheckpoint


def quantize(
    checkpoint: LoadedCheckpoint | str | Path,
    out_dir: str | Path,
    *,
    backend: str = "onnxruntime",
    method: str = "static",
    options: dict[str, Any] | None = None,
    verify: bool = True,
    overwrite: bool = False,
    threads: int | None = None,
    data_root: str | Path | None = None,
) -> BuildResult:
    """Quantize a checkpoint to INT8 and write the verified artifact to ``out_dir``.

    Args:
        checkpoint: The loaded checkpoint (or the path of a ``model.pt``).
        out_dir: Output folder (must be new or empty unless ``overwrite``).
        backend: The toolkit that quantizes: ``torch``, ``onnxruntime``, ``openvino`` or ``inc``.
        method: ``static`` (weights and activations, calibrated on train images) or ``dynamic``.
        options: The format's options (see its config in :mod:`fishopt.artifacts.config`), e.g. ``calib_size``.
        verify: Run the parity gate.
        overwrite: Replace a non-empty ``out_dir``.
        threads: Runtime threads during the parity check.
        data_root: Data root (default ``$FISHOPT_DATA``, then the checkpoint's).

    Returns:
        The :class:`fishopt.artifacts.build.BuildResult`; ``result.manifest["metadata"]["quantization"]`` says
        what was quantized.

    Raises:
        ConfigError: Unknown method/backend combination or bad options (lists the valid ones).
        MissingDependencyError: The toolkit is not installed. DataError: calibration data missing or smaller
        than the number of classes. OutputError: ``out_dir`` exists and is not empty. ParityError: the INT8
        model disagrees too much with the checkpoint.
    """
    fmt = quantize_format(method, backend)
    return build(
        fmt.name,
        checkpoint,
        out_dir,
        options=options,
        verify=verify,
        overwrite=overwrite,
        threads=threads,
        data_root=data_root,
    )
