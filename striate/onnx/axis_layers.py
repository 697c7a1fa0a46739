"""Layers for imported ONNX graphs that work along axes: old-opset softmax, PReLU, BatchNorm, global pooling.

ONNX's versions of these differ from torch.nn's in shape rules only: softmax
before opset 13 normalises the input flattened to 2-D, PRelu's slope
broadcasts from the right, BatchNormalization and the global pools take any
rank.  Each layer reuses striate's kernels and has an exact backward pass.
Pure NumPy: importing this module does not need the ``onnx`` package.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..errors import ConfigError, ShapeError
from ..functional import softmax as FS
from ..nn.module import Module
from ..nn.normalization import _BatchNorm
from ..nn.parameter import Parameter
from .layers import unbroadcast

__all__ = ['FlatSoftmax', 'BroadcastPReLU', 'BatchNormNd', 'GlobalPool']


class FlatSoftmax(Module):
    """Softmax (or log-softmax) of each row after flattening to 2-D at ``axis`` (ONNX opset < 13).

    Args:
        axis: the input is viewed as (prod(shape[:axis]), prod(shape[axis:])) and
            each row sums to 1.
        log: compute log-softmax instead.

    Shape:
        any -> the same shape.
    """

    def __init__(self, axis: int = 1, log: bool = False) -> None:
        super().__init__()
        if isinstance(axis, bool) or not isinstance(axis, (int, np.integer)):
            raise ConfigError(f"FlatSoftmax: axis must be an int; received {axis!r}")
        self.axis, self.log = int(axis), bool(log)

    def forward(self, x: Any) -> np.ndarray:
        x = self._float_input(x)
        if not -x.ndim <= self.axis <= x.ndim:
            raise ShapeError(f"{self.where()}: axis {self.axis} is out of range for input "
                             f"{tuple(x.shape)}")
        axis = self.axis % x.ndim if self.axis < 0 else self.axis
        rows = int(np.prod(x.shape[:axis], dtype=np.int64))
        x2 = x.reshape(rows, -1)                                      # (rows, prod(shape[axis:]))
        kernel = FS.log_softmax_forward if self.log else FS.softmax_forward
        y2, cache = kernel(x2, dim=1)
        self._keep((cache, x.shape))
        return y2.reshape(x.shape)

    def backward(self, dy: np.ndarray) -> np.ndarray:
        cache, shape = self._take()
        kernel = FS.log_softmax_backward if self.log else FS.softmax_backward
        return kernel(dy.reshape(cache.y.shape), cache).reshape(shape)  # (rows, cols) -> input

    def extra_repr(self) -> str:
        return f"axis={self.axis}, log={self.log}"


class BroadcastPReLU(Module):
    """PReLU whose slope broadcasts against the input from the right (ONNX PRelu).

    Args:
        shape: the slope's shape (e.g. (C, 1, 1) for per-channel images).
        init: the initial slope.
        dtype: parameter dtype (float32 by default).

    Shape:
        x that ``weight`` broadcasts to -> x's shape; y = x for x > 0, weight * x otherwise.
    """

    def __init__(self, shape: Any = (1,), init: float = 0.25, dtype: Any = None) -> None:
        super().__init__()
        try:
            shape = tuple(int(s) for s in shape)
        except (TypeError, ValueError):
            raise ConfigError(f"BroadcastPReLU: shape must be a tuple of ints; received {shape!r}") from None
        self.weight = Parameter(np.full(shape, init, dtype=np.dtype(dtype or np.float32)))

    def forward(self, x: Any) -> np.ndarray:
        x = self._float_input(x, self.weight.data.dtype)
        w = self.weight.data
        try:
            fits = w.ndim <= x.ndim and np.broadcast_shapes(x.shape, w.shape) == x.shape
        except ValueError:
            fits = False
        if not fits:
            raise ShapeError(f"{self.where()} expects an input the slope {tuple(w.shape)} "
                             f"broadcasts to; received {tuple(x.shape)}")
        positive = x > 0
        self._keep((x, positive))
        return np.where(positive, x, w * x)

    def backward(self, dy: np.ndarray) -> np.ndarray:
        x, positive = self._take()
        w = self.weight.data
        self.weight.accumulate(unbroadcast(np.where(positive, 0, dy * x), w.shape))
        return np.where(positive, dy, dy * w).astype(x.dtype, copy=False)

    def extra_repr(self) -> str:
        return f"shape={tuple(self.weight.shape)}"


class BatchNormNd(_BatchNorm):
    """Batch normalisation over axis 1 of (N, C, *) inputs of any rank (ONNX BatchNormalization).

    Args:
        as :class:`striate.nn.BatchNorm2d`.

    Shape:
        (N, C, *) -> the same shape; statistics over every axis but 1.
    """

    def _check_input(self, x: np.ndarray) -> None:
        if x.ndim < 2 or x.shape[1] != self.num_features:
            raise ShapeError(f"{self.where()} expects input (N, {self.num_features}, *); "
                             f"received {tuple(x.shape)}")


class GlobalPool(Module):
    """Mean or maximum over every axis after the first two (ONNX GlobalAveragePool/MaxPool).

    Args:
        kind: 'avg' or 'max' (ties: the first maximum gets the gradient).

    Shape:
        (N, C, *S) -> (N, C, 1, ..., 1).
    """

    def __init__(self, kind: str = "avg") -> None:
        super().__init__()
        if kind not in ("avg", "max"):
            raise ConfigError(f"GlobalPool: kind must be 'avg' or 'max'; received {kind!r}")
        self.kind = kind

    def forward(self, x: Any) -> np.ndarray:
        x = self._float_input(x)
        if x.ndim < 2:
            raise ShapeError(f"{self.where()} expects input (N, C, *); received {tuple(x.shape)}")
        n, c = x.shape[:2]
        flat = x.reshape(n, c, -1)                                    # (N, C, S)
        out_shape = (n, c) + (1,) * (x.ndim - 2)
        if self.kind == "avg":
            self._keep((x.shape, None))
            return flat.mean(axis=2).reshape(out_shape)
        arg = np.argmax(flat, axis=2)                                 # (N, C)
        self._keep((x.shape, arg))
        return np.take_along_axis(flat, arg[..., None], axis=2).reshape(out_shape)

    def backward(self, dy: np.ndarray) -> np.ndarray:
        shape, arg = self._take()
        n, c = shape[:2]
        size = int(np.prod(shape[2:], dtype=np.int64))
        g = dy.reshape(n, c, 1)                                       # (N, C, 1)
        if arg is None:
            return np.broadcast_to(g / size, (n, c, size)).reshape(shape).copy()
        dx = np.zeros((n, c, size), dtype=dy.dtype)                   # (N, C, S)
        np.put_along_axis(dx, arg[..., None], g, axis=2)
        return dx.reshape(shape)

    def extra_repr(self) -> str:
        return f"kind={self.kind!r}"
