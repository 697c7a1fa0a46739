"""Layers for imported ONNX graphs that torch.nn has no module for: arithmetic and activations.

ONNX's elementwise operators broadcast (NumPy rules) and may take integer
tensors; striate's merge layers (:class:`striate.nn.Add`, ...) do neither, so
an imported graph uses the layers below.  Every one has an exact backward
pass: the gradient of a broadcast operand is summed over the axes that
broadcasting stretched, and integer inputs get no gradient (None).  Pure
NumPy: importing this module does not need the ``onnx`` package.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..errors import ConfigError, ShapeError
from ..functional.special import erf
from ..nn.module import Module

__all__ = ['unbroadcast', 'Elementwise', 'MatMul', 'Clip', 'Erf', 'HardSigmoid', 'Abs']

_OPS = ("add", "sub", "mul", "div")


def unbroadcast(g: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """Sum ``g`` over the axes that broadcasting added or stretched, giving ``shape``.

    Shape:
        g (broadcast shape) -> ``shape``.
    """
    shape = tuple(shape)
    if g.shape == shape:
        return g
    lead = g.ndim - len(shape)
    if lead > 0:
        g = g.sum(axis=tuple(range(lead)))                           # drop the added axes
    stretched = tuple(i for i, s in enumerate(shape) if s == 1 and g.shape[i] != 1)
    if stretched:
        g = g.sum(axis=stretched, keepdims=True)
    return g.reshape(shape)


def _floating(a: np.ndarray) -> bool:
    return a.dtype.kind == "f"


def _grad_for(g: np.ndarray, shape: tuple[int, ...], dtype: np.dtype) -> np.ndarray | None:
    """``g`` summed to ``shape`` and cast to ``dtype``; None for a non-floating input."""
    if dtype.kind != "f":
        return None
    return np.asarray(unbroadcast(g, shape), dtype=dtype)


@dataclass(frozen=True)
class ElementwiseCache:
    """Each input's shape (before and after the legacy alignment) and dtype, and for
    mul/div the operands (and the quotient) the gradient needs."""

    shapes: tuple[tuple[int, ...], ...]
    aligned: tuple[tuple[int, ...], ...]
    dtypes: tuple[np.dtype, ...]
    operands: tuple[np.ndarray, ...] = ()


def _broadcast_shapes(where: str, xs: list[np.ndarray]) -> None:
    """Refuse operands that do not broadcast, naming their shapes."""
    try:
        np.broadcast_shapes(*(x.shape for x in xs))
    except ValueError:
        shapes = ", ".join(str(tuple(x.shape)) for x in xs)
        raise ShapeError(f"{where} expects inputs that broadcast together; received {shapes}") from None


def _trunc_divide(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Integer division rounding toward zero (C and ONNX), not toward -inf (NumPy's //)."""
    if np.any(b == 0):
        raise ShapeError("integer division by zero")
    q = a // b
    fix = (q < 0) & (q * b != a)                     # floored below the true quotient
    return q + fix.astype(q.dtype)


