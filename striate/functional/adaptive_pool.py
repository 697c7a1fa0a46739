"""Adaptive and global pooling kernels: a fixed output size whatever the input size.

Output cell i of an axis of length L pooled to O cells covers the input range
[floor(i*L/O), ceil((i+1)*L/O)), as in PyTorch; neighbouring cells may overlap.
Average pooling is two small matrix products (rows, then columns); max pooling
loops over the offsets of the largest window.  The global kernels are the fast
path for an output of 1x1.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


def adaptive_bounds(size: int, out: int) -> tuple[np.ndarray, np.ndarray]:
    """(start, end) of each of the ``out`` windows over an axis of ``size``."""
    i = np.arange(out)
    return (i * size) // out, -((-(i + 1) * size) // out)


def _avg_matrix(size: int, out: int, dtype: np.dtype) -> np.ndarray:
    """(out, size) matrix whose row i averages window i."""
    start, end = adaptive_bounds(size, out)
    pos = np.arange(size)
    inside = (pos[None, :] >= start[:, None]) & (pos[None, :] < end[:, None])
    return (inside / (end - start)[:, None]).astype(dtype)


# ---------------------------------------------------------------------------- average


@dataclass(frozen=True)
class AdaptiveAvgPool2dCache:
    """Only the input shape: the window matrices are rebuilt from it."""

    x_shape: tuple[int, int, int, int]


def adaptive_avg_pool2d_forward(x: np.ndarray, output_size: tuple[int, int]
                                ) -> tuple[np.ndarray, AdaptiveAvgPool2dCache]:
    """2-D adaptive average pooling (PyTorch's adaptive_avg_pool2d).

    Args:
        x: input (N, C, H, W).
        output_size: (OH, OW), each >= 1.

    Shape:
        (N, C, H, W) -> (N, C, OH, OW); cell (i, j) averages rows
        [floor(i*H/OH), ceil((i+1)*H/OH)) and the same for columns.

    Returns:
        (y, cache) for :func:`adaptive_avg_pool2d_backward`.
    """
    n, c, h, w = x.shape
    oh, ow = output_size
    rows = _avg_matrix(h, oh, x.dtype)                    # (OH, H)
    cols = _avg_matrix(w, ow, x.dtype)                    # (OW, W)
    y = np.matmul(np.matmul(rows, x), cols.T)             # (N, C, OH, W) -> (N, C, OH, OW)
    return y, AdaptiveAvgPool2dCache((n, c, h, w))


def adaptive_avg_pool2d_backward(dy: np.ndarray, cache: AdaptiveAvgPool2dCache) -> np.ndarray:
    """Gradient of adaptive_avg_pool2d_forward: dx (N, C, H, W)."""
    _, _, h, w = cache.x_shape
    oh, ow = dy.shape[2:]
    rows = _avg_matrix(h, oh, dy.dtype)                   # (OH, H)
    cols = _avg_matrix(w, ow, dy.dtype)                   # (OW, W)
    return np.matmul(np.matmul(rows.T, dy), cols)         # (N, C, H, OW) -> (N, C, H, W)


# ---------------------------------------------------------------------------- max


@dataclass(frozen=True)
class AdaptiveMaxPool2dCache:
    """The flat index h*W + w of each window's maximum, and the input shape."""

    indices: np.ndarray                   # (N, C, OH, OW) int64
    x_shape: tuple[int, int, int, int]


def _offset_index(start: np.ndarray, end: np.ndarray, i: int) -> np.ndarray:
    """Position start + i of each window, held at the window's last position beyond it.

    Repeating the last position never changes the first maximum: it comes after
    the original in window order and only a strictly greater value replaces.
    """
    return np.minimum(start + i, end - 1)


def adaptive_max_pool2d_forward(x: np.ndarray, output_size: tuple[int, int]
                                ) -> tuple[np.ndarray, AdaptiveMaxPool2dCache]:
    """2-D adaptive max pooling (PyTorch's adaptive_max_pool2d).

    Ties keep the first maximum in row-major window order; a NaN wins.

    Args:
        x: input (N, C, H, W).
        output_size: (OH, OW), each >= 1.

    Shape:
        (N, C, H, W) -> (N, C, OH, OW), windows as :func:`adaptive_avg_pool2d_forward`.

    Returns:
        (y, cache) for :func:`adaptive_max_pool2d_backward`; ``cache.indices``
        is PyTorch's ``return_indices`` output.
    """
    n, c, h, w = x.shape
    oh, ow = output_size
    h0, h1 = adaptive_bounds(h, oh)
    w0, w1 = adaptive_bounds(w, ow)
    best = np.full((n, c, oh, ow), -np.inf, dtype=x.dtype)
    idx = np.broadcast_to((h0 * w)[:, None] + w0[None, :], (n, c, oh, ow)).copy()
    for i in range(int(np.max(h1 - h0))):
        rows = _offset_index(h0, h1, i)                              # (OH,)
        x_rows = np.take(x, rows, axis=2)                            # (N, C, OH, W)
        for j in range(int(np.max(w1 - w0))):
            cols = _offset_index(w0, w1, j)                          # (OW,)
            v = np.take(x_rows, cols, axis=3)                        # (N, C, OH, OW)
            upd = (v > best) | np.isnan(v)
            np.copyto(best, v, where=upd)
            np.copyto(idx, rows[:, None] * w + cols[None, :], where=upd)
    return best, AdaptiveMaxPool2dCache(idx, (n, c, h, w))


def adaptive_max_pool2d_backward(dy: np.ndarray, cache: AdaptiveMaxPool2dCache) -> np.ndarray:
    """Gradient of adaptive_max_pool2d_forward: dy summed into each argmax.

    Overlapping windows can share an argmax, so the scatter is one bincount.

    Returns:
        dx (N, C, H, W).
    """
    n, c, h, w = cache.x_shape
    plane = (np.arange(n * c, dtype=np.int64) * (h * w)).reshape(n, c, 1, 1)  # (N, C, 1, 1) offsets
    flat = (cache.indices + plane).reshape(-1)                       # (N*C*OH*OW,)
    dx = np.bincount(flat, weights=dy.reshape(-1), minlength=n * c * h * w)
    return dx.astype(dy.dtype, copy=False).reshape(n, c, h, w)  # (N, C, H, W)


# ---------------------------------------------------------------------------- 1-D


def adaptive_avg_pool1d_forward(x: np.ndarray, output_size: int
                                ) -> tuple[np.ndarray, AdaptiveAvgPool2dCache]:
    """1-D adaptive average pooling over (N, C, L) -> (N, C, output_size)."""
    y, cache = adaptive_avg_pool2d_forward(x[:, :, None, :], (1, output_size))  # (N, C, 1, L)
    return y[:, :, 0, :], cache                                                 # (N, C, O)


def adaptive_avg_pool1d_backward(dy: np.ndarray, cache: AdaptiveAvgPool2dCache) -> np.ndarray:
    """Gradient of adaptive_avg_pool1d_forward: dx (N, C, L)."""
    return adaptive_avg_pool2d_backward(dy[:, :, None, :], cache)[:, :, 0, :]  # (N, C, 1, O)


def adaptive_max_pool1d_forward(x: np.ndarray, output_size: int
                                ) -> tuple[np.ndarray, AdaptiveMaxPool2dCache]:
    """1-D adaptive max pooling over (N, C, L) -> (N, C, output_size)."""
    y, cache = adaptive_max_pool2d_forward(x[:, :, None, :], (1, output_size))  # (N, C, 1, L)
    return y[:, :, 0, :], cache                                                 # (N, C, O)


def adaptive_max_pool1d_backward(dy: np.ndarray, cache: AdaptiveMaxPool2dCache) -> np.ndarray:
    """Gradient of adaptive_max_pool1d_forward: dx (N, C, L)."""
    return adaptive_max_pool2d_backward(dy[:, :, None, :], cache)[:, :, 0, :]  # (N, C, 1, O)


# ---------------------------------------------------------------------------- global


@dataclass(frozen=True)
class GlobalAvgPool2dCache:
    """Only the input shape."""

    x_shape: tuple[int, int, int, int]


def global_avg_pool2d_forward(x: np.ndarray) -> tuple[np.ndarray, GlobalAvgPool2dCache]:
    """Mean over the whole plane: adaptive_avg_pool2d to 1x1 (ONNX GlobalAveragePool).

    Shape:
        (N, C, H, W) -> (N, C, 1, 1).
    """
    return x.mean(axis=(2, 3), keepdims=True), GlobalAvgPool2dCache(x.shape)


def global_avg_pool2d_backward(dy: np.ndarray, cache: GlobalAvgPool2dCache) -> np.ndarray:
    """Gradient of global_avg_pool2d_forward: dy / (H*W) everywhere, dx (N, C, H, W)."""
    _, _, h, w = cache.x_shape
    return np.broadcast_to(dy / dy.dtype.type(h * w), cache.x_shape).copy()


@dataclass(frozen=True)
class GlobalMaxPool2dCache:
    """The flat index of each plane's maximum and the input shape."""

    indices: np.ndarray                  # (N, C) int64
    x_shape: tuple[int, int, int, int]


def global_max_pool2d_forward(x: np.ndarray) -> tuple[np.ndarray, GlobalMaxPool2dCache]:
    """Maximum over the whole plane (ONNX GlobalMaxPool); ties keep the first maximum.

    Shape:
        (N, C, H, W) -> (N, C, 1, 1).
    """
    n, c, h, w = x.shape
    flat = x.reshape(n, c, h * w)                                   # (N, C, H*W)
    idx = np.argmax(flat, axis=2)                                   # (N, C)
    y = np.take_along_axis(flat, idx[:, :, None], axis=2)           # (N, C, 1)
    return y.reshape(n, c, 1, 1), GlobalMaxPool2dCache(idx, (n, c, h, w))  # (N, C, 1, 1)


def global_max_pool2d_backward(dy: np.ndarray, cache: GlobalMaxPool2dCache) -> np.ndarray:
    """Gradient of global_max_pool2d_forward: dy at each plane's argmax, dx (N, C, H, W)."""
    n, c, h, w = cache.x_shape
    dx = np.zeros((n, c, h * w), dtype=dy.dtype)                    # (N, C, H*W)
    np.put_along_axis(dx, cache.indices[:, :, None], dy.reshape(n, c, 1), axis=2)
    return dx.reshape(n, c, h, w)                            # (N, C, H, W)
