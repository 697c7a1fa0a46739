"""Merge layers: modules that combine several inputs into one (Concat, Add, Mul).

They are the joins of a :class:`striate.nn.Graph` (residual sums, Inception and
DenseNet concatenations, gates).  Convention of every multi-input module:
``y = layer(x0, x1, ...)`` and ``layer.backward(dy)`` returns a tuple with one
gradient per input, in the order of the inputs.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..errors import ConfigError, ShapeError
from .module import Module

__all__ = ['Concat', 'Add', 'Mul']


class _Merge(Module):
    """Shared input handling of the merge layers: at least one floating array."""

    _min_inputs = 1

    def _inputs(self, xs: tuple) -> list[np.ndarray]:
        if len(xs) < self._min_inputs:
            raise ShapeError(
                f"{self.where()} expects at least {self._min_inputs} input arrays; "
                f"received {len(xs)}"
            )
        return [self._float_input(x) for x in xs]

    def _same_shapes(self, xs: list[np.ndarray]) -> None:
        """Refuse inputs whose shapes differ (no broadcasting), naming both shapes."""
        first = xs[0].shape
        for i, x in enumerate(xs[1:], start=1):
            if x.shape != first:
                raise ShapeError(
                    f"{self.where()} expects inputs of the same shape; received input 0 of "
                    f"shape {tuple(first)} and input {i} of shape {tuple(x.shape)}"
                )


class Concat(_Merge):
    """Concatenate the inputs along one axis (torch.cat).

    Args:
        dim: the axis to join along (negative counts from the end); 1 is the
            channel axis of (N, C, H, W).

    Shape:
        inputs (N, C_i, H, W) -> (N, sum_i C_i, H, W) for dim=1; all other axes
        must agree.

    Returns:
        From ``backward(dy)``: a tuple of the slices of ``dy`` that belong to
        each input.
    """

    def __init__(self, dim: int = 1) -> None:
        super().__init__()
        if isinstance(dim, bool) or not isinstance(dim, (int, np.integer)):
            raise ConfigError(f"Concat: dim must be an int; received {dim!r}")
        self.dim = int(dim)

    def forward(self, *xs: Any) -> np.ndarray:
        xs_ = self._inputs(xs)
        nd = xs_[0].ndim
        if not -nd <= self.dim < nd:
            raise ShapeError(
                f"{self.where()}: dim {self.dim} is out of range for inputs of "
                f"{nd} dimensions; received shape {tuple(xs_[0].shape)}"
            )
        axis = self.dim % nd
        ref = xs_[0].shape
        for i, x in enumerate(xs_[1:], start=1):
            if x.ndim != nd or any(x.shape[a] != ref[a] for a in range(nd) if a != axis):
                raise ShapeError(
                    f"{self.where()} expects inputs that agree on every axis but {axis}; "
                    f"received input 0 of shape {tuple(ref)} and input {i} of shape {tuple(x.shape)}"
                )
        sizes = [x.shape[axis] for x in xs_]
        self._keep((axis, sizes, [x.dtype for x in xs_]))
        return np.concatenate(xs_, axis=axis)

    def backward(self, dy: np.ndarray) -> tuple[np.ndarray, ...]:
        axis, sizes, dtypes = self._take()
        bounds = np.cumsum([0] + sizes)
        grads = []
        for lo, hi, dt in zip(bounds[:-1], bounds[1:], dtypes):
            index = [slice(None)] * dy.ndim
            index[axis] = slice(int(lo), int(hi))
            grads.append(np.ascontiguousarray(dy[tuple(index)], dtype=dt))
        return tuple(grads)

    def extra_repr(self) -> str:
        return f"dim={self.dim}"


class Add(_Merge):
    """Elementwise sum of any number of inputs of the same shape (a residual join).

    Shape:
        k inputs of shape S -> S (no broadcasting).

    Returns:
        From ``backward(dy)``: (dy, dy, ...), one per input (separate arrays,
        so a consumer that edits its gradient in place cannot corrupt another).
    """

    def forward(self, *xs: Any) -> np.ndarray:
        xs_ = self._inputs(xs)
        self._same_shapes(xs_)
        y = xs_[0].copy() if len(xs_) == 1 else xs_[0] + xs_[1]
        for x in xs_[2:]:
            y += x
        self._keep([x.dtype for x in xs_])
        return y

    def backward(self, dy: np.ndarray) -> tuple[np.ndarray, ...]:
        dtypes = self._take()
        first = np.asarray(dy, dtype=dtypes[0])
        return (first,) + tuple(np.array(dy, dtype=dt, copy=True) for dt in dtypes[1:])


class Mul(_Merge):
    """Elementwise product of any number of inputs of the same shape (a gate).

    Shape:
        k inputs of shape S -> S (no broadcasting).

    Returns:
        From ``backward(dy)``: dy times the product of the other inputs, one per input.
    """

    def forward(self, *xs: Any) -> np.ndarray:
        xs_ = self._inputs(xs)
        self._same_shapes(xs_)
        y = xs_[0].copy() if len(xs_) == 1 else xs_[0] * xs_[1]
        for x in xs_[2:]:
            y *= x
        self._keep(xs_)
        return y

    def backward(self, dy: np.ndarray) -> tuple[np.ndarray, ...]:
        xs = self._take()
        k = len(xs)
        # prefix[i] = x0*...*x(i-1), suffix[i] = x(i+1)*...*x(k-1): exact with zeros
        prefix = [None] * k
        suffix = [None] * k
        for i in range(1, k):
            prefix[i] = xs[i - 1] if prefix[i - 1] is None else prefix[i - 1] * xs[i - 1]
        for i in range(k - 2, -1, -1):
            suffix[i] = xs[i + 1] if suffix[i + 1] is None else suffix[i + 1] * xs[i + 1]
        grads = []
        for i in range(k):
            g = dy
            for part in (prefix[i], suffix[i]):
                if part is not None:
                    g = g * part
            grads.append(np.array(g, dtype=xs[i].dtype, copy=True))
        return tuple(grads)
