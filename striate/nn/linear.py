"""Fully connected layer and shape helpers: Linear, Flatten, Identity."""

from __future__ import annotations

from typing import Any

import numpy as np

from .. import init
from .._random import get_rng
from ..errors import ConfigError
from .module import Module
from .parameter import Parameter

__all__ = ['Linear', 'Flatten', 'Identity']


class Linear(Module):
    """Fully connected layer y = x W^T + b over the last axis.

    Args:
        in_features, out_features: sizes of the last axis in and out.
        bias: whether to add a learned bias.
        dtype: parameter dtype (float32 by default).
        rng: generator for the initial weights.

    Shape:
        (*, in_features) -> (*, out_features).
    """

    def __init__(self, in_features: int, out_features: int, bias: bool = True,
                 dtype: Any = None, rng: Any = None) -> None:
        super().__init__()
        for arg, val in (("in_features", in_features), ("out_features", out_features)):
            if isinstance(val, bool) or not isinstance(val, (int, np.integer)) or val < 1:
                raise ConfigError(f"Linear: {arg} must be a positive int; received {val!r}")
        self.in_features, self.out_features = int(in_features), int(out_features)
        dt = np.dtype(dtype or np.float32)
        self.weight = Parameter(np.empty((out_features, in_features), dtype=dt))
        self.register_parameter("bias", Parameter(np.empty(out_features, dtype=dt)) if bias else None)
        self.reset_parameters(rng)

    def reset_parameters(self, rng: Any = None) -> None:
        init.default_layer_init_(self.weight, self.bias, self.in_features, get_rng(rng))

    def forward(self, x: Any) -> np.ndarray:
        x = self._float_input(x, self.weight.data.dtype)
        if x.ndim < 1 or x.shape[-1] != self.in_features:
            self._check_ndim(x, ("N", self.in_features))
        y = x @ self.weight.data.T                                  # (*, out)
        if self.bias is not None:
            y += self.bias.data
        self._keep(x)
        return y

    def backward(self, dy: np.ndarray) -> np.ndarray:
        x = self._take()
        x2 = x.reshape(-1, self.in_features)                        # (M, in)
        dy2 = dy.reshape(-1, self.out_features)                     # (M, out)
        self.weight.accumulate(dy2.T @ x2)
        if self.bias is not None:
            self.bias.accumulate(dy2.sum(axis=0))
        if not self.input_grad:
            return None
        return (dy2 @ self.weight.data).reshape(x.shape)            # (*, in)

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, out_features={self.out_features}, bias={self.bias is not None}"


class Flatten(Module):
    """Flatten axes start_dim..end_dim into one.

    Shape:
        (N, C, H, W) -> (N, C*H*W) with the defaults start_dim=1, end_dim=-1.
    """

    def __init__(self, start_dim: int = 1, end_dim: int = -1) -> None:
        super().__init__()
        self.start_dim, self.end_dim = int(start_dim), int(end_dim)

    def forward(self, x: Any) -> np.ndarray:
        x = np.asarray(x)
        nd = x.ndim
        s = self.start_dim % nd if nd else 0
        e = self.end_dim % nd if nd else 0
        if nd == 0 or not (0 <= s <= e < nd) or self.start_dim >= nd or self.end_dim < -nd:
            raise ConfigError(
                f"{self.where()}: cannot flatten axes {self.start_dim}..{self.end_dim} "
                f"of an input of shape {tuple(x.shape)}"
            )
        self._keep(x.shape)
        return x.reshape(*x.shape[:s], -1, *x.shape[e + 1:])         # (N, C*H*W)

    def backward(self, dy: np.ndarray) -> np.ndarray:
        return dy.reshape(self._take())

    def extra_repr(self) -> str:
        return f"start_dim={self.start_dim}, end_dim={self.end_dim}"


class Identity(Module):
    """Returns its input unchanged (a placeholder layer, e.g. for a folded BatchNorm).

    Shape:
        any shape -> the same shape.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__()

    def forward(self, x: Any) -> np.ndarray:
        self._keep(True)
        return x

    def backward(self, dy: np.ndarray) -> np.ndarray:
        self._take()
        return dy
