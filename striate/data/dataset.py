"""In-memory data sets: images and integer labels held as two NumPy arrays."""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from ..errors import DataError, DTypeError, ShapeError

__all__ = ["ArrayDataset"]


class ArrayDataset:
    """A data set of images (or any samples) and integer labels, indexed together.

    Args:
        images: array (N, C, H, W) of uint8 or floating values (any rank >= 2 is accepted:
            N samples of any shape).
        labels: N integer class indices in ``[0, len(classes))``.
        classes: the class names; default ``'0'``, ``'1'``, ... up to the largest label.

    Shape:
        images: (N, C, H, W); labels: (N,) int64.
        ``dataset[i]`` -> (image (C, H, W), int label); ``dataset[index array or slice]``
        -> (images (B, C, H, W), labels (B,)).

    Returns:
        The data set; ``.images``, ``.labels`` (int64), ``.classes`` (list of str).
    """

    def __init__(self, images: Any, labels: Any, classes: Sequence[str] | None = None) -> None:
        name = type(self).__name__
        x, y = np.asarray(images), np.asarray(labels)
        if x.ndim < 2:
            raise ShapeError(f"{name} expects images (N, C, H, W); received {tuple(x.shape)}")
        if x.dtype.kind not in "uif":
            raise DTypeError(f"{name} expects uint8/integer or floating images; received {x.dtype}")
        if y.ndim != 1 or len(y) != len(x):
            raise ShapeError(f"{name} expects labels ({len(x)},) to match images {tuple(x.shape)}; "
                             f"received {tuple(y.shape)}")
        if y.dtype.kind not in "iu" and not (y.size == 0 and y.dtype.kind == "f"):
            raise DTypeError(f"{name} expects integer labels; received {y.dtype}")
        y = y.astype(np.int64, copy=False)
        if classes is None:
            classes = [str(c) for c in range(int(y.max()) + 1 if y.size else 0)]
        classes = [str(c) for c in classes]
        if y.size and (y.min() < 0 or y.max() >= len(classes)):
            raise DataError(f"{name}: labels must lie in [0, {len(classes)}) for {len(classes)} "
                            f"classes; received values from {y.min()} to {y.max()}")
        self.images, self.labels, self.classes = x, y, classes

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, index: Any) -> tuple[np.ndarray, Any]:
        if isinstance(index, (int, np.integer)):
            return self.images[index], int(self.labels[index])
        return self.images[index], self.labels[index]

    def __repr__(self) -> str:
        return (f"{type(self).__name__}({len(self)} images {tuple(self.images.shape[1:])} "
                f"{self.images.dtype}, {len(self.classes)} classes)")
