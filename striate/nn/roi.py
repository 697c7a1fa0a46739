"""RoIPool: region-of-interest max pooling, as torchvision.ops.RoIPool."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from ..errors import ConfigError, DTypeError, ShapeError
from ..functional import roi as F
from ..functional._utils import pair
from .module import Module

__all__ = ['RoIPool']


class RoIPool(Module):
    """Max-pool each region of interest of a feature map into a fixed grid (Fast R-CNN).

    Same arithmetic as torchvision.ops.roi_pool: box corners are
    round(coordinate * spatial_scale), a box covers at least one cell, bin p
    spans [floor(p*size/P), ceil((p+1)*size/P)) from the corner, clipped to the
    map; an empty bin outputs 0 and passes no gradient.

    Args:
        output_size: int or (PH, PW), the grid of each pooled region.
        spatial_scale: feature-map cells per input pixel (e.g. 1/16), > 0.

    Shape:
        features (N, C, H, W), boxes (K, 5) rows [batch_index, x1, y1, x2, y2]
        (or a list of N arrays (L_i, 4) of [x1, y1, x2, y2], box i of array b
        belonging to image b) -> (K, C, PH, PW).

    Returns:
        forward: the pooled regions; backward(dy): (dfeatures, None), boxes
        being non-differentiable.
    """

    def __init__(self, output_size: Any, spatial_scale: float) -> None:
        super().__init__()
        name = type(self).__name__
        self.output_size = pair(output_size, f"{name} output_size")
        s = spatial_scale
        if isinstance(s, bool) or not isinstance(s, (int, float, np.number)) \
                or not math.isfinite(s) or s <= 0:
            raise ConfigError(f"{name}: spatial_scale must be a positive number; "
                              f"received {spatial_scale!r}")
        self.spatial_scale = float(spatial_scale)

    def _boxes(self, boxes: Any, n: int, dtype: np.dtype) -> np.ndarray:
        """Validate the boxes (list form converted) and return a (K, 5) array of ``dtype``."""
        if isinstance(boxes, (list, tuple)):
            parts = []
            for i, b in enumerate(boxes):
                b = np.asarray(b)
                if b.ndim != 2 or b.shape[1] != 4:
                    raise ShapeError(f"{self.where()} expects boxes[{i}] (L, 4) "
                                     f"[x1, y1, x2, y2]; received {tuple(b.shape)}")
                parts.append(np.concatenate([np.full((len(b), 1), i), b], axis=1))
            boxes = np.concatenate(parts, axis=0) if parts else np.zeros((0, 5))
        boxes = np.asarray(boxes)
        if boxes.ndim != 2 or boxes.shape[1] != 5:
            raise ShapeError(f"{self.where()} expects boxes (K, 5) [batch_index, x1, y1, x2, y2]; "
                             f"received {tuple(boxes.shape)}")
        if boxes.dtype.kind not in "iuf":
            raise DTypeError(f"{self.where()} expects numeric boxes; received dtype {boxes.dtype}")
        if not np.all(np.isfinite(boxes)):
            raise ConfigError(f"{self.where()}: boxes must be finite; received NaN or inf")
        batch = boxes[:, 0]
        bad = (batch != np.floor(batch)) | (batch < 0) | (batch >= n)
        if np.any(bad):
            raise ConfigError(
                f"{self.where()}: box batch indices must be integers in [0, {n}) for {n} "
                f"feature maps; received {float(batch[bad][0]):g} in row {int(np.argmax(bad))}"
            )
        return boxes.astype(dtype)

    def forward(self, features: Any, boxes: Any) -> np.ndarray:
        x = self._float_input(features)
        self._check_ndim(x, ("N", "C", "H", "W"))
        if 0 in x.shape[2:]:
            raise ShapeError(f"{self.where()} expects a non-empty feature map; "
                             f"received {tuple(x.shape)}")
        rois = self._boxes(boxes, x.shape[0], x.dtype)
        y, cache = F.roi_pool_forward(x, rois, output_size=self.output_size,
                                      spatial_scale=self.spatial_scale)
        self._keep(cache)
        return y

    def backward(self, dy: np.ndarray) -> tuple[np.ndarray, None]:
        return F.roi_pool_backward(dy, self._take())

    def extra_repr(self) -> str:
        return f"output_size={self.output_size}, spatial_scale={self.spatial_scale}"
