"""Metric names, units and labels; the model-health metrics; the monitor hook and its worker thread."""

from __future__ import annotations

import threading

import numpy as np
import pytest

pytest.importorskip("prometheus_client")

from fishopt.serve.load import histogram_delta, parse_metrics
from fishopt.serve.metrics import ENDPOINTS, REASONS, SECONDS_BUCKETS, ServerMetrics
from fishopt.serve.monitor import Monitor, MonitorWorker, NullMonitor, load_monitor

EXPECTED = {
    "fishopt_requests_total": "counter",
    "fishopt_request_failures_total": "counter",
    "fishopt_inferences_total": "counter",
    "fishopt_batch_executions_total": "counter",
    "fishopt_batch_failures_total": "counter",
    "fishopt_request_duration_seconds": "histogram",
    "fishopt_queue_duration_seconds": "histogram",
    "fishopt_preprocess_duration_seconds": "histogram",
    "fishopt_compute_duration_seconds": "histogram",
    "fishopt_batch_size": "histogram",
    "fishopt_pending_requests": "gauge",
    "fishopt_inflight_requests": "gauge",
    "fishopt_model_ready": "gauge",
    "fishopt_build_info": "gauge",
    "fishopt_predictions_total": "counter",
    "fishopt_prediction_confidence_ratio": "histogram",
    "fishopt_prediction_entropy_ratio": "histogram",
    "fishopt_monitor_dropped_batches_total": "counter",
    "fishopt_monitor_errors_total": "counter",
    "process_resident_memory_bytes": "gauge",
}


def _types(text: str) -> dict[str, str]:
    out = {}
    for line in text.splitlines():
        if line.startswith("# TYPE "):
            _, _, name, kind = line.split()
            out[name] = kind
    return out


def _metrics() -> ServerMetrics:
    m = ServerMetrics()
    m.set_model(
        model="m",
        version="abc",
        format="onnx-fp32",
        precision="fp32",
        runtime="onnxruntime",
        class_names=["Alpha Fish", "Beta Fish", "Gamma Fish"],
    )
    return m


def test_names_types_and_bounded_labels() -> None:
    m = _metrics()
    m.bind_gauges(lambda: 3, lambda: 5)
    text = m.render()[0].decode()
    types = _types(text)
    for name, kind in EXPECTED.items():
        family = name.removesuffix("_total") if kind == "counter" else name.removesuffix("_info")
        assert types.get(family) == kind or types.get(name) == kind, f"{name} missing or not a {kind}"
    assert "_created" not in text
    assert "fishopt_pending_requests 3.0" in text and "fishopt_inflight_requests 5.0" in text
    assert 'fishopt_predictions_total{class="Beta Fish"} 0.0' in text
    info = next(line for line in text.splitlines() if line.startswith("fishopt_build_info{"))
    for label in (
        "fishopt_version=",
        'model="m"',
        'model_version="abc"',
        'format="onnx-fp32"',
        'precision="fp32"',
        "isa=",
        "arch=",
    ):
        assert label in info
    failure_labels = {
        line.split("{")[1].split("}")[0]
        for line in text.splitlines()
        if line.startswith("fishopt_request_failures_total{")
    }
    assert failure_labels == {f'endpoint="{e}",reason="{r}"' for e in ("infer", "classify") for r in REASONS}
    assert set(ENDPOINTS) >= {"infer", "classify", "health", "metadata", "metrics", "other"}


def test_latency_buckets_resolve_sub_millisecond_models() -> None:
    sub_ms = [b for b in SECONDS_BUCKETS if b < 1e-3]
    assert len(sub_ms) >= 6 and min(SECONDS_BUCKETS) <= 1e-4 and max(SECONDS_BUCKETS) >= 10


def test_model_health_metrics() -> None:
    m = _metrics()
    probs = np.array([[0.9, 0.05, 0.05], [1 / 3, 1 / 3, 1 / 3], [0.1, 0.8, 0.1]], dtype=np.float32)
    m.observe_predictions(probs)
    parsed = parse_metrics(m.render()[0].decode())
    values = parsed["values"]
    assert values['fishopt_predictions_total{class="Alpha Fish"}'] == 2  # argmax of the uniform row is 0
    assert values['fishopt_predictions_total{class="Beta Fish"}'] == 1
    conf = parsed["histograms"]["fishopt_prediction_confidence_ratio"]
    assert conf["count"] == 3 and conf["sum"] == pytest.approx(0.9 + 1 / 3 + 0.8, abs=1e-5)
    ent = parsed["histograms"]["fishopt_prediction_entropy_ratio"]
    assert ent["count"] == 3
    assert dict(ent["buckets"])[0.3] == 0 and dict(ent["buckets"])[0.4] == 1  # [0.9, 0.05, 0.05]: 0.359
    assert dict(ent["buckets"])[0.6] == 2  # [0.1, 0.8, 0.1]: 0.581; the uniform row: 1.0
    assert dict(ent["buckets"])[1.0] == 3


