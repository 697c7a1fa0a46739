"""Plain-text views: the confusion matrix as a table."""

from __future__ import annotations

from typing import Sequence

import numpy as np


def confusion_text(cm: np.ndarray, classes: Sequence[str] | None = None, width: int = 11) -> str:
    """A confusion matrix as a fixed-width table: rows true classes, columns predictions.

    Args:
        cm: (C, C) counts, rows = true class.
        classes: class names (default 0..C-1); shortened to ``width`` characters.
        width: column width.

    Returns:
        The table, with each class's accuracy (recall) in the last column.
    """
    cm = np.asarray(cm)
    c = cm.shape[0]
    names = [str(n)[:width] for n in (classes if classes is not None else range(c))]
    cw = max(len(str(int(cm.max()))) if cm.size else 1, 5)
    head = " " * (width + 3) + " ".join(f"{i:>{cw}}" for i in range(c)) + "  accuracy"
    lines = ["true \\ predicted", head]
    totals = cm.sum(axis=1)
    for i in range(c):
        acc = cm[i, i] / totals[i] if totals[i] else float("nan")
        cells = " ".join(f"{int(v):>{cw}}" for v in cm[i])
        lines.append(f"{i:>2} {names[i]:<{width - 1}} {cells}  {acc:8.4f}")
    return "\n".join(lines)
