"""Shape and indexing layers for imported ONNX graphs (Reshape, Transpose, Gather, ...).

They move values around without arithmetic, so their backward passes route
the gradient back (a reshape, the inverse permutation, a scatter-add) and
return None for inputs that are shapes or indices.  They accept any dtype:
an exported PyTorch model computes its flatten size at run time with
Shape -> Gather -> Unsqueeze -> Concat -> Reshape on int64 tensors.
Pure NumPy: importing this module does not need the ``onnx`` package.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..errors import ConfigError, ShapeError
from ..nn.module import Module

__all__ = ['Reshape', 'FlattenTo2d', 'Transpose', 'Squeeze', 'Unsqueeze', 'Gather', 'TensorConcat']


def _int_list(value: Any, layer: str, name: str) -> list[int] | None:
    """None, or ``value`` as a list of ints (ConfigError naming it otherwise)."""
    if value is None:
        return None
    try:
        out = [int(v) for v in np.asarray(value).reshape(-1)]
    except (TypeError, ValueError):
        raise ConfigError(f"{layer}: {name} must be a list of ints; received {value!r}") from None
    return out


def _record(module: Module, **kwargs: Any) -> None:
    """Record normalised constructor arguments (lists, not arrays), so striate.save can write them."""
    object.__setattr__(module, "_init_args", ((), kwargs))


def _axis(axis: int, ndim: int, where: str, what: str = "axis") -> int:
    """``axis`` in [0, ndim), negative counting from the end; ShapeError if out of range."""
    if not -ndim <= axis < ndim:
        raise ShapeError(f"{where}: {what} {axis} is out of range for {ndim} dimensions")
    return axis % ndim


def _grad(dy: np.ndarray, x_dtype: np.dtype, shape: tuple[int, ...]) -> np.ndarray | None:
    """dy reshaped to ``shape`` for a floating input; None for shapes and indices."""
    if np.dtype(x_dtype).kind != "f":
        return None
    return np.asarray(dy, dtype=x_dtype).reshape(shape)


class Reshape(Module):
    """Reshape to a target shape given here or as a second (int64) input (ONNX Reshape).

    Args:
        shape: the target; a 0 copies the input's size on that axis (unless
            ``allowzero``), one -1 is inferred.  None: read it from input 2.
        allowzero: a 0 means an empty axis, not a copy.

    Shape:
        (*) -> ``shape`` (same number of elements).
    """

    def __init__(self, shape: Any = None, allowzero: bool = False) -> None:
        super().__init__()
        self.shape = _int_list(shape, "Reshape", "shape")
        self.allowzero = bool(allowzero)
        _record(self, shape=self.shape, allowzero=self.allowzero)

    def _target(self, x: np.ndarray, shape: list[int]) -> tuple[int, ...]:
        out = [x.shape[i] if s == 0 and not self.allowzero and i < x.ndim else s
               for i, s in enumerate(shape)]
        if out.count(-1) > 1 or any(s < -1 for s in out):
            raise ShapeError(f"{self.where()}: invalid target shape {shape}")
        known = int(np.prod([s for s in out if s != -1], dtype=np.int64))
        if -1 in out:
            if known == 0 or x.size % known:
                raise ShapeError(f"{self.where()}: cannot reshape input {tuple(x.shape)} to {shape}")
            out[out.index(-1)] = x.size // known
        if int(np.prod(out, dtype=np.int64)) != x.size:
            raise ShapeError(f"{self.where()}: cannot reshape input {tuple(x.shape)} to {shape}")
        return tuple(out)

    def forward(self, x: Any, shape: Any = None) -> np.ndarray:
        x = np.asarray(x)
        if (shape is None) == (self.shape is None):
            raise ShapeError(f"{self.where()} expects the target shape either as its argument "
                             "or as a second input, exactly once")
        target = self._target(x, self.shape if shape is None else _int_list(shape, "Reshape", "shape"))
        self._keep((x.shape, x.dtype, shape is not None))
        return x.reshape(target)

    def backward(self, dy: np.ndarray) -> Any:
        shape, dtype, two = self._take()
        dx = _grad(dy, dtype, shape)
        return (dx, None) if two else dx

    def extra_repr(self) -> str:
        return f"shape={self.shape}" + (", allowzero=True" if self.allowzero else "")


class FlattenTo2d(Module):
    """Flatten to 2-D at ``axis`` (ONNX Flatten): (prod(shape[:axis]), prod(shape[axis:])).

    Args:
        axis: in [-ndim, ndim]; 0 gives (1, size).

    Shape:
        (d0, ..., dn) -> (d0*...*d(axis-1), d(axis)*...*dn).
    """

    def __init__(self, axis: int = 1) -> None:
        super().__init__()
        if isinstance(axis, bool) or not isinstance(axis, (int, np.integer)):
            raise ConfigError(f"FlattenTo2d: axis must be an int; received {axis!r}")
        self.axis = int(axis)

    def forward(self, x: Any) -> np.ndarray:
        x = np.asarray(x)
        if not -x.ndim <= self.axis <= x.ndim:
            raise ShapeError(f"{self.where()}: axis {self.axis} is out of range for input "
                             f"{tuple(x.shape)}")
        axis = self.axis + x.ndim if self.axis < 0 else self.axis
        rows = int(np.prod(x.shape[:axis], dtype=np.int64))
        self._keep((x.shape, x.dtype))
        return x.reshape(rows, int(np.prod(x.shape[axis:], dtype=np.int64)))  # (rows, cols)

    def backward(self, dy: np.ndarray) -> np.ndarray | None:
        shape, dtype = self._take()
        return _grad(dy, dtype, shape)

    def extra_repr(self) -> str:
        return f"axis={self.axis}"


class Transpose(Module):
    """Permute the axes (ONNX Transpose); None reverses them.

    Shape:
        (d0, ..., dn) -> (d[perm[0]], ..., d[perm[n]]).
    """

    def __init__(self, perm: Any = None) -> None:
        super().__init__()
        self.perm = _int_list(perm, "Transpose", "perm")
        _record(self, perm=self.perm)

    def forward(self, x: Any) -> np.ndarray:
        x = np.asarray(x)
        perm = list(range(x.ndim))[::-1] if self.perm is None else self.perm
        if sorted(p % x.ndim if x.ndim else p for p in perm) != list(range(x.ndim)):
            raise ShapeError(f"{self.where()}: perm {perm} is not a permutation of the "
                             f"axes of input {tuple(x.shape)}")
        self._keep((perm, x.dtype))
        return np.ascontiguousarray(np.transpose(x, perm))

    def backward(self, dy: np.ndarray) -> np.ndarray | None:
        perm, dtype = self._take()
        if dtype.kind != "f":
            return None
        return np.ascontiguousarray(np.transpose(dy, np.argsort(perm)), dtype=dtype)

    def extra_repr(self) -> str:
        return f"perm={self.perm}"


class Squeeze(Module):
    """Remove size-1 axes: those listed, or every one when ``axes`` is None (ONNX Squeeze).

    Shape:
        (*) -> (*) without the squeezed axes.
    """

    def __init__(self, axes: Any = None) -> None:
        super().__init__()
        self.axes = _int_list(axes, "Squeeze", "axes")
        _record(self, axes=self.axes)

    def forward(self, x: Any) -> np.ndarray:
        x = np.asarray(x)
        if self.axes is None:
            axes = [i for i, s in enumerate(x.shape) if s == 1]
        else:
            axes = [_axis(a, x.ndim, self.where()) for a in self.axes]
        bad = [a for a in axes if x.shape[a] != 1]
        if bad:
            raise ShapeError(f"{self.where()} can only squeeze axes of size 1; received input "
                             f"{tuple(x.shape)} and axes {self.axes}")
        self._keep((x.shape, x.dtype))
        return x.reshape([s for i, s in enumerate(x.shape) if i not in axes])

    def backward(self, dy: np.ndarray) -> np.ndarray | None:
        shape, dtype = self._take()
        return _grad(dy, dtype, shape)

    def extra_repr(self) -> str:
        return f"axes={self.axes}"


class Unsqueeze(Module):
    """Insert size-1 axes at the given positions of the output (ONNX Unsqueeze).

    Shape:
        (*) with r axes -> r + len(axes) axes, 1 at each of ``axes``.
    """

    def __init__(self, axes: Any) -> None:
        super().__init__()
        self.axes = _int_list(axes, "Unsqueeze", "axes")
        if not self.axes:
            raise ConfigError(f"Unsqueeze: axes must be a non-empty list of ints; received {axes!r}")
        _record(self, axes=self.axes)

    def forward(self, x: Any) -> np.ndarray:
        x = np.asarray(x)
        rank = x.ndim + len(self.axes)
        axes = sorted(_axis(a, rank, self.where()) for a in self.axes)
        if len(set(axes)) != len(axes):
            raise ShapeError(f"{self.where()}: repeated axes {self.axes}")
        shape = list(x.shape)
        for a in axes:
            shape.insert(a, 1)
        self._keep((x.shape, x.dtype))
        return x.reshape(shape)

    def backward(self, dy: np.ndarray) -> np.ndarray | None:
        shape, dtype = self._take()
        return _grad(dy, dtype, shape)

    def extra_repr(self) -> str:
        return f"axes={self.axes}"


class Gather(Module):
    """Take entries of ``data`` along ``axis`` at integer ``indices`` (ONNX Gather, np.take).

    Args:
        axis: the indexed axis of data; negative indices count from its end.

    Shape:
        data (*pre, D, *post), indices (*I) -> (*pre, *I, *post).

    Returns:
        From ``backward(dy)``: (ddata, None), repeated indices summing their gradients.
    """

    def __init__(self, axis: int = 0) -> None:
        super().__init__()
        if isinstance(axis, bool) or not isinstance(axis, (int, np.integer)):
            raise ConfigError(f"Gather: axis must be an int; received {axis!r}")
        self.axis = int(axis)

    def forward(self, data: Any, indices: Any) -> np.ndarray:
        data, indices = np.asarray(data), np.asarray(indices)
        if indices.dtype.kind not in "iu":
            raise ShapeError(f"{self.where()} expects integer indices; received dtype {indices.dtype}")
        axis = _axis(self.axis, data.ndim, self.where())
        size = data.shape[axis]
        idx = np.where(indices < 0, indices + size, indices).astype(np.int64)
        if idx.size and (idx.min() < 0 or idx.max() >= size):
            raise ShapeError(f"{self.where()}: indices must lie in [-{size}, {size}) for axis "
                             f"{self.axis} of input {tuple(data.shape)}")
        self._keep((data.shape, data.dtype, axis, idx))
        return np.take(data, idx, axis=axis)

    def backward(self, dy: np.ndarray) -> tuple[np.ndarray | None, None]:
        shape, dtype, axis, idx = self._take()
        if dtype.kind != "f":
            return None, None
        dx = np.zeros(shape, dtype=dtype)
        front = np.moveaxis(dx, axis, 0)                              # (D, *pre, *post) view
        k = idx.ndim
        g = np.moveaxis(dy, list(range(axis, axis + k)), list(range(k)))  # (*I, *pre, *post)
        np.add.at(front, idx.reshape(-1), g.reshape((-1,) + front.shape[1:]))
        return dx, None

    def extra_repr(self) -> str:
        return f"axis={self.axis}"


class TensorConcat(Module):
    """Concatenate any number of arrays of any dtype along ``axis`` (ONNX Concat).

    Shape:
        inputs agreeing on every other axis -> their sizes summed on ``axis``.

    Returns:
        From ``backward(dy)``: the slice of dy of each floating input (None otherwise).
    """

    def __init__(self, axis: int = 1) -> None:
        super().__init__()
        if isinstance(axis, bool) or not isinstance(axis, (int, np.integer)):
            raise ConfigError(f"TensorConcat: axis must be an int; received {axis!r}")
        self.axis = int(axis)

    def forward(self, *xs: Any) -> np.ndarray:
        xs_ = [np.asarray(x) for x in xs]
        if not xs_:
            raise ShapeError(f"{self.where()} expects at least 1 input; received 0")
        axis = _axis(self.axis, xs_[0].ndim, self.where())
        try:
            y = np.concatenate(xs_, axis=axis)
        except ValueError:
            shapes = ", ".join(str(tuple(x.shape)) for x in xs_)
            raise ShapeError(f"{self.where()} expects inputs that agree on every axis but "
                             f"{axis}; received {shapes}") from None
        self._keep((axis, [x.shape[axis] for x in xs_], [x.dtype for x in xs_]))
        return y

    def backward(self, dy: np.ndarray) -> Any:
        axis, sizes, dtypes = self._take()
        bounds = np.cumsum([0] + sizes)
        grads = []
        for lo, hi, dt in zip(bounds[:-1], bounds[1:], dtypes):
            part = np.take(dy, np.arange(lo, hi), axis=axis)
            grads.append(part.astype(dt) if dt.kind == "f" else None)
        return grads[0] if len(grads) == 1 else tuple(grads)

    def extra_repr(self) -> str:
        return f"axis={self.axis}"
