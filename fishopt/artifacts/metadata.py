"""Artifact metadata: one dict, the same keys in every format.

Every artifact fishopt writes carries :func:`artifact_metadata` of its checkpoint: ``class_names``,
``input_size``, ``load_size``, ``mean``, ``std``, ``recipe``, ``fishopt_version``,
``source_checkpoint_sha256``, ``precision`` and ``format``, plus format-specific keys (``raw_input``,
``raw_size``, ``dynamic_batch``, ``opset``, ``inference_precision``...). Where it is stored:

- ONNX: ``model.metadata_props`` (:func:`write_onnx_metadata` / :func:`read_onnx_metadata`);
- OpenVINO IR: ``rt_info`` under ``fishopt`` (:func:`set_openvino_metadata` / :func:`get_openvino_metadata`);
- torch formats (``.pt``, ``.pt2``) and TensorRT engines: a sidecar ``<artifact>.json``
  (:func:`write_sidecar` / :func:`read_sidecar`).

ONNX and OpenVINO can only hold strings, so each value is stored JSON-encoded; the readers decode them,
so every reader returns the same plain dict.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fishopt import __version__
from fishopt.errors import CheckpointError
from fishopt.io import atomic_write_json, file_sha256

if TYPE_CHECKING:
    from fishopt.checkpoint import LoadedCheckpoint

REQUIRED_KEYS = (
    "class_names",
    "input_size",
    "load_size",
    "mean",
    "std",
    "recipe",
    "fishopt_version",
    "source_checkpoint_sha256",
    "precision",
    "format",
)
OV_SECTION = "fishopt"


def artifact_metadata(ckpt: LoadedCheckpoint, format_name: str, precision: str, **extra: Any) -> dict[str, Any]:
    """Build the metadata dict of an artifact made from a checkpoint.

    Args:
        ckpt: The :class:`fishopt.checkpoint.LoadedCheckpoint` it was made from.
        format_name: Registry name of the artifact format, e.g. ``onnx-fp32``.
        precision: ``fp32``, ``fp16``, ``bf16`` or ``int8``.
        **extra: Format-specific keys (JSON-serializable), added as given.

    Returns:
        A dict of plain JSON types.
    """
    meta = ckpt.meta
    out: dict[str, Any] = {
        "class_names": list(meta["class_names"]),
        "input_size": [int(v) for v in meta["input_size"]],
        "load_size": [int(v) for v in meta["load_size"]],
        "mean": [float(v) for v in meta["mean"]],
        "std": [float(v) for v in meta["std"]],
        "recipe": {"format": format_name, "precision": precision},
        "fishopt_version": __version__,
        "source_checkpoint_sha256": file_sha256(ckpt.path),
        "precision": precision,
        "format": format_name,
    }
    out.update(extra)
    return json.loads(json.dumps(out))


def check_metadata(meta: dict[str, Any], where: str | Path) -> dict[str, Any]:
    """Raise :class:`CheckpointError` if ``meta`` lacks a required key; return it otherwise."""
    missing = [k for k in REQUIRED_KEYS if k not in meta]
    if missing:
        raise CheckpointError(
            f"artifact {str(where)!r} lacks fishopt metadata ({', '.join(missing)}); "
            "re-export it with 'fishopt export' (or 'fishopt quantize'/'fishopt compile')"
        )
    return meta


def _encode(meta: dict[str, Any]) -> dict[str, str]:
    return {key: json.dumps(value) for key, value in meta.items()}


def _decode(props: dict[str, str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, text in props.items():
        try:
            out[key] = json.loads(text)
        except json.JSONDecodeError:
            out[key] = text  # written by another tool: keep the plain string
    return out


def write_onnx_metadata(model: Any, meta: dict[str, Any]) -> None:
    """Store ``meta`` in an ``onnx.ModelProto``'s ``metadata_props`` (replacing keys of the same name)."""
    encoded = _encode(meta)
    kept = [p for p in model.metadata_props if p.key not in encoded]
    del model.metadata_props[:]
    model.metadata_props.extend(kept)
    for key, value in encoded.items():
        prop = model.metadata_props.add()
        prop.key, prop.value = key, value


def read_onnx_metadata(source: Any) -> dict[str, Any]:
    """Read fishopt metadata from an ONNX file path or ``ModelProto`` (values decoded)."""
    if isinstance(source, (str, Path)):
        import onnx

        source = onnx.load(str(source), load_external_data=False)
    return _decode({p.key: p.value for p in source.metadata_props})


def read_onnxruntime_metadata(session: Any) -> dict[str, Any]:
    """Read fishopt metadata from an ``onnxruntime.InferenceSession`` without loading the file twice."""
    return _decode(dict(session.get_modelmeta().custom_metadata_map))


def set_openvino_metadata(model: Any, meta: dict[str, Any]) -> None:
    """Store ``meta`` in an ``openvino.Model``'s ``rt_info`` under ``fishopt``."""
    for key, value in _encode(meta).items():
        model.set_rt_info(value, [OV_SECTION, key])


def get_openvino_metadata(model: Any) -> dict[str, Any]:
    """Read fishopt metadata from an ``openvino.Model``'s ``rt_info`` (values decoded)."""
    if not model.has_rt_info([OV_SECTION]):
        return {}
    section = model.get_rt_info([OV_SECTION])
    keys = list(section.astype(dict).keys()) if hasattr(section, "astype") else []
    return _decode({key: model.get_rt_info([OV_SECTION, key]).astype(str) for key in keys})


def sidecar_path(artifact: str | Path) -> Path:
    """``<artifact>.json``: where torch and TensorRT artifacts keep their metadata."""
    artifact = Path(artifact)
    return artifact.with_name(artifact.name + ".json")


def write_sidecar(artifact: str | Path, meta: dict[str, Any]) -> Path:
    """Atomically write ``meta`` to ``<artifact>.json``."""
    return atomic_write_json(sidecar_path(artifact), meta)


def read_sidecar(artifact: str | Path) -> dict[str, Any]:
    """Read ``<artifact>.json``.

    Raises:
        CheckpointError: If it is missing or not valid JSON.
    """
    path = sidecar_path(artifact)
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise CheckpointError(
            f"metadata file {str(path)!r} not found; keep it beside {Path(artifact).name} (export writes both)"
        ) from exc
    except json.JSONDecodeError as exc:
        raise CheckpointError(f"metadata file {str(path)!r} is not valid JSON ({exc}); re-export the artifact") from exc
