"""Checks of each batch at the entry of training, evaluation and prediction.

They run once per batch on the input and the labels only (one ``isfinite``
pass over the input, a min/max of the labels), never inside the layers, so
they cost nothing next to a forward pass.  Each error names where the batch
was met: the epoch, step and batch for training, the file for prediction.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..errors import DataError, DTypeError, NonFiniteError, ShapeError

__all__ = ["check_batch", "check_labels", "check_finite"]


def check_batch(x: Any, y: Any, where: str, num_classes: int | None = None) -> None:
    """Refuse an empty batch, labels that do not fit it, and NaN/Inf inputs.

    Args:
        x: the input batch (N, ...).
        y: the labels (N,) of integer classes, or None (prediction).
        where: how messages name the batch, e.g. 'Trainer: epoch 2, step 31 (batch 7)'.
        num_classes: if given, labels must lie in [0, num_classes).

    Raises:
        ShapeError: N = 0, or labels of another shape than (N,).
        DTypeError: labels that are not integers.
        DataError: a label outside [0, num_classes).
        NonFiniteError: a NaN or Inf in ``x``.
    """
    shape = tuple(np.shape(x))
    if not shape or shape[0] == 0:
        raise ShapeError(f"{where}: expected a batch of at least one sample (N, ...); "
                         f"received an input of shape {shape}")
    if y is not None:
        y = np.asarray(y)
        if y.shape != (shape[0],):
            raise ShapeError(f"{where}: expected labels ({shape[0]},), one per sample of the "
                             f"input {shape}; received {tuple(y.shape)}")
        if y.dtype.kind not in "iu":
            raise DTypeError(f"{where}: expected integer class labels; received dtype {y.dtype}")
        if num_classes is not None:
            check_labels(y, num_classes, where)
    check_finite(x, where)


def check_labels(y: np.ndarray, num_classes: int, where: str) -> None:
    """DataError naming the first label outside [0, num_classes) and its sample."""
    y = np.asarray(y)
    if y.size and (y.min() < 0 or y.max() >= num_classes):
        bad = np.flatnonzero((y < 0) | (y >= num_classes))
        raise DataError(f"{where}: label {int(y[bad[0]])} of sample {int(bad[0])} is outside "
                        f"[0, {num_classes}) (the model has {num_classes} classes); "
                        f"{len(bad)} label(s) out of range")


def check_finite(x: Any, where: str) -> None:
    """NonFiniteError naming how many values of ``x`` are NaN/Inf and where the first is."""
    x = np.asarray(x)
    if x.dtype.kind not in "fc" or np.isfinite(x).all():
        return
    bad = ~np.isfinite(x)
    first = tuple(int(i) for i in np.unravel_index(int(np.argmax(bad)), x.shape))
    raise NonFiniteError(f"{where}: expected finite input values; received {int(bad.sum())} "
                         f"NaN/Inf value(s), the first in sample {first[0]} at index {first} "
                         f"(check the data and the transforms, e.g. Normalize with a std of 0)")
