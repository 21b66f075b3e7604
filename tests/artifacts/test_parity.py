"""The parity rules, on synthetic logits."""

from __future__ import annotations

import numpy as np
import pytest

from fishopt.artifacts.parity import compare

REF = np.array([[3.0, 0.0, 0.0], [0.0, 3.0, 0.0], [0.0, 0.0, 3.0], [3.0, 0.0, 0.0]] * 25, dtype=np.float32)
LABELS = REF.argmax(1)


def test_exact_rule() -> None:
    ok = compare(REF, REF + 5e-4, LABELS, precision="fp32", rule="exact", atol=1e-3)
    assert ok.passed and ok.top1_agreement == 1.0 and ok.max_abs_diff == pytest.approx(5e-4, rel=1e-3)
    assert not compare(REF, REF + 2e-3, LABELS, precision="fp32", rule="exact", atol=1e-3).passed
    nan = REF.copy()
    nan[0, 0] = np.nan
    assert not compare(REF, nan, LABELS, precision="fp32", rule="exact", atol=1e-3).passed


def test_agreement_rule() -> None:
    out = REF + 0.5
    flipped = out.copy()
    flipped[:2] = np.roll(out[:2], 1, axis=1)  # 2 % disagree with the reference
    labels = LABELS.copy()
    labels[:2] = [2, 0]  # ... on images both get wrong: agreement 98 %, same accuracy -> pass
    rep = compare(REF, flipped, labels, precision="int8", rule="agreement", atol=None)
    assert rep.passed and rep.top1_agreement == pytest.approx(0.98) and rep.accuracy == rep.reference_accuracy
    accuracy_drop = compare(REF, flipped, LABELS, precision="int8", rule="agreement", atol=None)
    assert not accuracy_drop.passed and accuracy_drop.accuracy == pytest.approx(0.98)  # 2 points below
    flipped[:3] = np.roll(out[:3], 1, axis=1)
    assert not compare(REF, flipped, labels, precision="int8", rule="agreement", atol=None).passed  # 97 %


def test_shape_mismatch() -> None:
    from fishopt.errors import ParityError

    with pytest.raises(ParityError, match="shape"):
        compare(REF, REF[:, :2], LABELS, precision="fp32", rule="exact", atol=1e-3)