class Elementwise(Module):
    """Broadcasting arithmetic: add (any number of inputs, ONNX Sum), sub, mul or div.

    Args:
        op: 'add', 'sub', 'mul' or 'div'.  Integer 'div' rounds toward zero.
        axis: ONNX's legacy broadcast (opsets before 7): the second input's axes
            line up with the first input's from ``axis`` on; None is NumPy broadcasting.

    Shape:
        inputs that broadcast together -> their broadcast shape.

    Returns:
        From ``backward(dy)``: one gradient per input, summed back to its shape
        (None for integer inputs), as a tuple (an array for a single input).
    """

    def __init__(self, op: str, axis: int | None = None) -> None:
        super().__init__()
        if op not in _OPS:
            raise ConfigError(f"Elementwise: op must be one of {_OPS}; received {op!r}")
        if axis is not None and (isinstance(axis, bool) or not isinstance(axis, (int, np.integer))):
            raise ConfigError(f"Elementwise: axis must be an int or None; received {axis!r}")
        self.op = op
        self.axis = None if axis is None else int(axis)

    def _align(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        """b reshaped for the legacy broadcast at ``axis`` (trailing 1s appended)."""
        if self.axis is None:
            return b
        axis = self.axis % a.ndim if a.ndim else 0
        trailing = a.ndim - axis - b.ndim
        if trailing < 0:
            raise ShapeError(f"{self.where()}: cannot line input {tuple(b.shape)} up with "
                             f"input {tuple(a.shape)} from axis {self.axis}")
        return b.reshape(b.shape + (1,) * trailing)                  # (*b, 1, ..., 1)

    def forward(self, *xs: Any) -> np.ndarray:
        xs_ = [np.asarray(x) for x in xs]
        count = len(xs_)
        if (self.op == "add" and count < 1) or (self.op != "add" and count != 2):
            want = "at least 1" if self.op == "add" else "2"
            raise ShapeError(f"{self.where()} expects {want} inputs; received {count}")
        originals = list(xs_)
        if count == 2:
            xs_[1] = self._align(xs_[0], xs_[1])
        _broadcast_shapes(self.where(), xs_)
        a = xs_[0]
        if self.op == "add":
            y = a.copy() if count == 1 else a + xs_[1]
            for x in xs_[2:]:
                y = y + x
        elif self.op == "sub":
            y = a - xs_[1]
        elif self.op == "mul":
            y = a * xs_[1]
        elif _floating(a) or _floating(xs_[1]):
            y = a / xs_[1]
        else:
            y = _trunc_divide(a, xs_[1])
        operands = (a, xs_[1]) if self.op == "mul" else (xs_[1], y) if self.op == "div" else ()
        self._keep(ElementwiseCache(tuple(x.shape for x in originals), tuple(x.shape for x in xs_),
                                    tuple(x.dtype for x in xs_), operands))
        return y

    def backward(self, dy: np.ndarray) -> Any:
        c = self._take()
        if self.op == "add":
            parts = [dy] * len(c.shapes)
        elif self.op == "sub":
            parts = [dy, -dy]
        elif self.op == "mul":
            a, b = c.operands
            parts = [dy * b, dy * a]
        else:
            b, y = c.operands
            parts = [dy / b, -dy * y / b]
        grads = []
        for g, shape, aligned, dtype in zip(parts, c.shapes, c.aligned, c.dtypes):
            gx = _grad_for(g, aligned, dtype)
            grads.append(None if gx is None else gx.reshape(shape))
        return grads[0] if len(grads) == 1 else tuple(grads)

    def extra_repr(self) -> str:
        return f"op={self.op!r}" + ("" if self.axis is None else f", axis={self.axis}")


class MatMul(Module):
    """Matrix product of two inputs with NumPy's matmul rules (ONNX MatMul).

    1-D operands are promoted (a vector on the left is a row, on the right a
    column) and the promoted axis is removed from the result; batch axes broadcast.

    Shape:
        (*, n, k) @ (*, k, m) -> (*, n, m).

    Returns:
        From ``backward(dy)``: (da, db), each summed over broadcast batch axes.
    """

    def forward(self, a: Any, b: Any) -> np.ndarray:
        a, b = np.asarray(a), np.asarray(b)
        if a.ndim == 0 or b.ndim == 0:
            raise ShapeError(f"{self.where()} expects inputs of at least 1 dimension; "
                             f"received {tuple(a.shape)} and {tuple(b.shape)}")
        a2 = a if a.ndim > 1 else a[None, :]                          # (1, k)
        b2 = b if b.ndim > 1 else b[:, None]                          # (k, 1)
        if a2.shape[-1] != b2.shape[-2]:
            raise ShapeError(f"{self.where()} expects (*, n, k) @ (*, k, m); received "
                             f"{tuple(a.shape)} and {tuple(b.shape)}")
        _broadcast_shapes(self.where(), [a2[..., :1, :1], b2[..., :1, :1]])
        y2 = a2 @ b2                                                  # (*, n, m)
        self._keep((a2, b2, a.shape, b.shape, y2.shape))
        if a.ndim == 1:
            y2 = y2[..., 0, :]                                        # (*, m): the row axis dropped
        return y2[..., 0] if b.ndim == 1 else y2                      # (*, n): the column axis dropped

    def backward(self, dy: np.ndarray) -> tuple[np.ndarray | None, np.ndarray | None]:
        a2, b2, a_shape, b_shape, shape2 = self._take()
        g = np.asarray(dy).reshape(shape2)                            # (*, n, m)
        da = _grad_for(g @ np.swapaxes(b2, -1, -2), a2.shape, a2.dtype)
        db = _grad_for(np.swapaxes(a2, -1, -2) @ g, b2.shape, b2.dtype)
        return (None if da is None else da.reshape(a_shape),
                None if db is None else db.reshape(b_shape))


class Clip(Module):
    """Clamp to [min, max] (either bound may be None), as torch.clamp.

    Args:
        min, max: the bounds; min > max gives max everywhere (ONNX's order).

    Shape:
        any -> the same shape.

    Returns:
        From ``backward(dy)``: dy where min <= x <= max, 0 elsewhere.
    """

    def __init__(self, min: float | None = None, max: float | None = None) -> None:
        super().__init__()
        for name, v in (("min", min), ("max", max)):
            if v is not None and (isinstance(v, bool) or not isinstance(v, (int, float, np.number))):
                raise ConfigError(f"Clip: {name} must be a number or None; received {v!r}")
        self.min = None if min is None else min.item() if isinstance(min, np.generic) else min
        self.max = None if max is None else max.item() if isinstance(max, np.generic) else max

    def forward(self, x: Any) -> np.ndarray:
        x = np.asarray(x)
        y = x
        if self.min is not None:
            y = np.maximum(y, np.asarray(self.min, dtype=x.dtype))
        if self.max is not None:
            y = np.minimum(y, np.asarray(self.max, dtype=x.dtype))
        inside = None
        if _floating(x):                     # torch.clamp's gradient: 1 on [min, max]
            inside = np.ones(x.shape, dtype=bool)
            if self.min is not None:
                inside &= x >= self.min
            if self.max is not None:
                inside &= x <= self.max
        self._keep((inside, x.dtype))
        return y.copy() if y is x else y

    def backward(self, dy: np.ndarray) -> np.ndarray | None:
        inside, dtype = self._take()
        if inside is None:
            return None
        return (dy * inside).astype(dtype, copy=False)

    def extra_repr(self) -> str:
        return f"min={self.min}, max={self.max}"


class _Pointwise(Module):
    """A floating elementwise function keeping its input for backward."""

    def _f(self, x: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def _df(self, x: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def forward(self, x: Any) -> np.ndarray:
        x = self._float_input(x)
        self._keep(x)
        return np.asarray(self._f(x), dtype=x.dtype)

    def backward(self, dy: np.ndarray) -> np.ndarray:
        x = self._take()
        return np.asarray(dy * self._df(x), dtype=x.dtype)


class Erf(_Pointwise):
    """The error function (ONNX Erf; GELU is x * (1 + erf(x / sqrt 2)) / 2).

    Shape:
        any -> the same shape; the gradient is 2/sqrt(pi) * exp(-x^2).
    """

    def _f(self, x):
        return erf(x)

    def _df(self, x):
        return (2.0 / math.sqrt(math.pi)) * np.exp(-np.square(x.astype(np.float64)))


class Abs(_Pointwise):
    """|x|; the gradient is sign(x) (0 at 0, as torch).

    Shape:
        any -> the same shape.
    """

    def _f(self, x):
        return np.abs(x)

    def _df(self, x):
        return np.sign(x)


class HardSigmoid(_Pointwise):
    """max(0, min(1, alpha * x + beta)) (ONNX HardSigmoid; torch's Hardsigmoid is alpha=1/6).

    Args:
        alpha: the slope.
        beta: the offset.

    Shape:
        any -> the same shape; the gradient is alpha strictly inside (0, 1), 0 elsewhere.
    """

    def __init__(self, alpha: float = 0.2, beta: float = 0.5) -> None:
        super().__init__()
        for name, v in (("alpha", alpha), ("beta", beta)):
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
                raise ConfigError(f"HardSigmoid: {name} must be a finite number; received {v!r}")
        self.alpha, self.beta = float(alpha), float(beta)

    def _f(self, x):
        return np.clip(self.alpha * x + self.beta, 0.0, 1.0)

    def _df(self, x):
        z = self.alpha * x + self.beta
        return self.alpha * ((z > 0) & (z < 1))

    def extra_repr(self) -> str:
        return f"alpha={self.alpha}, beta={self.beta}"