def test_histogram_delta_quantiles() -> None:
    m = _metrics()
    before = parse_metrics(m.render()[0].decode())
    for v in [0.0004] * 90 + [0.02] * 10:
        m.compute_seconds.observe(v)
    after = parse_metrics(m.render()[0].decode())
    d = histogram_delta(before, after, "fishopt_compute_duration_seconds")
    assert d["count"] == 100 and d["mean"] == pytest.approx(0.00236)
    assert 3e-4 < d["p50"] <= 4e-4 and 1.5e-2 < d["p99"] <= 2e-2


class Recording:
    def __init__(self) -> None:
        self.seen: list[tuple[tuple[int, ...], object]] = []
        self.lock = threading.Lock()

    def observe(self, probs, embeddings) -> None:
        with self.lock:
            self.seen.append((probs.shape, embeddings))

    def snapshot(self) -> dict[str, float]:
        return {"psi max": 0.25, "KL": 1.5, "not-a-number": "x"}


class Broken:
    def observe(self, probs, embeddings) -> None:
        raise RuntimeError("bug in the monitor")

    def snapshot(self) -> dict[str, float]:
        raise RuntimeError("bug in the monitor")


def test_monitor_receives_batches_off_the_request_path_and_exports_gauges() -> None:
    m = _metrics()
    mon = Recording()
    assert isinstance(mon, Monitor) and isinstance(NullMonitor(), Monitor)
    m.add_monitor(mon)
    worker = MonitorWorker(mon, m)
    worker.start()
    worker.submit(np.full((4, 3), 1 / 3, dtype=np.float32), None)
    worker.join()
    worker.stop()
    assert mon.seen == [((4, 3), None)]
    text = m.render()[0].decode()
    assert "fishopt_monitor_psi_max 0.25" in text and "fishopt_monitor_kl 1.5" in text
    assert "not_a_number" not in text
    assert 'fishopt_predictions_total{class="Alpha Fish"} 4.0' in text


def test_a_broken_monitor_is_counted_not_fatal() -> None:
    m = _metrics()
    m.add_monitor(Broken())
    worker = MonitorWorker(Broken(), m)
    worker.start()
    worker.submit(np.eye(3, dtype=np.float32), None)
    worker.join()
    text = m.render()[0].decode()
    worker.stop()
    assert 'fishopt_predictions_total{class="Gamma Fish"} 1.0' in text  # health metrics still updated
    assert "fishopt_monitor_" not in text.replace("fishopt_monitor_errors", "").replace("fishopt_monitor_dropped", "")
    again = m.render()[0].decode()  # the failed snapshot of the first scrape is counted by now
    assert parse_metrics(again)["values"]["fishopt_monitor_errors_total"] == 2  # observe + the first snapshot


def test_full_monitor_queue_drops_and_counts() -> None:
    m = _metrics()
    gate = threading.Event()

    class Slow(NullMonitor):
        def observe(self, probs, embeddings) -> None:
            gate.wait(10)

    worker = MonitorWorker(Slow(), m, maxsize=2)
    worker.start()
    results = [worker.submit(np.eye(3, dtype=np.float32), None) for _ in range(6)]
    gate.set()
    worker.stop()
    assert results.count(False) >= 3
    assert parse_metrics(m.render()[0].decode())["values"]["fishopt_monitor_dropped_batches_total"] == results.count(
        False
    )


def test_load_monitor_from_a_reference(monkeypatch: pytest.MonkeyPatch) -> None:
    import sys
    import types

    from fishopt.errors import ConfigError

    module = types.ModuleType("fake_drift")
    module.make = lambda meta: Recording() if meta["class_names"] else None
    module.wrong = lambda meta: object()
    monkeypatch.setitem(sys.modules, "fake_drift", module)
    assert isinstance(load_monitor("fake_drift:make", {"class_names": ["a"]}), Recording)
    with pytest.raises(ConfigError, match="cannot import monitor"):
        load_monitor("fishopt.serve.nope:Factory", {})
    with pytest.raises(ConfigError, match="cannot import monitor"):
        load_monitor("fake_drift:missing", {})
    with pytest.raises(ConfigError, match="lacks observe"):
        load_monitor("fake_drift:wrong", {})
    with pytest.raises(ConfigError, match="failed: KeyError"):
        load_monitor("fake_drift:make", {})
    assert isinstance(load_monitor("fishopt.serve.monitor:NullMonitor", {"class_names": []}), NullMonitor)
