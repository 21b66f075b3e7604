"""KServe's Open Inference Protocol v2 (REST), as spoken by NVIDIA Triton and OpenVINO Model Server.

Pure functions on bytes and numpy arrays, no web framework: :func:`parse_infer_request` turns a request body
(JSON, or JSON + binary tensors with Triton's binary-data extension) into an :class:`InferRequest`;
:func:`encode_infer_response` turns output arrays into a response body and its headers; :func:`encode_bytes` /
:func:`decode_bytes` are the ``BYTES`` wire format (4-byte little-endian length + bytes per element).

Every problem with a request is a :class:`ProtocolError` carrying the HTTP status (400 unless stated) and one
message that names the field, what was wrong and what is valid.

References: the KServe v2 REST spec (``docs/predict-api/v2/required_api.md``) and Triton's extensions
``binary_data`` (``Inference-Header-Content-Length``, ``binary_data_size``, ``binary_data_output``) and
``classification`` (``parameters.classification = k`` on a requested output).
"""

from __future__ import annotations

import base64
import binascii
import json
import math
import struct
from dataclasses import dataclass, field
from typing import Any

import numpy as np

HEADER_LENGTH = "Inference-Header-Content-Length"
#: v2 datatype -> numpy dtype (little-endian on the wire). BF16 has no numpy type and is not accepted.
DATATYPES: dict[str, np.dtype] = {
    "BOOL": np.dtype(np.bool_),
    "UINT8": np.dtype(np.uint8),
    "UINT16": np.dtype("<u2"),
    "UINT32": np.dtype("<u4"),
    "UINT64": np.dtype("<u8"),
    "INT8": np.dtype(np.int8),
    "INT16": np.dtype("<i2"),
    "INT32": np.dtype("<i4"),
    "INT64": np.dtype("<i8"),
    "FP16": np.dtype("<f2"),
    "FP32": np.dtype("<f4"),
    "FP64": np.dtype("<f8"),
    "BYTES": np.dtype(object),
}
_DTYPE_NAMES = {np.dtype(v).newbyteorder("=").str: k for k, v in DATATYPES.items() if k != "BYTES"}


class ProtocolError(Exception):
    """A request the protocol cannot accept; ``status`` is the HTTP status to answer with."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


@dataclass
class InputTensor:
    """One input of an inference request.

    Attributes:
        name: The input's name.
        datatype: Its v2 datatype (``FP32``, ``UINT8``, ``BYTES``...).
        shape: Its shape (batch first for batched models).
        data: A numpy array of that shape; for ``BYTES`` an object array of ``bytes``.
        parameters: The input's parameters (``binary_data_size`` removed).
    """

    name: str
    datatype: str
    shape: list[int]
    data: np.ndarray
    parameters: dict[str, Any] = field(default_factory=dict)


@dataclass
class RequestedOutput:
    """One requested output: its name, whether to return it as binary data, and top-k classification."""

    name: str
    binary: bool = False
    classification: int = 0


@dataclass
class InferRequest:
    """A parsed inference request.

    Attributes:
        id: The request id (echoed in the response), if any.
        inputs: The inputs, in request order.
        outputs: The requested outputs, or ``None`` for all outputs.
        parameters: Request parameters (``timeout``, ``binary_data_output``, ...).
    """

    id: str | None
    inputs: list[InputTensor]
    outputs: list[RequestedOutput] | None
    parameters: dict[str, Any] = field(default_factory=dict)

    @property
    def binary_output(self) -> bool:
        """Triton's ``binary_data_output``: return every output as binary data unless an output says otherwise."""
        return bool(self.parameters.get("binary_data_output", False))

    @property
    def timeout_s(self) -> float | None:
        """The request's own timeout (``parameters.timeout``, microseconds as in Triton) in seconds, if any."""
        value = self.parameters.get("timeout")
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0:
            raise ProtocolError(f"parameters.timeout must be a positive number of microseconds, got {value!r}")
        return float(value) / 1e6


def datatype_of(dtype: np.dtype) -> str:
    """The v2 datatype name of a numpy dtype (``object`` -> ``BYTES``)."""
    dtype = np.dtype(dtype)
    if dtype.kind == "O":
        return "BYTES"
    name = _DTYPE_NAMES.get(dtype.newbyteorder("=").str)
    if name is None:
        raise ValueError(f"numpy dtype {dtype} has no Open Inference Protocol datatype")
    return name


