"""Classification metrics: accuracy, top-k, per-class accuracy, confusion matrix."""

from __future__ import annotations

from typing import Any

import numpy as np

from ..errors import ShapeError


def _check(logits: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    logits, labels = np.asarray(logits), np.asarray(labels)
    if logits.ndim != 2 or labels.shape != (logits.shape[0],):
        raise ShapeError(f"metrics expect logits (N, C) and labels (N,); received "
                         f"{tuple(logits.shape)} and {tuple(labels.shape)}")
    return logits, labels


def accuracy(logits: Any, labels: Any) -> float:
    """Fraction of rows whose arg-max equals the label."""
    logits, labels = _check(logits, labels)
    return float(np.mean(logits.argmax(axis=1) == labels)) if len(labels) else 0.0


def topk_correct(logits: Any, labels: Any, k: int) -> int:
    """How many labels are among their row's k largest logits."""
    logits, labels = _check(logits, labels)
    k = min(k, logits.shape[1])
    top = np.argpartition(-logits, k - 1, axis=1)[:, :k]            # (N, k), unordered
    return int(np.sum(np.any(top == labels[:, None], axis=1)))


def topk_accuracy(logits: Any, labels: Any, k: int = 5) -> float:
    """Fraction of labels among their row's k largest logits."""
    n = len(np.asarray(labels))
    return topk_correct(logits, labels, k) / n if n else 0.0


def confusion_matrix(pred: Any, labels: Any, num_classes: int) -> np.ndarray:
    """Counts (true class, predicted class) as a (C, C) int64 matrix; rows are true classes."""
    pred, labels = np.asarray(pred, dtype=np.int64), np.asarray(labels, dtype=np.int64)
    flat = labels * num_classes + pred                              # (N,) cell index
    return np.bincount(flat, minlength=num_classes * num_classes).reshape(num_classes, num_classes)


def per_class_accuracy(cm: np.ndarray) -> np.ndarray:
    """Recall of each class from a confusion matrix (NaN for a class with no samples)."""
    totals = cm.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.diag(cm) / totals


class MetricTracker:
    """Accumulates loss, accuracy, top-k and the confusion matrix over batches.

    Args:
        num_classes: number of classes C.
        topk: the k of the top-k accuracy (reported when C > k).
    """

    def __init__(self, num_classes: int, topk: int = 5) -> None:
        self.num_classes, self.topk = int(num_classes), int(topk)
        self.loss_sum = 0.0
        self.count = 0
        self.correct = 0
        self.topk_hits = 0
        self.cm = np.zeros((num_classes, num_classes), dtype=np.int64)

    def update(self, logits: np.ndarray, labels: np.ndarray, loss: float) -> None:
        """Add one batch: its logits (N, C), labels (N,) and mean loss."""
        logits, labels = _check(logits, labels)
        n = len(labels)
        pred = logits.argmax(axis=1)
        self.loss_sum += float(loss) * n
        self.count += n
        self.correct += int(np.sum(pred == labels))
        self.topk_hits += topk_correct(logits, labels, self.topk)
        self.cm += confusion_matrix(pred, labels, self.num_classes)

    @property
    def loss(self) -> float:
        return self.loss_sum / self.count if self.count else float("nan")

    @property
    def accuracy(self) -> float:
        return self.correct / self.count if self.count else float("nan")

    def summary(self, prefix: str = "") -> dict[str, float]:
        """{prefix+'loss', prefix+'accuracy', prefix+'top5_accuracy'} as floats."""
        out = {f"{prefix}loss": self.loss, f"{prefix}accuracy": self.accuracy}
        if self.num_classes > self.topk:
            out[f"{prefix}top{self.topk}_accuracy"] = self.topk_hits / max(self.count, 1)
        return out
