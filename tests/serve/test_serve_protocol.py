"""The v2 wire format against the examples of the KServe v2 REST spec and Triton's binary-data extension."""

from __future__ import annotations

import base64
import json
import struct

import numpy as np
import pytest

from fishopt.serve import protocol as P


def test_spec_json_request_example() -> None:
    # KServe v2 "Inference Request Examples" (input1's data has the 3 elements its shape says; the spec's text
    # shows one, which no server could accept).
    body = json.dumps(
        {
            "id": "42",
            "inputs": [
                {"name": "input0", "shape": [2, 2], "datatype": "UINT32", "data": [1, 2, 3, 4]},
                {"name": "input1", "shape": [3], "datatype": "BOOL", "data": [True, False, True]},
            ],
            "outputs": [{"name": "output0"}],
        }
    ).encode()
    req = P.parse_infer_request(body)
    assert req.id == "42"
    assert [t.name for t in req.inputs] == ["input0", "input1"]
    np.testing.assert_array_equal(req.inputs[0].data, np.array([[1, 2], [3, 4]], dtype=np.uint32))
    assert req.inputs[0].data.dtype == np.uint32
    np.testing.assert_array_equal(req.inputs[1].data, [True, False, True])
    assert [o.name for o in req.outputs] == ["output0"]
    assert req.outputs[0].binary is None and req.outputs[0].classification == 0


def test_spec_nested_data_is_row_major() -> None:
    body = json.dumps(
        {"inputs": [{"name": "x", "shape": [2, 2], "datatype": "FP32", "data": [[1, 2], [4, 5]]}]}
    ).encode()
    np.testing.assert_array_equal(P.parse_infer_request(body).inputs[0].data, [[1, 2], [4, 5]])


def test_spec_response_example_shape() -> None:
    # KServe v2 "Inference Response Examples": output0, FP32 [3, 2], row-major data.
    out = np.array([[1.0, 1.1], [2.0, 2.1], [3.0, 3.1]], dtype=np.float32)
    body, headers = P.encode_infer_response("mymodel", None, [P.OutputTensor("output0", out)], request_id="42")
    doc = json.loads(body)
    assert headers["Content-Type"] == "application/json" and P.HEADER_LENGTH not in headers
    assert doc["id"] == "42" and doc["model_name"] == "mymodel"
    (o,) = doc["outputs"]
    assert o["name"] == "output0" and o["datatype"] == "FP32" and o["shape"] == [3, 2]
    np.testing.assert_allclose(o["data"], [1.0, 1.1, 2.0, 2.1, 3.0, 3.1], rtol=1e-6)


def test_triton_binary_request_example() -> None:
    # Triton binary-data extension example: input0 UINT32 [2, 2] (16 bytes) and input1 BOOL [3] (3 bytes).
    head = json.dumps(
        {
            "model_name": "mymodel",
            "inputs": [
                {"name": "input0", "shape": [2, 2], "datatype": "UINT32", "parameters": {"binary_data_size": 16}},
                {"name": "input1", "shape": [3], "datatype": "BOOL", "parameters": {"binary_data_size": 3}},
            ],
            "outputs": [{"name": "output0", "parameters": {"binary_data": True}}, {"name": "output1"}],
        }
    ).encode()
    data0 = np.array([[1, 2], [3, 4]], dtype="<u4").tobytes()
    data1 = np.array([True, False, True]).tobytes()
    req = P.parse_infer_request(head + data0 + data1, str(len(head)))
    np.testing.assert_array_equal(req.inputs[0].data, [[1, 2], [3, 4]])
    np.testing.assert_array_equal(req.inputs[1].data, [True, False, True])
    assert req.inputs[0].parameters == {}  # binary_data_size is consumed
    assert req.outputs[0].binary is True and req.outputs[1].binary is None


def test_binary_response_decodes_with_tritonclient() -> None:
    http = pytest.importorskip("tritonclient.http")
    logits = np.arange(6, dtype=np.float32).reshape(2, 3) - 2.5
    labels = P.classify(logits, 2, ["a", "b", "c"])
    body, headers = P.encode_infer_response(
        "m",
        "1",
        [
            P.OutputTensor("logits", logits, binary=True),
            P.OutputTensor("top", labels, binary=True),
            P.OutputTensor("json", logits[:, :1]),
        ],
    )
    result = http.InferResult.from_response_body(body, header_length=int(headers[P.HEADER_LENGTH]))
    np.testing.assert_array_equal(result.as_numpy("logits"), logits)
    assert result.as_numpy("top").tolist() == [[b"-0.500000:2:c", b"-1.500000:1:b"], [b"2.500000:2:c", b"1.500000:1:b"]]
    np.testing.assert_array_equal(result.as_numpy("json"), logits[:, :1])


def test_bytes_wire_format_roundtrip() -> None:
    items = [b"", b"abc", bytes(range(256))]
    wire = P.encode_bytes(items)
    assert wire[:4] == struct.pack("<I", 0) and wire[4:8] == struct.pack("<I", 3)
    assert P.decode_bytes(wire, 3).tolist() == items
    with pytest.raises(P.ProtocolError, match="ends after 3 of 4"):
        P.decode_bytes(wire, 4)
    with pytest.raises(P.ProtocolError, match="left over"):
        P.decode_bytes(wire + b"x", 3)
    with pytest.raises(P.ProtocolError, match="says 9 bytes"):
        P.decode_bytes(struct.pack("<I", 9) + b"abc", 1)


