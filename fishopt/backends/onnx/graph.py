"""ONNX graph utilities: debug-info stripping, opset lookup, sanitizing (constant folding), metadata + checker.

Everything here works on an ``onnx.ModelProto`` and imports onnx (and polygraphy for :func:`sanitize_onnx`)
lazily.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fishopt.artifacts.metadata import write_onnx_metadata
from fishopt.errors import require


def strip_debug_info(model: Any) -> Any:
    """Drop the exporter's per-node debug metadata (stack traces, FX nodes, module paths) in place.

    The dynamo exporter annotates every node with where it came from, including absolute source paths
    of the machine that exported it: about 1.6 kB per node, more than the INT8 weights of a small
    model's first layers. A deployment artifact should not carry (or leak) that; model-level
    ``metadata_props`` (fishopt's metadata) are kept.

    Returns:
        ``model`` (the same ``onnx.ModelProto``).
    """
    graphs = [model.graph, *(f for f in model.functions)]
    while graphs:
        graph = graphs.pop()
        for node in graph.node:
            del node.metadata_props[:]
            node.doc_string = ""
            for attr in node.attribute:
                graphs.extend([attr.g] if attr.HasField("g") else [])
                graphs.extend(attr.graphs)
    return model


def opset_of(model: Any) -> int:
    """The default-domain opset of an ``onnx.ModelProto``."""
    return next((int(o.version) for o in model.opset_import if o.domain in ("", "ai.onnx")), 0)


def sanitize_onnx(model: Any) -> Any:
    """Constant-fold and clean an ``onnx.ModelProto`` (polygraphy + onnx-graphsurgeon); metadata is kept.

    Raises:
        MissingDependencyError: If polygraphy or onnx-graphsurgeon is not installed.
    """
    require("polygraphy", "tensorrt")
    require("onnx_graphsurgeon", "tensorrt")
    import onnx_graphsurgeon as gs
    from polygraphy.backend.onnx import fold_constants

    props = [(p.key, p.value) for p in model.metadata_props]
    folded = fold_constants(model, num_passes=3, fold_shapes=True, error_ok=False)
    graph = gs.import_onnx(folded)
    graph.cleanup().toposort()
    out = gs.export_onnx(graph)
    out.ir_version = model.ir_version
    del out.opset_import[:]
    out.opset_import.extend(model.opset_import)
    for key, value in props:
        prop = out.metadata_props.add()
        prop.key, prop.value = key, value
    return out


def save_onnx(model: Any, path: Path, meta: dict[str, Any], check: bool = True) -> Path:
    """Write ``meta`` (plus the opset) into ``model``'s ``metadata_props``, save it, and run ``onnx.checker``.

    Quantizers and graph tools drop ``metadata_props``; every ONNX builder ends here.
    """
    import onnx

    write_onnx_metadata(model, {**meta, "opset": opset_of(model)})
    onnx.save(model, str(path))
    if check:
        onnx.checker.check_model(str(path), full_check=True)
    return path
