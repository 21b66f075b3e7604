"""``fishopt serve --drift``: the built-in drift monitor (:class:`fishopt.monitor.ServerMonitor`) on live traffic."""

from __future__ import annotations

import shutil
import time
from pathlib import Path

from click.testing import CliRunner
from serve_helpers import http, jpeg_bytes, running_server

from fishopt.cli import main


def test_drift_without_a_profile_is_a_bad_input(onnx_artifact: Path, tmp_path: Path) -> None:
    bare = tmp_path / "onnx"
    shutil.copytree(onnx_artifact, bare)
    result = CliRunner().invoke(main, ["serve", str(bare), "--drift", "--port", "0"])
    assert result.exit_code == 2, result.output
    assert "has no drift profile" in result.output and "--make-profile" in result.output


def test_drift_and_monitor_together_are_refused(onnx_artifact: Path) -> None:
    result = CliRunner().invoke(main, ["serve", str(onnx_artifact), "--drift", "--monitor", "x:y"])
    assert result.exit_code == 2 and "pass one of them" in result.output


def test_live_drift_gauges_fill_as_requests_arrive(onnx_artifact: Path, tmp_path: Path) -> None:
    from fishopt.monitor import ServerMonitor
    from fishopt.monitor.profile import make_artifact_profile

    folder = tmp_path / "onnx"
    shutil.copytree(onnx_artifact, folder)
    make_artifact_profile(folder, threads=1)
    monitor = ServerMonitor(folder, window=20, min_interval_s=0.0)
    with running_server(folder, monitor=monitor) as running:
        before = http("GET", running.url + "/metrics")[2].decode()
        for seed in range(24):
            assert http("POST", running.url + "/v1/classify", jpeg_bytes(seed=seed))[0] == 200
        deadline = time.monotonic() + 30
        while monitor.snapshot()["drift_window_images"] < 20 and time.monotonic() < deadline:
            time.sleep(0.05)
        text = http("GET", running.url + "/metrics")[2].decode()
    assert "fishopt_monitor_drift_window_images 0.0" in before
    assert "fishopt_monitor_drift_window_images 20.0" in text
    assert "fishopt_monitor_drift_checks_total" in text and "fishopt_monitor_drift_detected" in text
    gauges = monitor.snapshot()
    assert gauges["drift_checks_total"] >= 1 and gauges["drift_detected"] in (0.0, 1.0)
    assert 0.0 <= gauges["drift_ks_softmax_p_value"] <= 1.0
    # the ONNX graph's second output feeds the MMD test from the same inference as the answers
    assert 0.0 <= gauges["drift_mmd_p_value"] <= 1.0 and gauges["drift_mmd_statistic"] == gauges["drift_mmd_statistic"]
    # the input statistics, computed in the monitor thread from the batches' model inputs
    assert 0.0 <= gauges["drift_ks_image_p_value"] <= 1.0 and gauges["drift_ks_image_statistic"] >= 0.0
