from __future__ import annotations

import pytest
import torch

from fishopt.training.metrics import classification_report, confusion_matrix


def test_confusion_and_report() -> None:
    preds = torch.tensor([0, 0, 1, 1, 2, 0])
    targets = torch.tensor([0, 0, 1, 2, 2, 1])
    cm = confusion_matrix(preds, targets, 3)
    assert cm.tolist() == [[2, 0, 0], [1, 1, 0], [0, 1, 1]]
    rep = classification_report(preds, targets, ["a", "b", "c"])
    assert rep["top1"] == pytest.approx(4 / 6)
    assert rep["per_class"] == {"a": 1.0, "b": 0.5, "c": 0.5}
    f1 = [2 * (2 / 3) * 1 / (2 / 3 + 1), 0.5, 2 * 1 * 0.5 / 1.5]
    assert rep["macro_f1"] == pytest.approx(sum(f1) / 3)


def test_absent_class_excluded() -> None:
    rep = classification_report(torch.tensor([0, 1]), torch.tensor([0, 1]), ["a", "b", "c"])
    assert rep["per_class"]["c"] is None and rep["macro_f1"] == 1.0
