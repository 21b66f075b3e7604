"""The one quantization verb: ``quantize(checkpoint, recipe, out_dir)``.

Like torchao's ``quantize_(model, config)``: the recipe (:class:`fishopt.optimize.recipes.QuantRecipe`) says
what to do, this function picks the registry format for its method and backend and runs the shared
build verb (:func:`fishopt.export.api.build`: build, parity gate against the checkpoint on test images,
``manifest.json``, atomic move into ``out_dir``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fishopt.optimize.recipes import QuantRecipe


def recipe_options(recipe: QuantRecipe) -> dict[str, Any]:
    """The builder options of a recipe (only those its format supports)."""
    from fishopt.export.registry import get_format

    fmt = get_format(recipe.format_name)
    values = {"calib_size": recipe.calib_size, "seed": recipe.seed, "max_drop": recipe.max_drop,
              "per_tensor": not recipe.per_channel, "package": recipe.package}
    return {k: v for k, v in values.items() if k in fmt.options}


def quantize(checkpoint: str | Path, recipe: QuantRecipe, out_dir: str | Path, *, verify: bool = True,
             overwrite: bool = False, threads: int | None = None):
    """Quantize a checkpoint to INT8 with ``recipe`` and write the verified artifact to ``out_dir``.

    Args:
        checkpoint: ``model.pt`` written by ``fishopt train``.
        recipe: What to do (method, backend, calibration size, seed, max drop, ...).
        out_dir: Output folder (must be new or empty unless ``overwrite``).
        verify: Run the parity gate (top-1 agreement >= 98 % and accuracy within 1 point on test images).
        overwrite: Replace a non-empty ``out_dir``.
        threads: Runtime threads during the parity check.

    Returns:
        The :class:`fishopt.export.api.BuildResult`; ``result.manifest["metadata"]["quantization"]`` says
        what was quantized.

    Raises:
        ConfigError: Bad recipe or options. MissingDependencyError: the backend is not installed.
        DataError: Calibration data missing or smaller than the number of classes.
        OutputError: ``out_dir`` exists and is not empty. ParityError: the INT8 model disagrees too much.
    """
    from fishopt.export.api import build

    return build(recipe.format_name, checkpoint, out_dir, options=recipe_options(recipe), verify=verify,
                 overwrite=overwrite, threads=threads)
