"""Region-of-interest max pooling (Fast R-CNN's RoIPool, torchvision.ops.roi_pool).

Each box [batch_index, x1, y1, x2, y2] (input-image coordinates) is scaled by
``spatial_scale``, rounded to feature-map cells, split into a grid of
output_size bins and max-pooled bin by bin, with the arithmetic of
torchvision's CPU kernel (same rounding, bin edges, clipping, empty bins).
The loop runs over offsets inside the largest bin, never over boxes or pixels.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

_FLT_MAX = float(np.finfo(np.float32).max)   # torchvision starts each bin at -FLT_MAX


@dataclass(frozen=True)
class RoIPoolCache:
    """The flat index h*W + w of each bin's maximum (-1: empty bin) and where it lives."""

    argmax: np.ndarray                       # (K, C, PH, PW) int64
    batch: np.ndarray                        # (K,) int64
    x_shape: tuple[int, int, int, int]


def c_round(v: np.ndarray) -> np.ndarray:
    """C's round(): halves go away from zero (NumPy's np.round goes to even)."""
    t = np.trunc(v)
    frac = v - t                              # exact in floating point
    return t + np.where(np.abs(frac) >= 0.5, np.sign(v), 0)


def _bins(start: np.ndarray, end: np.ndarray, pooled: int, size: int, dtype: np.dtype
          ) -> tuple[np.ndarray, np.ndarray]:
    """Bin edges [lo, hi) of every box along one axis, clipped to [0, size].

    Shape:
        start, end (K,) -> lo, hi (K, pooled).
    """
    length = np.maximum(end - start + 1, 1)                         # malformed boxes -> 1 cell
    bin_size = length.astype(dtype) / dtype.type(pooled)            # (K,)
    p = np.arange(pooled).astype(dtype)
    lo = np.floor(p[None, :] * bin_size[:, None]).astype(np.int64) + start[:, None]
    hi = np.ceil((p[None, :] + 1) * bin_size[:, None]).astype(np.int64) + start[:, None]
    return np.clip(lo, 0, size), np.clip(hi, 0, size)


def roi_pool_forward(x: np.ndarray, boxes: np.ndarray, *, output_size: tuple[int, int],
                     spatial_scale: float = 1.0) -> tuple[np.ndarray, RoIPoolCache]:
    """Max-pool each box of ``boxes`` into an output_size grid.

    Box corners are round(coordinate * spatial_scale) (halves away from zero);
    a box covers (x2 - x1 + 1) cells (at least 1); bin p spans
    [floor(p * size/P), ceil((p+1) * size/P)) + corner, clipped to the map.  An
    empty bin outputs 0 and passes no gradient; ties keep the first maximum.

    Args:
        x: features (N, C, H, W).
        boxes: (K, 5) rows [batch_index, x1, y1, x2, y2]; batch indices valid.
        output_size: (PH, PW).
        spatial_scale: feature-map cells per input pixel (1/16 for a stride-16 map).

    Shape:
        (N, C, H, W), (K, 5) -> (K, C, PH, PW).

    Returns:
        (y, cache) for :func:`roi_pool_backward`.
    """
    n, c, h, w = x.shape
    ph, pw = output_size
    k = boxes.shape[0]
    b = boxes.astype(x.dtype)
    batch = b[:, 0].astype(np.int64)
    corners = c_round(b[:, 1:] * x.dtype.type(spatial_scale)).astype(np.int64)  # (K, 4)
    h0, h1 = _bins(corners[:, 1], corners[:, 3], ph, h, x.dtype)    # (K, PH)
    w0, w1 = _bins(corners[:, 0], corners[:, 2], pw, w, x.dtype)    # (K, PW)
    empty = (h1 <= h0)[:, :, None] | (w1 <= w0)[:, None, :]          # (K, PH, PW)
    xt = np.ascontiguousarray(x.transpose(0, 2, 3, 1))               # (N, H, W, C)
    best = np.broadcast_to(np.where(empty, 0.0, -_FLT_MAX).astype(x.dtype)[..., None],
                           (k, ph, pw, c)).copy()                    # (K, PH, PW, C)
    argmax = np.full((k, ph, pw, c), -1, dtype=np.int64)
    for i in range(int(np.max(h1 - h0, initial=0))):
        rows = h0 + i                                                # (K, PH)
        rows_ok = rows < h1
        rows = np.minimum(rows, h - 1)
        for j in range(int(np.max(w1 - w0, initial=0))):
            cols = w0 + j                                            # (K, PW)
            ok = rows_ok[:, :, None] & (cols < w1)[:, None, :]       # (K, PH, PW)
            cols = np.minimum(cols, w - 1)
            v = xt[batch[:, None, None], rows[:, :, None], cols[:, None, :]]  # (K, PH, PW, C)
            upd = ok[..., None] & (v > best)
            np.copyto(best, v, where=upd)
            flat = rows[:, :, None] * w + cols[:, None, :]           # (K, PH, PW)
            np.copyto(argmax, flat[..., None], where=upd)
    best = np.ascontiguousarray(best.transpose(0, 3, 1, 2))          # (K, C, PH, PW)
    argmax = np.ascontiguousarray(argmax.transpose(0, 3, 1, 2))      # (K, C, PH, PW)
    return best, RoIPoolCache(argmax, batch, (n, c, h, w))


def roi_pool_backward(dy: np.ndarray, cache: RoIPoolCache) -> tuple[np.ndarray, None]:
    """Gradient of roi_pool_forward: each bin's dy summed into its argmax.

    Args:
        dy: upstream gradient (K, C, PH, PW).

    Returns:
        (dx (N, C, H, W), None): boxes get no gradient.
    """
    n, c, h, w = cache.x_shape
    plane = ((cache.batch[:, None] * c + np.arange(c)[None, :]) * (h * w))  # (K, C)
    keep = cache.argmax >= 0
    flat = (cache.argmax + plane[:, :, None, None])[keep]
    dx = np.bincount(flat, weights=dy[keep], minlength=n * c * h * w)
    return dx.astype(dy.dtype, copy=False).reshape(n, c, h, w), None  # (N, C, H, W)