def element_count(shape: list[int]) -> int:
    """Number of elements of a shape."""
    return math.prod(shape)


def encode_bytes(items: np.ndarray | list[bytes]) -> bytes:
    """Serialize ``BYTES`` elements (row-major): 4-byte little-endian length, then the bytes, per element."""
    flat = np.asarray(items, dtype=object).reshape(-1)
    parts = []
    for item in flat:
        raw = item.encode("utf-8") if isinstance(item, str) else bytes(item)
        parts.append(struct.pack("<I", len(raw)))
        parts.append(raw)
    return b"".join(parts)


def decode_bytes(buffer: bytes | memoryview, count: int, where: str = "BYTES tensor") -> np.ndarray:
    """Parse ``count`` length-prefixed ``BYTES`` elements that fill ``buffer`` exactly.

    Raises:
        ProtocolError: If the buffer is shorter, longer or not length-prefixed.
    """
    view = memoryview(buffer)
    out = np.empty(count, dtype=object)
    pos = 0
    for i in range(count):
        if pos + 4 > len(view):
            raise ProtocolError(
                f"{where}: binary data ends after {i} of {count} elements; each element is a "
                "4-byte little-endian length followed by that many bytes"
            )
        (length,) = struct.unpack_from("<I", view, pos)
        pos += 4
        if pos + length > len(view):
            raise ProtocolError(f"{where}: element {i} says {length} bytes but only {len(view) - pos} remain")
        out[i] = bytes(view[pos : pos + length])
        pos += length
    if pos != len(view):
        raise ProtocolError(f"{where}: {len(view) - pos} bytes left over after {count} elements")
    return out


def _parse_shape(value: Any, where: str) -> list[int]:
    if not isinstance(value, list) or not all(isinstance(v, int) and not isinstance(v, bool) and v >= 0 for v in value):
        raise ProtocolError(f"{where}.shape must be a list of non-negative integers, got {value!r}")
    return list(value)


def _parameters(obj: dict[str, Any], where: str) -> dict[str, Any]:
    params = obj.get("parameters", {})
    if not isinstance(params, dict):
        raise ProtocolError(f"{where}.parameters must be a JSON object, got {type(params).__name__}")
    return dict(params)


def _flatten(data: Any) -> list[Any]:
    """Flatten nested JSON lists (row-major), as the spec allows for ``data``."""
    if not isinstance(data, list):
        return [data]
    if not any(isinstance(v, list) for v in data):
        return data
    out: list[Any] = []
    for v in data:
        out.extend(_flatten(v))
    return out


def decode_base64(text: str, where: str) -> bytes:
    """Decode a base64 string (an optional ``data:...;base64,`` prefix is dropped).

    Raises:
        ProtocolError: If it is not valid base64.
    """
    if text.startswith("data:") and "," in text:
        text = text.split(",", 1)[1]
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise ProtocolError(
            f"{where}: not valid base64 ({exc}); BYTES image data in JSON must be base64-encoded "
            "(or send it as binary data)"
        ) from None


def _json_tensor(data: Any, datatype: str, shape: list[int], where: str, base64_bytes: bool) -> np.ndarray:
    count = element_count(shape)
    flat = _flatten(data)
    if len(flat) != count:
        raise ProtocolError(f"{where}: data has {len(flat)} elements but shape {shape} needs {count}")
    if datatype == "BYTES":
        out = np.empty(count, dtype=object)
        for i, v in enumerate(flat):
            if not isinstance(v, str):
                raise ProtocolError(f"{where}: BYTES data in JSON must be strings, element {i} is {type(v).__name__}")
            out[i] = decode_base64(v, f"{where}[{i}]") if base64_bytes else v.encode("utf-8")
        return out.reshape(shape)
    if datatype == "BOOL":
        if not all(isinstance(v, bool) for v in flat):
            raise ProtocolError(f"{where}: BOOL data must be true/false")
    elif any(isinstance(v, (bool, str, dict, type(None))) for v in flat):
        raise ProtocolError(f"{where}: {datatype} data must be numbers")
    dtype = DATATYPES[datatype]
    try:
        arr = np.asarray(flat, dtype=np.float64 if dtype.kind == "f" else None)
        if dtype.kind in "iu" and arr.dtype.kind not in "iub" and count:
            raise ProtocolError(f"{where}: {datatype} data must be integers")
        if dtype.kind in "iu" and count:
            info = np.iinfo(dtype)
            if arr.min() < info.min or arr.max() > info.max:
                raise ProtocolError(f"{where}: a value is outside the {datatype} range [{info.min}, {info.max}]")
        return arr.astype(dtype).reshape(shape)
    except (TypeError, ValueError, OverflowError) as exc:
        raise ProtocolError(f"{where}: cannot read the data as {datatype} ({exc})") from None


