"""Softmax and log-softmax along one axis, max-shifted so nothing overflows.

A pure pair ``xxx_forward(x, *, dim) -> (y, cache)`` and ``xxx_backward(dy, cache)
-> dx`` each, as the activation kernels; the output keeps the input's shape (a
0-d input is treated as a 1-vector: its softmax is 1).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class SoftmaxCache:
    """The output (softmax, or log-softmax) and the reduced axis."""

    y: np.ndarray
    dim: int


def implicit_softmax_dim(ndim: int) -> int:
    """torch's legacy rule for softmax with dim=None: 0 if ndim in (0, 1, 3) else 1."""
    return 0 if ndim in (0, 1, 3) else 1


def _vec(a: np.ndarray) -> np.ndarray:
    """A 0-d array as a 1-vector (softmax of a scalar is 1); others unchanged."""
    return a.reshape(1) if a.ndim == 0 else a                         # () -> (1,)


def _shifted(x: np.ndarray, dim: int) -> np.ndarray:
    """x - max(x) along dim."""
    xa = _vec(x)
    return xa - np.max(xa, axis=dim, keepdims=True)


def softmax_forward(x: np.ndarray, *, dim: int) -> tuple[np.ndarray, SoftmaxCache]:
    """exp(x) / sum(exp(x)) along ``dim``, max-shifted so nothing overflows.

    Args:
        x: input (a 0-d input is a 1-vector: its softmax is 1).
        dim: the axis that sums to 1 (a valid axis of x).

    Shape:
        any -> the same shape.

    Returns:
        (y, cache) for :func:`softmax_backward`.
    """
    e = np.exp(_shifted(x, dim))
    y = (e / np.sum(e, axis=dim, keepdims=True)).reshape(x.shape)     # x's shape (() stays ())
    return y, SoftmaxCache(y, dim)


def softmax_backward(dy: np.ndarray, cache: SoftmaxCache) -> np.ndarray:
    """y * (dy - sum(dy * y, dim))."""
    y, g = _vec(cache.y), _vec(dy)
    dx = y * (g - np.sum(g * y, axis=cache.dim, keepdims=True))
    return dx.reshape(cache.y.shape)                                  # y's shape


def log_softmax_forward(x: np.ndarray, *, dim: int) -> tuple[np.ndarray, SoftmaxCache]:
    """log(softmax(x)) along ``dim``, as x - max - log(sum(exp(x - max))).

    Args:
        x: input.
        dim: the reduced axis.

    Shape:
        any -> the same shape.

    Returns:
        (y, cache) for :func:`log_softmax_backward`.
    """
    s = _shifted(x, dim)
    y = (s - np.log(np.sum(np.exp(s), axis=dim, keepdims=True))).reshape(x.shape)  # x's shape
    return y, SoftmaxCache(y, dim)


def log_softmax_backward(dy: np.ndarray, cache: SoftmaxCache) -> np.ndarray:
    """dy - exp(y) * sum(dy, dim)."""
    y, g = _vec(cache.y), _vec(dy)
    dx = g - np.exp(y) * np.sum(g, axis=cache.dim, keepdims=True)
    return dx.reshape(cache.y.shape)                                  # y's shape
