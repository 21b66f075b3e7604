"""The served model: the ONE module of the server that calls the artifact registry and the runtimes.

:func:`describe_artifact` reads an artifact folder without loading it (``manifest.json`` of a ``fishopt
export/quantize/compile`` output, or ``bundle.json`` of a ``fishopt deploy`` bundle) so the CLI can refuse a bad
folder before it binds a port; :func:`load_served_model` loads it through the format registry, as the benchmark
does, and returns a :class:`ServedModel`: one runtime session plus what the protocol layer needs to know (names,
input tensor, class names, fixed batch size) and :meth:`ServedModel.predict`, which pads and chunks batches for
static-batch artifacts.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from fishopt.artifacts.registry import get_format
from fishopt.data.normalize import eval_transform_array
from fishopt.deploy.targets import EXPORT_FORMAT
from fishopt.errors import CheckpointError, ConfigError

MANIFEST = "manifest.json"
BUNDLE = "bundle.json"
#: Triton backend names for fishopt's backends, as the ``platform`` of the model metadata.
PLATFORMS = {"onnx": "onnxruntime_onnx", "openvino": "openvino", "tensorrt": "tensorrt_plan", "torch": "pytorch"}
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$")


@dataclass(frozen=True)
class ArtifactInfo:
    """What an artifact folder holds, read without loading the model.

    Attributes:
        folder: The folder.
        kind: ``manifest`` (export/quantize/compile output) or ``bundle`` (deploy bundle).
        format: Registry format name (``onnx-fp32``, ``onnxruntime-int8``...); for bundles ``bundle-<target>-<precision>``.
        registry_format: The registry format whose runtime loads it.
        precision: ``fp32``, ``fp16``, ``bf16`` or ``int8``.
        runtime: Runtime family (``onnxruntime``, ``openvino``, ``torch``...).
        artifact: The main file.
        name: Default model name (the format name).
        version: Model version (the first 12 hex digits of the source checkpoint's SHA-256).
    """

    folder: Path
    kind: str
    format: str
    registry_format: str
    precision: str
    runtime: str
    artifact: Path
    name: str
    version: str


def _read_json(path: Path) -> dict[str, Any]:
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise CheckpointError(f"cannot read {str(path)!r} ({exc}); rebuild the artifact") from exc
    if not isinstance(doc, dict):
        raise CheckpointError(f"{str(path)!r} is not a JSON object; rebuild the artifact")
    return doc


def describe_artifact(folder: str | Path) -> ArtifactInfo:
    """Read an artifact folder's ``manifest.json`` or ``bundle.json`` and check it can be served here.

    Raises:
        CheckpointError: The folder is missing, holds neither file, or they are incomplete.
        ConfigError: The manifest names a format this fishopt does not know.
        MissingDependencyError: The format's runtime is not installed (names the extra).
        BackendUnavailableError: It needs a GPU that is not here.
    """

    folder = Path(folder)
    if not folder.is_dir():
        raise CheckpointError(
            f"artifact folder {str(folder)!r} not found; pass a folder written by 'fishopt "
            "export/quantize/compile --out DIR' or 'fishopt deploy --target cpu --out DIR'"
        )
    if (folder / MANIFEST).is_file():
        manifest = _read_json(folder / MANIFEST)
        missing = [k for k in ("format", "artifact") if k not in manifest]
        if missing:
            raise CheckpointError(f"{str(folder / MANIFEST)!r} lacks {', '.join(missing)}; rebuild the artifact")
        fmt = get_format(manifest["format"])
        meta = manifest.get("metadata") or {}
        info = ArtifactInfo(
            folder=folder,
            kind="manifest",
            format=fmt.name,
            registry_format=fmt.name,
            precision=fmt.precision,
            runtime=fmt.backend,
            artifact=folder / manifest["artifact"],
            name=fmt.name,
            version=_version(meta.get("source_checkpoint_sha256")),
        )
    elif (folder / BUNDLE).is_file():
        bundle = _read_json(folder / BUNDLE)
        model = bundle.get("model") or {}
        if bundle.get("format") != "fishopt-bundle" or "file" not in model:
            raise CheckpointError(
                f"{str(folder / BUNDLE)!r} is not a fishopt deploy bundle; rebuild it with 'fishopt deploy'"
            )
        fmt = get_format(EXPORT_FORMAT)
        name = f"bundle-{bundle.get('target', 'cpu')}-{bundle.get('precision', 'fp32')}"
        info = ArtifactInfo(
            folder=folder,
            kind="bundle",
            format=name,
            registry_format=fmt.name,
            precision=str(bundle.get("precision", "fp32")),
            runtime=fmt.backend,
            artifact=folder / model["file"],
            name=name,
            version=_version((bundle.get("checkpoint") or {}).get("sha256")),
        )
    else:
        raise CheckpointError(
            f"{str(folder)!r} holds neither {MANIFEST} nor {BUNDLE}; pass the folder written by "
            "'fishopt export/quantize/compile --out DIR' or 'fishopt deploy --target cpu --out DIR'"
        )
    if not info.artifact.is_file():
        raise CheckpointError(
            f"artifact file {str(info.artifact)!r} named by the folder's {info.kind} is missing; rebuild the artifact"
        )
    fmt.check_available()
    return info


def _version(sha: Any) -> str:
    return str(sha)[:12] if isinstance(sha, str) and sha else "1"


def check_model_name(name: str) -> str:
    """Return ``name`` if it is usable in a URL path; raise :class:`ConfigError` otherwise."""
    if not _NAME.match(name):
        raise ConfigError(
            f"model name {name!r} is not valid; use 1-128 letters, digits, '_', '.' or '-', "
            "starting with a letter or digit"
        )
    return name


@dataclass
class ServedModel:
    """One loaded artifact as the server sees it.

    Attributes:
        info: The :class:`ArtifactInfo` it was loaded from.
        name: Model name in the URLs (``/v2/models/{name}``).
        version: Model version.
        runtime: The loaded :class:`fishopt.artifacts.runtime.Runtime`.
        meta: The artifact's metadata (class_names, input_size, load_size, mean, std, ...).
        class_names: Class names, index order.
        raw_input: Whether the model takes uint8 NHWC RGB images (else normalized float32 NCHW).
        input_name: Name of the model's own input tensor in the protocol.
        input_datatype: Its v2 datatype (``UINT8`` or ``FP32``).
        input_shape: Its shape without the batch dimension.
        image_input_name: Name of the ``BYTES`` input carrying encoded images (``image``, or ``image_bytes`` when
            the model's own input is called ``image``).
        image_size: (H, W) decoded images are fitted to before :meth:`to_input`.
        fixed_batch: The artifact's static batch size, or ``None`` for a dynamic batch dimension.
        provides_embeddings: Whether :meth:`predict` returns embeddings: the artifact has them as a second output
            (every ONNX and OpenVINO graph fishopt builds), so the drift monitor's MMD test runs on the same
            inference as the answer.
    """

    info: ArtifactInfo
    name: str
    version: str
    runtime: Any
    meta: dict[str, Any]
    class_names: list[str]
    raw_input: bool
    input_name: str
    input_datatype: str
    input_shape: tuple[int, ...]
    image_size: tuple[int, int]
    fixed_batch: int | None
    image_input_name: str = "image"
    provides_embeddings: bool = False

    @property
    def platform(self) -> str:
        """Triton-style platform name of the runtime family."""
        return PLATFORMS.get(self.info.runtime, self.info.runtime)

    @property
    def num_classes(self) -> int:
        """Number of classes."""
        return len(self.class_names)

    def to_input(self, image: np.ndarray) -> np.ndarray:
        """One decoded image (uint8 (3, H, W) at :attr:`image_size`) -> one row of the model's input.

        Raw-input models get it as (H, W, 3) uint8; the others get the checkpoint's evaluation transform
        (:func:`fishopt.data.normalize.eval_transform_array`: center crop + normalize, bit-for-bit
        :func:`~fishopt.data.preprocess.eval_transform`) as float32 (3, h, w).
        """
        if self.raw_input:
            return np.ascontiguousarray(image.transpose(1, 2, 0))
        return eval_transform_array(image, self.meta["input_size"], self.meta["mean"], self.meta["std"])

    def predict(self, batch: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
        """Run a batch of model inputs; return ``(logits (N, classes) float32, embeddings or None)``.

        Static-batch artifacts get chunks of their batch size, the last one padded by repeating its last row.
        """
        n = len(batch)
        step = self.fixed_batch
        run = self.runtime.outputs if self.provides_embeddings else lambda x: (self.runtime(x), None)
        if step is None or n == step:
            logits, embeddings = run(batch)
        else:
            parts, emb_parts = [], []
            for start in range(0, n, step):
                chunk = batch[start : start + step]
                m = len(chunk)
                if m < step:
                    chunk = np.concatenate([chunk, np.repeat(chunk[-1:], step - m, axis=0)])
                out, emb = run(chunk)
                parts.append(out[:m])
                if emb is not None:
                    emb_parts.append(emb[:m])
            logits = np.concatenate(parts)
            embeddings = np.concatenate(emb_parts) if len(emb_parts) == len(parts) else None
        logits = np.asarray(logits, dtype=np.float32)
        if logits.shape != (n, self.num_classes):
            raise CheckpointError(
                f"the model returned logits of shape {logits.shape}, expected ({n}, "
                f"{self.num_classes}); the artifact does not match its metadata: rebuild it"
            )
        if embeddings is not None and len(embeddings) != n:
            raise CheckpointError(
                f"the model returned {len(embeddings)} embeddings for {n} inputs; the artifact is broken: rebuild it"
            )
        return logits, embeddings

    def warmup(self, max_batch: int) -> None:
        """Run the model once at batch 1 and once at ``max_batch`` on blank inputs (first-call allocations)."""
        dtype = np.uint8 if self.raw_input else np.float32
        for n in sorted({1, max(1, max_batch)}):
            self.predict(np.zeros((n, *self.input_shape), dtype=dtype))

    def close(self) -> None:
        """Free the runtime."""
        self.runtime.close()


def load_served_model(folder: str | Path, threads: int | None = None, name: str | None = None) -> ServedModel:
    """Load an artifact folder for serving, through the format registry.

    Args:
        folder: A ``fishopt export/quantize/compile`` output folder or a ``fishopt deploy`` bundle.
        threads: Runtime threads (``None``: the runtime's default).
        name: Model name in the URLs (default: the format name).

    Returns:
        The :class:`ServedModel`.

    Raises:
        CheckpointError, ConfigError, MissingDependencyError, BackendUnavailableError: As
            :func:`describe_artifact` and the runtime's ``load``.
    """

    info = describe_artifact(folder)
    runtime = get_format(info.registry_format).load_runtime().load(info.artifact, threads=threads)
    meta = dict(runtime.meta)
    for key in ("class_names", "input_size", "load_size", "mean", "std"):
        if key not in meta:
            raise CheckpointError(f"artifact {str(info.artifact)!r} lacks the metadata key {key!r}; rebuild it")
    raw = bool(runtime.raw_input)
    if raw:
        size = tuple(int(v) for v in (meta.get("raw_size") or meta["load_size"]))
        input_shape: tuple[int, ...] = (size[0], size[1], 3)
        datatype = "UINT8"
    else:
        size = tuple(int(v) for v in meta["load_size"])
        input_shape = (3, *(int(v) for v in meta["input_size"]))
        datatype = "FP32"
    fixed = None
    if meta.get("dynamic_batch") is False:
        fixed = int(meta.get("batch_size") or 1)
    input_name = str(getattr(runtime, "input_name", None) or meta.get("input_name") or "input")
    return ServedModel(
        info=info,
        name=check_model_name(name or info.name),
        version=info.version,
        runtime=runtime,
        meta=meta,
        class_names=[str(c) for c in meta["class_names"]],
        raw_input=raw,
        input_name=input_name,
        input_datatype=datatype,
        input_shape=input_shape,
        image_size=(size[0], size[1]),
        fixed_batch=fixed,
        image_input_name="image_bytes" if input_name == "image" else "image",
        provides_embeddings=bool(getattr(runtime, "has_embeddings", False)),
    )


def single_thread_preprocessing(served: ServedModel) -> None:
    """Run the server's torch preprocessing (the exact resize) on one thread, unless the model runs in torch.

    Preprocessing runs torch ops on one small image per call: parallelism comes from the preprocessing pool, and
    a second OpenMP thread per call only waits for a core the model's threads hold. Measured on the 2-core
    machine while another 2-thread process ran: the exact fit of a 224x168 JPEG took 24 ms p50 with 2 torch
    threads and 0.6-1.2 ms with 1. Call it before any pool thread first uses torch: a thread reads the setting on
    its first torch call. Torch runtimes keep their own setting (their model needs it).
    """
    if served.info.runtime != "torch":
        import torch

        torch.set_num_threads(1)