def _binary_tensor(chunk: memoryview, datatype: str, shape: list[int], where: str) -> np.ndarray:
    count = element_count(shape)
    if datatype == "BYTES":
        return decode_bytes(chunk, count, where).reshape(shape)
    dtype = DATATYPES[datatype]
    if len(chunk) != count * dtype.itemsize:
        raise ProtocolError(
            f"{where}: binary_data_size is {len(chunk)} bytes but shape {shape} of {datatype} "
            f"needs {count * dtype.itemsize}"
        )
    return np.frombuffer(chunk, dtype=dtype).reshape(shape)


def parse_infer_request(
    body: bytes, header_length: str | int | None = None, base64_inputs: frozenset[str] = frozenset()
) -> InferRequest:
    """Parse an inference request body.

    Args:
        body: The request body: JSON, or (with ``header_length``) a JSON header followed by the binary data of
            the inputs that declare ``parameters.binary_data_size``, in input order.
        header_length: The ``Inference-Header-Content-Length`` header, if present.
        base64_inputs: Names of ``BYTES`` inputs whose JSON strings are base64 (encoded images cannot travel
            as JSON strings otherwise).

    Returns:
        The :class:`InferRequest`; binary inputs are zero-copy views of ``body``.

    Raises:
        ProtocolError: Malformed JSON, missing or wrong fields, sizes that do not add up.
    """
    view = memoryview(body)
    if header_length is None:
        head, binary = view, view[len(view) :]
    else:
        try:
            size = int(header_length)
        except (TypeError, ValueError):
            raise ProtocolError(f"{HEADER_LENGTH} must be an integer, got {header_length!r}") from None
        if not 0 <= size <= len(view):
            raise ProtocolError(f"{HEADER_LENGTH} is {size} but the body has {len(view)} bytes")
        head, binary = view[:size], view[size:]
    try:
        doc = json.loads(bytes(head))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        hint = "" if header_length is not None else f" (binary tensors need the {HEADER_LENGTH} header)"
        raise ProtocolError(f"the request is not valid JSON: {exc}{hint}") from None
    if not isinstance(doc, dict):
        raise ProtocolError("the request must be a JSON object with an 'inputs' list")
    request_id = doc.get("id")
    if request_id is not None and not isinstance(request_id, str):
        raise ProtocolError(f"'id' must be a string, got {type(request_id).__name__}")
    params = _parameters(doc, "request")
    raw_inputs = doc.get("inputs")
    if not isinstance(raw_inputs, list) or not raw_inputs:
        raise ProtocolError("the request needs a non-empty 'inputs' list")
    inputs: list[InputTensor] = []
    offset = 0
    for i, item in enumerate(raw_inputs):
        where = f"inputs[{i}]"
        if not isinstance(item, dict):
            raise ProtocolError(f"{where} must be a JSON object with name, shape, datatype and data")
        name = item.get("name")
        if not isinstance(name, str) or not name:
            raise ProtocolError(f"{where}.name must be a non-empty string")
        where = f"input {name!r}"
        datatype = item.get("datatype")
        if datatype not in DATATYPES:
            raise ProtocolError(f"{where}: unknown datatype {datatype!r}; valid: {', '.join(DATATYPES)}")
        shape = _parse_shape(item.get("shape"), where)
        iparams = _parameters(item, where)
        size = iparams.pop("binary_data_size", None)
        if size is not None:
            if isinstance(size, bool) or not isinstance(size, int) or size < 0:
                raise ProtocolError(f"{where}: binary_data_size must be a non-negative integer, got {size!r}")
            if "data" in item:
                raise ProtocolError(f"{where} has both 'data' and binary_data_size; send one of them")
            if offset + size > len(binary):
                raise ProtocolError(
                    f"{where}: binary_data_size {size} goes past the end of the binary data "
                    f"({len(binary) - offset} bytes left)"
                )
            data = _binary_tensor(binary[offset : offset + size], datatype, shape, where)
            offset += size
        elif "data" in item:
            data = _json_tensor(item["data"], datatype, shape, where, name in base64_inputs)
        else:
            raise ProtocolError(f"{where} has no 'data' (and no binary_data_size parameter)")
        inputs.append(InputTensor(name=name, datatype=datatype, shape=shape, data=data, parameters=iparams))
    if offset != len(binary):
        raise ProtocolError(
            f"{len(binary) - offset} bytes of binary data are not claimed by any input's binary_data_size"
        )
    names = [t.name for t in inputs]
    if len(set(names)) != len(names):
        raise ProtocolError(f"input names must be unique, got {names}")
    return InferRequest(id=request_id, inputs=inputs, outputs=_parse_outputs(doc.get("outputs")), parameters=params)