def test_bytes_input_binary_and_base64_json() -> None:
    jpeg = b"\xff\xd8\xff\xe0not-utf8\x80"
    blob = P.encode_bytes([jpeg])
    head = json.dumps(
        {
            "inputs": [
                {"name": "image", "shape": [1], "datatype": "BYTES", "parameters": {"binary_data_size": len(blob)}}
            ]
        }
    ).encode()
    assert P.parse_infer_request(head + blob, len(head)).inputs[0].data.tolist() == [jpeg]
    encoded = "data:image/jpeg;base64," + base64.b64encode(jpeg).decode()
    body = json.dumps({"inputs": [{"name": "image", "shape": [1], "datatype": "BYTES", "data": [encoded]}]}).encode()
    assert P.parse_infer_request(body, base64_inputs=frozenset({"image"})).inputs[0].data.tolist() == [jpeg]
    assert P.parse_infer_request(body).inputs[0].data.tolist() == [encoded.encode()]  # other BYTES inputs: UTF-8
    bad = json.dumps({"inputs": [{"name": "image", "shape": [1], "datatype": "BYTES", "data": ["@@@"]}]}).encode()
    with pytest.raises(P.ProtocolError, match="not valid base64"):
        P.parse_infer_request(bad, base64_inputs=frozenset({"image"}))


@pytest.mark.parametrize(
    ("body", "header", "match"),
    [
        (b"{not json", None, "not valid JSON"),
        (b"\x00\x01binary", None, r"not valid JSON.*Inference-Header-Content-Length"),
        (b"[]", None, "JSON object"),
        (b'{"inputs": []}', None, "non-empty 'inputs'"),
        (b'{"inputs": [{"name": "x", "shape": [2], "datatype": "FP32"}]}', None, "no 'data'"),
        (b'{"inputs": [{"name": "x", "shape": [2], "datatype": "FP99", "data": [1, 2]}]}', None, "unknown datatype"),
        (
            b'{"inputs": [{"name": "x", "shape": [3], "datatype": "FP32", "data": [1, 2]}]}',
            None,
            r"2 elements but shape \[3\] needs 3",
        ),
        (b'{"inputs": [{"name": "x", "shape": [-1], "datatype": "FP32", "data": [1]}]}', None, "non-negative"),
        (b'{"inputs": [{"name": "x", "shape": [1], "datatype": "UINT8", "data": [300]}]}', None, "UINT8 range"),
        (b'{"inputs": [{"name": "x", "shape": [1], "datatype": "INT32", "data": [1.5]}]}', None, "integers"),
        (b'{"inputs": [{"name": "x", "shape": [1], "datatype": "FP32", "data": ["a"]}]}', None, "numbers"),
        (
            (
                b'{"inputs": [{"name": "x", "shape": [1], "datatype": "FP32", "data": [1]},'
                b' {"name": "x", "shape": [1], "datatype": "FP32", "data": [1]}]}'
            ),
            None,
            "unique",
        ),
        (
            b'{"inputs": [{"name": "x", "shape": [1], "datatype": "FP32", "data": [1]}], "outputs": {}}',
            None,
            "'outputs' must be a list",
        ),
        (
            (
                b'{"inputs": [{"name": "x", "shape": [1], "datatype": "FP32", "data": [1]}],'
                b' "outputs": [{"name": "y", "parameters": {"classification": -1}}]}'
            ),
            None,
            "classification",
        ),
        (b'{"inputs": [{"name": "x", "shape": [1], "datatype": "FP32", "data": [1]}]}', "abc", "must be an integer"),
        (b'{"inputs": [{"name": "x", "shape": [1], "datatype": "FP32", "data": [1]}]}', "9999", "but the body has"),
    ],
)
def test_bad_requests_name_the_problem(body: bytes, header: str | None, match: str) -> None:
    with pytest.raises(P.ProtocolError, match=match) as info:
        P.parse_infer_request(body, header)
    assert info.value.status == 400


def test_binary_sizes_must_add_up() -> None:
    head = json.dumps(
        {"inputs": [{"name": "x", "shape": [2], "datatype": "FP32", "parameters": {"binary_data_size": 8}}]}
    ).encode()
    data = np.array([1, 2], dtype="<f4").tobytes()
    with pytest.raises(P.ProtocolError, match="not claimed"):
        P.parse_infer_request(head + data + b"xx", len(head))
    with pytest.raises(P.ProtocolError, match="goes past the end"):
        P.parse_infer_request(head + data[:4], len(head))
    wrong = json.dumps(
        {"inputs": [{"name": "x", "shape": [3], "datatype": "FP32", "parameters": {"binary_data_size": 8}}]}
    ).encode()
    with pytest.raises(P.ProtocolError, match="needs 12"):
        P.parse_infer_request(wrong + data, len(wrong))


def test_request_parameters() -> None:
    body = json.dumps(
        {
            "inputs": [{"name": "x", "shape": [1], "datatype": "FP32", "data": [1]}],
            "parameters": {"timeout": 250000, "binary_data_output": True},
        }
    ).encode()
    req = P.parse_infer_request(body)
    assert req.timeout_s == pytest.approx(0.25) and req.binary_output
    req.parameters["timeout"] = -1
    with pytest.raises(P.ProtocolError, match="timeout"):
        _ = req.timeout_s


def test_datatype_of_and_classify() -> None:
    assert P.datatype_of(np.dtype(np.float32)) == "FP32"
    assert P.datatype_of(np.dtype(">f4")) == "FP32"
    assert P.datatype_of(np.dtype(object)) == "BYTES"
    with pytest.raises(ValueError, match="no Open Inference Protocol datatype"):
        P.datatype_of(np.dtype(np.complex64))
    top = P.classify(np.array([[0.1, 0.7, 0.2]], dtype=np.float32), 5, ["a", "b", "c"])
    assert top.shape == (1, 3)  # k is capped at the number of classes
    assert top[0, 0] == b"0.700000:1:b"
