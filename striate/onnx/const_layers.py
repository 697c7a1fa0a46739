"""Constants in imported ONNX graphs: Shape, ConstantOfShape, Constant outputs, fixed inputs.

Shape and ConstantOfShape make int64 shapes and filled tensors at run time
(no gradient flows through them); :class:`Constant` is a graph output known at
import; :class:`WithConstants` lets a layer take some of its inputs from the
model file (a bias to add, the indices to gather) instead of from the graph,
keeping them as buffers so ``state_dict`` and ``striate.save`` carry them.
Pure NumPy: importing this module does not need the ``onnx`` package.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..errors import ConfigError, ShapeError
from ..nn.module import Module

__all__ = ['Shape', 'ConstantOfShape', 'Constant', 'WithConstants']


class Shape(Module):
    """The input's shape as an int64 vector, sliced [start:end] (ONNX Shape).

    Shape:
        (d0, ..., dn) -> (len(shape[start:end]),) int64; no gradient flows through it.
    """

    def __init__(self, start: int = 0, end: int | None = None) -> None:
        super().__init__()
        self.start = int(start)
        self.end = None if end is None else int(end)

    def forward(self, x: Any) -> np.ndarray:
        self._keep(True)
        return np.array(np.shape(x)[self.start:self.end], dtype=np.int64)

    def backward(self, dy: np.ndarray) -> None:
        self._take()
        return None

    def extra_repr(self) -> str:
        return f"start={self.start}, end={self.end}"


class ConstantOfShape(Module):
    """A tensor of the shape given by its (int64) input, filled with ``value`` (ONNX ConstantOfShape).

    Shape:
        shape vector (r,) -> an array of that shape and ``dtype``; no gradient flows.
    """

    def __init__(self, value: float = 0.0, dtype: str = "float32") -> None:
        super().__init__()
        self.value = value.item() if isinstance(value, np.generic) else value
        self.dtype = np.dtype(dtype).name

    def forward(self, shape: Any) -> np.ndarray:
        dims = [int(s) for s in np.asarray(shape).reshape(-1)]
        if any(s < 0 for s in dims):
            raise ShapeError(f"{self.where()}: shape must not be negative; received {dims}")
        self._keep(True)
        return np.full(dims, self.value, dtype=self.dtype)

    def backward(self, dy: np.ndarray) -> None:
        self._take()
        return None

    def extra_repr(self) -> str:
        return f"value={self.value}, dtype={self.dtype}"


class Constant(Module):
    """A fixed tensor (buffer ``value``) that ignores its input: a graph output known at import.

    Args:
        shape, dtype: of the value (filled by ``load_state_dict`` or ``set_buffer``).

    Shape:
        any input -> ``shape``; no gradient flows.
    """

    def __init__(self, shape: Any = (), dtype: str = "float32") -> None:
        super().__init__()
        self.register_buffer("value", np.zeros(tuple(int(s) for s in shape), dtype=np.dtype(dtype)))

    def forward(self, x: Any) -> np.ndarray:
        self._keep(True)
        return self.value.copy()

    def backward(self, dy: np.ndarray) -> None:
        self._take()
        return None

    def extra_repr(self) -> str:
        return f"shape={tuple(self.value.shape)}, dtype={self.value.dtype}"


class WithConstants(Module):
    """Run ``module`` with some inputs fixed: constants from the model file, kept as buffers.

    Args:
        module: the wrapped layer (child ``op``).
        fixed: the positions of the fixed inputs among the module's inputs.
        shapes, dtypes: the shape and dtype of each fixed input (buffers
            ``input<i>``, filled by ``set_constant`` or ``load_state_dict``).

    Shape:
        forward takes the other inputs, in order; backward returns their
        gradients only (a tuple, or an array for one input).
    """

    def __init__(self, module: Module, fixed: Any, shapes: Any, dtypes: Any) -> None:
        super().__init__()
        if not isinstance(module, Module):
            raise ConfigError(f"WithConstants: needs a striate Module; received {type(module).__name__}")
        self.fixed = [int(i) for i in fixed]
        if len(shapes) != len(self.fixed) or len(dtypes) != len(self.fixed):
            raise ConfigError("WithConstants: fixed, shapes and dtypes must have the same length")
        self.op = module
        for i, shape, dt in zip(self.fixed, shapes, dtypes):
            self.register_buffer(f"input{i}", np.zeros(tuple(int(s) for s in shape), dtype=np.dtype(dt)))

    def set_constant(self, position: int, value: np.ndarray) -> None:
        """Store the value of fixed input ``position``."""
        self.set_buffer(f"input{position}", np.asarray(value))

    def forward(self, *xs: Any) -> Any:
        total = len(xs) + len(self.fixed)
        args, free = [], iter(xs)
        for i in range(total):
            args.append(self._buffers[f"input{i}"] if i in self.fixed else next(free))
        self._keep(total)
        return self.op(*args)

    def backward(self, dy: np.ndarray) -> Any:
        total = self._take()
        grads = self.op.backward(dy)
        grads = grads if isinstance(grads, tuple) else (grads,)
        if len(grads) != total:
            raise ShapeError(f"{self.op.where()}: backward returned {len(grads)} gradients "
                             f"for {total} inputs")
        out = tuple(g for i, g in enumerate(grads) if i not in self.fixed)
        return out[0] if len(out) == 1 else out

    def extra_repr(self) -> str:
        return f"fixed={self.fixed}"
