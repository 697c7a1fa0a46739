"""Metrics against hand-worked values (and torch-free definitions)."""

from __future__ import annotations

import numpy as np
import pytest

from striate.errors import ShapeError
from striate.train.metrics import (MetricTracker, accuracy, confusion_matrix, per_class_accuracy,
                                   topk_accuracy)

LOGITS = np.array([[0.1, 0.7, 0.2],     # pred 1, ranking 1 > 2 > 0
                   [0.9, 0.05, 0.05],   # pred 0
                   [0.2, 0.3, 0.5],     # pred 2, ranking 2 > 1 > 0
                   [0.4, 0.35, 0.25]])  # pred 0, ranking 0 > 1 > 2
LABELS = np.array([1, 2, 1, 2])


def test_accuracy_and_topk():
    assert accuracy(LOGITS, LABELS) == 0.25
    assert topk_accuracy(LOGITS, LABELS, k=2) == 0.5     # rows 0 and 2
    assert topk_accuracy(LOGITS, LABELS, k=3) == 1.0


def test_confusion_and_per_class():
    cm = confusion_matrix(LOGITS.argmax(1), LABELS, 3)
    # (true, pred) pairs: (1, 1), (2, 0), (1, 2), (2, 0)
    expected = np.array([[0, 0, 0],
                         [0, 1, 1],
                         [2, 0, 0]])
    np.testing.assert_array_equal(cm, expected)
    pc = per_class_accuracy(cm)
    assert np.isnan(pc[0]) and pc[1] == 0.5 and pc[2] == 0.0


def test_tracker_weights_batches_by_size():
    t = MetricTracker(3, topk=2)
    t.update(LOGITS[:1], LABELS[:1], loss=1.0)
    t.update(LOGITS[1:], LABELS[1:], loss=2.0)
    s = t.summary("val_")
    assert s["val_loss"] == pytest.approx((1.0 + 3 * 2.0) / 4)
    assert s["val_accuracy"] == 0.25 and s["val_top2_accuracy"] == 0.5
    assert t.cm.sum() == 4


def test_shape_errors():
    with pytest.raises(ShapeError, match=r"logits \(N, C\) and labels \(N,\); received \(4, 3\) and \(3,\)"):
        accuracy(LOGITS, LABELS[:3])
