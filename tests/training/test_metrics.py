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


def test_unit_report_counts_units_and_lists_the_failing_ones_worst_first() -> None:
    from fishopt.training.metrics import unit_report

    names = ["a", "b", "c"]
    targets = torch.tensor([0, 0, 0, 1, 1, 1, 2, 2])
    preds = torch.tensor([0, 0, 0, 1, 2, 2, 2, 0])
    units = ["a/c0", "a/c0", "a/c0", "b/c1", "b/c1", "b/c1", "c/c2", "c/c2"]
    rep = unit_report(preds, targets, units, names, "cluster")
    assert (rep["by"], rep["n"], rep["all_correct"], rep["majority_correct"]) == ("cluster", 3, 1, 1)
    assert [u["unit"] for u in rep["failing"]] == ["b/c1", "c/c2"]
    assert rep["failing"][0] == {
        "unit": "b/c1",
        "class": "b",
        "n": 3,
        "top1": pytest.approx(1 / 3),
        "predicted": {"c": 2},
    }
    assert rep["failing"][1]["predicted"] == {"a": 1}
