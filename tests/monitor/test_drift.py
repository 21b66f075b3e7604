"""DriftDetector and ServerMonitor on synthetic outputs with known distributions."""

from __future__ import annotations

import json
import math
import threading

import numpy as np
import pytest

from fishopt.errors import ConfigError, DataError
from fishopt.monitor import ServerMonitor
from fishopt.monitor.drift import DriftDetector
from fishopt.monitor.profile import DriftProfile
from fishopt.monitor.stats import softmax

C, D = 4, 24
CLASSES = [f"class{i}" for i in range(C)]


def outputs(rng: np.random.Generator, n: int, shift: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
    """Softmax outputs and low-rank embeddings; ``shift`` moves class 0's logit and the embeddings' first factor."""
    labels = rng.integers(0, C, n)
    logits = rng.normal(size=(n, C)) + 2.0 * np.eye(C)[labels]
    logits[:, 0] += shift
    factors = rng.normal(size=(n, 4)) + np.eye(4)[labels % 4]
    factors[:, 0] += shift
    emb = factors @ np.random.default_rng(99).normal(size=(4, D)) + 0.3 * rng.normal(size=(n, D))
    return softmax(logits), emb


@pytest.fixture(scope="module")
def profile() -> DriftProfile:
    probs, emb = outputs(np.random.default_rng(0), 400)
    return DriftProfile.build(probs, CLASSES, emb, labels=probs.argmax(1), n_components=8)


@pytest.fixture(scope="module")
def detector(profile: DriftProfile) -> DriftDetector:
    return DriftDetector(profile, window=150, n_bootstrap=300, n_permutations=100)


def test_clean_windows_rarely_flagged_shifted_always(detector: DriftDetector) -> None:
    rng = np.random.default_rng(1)
    flags = []
    for _ in range(30):
        detector.reset()
        detector.update(*outputs(rng, 150))
        flags.append(detector.check().drift)
    assert sum(flags) <= 4  # alpha = 0.05 of 30 windows, with slack for the finite calibration
    detector.reset()
    detector.update(*outputs(rng, 150, shift=1.5))
    report = detector.check()
    assert report.drift and report.ready and report.n == 150
    assert set(report.tests) == {"ks_softmax", "ks_entropy", "mean_entropy", "mmd"}
    assert "no input statistics" in report.skipped["ks_image"]
    assert report.tests["mmd"].drift and report.tests["ks_softmax"].drift
    assert report.tests["ks_softmax"].details["worst_class"] == "class0"
    assert report.tests["mmd"].p_value == pytest.approx(1 / 101)
    for test in report.tests.values():
        assert (test.statistic > test.threshold) == test.drift
    json.dumps(report.to_dict())  # plain JSON types


def test_window_is_sliding_and_reports_not_ready_until_full(profile: DriftProfile) -> None:
    det = DriftDetector(profile, window=40, n_bootstrap=100, n_permutations=20)
    rng = np.random.default_rng(2)
    clean, shifted = outputs(rng, 30), outputs(rng, 60, shift=3.0)
    det.update(*clean)
    report = det.check()
    assert not report.ready and not report.drift and report.n == 30 and not report.tests
    det.update(clean[0][:5], clean[1][:5])
    det.update(clean[0][:5], clean[1][:5])
    assert det.n == 40 and det.check().ready
    det.update(*shifted)  # more than the window: only its last 40 rows stay
    probs, emb = det.window_outputs()
    assert len(probs) == 40
    np.testing.assert_allclose(np.sort(probs, axis=0), np.sort(shifted[0][-40:], axis=0))
    assert emb is not None and emb.shape == (40, profile.pca_components.shape[0])
    assert det.check().drift


def test_mmd_skipped_without_embeddings(profile: DriftProfile) -> None:
    no_emb = DriftProfile.build(profile.probs, CLASSES, labels=profile.labels)
    det = DriftDetector(no_emb, window=50, n_bootstrap=100)
    det.update(outputs(np.random.default_rng(3), 50)[0])
    report = det.check()
    assert set(report.tests) == {"ks_softmax", "ks_entropy", "mean_entropy"}
    assert "no embeddings" in report.skipped["mmd"]
    det = DriftDetector(profile, window=50, n_bootstrap=100)
    probs, emb = outputs(np.random.default_rng(4), 50)
    det.update(probs[:25], emb[:25])
    det.update(probs[25:])  # half the window came without embeddings
    assert "window has no embeddings" in det.check().skipped["mmd"]


def test_update_rejects_bad_input(detector: DriftDetector) -> None:
    probs, emb = outputs(np.random.default_rng(5), 10)
    with pytest.raises(DataError, match="softmax probabilities"):
        detector.update(np.log(probs))
    with pytest.raises(DataError, match=r"shape \(N, 4\)"):
        detector.update(probs[:, :3])
    with pytest.raises(DataError, match="NaN"):
        detector.update(np.full_like(probs, np.nan))
    with pytest.raises(DataError, match="dimensions"):
        detector.update(probs, emb[:, :5])
    with pytest.raises(DataError, match="rows"):
        detector.update(probs, emb[:3])


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"window": 5}, "window must be at least 20"),
        ({"alpha": 1.5}, "alpha must be in"),
        ({"n_bootstrap": 10}, "n_bootstrap must be at least 100"),
    ],
)
def test_bad_settings(profile: DriftProfile, kwargs: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        DriftDetector(profile, **kwargs)


def test_server_monitor_snapshot(profile: DriftProfile) -> None:
    monitor = ServerMonitor(profile, window=60, min_interval_s=0.0)
    snap = monitor.snapshot()
    assert snap["drift_detected"] == 0.0 and math.isnan(snap["drift_mmd_p_value"]) and snap["drift_window_size"] == 60
    rng = np.random.default_rng(6)
    errors: list[Exception] = []

    def feed() -> None:  # the request path keeps observing while snapshots run
        try:
            for _ in range(30):
                monitor.observe(*outputs(rng, 4))
        except Exception as exc:  # noqa: BLE001 - reported by the assertion below
            errors.append(exc)

    thread = threading.Thread(target=feed)
    thread.start()
    while thread.is_alive():
        monitor.snapshot()
    thread.join()
    assert not errors
    snap = monitor.snapshot()
    assert snap["drift_observed_total"] == 120 and snap["drift_window_images"] == 60
    assert snap["drift_checks_total"] >= 1 and 0 < snap["drift_ks_entropy_p_calibrated"] <= 1
    assert all(isinstance(v, float) for v in snap.values())
    assert set(snap) >= {
        f"drift_{t}_{k}"
        for t in ("ks_softmax", "ks_entropy", "mean_entropy", "mmd", "ks_image")
        for k in ("statistic", "p_value", "p_calibrated")
    }
    for _ in range(3):
        monitor.observe(*outputs(rng, 20, shift=3.0))
    assert monitor.snapshot()["drift_detected"] == 1.0
    checks = monitor.snapshot()["drift_checks_total"]
    assert monitor.snapshot()["drift_checks_total"] == checks  # nothing new observed: no new check


def image_stats(rng: np.random.Generator, n: int, sharpness_shift: float = 0.0) -> np.ndarray:
    """Synthetic input statistics (N, 6); ``sharpness_shift`` moves the ``sharpness`` column only."""
    from fishopt.monitor.imagestats import IMAGE_STATS

    out = rng.normal(loc=10.0, size=(n, len(IMAGE_STATS)))
    out[:, IMAGE_STATS.index("sharpness")] += sharpness_shift
    return out


def test_ks_image_sees_a_shift_of_the_pixels_the_outputs_do_not_show(profile: DriftProfile) -> None:
    rng = np.random.default_rng(7)
    with_stats = DriftProfile.build(
        profile.probs,
        CLASSES,
        profile.embeddings,
        labels=profile.labels,
        n_components=8,
        image_stats=image_stats(rng, 400),
    )
    det = DriftDetector(with_stats, window=150, n_bootstrap=200, n_permutations=50)
    probs, emb = outputs(rng, 150)
    det.update(probs, emb, image_stats(rng, 150))
    clean = det.check()
    assert set(clean.tests) == {"ks_softmax", "ks_entropy", "mean_entropy", "mmd", "ks_image"} and not clean.skipped
    det.reset()
    det.update(probs, emb, image_stats(rng, 150, sharpness_shift=-1.0))  # same outputs, blurred images
    report = det.check()
    assert report.drift and report.tests["ks_image"].drift
    assert report.tests["ks_image"].details["worst_statistic"] == "sharpness"
    assert (
        not report.tests["ks_softmax"].drift
        and report.tests["ks_image"].p_calibrated < clean.tests["ks_image"].p_calibrated
    )
    det.reset()
    det.update(probs[:100], emb[:100], image_stats(rng, 100))
    det.update(probs[100:], emb[100:])  # part of the window came without statistics (a tensor request)
    assert "window has no input statistics" in det.check().skipped["ks_image"]
    with pytest.raises(DataError, match="image statistics must be finite"):
        det.update(probs[:3], emb[:3], image_stats(rng, 2))
    with pytest.raises(DataError, match="image statistics must be finite"):
        DriftProfile.build(profile.probs, CLASSES, image_stats=np.zeros((400, 2)))
