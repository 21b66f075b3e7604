"""The bundle's model file: the exporter's raw-input ONNX graph, made ready for the device.

Three lossless steps on the ``onnx.ModelProto`` (never a re-export): append a ``Softmax`` so the graph
returns probabilities beside the logits, lower the opset to 17 when ``onnx.version_converter`` can do it
(TensorRT 8.5/8.6 on JetPack 5.1/6.0 parse opsets up to 17; the dynamo exporter writes 18 or newer), and read
the input/output description that ``bundle.json`` records. :func:`same_outputs` checks that a changed graph
still gives the exporter's logits.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np

from fishopt.artifacts.metadata import write_onnx_metadata
from fishopt.backends.onnx.graph import opset_of
from fishopt.errors import ParityError

log = logging.getLogger(__name__)

PROBS_NAME = "probs"
LOWEST_OPSET = 17
IR_FOR_OPSET_17 = 8  # the IR version onnx 1.12/1.13 wrote with opset 17 (TensorRT 8.5's parser, onnxruntime 1.14)


def keep_only_output(model: Any, name: str) -> Any:
    """Make ``name`` the graph's only output (fishopt's graph exports also output the penultimate embeddings,
    which a bundle does not use; a TensorRT engine would need a buffer for every output). Returns ``model``.

    Raises:
        ParityError: If the graph has no output ``name``.
    """
    keep = [o for o in model.graph.output if o.name == name]
    if not keep:
        outputs = ", ".join(o.name for o in model.graph.output)
        raise ParityError(f"the exported graph has no output {name!r} (it has: {outputs}); rebuild it")
    del model.graph.output[:]
    model.graph.output.extend(keep)
    return model


def add_probabilities(model: Any, logits: str) -> str:
    """Append ``Softmax(logits)`` as a second graph output unless the graph has one already.

    Returns:
        The name of the probabilities output.
    """
    from onnx import TensorProto, helper

    outputs = [o.name for o in model.graph.output]
    if len(outputs) > 1:
        return next(name for name in outputs if name != logits)
    model.graph.node.append(helper.make_node("Softmax", [logits], [PROBS_NAME], axis=-1, name="fishopt_softmax"))
    logits_info = next(o for o in model.graph.output if o.name == logits)
    dims = [d.dim_param or d.dim_value for d in logits_info.type.tensor_type.shape.dim]
    model.graph.output.append(helper.make_tensor_value_info(PROBS_NAME, TensorProto.FLOAT, dims or None))
    return PROBS_NAME


def lower_opset(model: Any, target: int = LOWEST_OPSET) -> Any:
    """Return the model converted to opset ``target``, or unchanged when the converter cannot do it.

    Only the default domain is converted; models with other domains (e.g. ``com.microsoft`` fused ops) are
    left as they are. The IR version is lowered with it when the checker accepts that.
    """
    import onnx
    from onnx import version_converter

    if opset_of(model) <= target or any(o.domain not in ("", "ai.onnx") for o in model.opset_import):
        return model
    try:
        lowered = version_converter.convert_version(model, target)
        _drop_default_noop(lowered)
        onnx.checker.check_model(lowered, full_check=True)
    except Exception as exc:  # the converter raises bare RuntimeError/ValidationError for unsupported adapters
        log.info("kept opset %d: cannot convert to %d (%s)", opset_of(model), target, exc)
        return model
    if target <= 17:
        candidate = onnx.ModelProto()
        candidate.CopyFrom(lowered)
        candidate.ir_version = IR_FOR_OPSET_17
        try:
            onnx.checker.check_model(candidate, full_check=True)
            lowered = candidate
        except onnx.checker.ValidationError:
            pass
    return lowered


def _drop_default_noop(model: Any) -> None:
    """Remove ``noop_with_empty_axes=0`` left on Reduce* nodes by the 18 -> 17 converter.

    Opset 18 moved ``axes`` of ReduceMean & co. from an attribute to an input and added
    ``noop_with_empty_axes``; the converter moves ``axes`` back but keeps that attribute, which opset 17 does
    not know. Its default (0) is opset 17's behaviour, so dropping it changes nothing; a node with 1 is left
    alone (and the checker then keeps the original opset).
    """
    for node in model.graph.node:
        if not node.op_type.startswith("Reduce"):
            continue
        keep = [a for a in node.attribute if not (a.name == "noop_with_empty_axes" and a.i == 0)]
        if len(keep) != len(node.attribute):
            del node.attribute[:]
            node.attribute.extend(keep)


def set_metadata(model: Any, values: dict[str, Any]) -> None:
    """Update fishopt metadata keys in ``metadata_props`` (JSON-encoded, as the exporter writes them)."""

    write_onnx_metadata(model, values)


def describe(model: Any, logits: str, probs: str) -> dict[str, Any]:
    """Input name/shape/dtype and output names for ``bundle.json`` (a dynamic dimension is ``-1``).

    Raises:
        ParityError: If the graph does not take one uint8 (N, H, W, 3) input.
    """
    from onnx import TensorProto

    if len(model.graph.input) != 1:
        raise ParityError(f"the exported graph has {len(model.graph.input)} inputs; a bundle needs exactly one")
    inp = model.graph.input[0]
    tensor = inp.type.tensor_type
    shape = [d.dim_value if d.HasField("dim_value") else -1 for d in tensor.shape.dim]
    if tensor.elem_type != TensorProto.UINT8 or len(shape) != 4 or shape[3] != 3:
        raise ParityError(
            f"the exported graph takes {TensorProto.DataType.Name(tensor.elem_type)} {shape}, not raw uint8 RGB "
            "(N, H, W, 3); it must be exported with_preprocessing"
        )
    return {
        "input": {"name": inp.name, "shape": shape, "dtype": "uint8", "layout": "NHWC RGB"},
        "outputs": {"logits": logits, "probs": probs},
        "opset": opset_of(model),
        "ir_version": int(model.ir_version),
    }


def run_onnx(path: Path, images: np.ndarray, outputs: list[str] | None = None) -> list[np.ndarray]:
    """Run an ONNX file on uint8 NHWC images with onnxruntime (CPU), one image per call."""
    import onnxruntime as ort

    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name
    results = [session.run(outputs, {name: images[i : i + 1]}) for i in range(len(images))]
    return [np.concatenate([r[k] for r in results]) for k in range(len(results[0]))] if results else []


def same_outputs(before: Path, after: Path, images: np.ndarray, logits: str, atol: float = 1e-5) -> float:
    """Check that ``after`` gives the logits of ``before`` on ``images``; return the largest difference.

    Raises:
        ParityError: If they differ by more than ``atol``.
    """
    (ref,) = run_onnx(before, images, [logits])
    (got,) = run_onnx(after, images, [logits])
    diff = float(np.abs(ref - got).max()) if len(ref) else 0.0
    if diff > atol:
        raise ParityError(
            f"the bundle's model changed the exporter's logits by {diff:.3g} (> {atol:g}) when converting it; "
            "report this as a bug, or deploy with --keep-opset"
        )
    return diff
