"""End to end: the real server (uvicorn + app) on a free loopback port, driven by tritonclient and plain HTTP."""

from __future__ import annotations

import base64
import gzip
import json
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
from serve_helpers import http, jpeg_bytes, running_server

from fishopt.serve.load import parse_metrics

NAME = "onnx-fp32"


def _json(status_headers_body):
    status, _, body = status_headers_body
    return status, json.loads(body)


def _multipart(field: str, filename: str, data: bytes) -> tuple[bytes, str]:
    boundary = uuid.uuid4().hex
    body = (
        (
            f'--{boundary}\r\nContent-Disposition: form-data; name="note"\r\n\r\nhello\r\n'
            f'--{boundary}\r\nContent-Disposition: form-data; name="{field}"; filename="{filename}"\r\n'
            f"Content-Type: image/jpeg\r\n\r\n"
        ).encode()
        + data
        + f"\r\n--{boundary}--\r\n".encode()
    )
    return body, f"multipart/form-data; boundary={boundary}"


def wait_for(condition, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not reached"
        time.sleep(0.01)


def _expected_probs(served, images: list[bytes]) -> np.ndarray:
    from fishopt.serve.app import softmax
    from fishopt.serve.images import decode_image_bytes

    rows = np.stack([served.to_input(decode_image_bytes(b, served.image_size)) for b in images])
    return softmax(served.predict(rows)[0])


def test_tritonclient_unmodified(onnx_server, tiny_images: list[Path]) -> None:
    """A client nobody here wrote: health, metadata, infer with JSON and binary tensors, BYTES images."""
    tc = pytest.importorskip("tritonclient.http")
    client = tc.InferenceServerClient(onnx_server.hostport)
    assert client.is_server_live() and client.is_server_ready() and client.is_model_ready(NAME)
    meta = client.get_server_metadata()
    assert meta["name"] == "fishopt" and "binary_tensor_data" in meta["extensions"]
    model = client.get_model_metadata(NAME)
    served = onnx_server.state.served
    assert model["name"] == NAME and model["versions"] == [served.version]
    assert model["inputs"] == [
        {"name": served.input_name, "datatype": "FP32", "shape": [-1, 3, 32, 32]},
        {"name": "image", "datatype": "BYTES", "shape": [-1]},
    ]
    assert model["outputs"] == [
        {"name": "logits", "datatype": "FP32", "shape": [-1, 3]},
        {"name": "probs", "datatype": "FP32", "shape": [-1, 3]},
    ]
    assert client.get_model_metadata(NAME, model_version=served.version)["name"] == NAME
    assert client.get_model_config(NAME)["max_batch_size"] >= 1
    assert client.get_model_repository_index() == [{"name": NAME, "version": served.version, "state": "READY"}]

    x = np.random.default_rng(0).normal(size=(3, 3, 32, 32)).astype(np.float32)
    expected = served.runtime(x)
    for binary in (False, True):
        inp = tc.InferInput(served.input_name, list(x.shape), "FP32")
        inp.set_data_from_numpy(x, binary_data=binary)
        outputs = [
            tc.InferRequestedOutput("logits", binary_data=binary),
            tc.InferRequestedOutput("probs", binary_data=not binary, class_count=2),
        ]
        result = client.infer(NAME, [inp], outputs=outputs, request_id=f"req-{binary}")
        assert result.get_response()["id"] == f"req-{binary}"
        np.testing.assert_allclose(result.as_numpy("logits"), expected, atol=1e-5)
        top = result.as_numpy("probs")
        assert top.shape == (3, 2)
        first = top[0, 0].decode() if isinstance(top[0, 0], bytes) else top[0, 0]
        _, index, label = first.split(":", 2)
        assert int(index) == int(expected[0].argmax()) and label == served.class_names[int(index)]

    images = [p.read_bytes() for p in tiny_images[:3]]  # JPEG and PNG files
    inp = tc.InferInput("image", [len(images)], "BYTES")
    inp.set_data_from_numpy(np.array(images, dtype=object), binary_data=True)
    result = client.infer(NAME, [inp])  # no outputs requested: all of them, binary
    np.testing.assert_allclose(result.as_numpy("probs"), _expected_probs(served, images), atol=1e-5)
    assert result.as_numpy("logits").shape == (3, 3)
    compressed = client.infer(NAME, [inp], request_compression_algorithm="gzip")
    np.testing.assert_allclose(compressed.as_numpy("probs"), result.as_numpy("probs"), atol=1e-6)

    with pytest.raises(tc.InferenceServerException, match="unknown model 'nope'"):
        client.infer("nope", [inp])
    bad = tc.InferInput(served.input_name, [1, 3, 8, 8], "FP32")
    bad.set_data_from_numpy(np.zeros((1, 3, 8, 8), np.float32))
    with pytest.raises(tc.InferenceServerException, match=r"must be FP32 \[-1, 3, 32, 32\]"):
        client.infer(NAME, [bad])


def test_health_metadata_and_route_errors(onnx_server) -> None:
    url = onnx_server.url
    assert _json(http("GET", url + "/v2/health/live")) == (200, {"live": True})
    assert _json(http("GET", url + "/v2/health/ready")) == (200, {"ready": True})
    version = onnx_server.state.served.version
    assert _json(http("GET", f"{url}/v2/models/{NAME}/versions/{version}/ready"))[1]["ready"] is True
    status, doc = _json(http("GET", f"{url}/v2/models/{NAME}/versions/999"))
    assert status == 404 and "unknown version '999'" in doc["error"]
    status, doc = _json(http("GET", f"{url}/v2/models/other/ready"))
    assert status == 404 and doc["error"] == f"unknown model 'other'; this server serves '{NAME}'"
    status, doc = _json(http("GET", url + "/v3/nothing"))
    assert status == 404 and "no route" in doc["error"]
    status, doc = _json(http("GET", f"{url}/v2/models/{NAME}/infer"))
    assert status == 405 and "not allowed" in doc["error"]


def test_classify_raw_and_multipart(onnx_server, tiny_images: list[Path]) -> None:
    served = onnx_server.state.served
    data = tiny_images[1].read_bytes()
    expected = _expected_probs(served, [data])[0]
    status, doc = _json(http("POST", onnx_server.url + "/v1/classify", data, {"Content-Type": "image/png"}))
    assert status == 200
    assert doc["label"] == served.class_names[int(expected.argmax())] and doc["index"] == int(expected.argmax())
    assert doc["probabilities"][doc["label"]] == pytest.approx(float(expected.max()), abs=1e-5)
    assert sum(doc["probabilities"].values()) == pytest.approx(1.0, abs=1e-4)
    assert set(doc["latency_ms"]) == {"total", "preprocess", "queue", "compute", "batch_size"}
    assert doc["model"] == NAME and doc["version"] == served.version
    body, content_type = _multipart("image", "fish.png", data)
    status, doc2 = _json(http("POST", onnx_server.url + "/v1/classify", body, {"Content-Type": content_type}))
    assert status == 200 and doc2["probabilities"] == doc["probabilities"]
    body, content_type = _multipart("image", "x", b"")
    status, doc3 = _json(
        http(
            "POST",
            onnx_server.url + "/v1/classify",
            body.replace(b'; filename="x"', b""),
            {"Content-Type": content_type},
        )
    )
    assert status == 400 and "no file part" in doc3["error"]
    status, doc4 = _json(http("POST", onnx_server.url + "/v1/classify", b"GIF89a garbage"))
    assert status == 400 and "cannot decode the image" in doc4["error"]
    status, doc5 = _json(http("POST", onnx_server.url + "/v1/classify", b""))
    assert status == 400 and "empty" in doc5["error"]


def test_json_base64_image_and_bad_inputs(onnx_server) -> None:
    url = f"{onnx_server.url}/v2/models/{NAME}/infer"
    served = onnx_server.state.served
    img = jpeg_bytes((50, 70))
    body = json.dumps(
        {
            "id": "7",
            "inputs": [
                {"name": "image", "datatype": "BYTES", "shape": [1, 1], "data": [base64.b64encode(img).decode()]}
            ],
            "outputs": [{"name": "probs"}],
        }
    ).encode()
    status, doc = _json(http("POST", url, body, {"Content-Type": "application/json"}))
    assert status == 200 and doc["id"] == "7" and [o["name"] for o in doc["outputs"]] == ["probs"]
    np.testing.assert_allclose(doc["outputs"][0]["data"], _expected_probs(served, [img])[0], atol=1e-5)
    cases = [
        ({"inputs": [{"name": "pixels", "datatype": "FP32", "shape": [1], "data": [1]}]}, "unknown input 'pixels'"),
        ({"inputs": [{"name": "image", "datatype": "FP32", "shape": [1], "data": [1]}]}, "must be BYTES"),
        (
            {"inputs": [{"name": "image", "datatype": "BYTES", "shape": [1], "data": ["bm90IGFuIGltYWdl"]}]},
            "cannot decode the image",
        ),
        ({"inputs": [{"name": "image", "datatype": "BYTES", "shape": [0], "data": []}]}, "1 to 64 images"),
        (
            {
                "inputs": [
                    {"name": served.input_name, "datatype": "FP32", "shape": [1, 3, 32, 32], "data": [0] * 3072}
                ],
                "outputs": [{"name": "features"}],
            },
            "unknown output 'features'",
        ),
        (
            {
                "inputs": [
                    {"name": served.input_name, "datatype": "FP32", "shape": [1, 3, 32, 32], "data": [0] * 3072},
                    {"name": "image", "datatype": "BYTES", "shape": [1], "data": ["eA=="]},
                ]
            },
            "exactly one input",
        ),
    ]
    for doc_in, message in cases:
        status, doc = _json(http("POST", url, json.dumps(doc_in).encode()))
        assert status == 400, doc_in
        assert message in doc["error"]
    status, doc = _json(http("POST", url, gzip.compress(b"{}") + b"junk", {"Content-Encoding": "gzip"}))
    assert status == 400


def test_metrics_after_traffic(onnx_server) -> None:
    state = onnx_server.state
    before = parse_metrics(http("GET", onnx_server.url + "/metrics")[2].decode())
    images = [jpeg_bytes((40, 50), seed=s) for s in range(5)]
    for data in images:
        assert http("POST", onnx_server.url + "/v1/classify", data)[0] == 200
    http("POST", onnx_server.url + "/v1/classify", b"nope")
    state.worker.join()  # health metrics are recorded off the request path
    status, headers, body = http("GET", onnx_server.url + "/metrics")
    assert status == 200 and headers["content-type"].startswith("text/plain")
    after = parse_metrics(body.decode())
    v0, v1 = before["values"], after["values"]

    def delta(key: str) -> float:
        return v1.get(key, 0.0) - v0.get(key, 0.0)

    assert delta('fishopt_requests_total{endpoint="classify"}') == 6
    assert delta('fishopt_request_failures_total{endpoint="classify",reason="bad_request"}') == 1
    assert delta("fishopt_inferences_total") == 5
    predictions = sum(delta(f'fishopt_predictions_total{{class="{c}"}}') for c in state.served.class_names)
    assert predictions == 5
    hist = after["histograms"]
    for name in (
        "fishopt_queue_duration_seconds",
        "fishopt_preprocess_duration_seconds",
        "fishopt_compute_duration_seconds",
        "fishopt_batch_size",
        "fishopt_prediction_confidence_ratio",
        "fishopt_prediction_entropy_ratio",
    ):
        assert hist[name]["count"] - before["histograms"][name]["count"] >= 5, name
    assert hist['fishopt_request_duration_seconds{endpoint="classify"}']["count"] >= 6
    assert v1["fishopt_model_ready"] == 1 and v1["fishopt_pending_requests"] == 0
    assert v1["process_resident_memory_bytes"] > 0


def test_concurrent_requests_are_batched_and_answered_correctly(onnx_artifact: Path) -> None:
    images = [jpeg_bytes((40, 50), seed=s) for s in range(24)]
    with running_server(onnx_artifact, max_batch=8, max_delay_ms=50.0, preprocess_threads=4) as running:
        served = running.state.served
        gate = threading.Event()
        original = served.predict

        def slow_predict(x):
            gate.wait(10)
            return original(x)

        served.predict = slow_predict
        with ThreadPoolExecutor(12) as pool:
            futures = [pool.submit(http, "POST", running.url + "/v1/classify", data) for data in images]
            wait_for(lambda: running.state.batcher.pending >= 4)  # the first one computes, the others queue
            gate.set()
            answers = [json.loads(f.result()[2]) for f in futures]
        expected = _expected_probs(served, images)
    for doc, probs in zip(answers, expected, strict=True):
        assert doc["index"] == int(probs.argmax())
        assert doc["confidence"] == pytest.approx(float(probs.max()), abs=1e-5)
    assert max(doc["latency_ms"]["batch_size"] for doc in answers) > 1
    assert all(doc["latency_ms"]["batch_size"] <= 8 for doc in answers)


def test_idle_server_preprocesses_small_requests_on_the_loop(
    onnx_artifact: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import fishopt.serve.app as app_module

    threads: list[str] = []
    original = app_module.prepare_images

    def recording(served, images):
        threads.append(threading.current_thread().name)
        return original(served, images)

    monkeypatch.setattr(app_module, "prepare_images", recording)
    small = jpeg_bytes((40, 50), seed=1)
    large = jpeg_bytes((400, 400), seed=2)  # random pixels: far more than INLINE_MAX_BODY bytes
    assert len(small) <= app_module.INLINE_MAX_BODY < len(large)
    with running_server(onnx_artifact) as running:
        served = running.state.served
        answers = [json.loads(http("POST", running.url + "/v1/classify", data)[2]) for data in (small, large, small)]
        expected = _expected_probs(served, [small, large, small])
    assert [name.startswith("fishopt-pre") for name in threads] == [False, True, False]
    assert [doc["index"] for doc in answers] == [int(p.argmax()) for p in expected]


def test_overload_timeout_and_body_limit(onnx_artifact: Path) -> None:
    img = jpeg_bytes((40, 50))
    infer = json.dumps(
        {
            "inputs": [{"name": "image", "datatype": "BYTES", "shape": [1], "data": [base64.b64encode(img).decode()]}],
            "parameters": {"timeout": 200_000},
        }
    ).encode()  # Triton's per-request timeout, microseconds
    with running_server(
        onnx_artifact, max_batch=1, max_queue=2, timeout_s=60.0, max_body_bytes=20_000, preprocess_threads=4
    ) as running:
        served, batcher = running.state.served, running.state.batcher
        gate = threading.Event()
        original = served.predict

        def slow_predict(x):
            gate.wait(30)
            return original(x)

        served.predict = slow_predict
        with ThreadPoolExecutor(8) as pool:
            busy = [pool.submit(http, "POST", running.url + "/v1/classify", img)]
            wait_for(lambda: batcher.computing == 1)  # blocked in the model
            start = time.perf_counter()
            status, _, body = http("POST", f"{running.url}/v2/models/{NAME}/infer", infer)
            assert status == 504 and "timeout" in json.loads(body)["error"]
            assert 0.15 < time.perf_counter() - start < 10
            busy += [pool.submit(http, "POST", running.url + "/v1/classify", img) for _ in range(2)]
            wait_for(lambda: batcher.pending == 2)  # one computing, two queued: the queue is full
            start = time.perf_counter()
            status, headers, body = http("POST", running.url + "/v1/classify", img)
            refused_in = time.perf_counter() - start
            assert status == 503 and headers.get("retry-after") == "1"
            assert "overloaded" in json.loads(body)["error"]
            assert refused_in < 2.0  # refused at admission, not after waiting
            gate.set()
            assert [f.result()[0] for f in busy] == [200, 200, 200]
        status, _, body = http("POST", running.url + "/v1/classify", b"x" * 30_000)
        assert status == 413 and "20,000" in json.loads(body)["error"]
        values = parse_metrics(http("GET", running.url + "/metrics")[2].decode())["values"]
        assert values['fishopt_request_failures_total{endpoint="classify",reason="overloaded"}'] == 1
        assert values['fishopt_request_failures_total{endpoint="infer",reason="timeout"}'] == 1
        assert values['fishopt_request_failures_total{endpoint="classify",reason="too_large"}'] == 1


def test_not_ready_while_loading_then_ready(onnx_artifact: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import fishopt.serve.app as app_module

    gate = threading.Event()
    real = app_module.load_served_model

    def slow_load(*args, **kwargs):
        gate.wait(20)
        return real(*args, **kwargs)

    monkeypatch.setattr(app_module, "load_served_model", slow_load)
    with running_server(onnx_artifact, wait_ready=False) as running:
        assert _json(http("GET", running.url + "/v2/health/live")) == (200, {"live": True})
        status, doc = _json(http("GET", running.url + "/v2/health/ready"))
        assert status == 503 and "loading" in doc["error"]
        assert _json(http("POST", running.url + "/v1/classify", jpeg_bytes()))[0] == 503
        assert _json(http("GET", f"{running.url}/v2/models/{NAME}"))[0] == 503
        assert "fishopt_model_ready 0.0" in http("GET", running.url + "/metrics")[2].decode()
        gate.set()
        deadline = time.monotonic() + 30
        while http("GET", running.url + "/v2/health/ready")[0] != 200:
            assert time.monotonic() < deadline
            time.sleep(0.05)
        assert _json(http("POST", running.url + "/v1/classify", jpeg_bytes()))[0] == 200


def test_drain_turns_readiness_off_but_serves(onnx_artifact: Path) -> None:
    with running_server(onnx_artifact) as running:
        running.state.begin_drain()
        status, doc = _json(http("GET", running.url + "/v2/health/ready"))
        assert status == 503 and "shutting down" in doc["error"]
        status, headers, _ = http("GET", running.url + "/v2/health/live")
        assert status == 200 and headers.get("connection") == "close"
        status, headers, body = http("POST", running.url + "/v1/classify", jpeg_bytes())
        assert status == 200 and json.loads(body)["label"]  # still served (load balancers are catching up)
        assert headers.get("connection") == "close"


def test_raw_input_static_batch_artifact(raw_artifact: Path, tiny_images: list[Path]) -> None:
    tc = pytest.importorskip("tritonclient.http")
    with running_server(raw_artifact, max_batch=8) as running:
        served = running.state.served
        client = tc.InferenceServerClient(running.hostport)
        meta = client.get_model_metadata(served.name)
        h, w = served.image_size
        assert meta["inputs"][0]["datatype"] == "UINT8" and meta["inputs"][0]["shape"] == [-1, h, w, 3]
        x = np.random.default_rng(1).integers(0, 255, (5, h, w, 3), dtype=np.uint8)  # 5 = 4 + padded 1
        inp = tc.InferInput(served.input_name, list(x.shape), "UINT8")
        inp.set_data_from_numpy(x)
        got = client.infer(served.name, [inp]).as_numpy("logits")
        np.testing.assert_allclose(
            got, np.concatenate([served.runtime(x[:4]), served.runtime(np.repeat(x[4:], 4, axis=0))[:1]]), atol=1e-5
        )
        data = tiny_images[0].read_bytes()
        status, doc = _json(http("POST", running.url + "/v1/classify", data))
        assert status == 200
        assert doc["index"] == int(_expected_probs(served, [data])[0].argmax())


def test_monitor_hook_sees_every_batch(onnx_artifact: Path) -> None:
    class Counting:
        def __init__(self) -> None:
            self.rows = 0
            self.embeddings: list = []

        def observe(self, probs, embeddings) -> None:
            assert probs.dtype == np.float32 and np.allclose(probs.sum(axis=1), 1.0, atol=1e-5)
            self.rows += len(probs)
            self.embeddings.append(embeddings)

        def snapshot(self) -> dict[str, float]:
            return {"rows_seen": float(self.rows)}

    monitor = Counting()
    with running_server(onnx_artifact, monitor=monitor) as running:
        for seed in range(3):
            assert http("POST", running.url + "/v1/classify", jpeg_bytes(seed=seed))[0] == 200
        running.state.worker.join()
        text = http("GET", running.url + "/metrics")[2].decode()
    assert monitor.rows == 3 and len(monitor.embeddings) == 3
    # the ONNX graph's second output: one embedding row per request, from the same inference
    assert all(e is not None and e.shape[0] == 1 and e.dtype == np.float32 for e in monitor.embeddings)
    assert "fishopt_monitor_rows_seen 3.0" in text


def test_a_model_or_monitor_that_cannot_load_stops_the_server(onnx_artifact: Path, tmp_path: Path) -> None:
    from fishopt.errors import CheckpointError, ConfigError
    from fishopt.serve.config import ServeConfig
    from fishopt.serve.server import run_server

    config = ServeConfig(artifact=onnx_artifact, port=0, log_level="critical", monitor="fishopt.serve.nope:make")
    with pytest.raises(ConfigError, match="cannot import monitor 'fishopt.serve.nope:make'"):
        run_server(config)
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "manifest.json").write_text((onnx_artifact / "manifest.json").read_text())
    (broken / "model.onnx").write_bytes(b"not an onnx file")
    with pytest.raises(CheckpointError, match="cannot load"):
        run_server(ServeConfig(artifact=broken, port=0, log_level="critical"))
