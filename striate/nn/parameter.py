"""Trainable parameters."""

from __future__ import annotations

import numpy as np

__all__ = ['Parameter']


class Parameter:
    """A trainable array and its gradient.

    Args:
        data: the initial values; copied into a new float array.
        requires_grad: whether optimizers update it and backward fills ``grad``.

    Attributes:
        data: the values, a NumPy array.
        grad: the accumulated gradient (same shape and dtype), or None before
            the first backward pass and after ``zero_grad()``.
    """

    __slots__ = ("data", "grad", "requires_grad")

    def __init__(self, data: np.ndarray, requires_grad: bool = True) -> None:
        self.data = np.array(data, copy=True)
        if self.data.dtype.kind != "f":
            self.data = self.data.astype(np.float32)
        self.grad: np.ndarray | None = None
        self.requires_grad = requires_grad

    @property
    def shape(self) -> tuple[int, ...]:
        return self.data.shape

    @property
    def dtype(self) -> np.dtype:
        return self.data.dtype

    @property
    def size(self) -> int:
        return self.data.size

    def accumulate(self, g: np.ndarray) -> None:
        """Add ``g`` into ``grad`` (gradients of fan-out and repeated calls sum)."""
        if not self.requires_grad:
            return
        if self.grad is None:
            self.grad = np.array(g, dtype=self.data.dtype, copy=True).reshape(self.data.shape)
        else:
            self.grad += g.reshape(self.data.shape)

    def __repr__(self) -> str:
        return f"Parameter(shape={self.data.shape}, dtype={self.data.dtype})"