def _parse_outputs(raw: Any) -> list[RequestedOutput] | None:
    if raw is None:
        return None
    if not isinstance(raw, list):
        raise ProtocolError("'outputs' must be a list of {name, parameters} objects")
    outputs = []
    for i, item in enumerate(raw):
        if not isinstance(item, dict) or not isinstance(item.get("name"), str):
            raise ProtocolError(f"outputs[{i}] must be a JSON object with a 'name'")
        params = _parameters(item, f"outputs[{i}]")
        binary = params.get("binary_data", None)
        if binary is not None and not isinstance(binary, bool):
            raise ProtocolError(f"output {item['name']!r}: binary_data must be true or false, got {binary!r}")
        k = params.get("classification", 0)
        if isinstance(k, bool) or not isinstance(k, int) or k < 0:
            raise ProtocolError(f"output {item['name']!r}: classification must be a non-negative integer, got {k!r}")
        outputs.append(RequestedOutput(name=item["name"], binary=binary, classification=k))  # type: ignore[arg-type]
    return outputs


def classify(values: np.ndarray, k: int, labels: list[str]) -> np.ndarray:
    """Triton's classification extension: the top ``k`` of each row as ``"value:index:label"`` strings.

    Returns:
        An object array (N, k) of ``bytes``.
    """
    k = min(k, values.shape[-1])
    order = np.argsort(-values, axis=-1, kind="stable")[..., :k]
    out = np.empty(order.shape, dtype=object)
    for idx in np.ndindex(order.shape):
        j = int(order[idx])
        out[idx] = f"{float(values[idx[:-1]][j]):f}:{j}:{labels[j]}".encode()
    return out


@dataclass
class OutputTensor:
    """One output to send: its name, data, and whether as binary data."""

    name: str
    data: np.ndarray
    binary: bool = False


def encode_infer_response(
    model_name: str,
    model_version: str | None,
    outputs: list[OutputTensor],
    request_id: str | None = None,
    parameters: dict[str, Any] | None = None,
) -> tuple[bytes, dict[str, str]]:
    """Encode an inference response.

    Returns:
        ``(body, headers)``: JSON only when no output is binary (``Content-Type: application/json``); otherwise the
        JSON header followed by the binary outputs in order, with ``Inference-Header-Content-Length`` set.
    """
    doc: dict[str, Any] = {"model_name": model_name}
    if model_version is not None:
        doc["model_version"] = model_version
    if request_id is not None:
        doc["id"] = request_id
    if parameters:
        doc["parameters"] = parameters
    entries, blobs = [], []
    for out in outputs:
        arr = out.data
        datatype = datatype_of(arr.dtype)
        entry: dict[str, Any] = {"name": out.name, "datatype": datatype, "shape": list(arr.shape)}
        if out.binary:
            blob = (
                encode_bytes(arr)
                if datatype == "BYTES"
                else np.ascontiguousarray(arr, dtype=arr.dtype.newbyteorder("<")).tobytes()
            )
            entry["parameters"] = {"binary_data_size": len(blob)}
            blobs.append(blob)
        elif datatype == "BYTES":
            entry["data"] = [
                v.decode("utf-8", errors="replace") if isinstance(v, bytes) else str(v) for v in arr.reshape(-1)
            ]
        else:
            entry["data"] = arr.reshape(-1).tolist()
        entries.append(entry)
    doc["outputs"] = entries
    head = json.dumps(doc, separators=(",", ":")).encode()
    if not blobs:
        return head, {"Content-Type": "application/json"}
    return b"".join([head, *blobs]), {"Content-Type": "application/octet-stream", HEADER_LENGTH: str(len(head))}


def tensor_metadata(name: str, datatype: str, shape: list[int]) -> dict[str, Any]:
    """``{"name", "datatype", "shape"}`` as in the model metadata response (``-1``: variable dimension)."""
    return {"name": name, "datatype": datatype, "shape": list(shape)}
