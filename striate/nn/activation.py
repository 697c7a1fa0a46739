"""Activation layers with torch.nn's names, arguments and defaults.

``inplace=`` is accepted wherever torch has it, for drop-in compatibility, and
ignored: every layer returns a new array (backward needs the input or a mask
of it, so overwriting the input would save nothing).
"""

from __future__ import annotations

import math
from numbers import Real
from typing import Any

import numpy as np

from ..errors import ConfigError, ShapeError
from ..functional import activation as F
from ..functional import softmax as FS
from .module import Module
from .parameter import Parameter

__all__ = ['ReLU', 'LeakyReLU', 'ELU', 'Sigmoid', 'Tanh', 'Softmax', 'LogSoftmax', 'ReLU6',
           'Hardswish', 'GELU', 'Softplus', 'PReLU']


def _real(layer: str, name: str, value: Any) -> float:
    """``value`` as a finite float, or ConfigError naming it."""
    if isinstance(value, bool) or not isinstance(value, Real) or not math.isfinite(value):
        raise ConfigError(f"{layer}: {name} must be a finite real number; received {value!r}")
    return float(value)


class _Activation(Module):
    """An elementwise layer: forward runs ``_kernel``, backward its gradient ``_grad``."""

    def _kernel(self, x: np.ndarray) -> tuple[np.ndarray, Any]:
        raise NotImplementedError

    def _grad(self, dy: np.ndarray, cache: Any) -> np.ndarray:
        raise NotImplementedError

    def forward(self, x: Any) -> np.ndarray:
        y, cache = self._kernel(self._float_input(x))
        self._keep(cache)
        return y

    def backward(self, dy: np.ndarray) -> np.ndarray:
        return self._grad(dy, self._take())


class _InplaceActivation(_Activation):
    """An activation whose only argument is torch's (ignored) ``inplace``."""

    def __init__(self, inplace: bool = False) -> None:
        super().__init__()
        self.inplace = bool(inplace)

    def extra_repr(self) -> str:
        return "inplace=True" if self.inplace else ""


class ReLU(_InplaceActivation):
    """max(x, 0); the gradient at exactly 0 is 0 (as torch).

    Args:
        inplace: accepted for torch compatibility; ignored.

    Shape:
        any -> the same shape.
    """

    def _kernel(self, x):
        return F.relu_forward(x)

    def _grad(self, dy, cache):
        return F.relu_backward(dy, cache)


class ReLU6(_InplaceActivation):
    """min(max(x, 0), 6); gradient 1 on 0 < x < 6 and 0 elsewhere, kinks included.

    Args:
        inplace: accepted for torch compatibility; ignored.

    Shape:
        any -> the same shape.
    """

    def _kernel(self, x):
        return F.relu6_forward(x)

    def _grad(self, dy, cache):
        return F.relu6_backward(dy, cache)


class LeakyReLU(_Activation):
    """x for x > 0, negative_slope * x otherwise.

    Args:
        negative_slope: the slope for x <= 0 (also the gradient at 0).
        inplace: accepted for torch compatibility; ignored.

    Shape:
        any -> the same shape.
    """

    def __init__(self, negative_slope: float = 1e-2, inplace: bool = False) -> None:
        super().__init__()
        self.negative_slope = _real("LeakyReLU", "negative_slope", negative_slope)
        self.inplace = bool(inplace)

    def _kernel(self, x):
        return F.leaky_relu_forward(x, negative_slope=self.negative_slope)

    def _grad(self, dy, cache):
        return F.leaky_relu_backward(dy, cache)

    def extra_repr(self) -> str:
        return f"negative_slope={self.negative_slope}" + (", inplace=True" if self.inplace else "")


class ELU(_Activation):
    """x for x > 0, alpha * (exp(x) - 1) otherwise.

    Args:
        alpha: the saturation value for x -> -inf is -alpha.
        inplace: accepted for torch compatibility; ignored.

    Shape:
        any -> the same shape.
    """

    def __init__(self, alpha: float = 1.0, inplace: bool = False) -> None:
        super().__init__()
        self.alpha = _real("ELU", "alpha", alpha)
        self.inplace = bool(inplace)

    def _kernel(self, x):
        return F.elu_forward(x, alpha=self.alpha)

    def _grad(self, dy, cache):
        return F.elu_backward(dy, cache)

    def extra_repr(self) -> str:
        return f"alpha={self.alpha}" + (", inplace=True" if self.inplace else "")


class Sigmoid(_Activation):
    """1 / (1 + exp(-x)), without overflow for any |x|.

    Shape:
        any -> the same shape.
    """

    def _kernel(self, x):
        return F.sigmoid_forward(x)

    def _grad(self, dy, cache):
        return F.sigmoid_backward(dy, cache)


class Tanh(_Activation):
    """tanh(x).

    Shape:
        any -> the same shape.
    """

    def _kernel(self, x):
        return F.tanh_forward(x)

    def _grad(self, dy, cache):
        return F.tanh_backward(dy, cache)


class Hardswish(_InplaceActivation):
    """x * ReLU6(x + 3) / 6 (MobileNetV3); gradient 0 for x <= -3, x/3 + 1/2 between, 1 for x >= 3.

    Args:
        inplace: accepted for torch compatibility; ignored.

    Shape:
        any -> the same shape.
    """

    def _kernel(self, x):
        return F.hardswish_forward(x)

    def _grad(self, dy, cache):
        return F.hardswish_backward(dy, cache)


class GELU(_Activation):
    """x * Phi(x), Phi the standard normal CDF.

    Args:
        approximate: 'none' (exact, through erfc) or 'tanh' (torch's tanh formula
            0.5 * x * (1 + tanh(sqrt(2/pi) * (x + 0.044715 * x^3)))).

    Shape:
        any -> the same shape.
    """

    def __init__(self, approximate: str = "none") -> None:
        super().__init__()
        if approximate not in ("none", "tanh"):
            raise ConfigError(f"GELU: approximate must be 'none' or 'tanh'; received {approximate!r}")
        self.approximate = approximate

    def _kernel(self, x):
        return F.gelu_forward(x, approximate=self.approximate)

    def _grad(self, dy, cache):
        return F.gelu_backward(dy, cache)

    def extra_repr(self) -> str:
        return f"approximate={self.approximate!r}"


class Softplus(_Activation):
    """log(1 + exp(beta * x)) / beta, and x itself where beta * x > threshold.

    Args:
        beta: sharpness (nonzero).
        threshold: above this value of beta * x the layer is the identity.

    Shape:
        any -> the same shape.
    """

    def __init__(self, beta: float = 1.0, threshold: float = 20.0) -> None:
        super().__init__()
        self.beta = _real("Softplus", "beta", beta)
        if self.beta == 0:
            raise ConfigError("Softplus: beta must be nonzero; received 0")
        self.threshold = _real("Softplus", "threshold", threshold)

    def _kernel(self, x):
        return F.softplus_forward(x, beta=self.beta, threshold=self.threshold)

    def _grad(self, dy, cache):
        return F.softplus_backward(dy, cache)

    def extra_repr(self) -> str:
        return f"beta={self.beta}, threshold={self.threshold}"


class _SoftmaxBase(_Activation):
    """Shared ``dim`` handling of Softmax and LogSoftmax."""

    def __init__(self, dim: int | None = None) -> None:
        super().__init__()
        if dim is not None and (isinstance(dim, bool) or not isinstance(dim, (int, np.integer))):
            raise ConfigError(f"{type(self).__name__}: dim must be an int or None; received {dim!r}")
        self.dim = None if dim is None else int(dim)

    def _axis(self, x: np.ndarray) -> int:
        """The reduced axis for this input, in [0, max(ndim, 1))."""
        dim = FS.implicit_softmax_dim(x.ndim) if self.dim is None else self.dim
        n = max(x.ndim, 1)
        if not -n <= dim < n:
            raise ShapeError(
                f"{self.where()} expects input with at least {dim + 1 if dim >= 0 else -dim} "
                f"dimensions for dim={dim}; received {tuple(x.shape)}"
            )
        return dim % n

    def extra_repr(self) -> str:
        return f"dim={self.dim}"


class Softmax(_SoftmaxBase):
    """exp(x) / sum(exp(x)) along ``dim`` (max-shifted, so no overflow).

    Args:
        dim: the axis that sums to 1.  None follows torch's legacy implicit
            rule: axis 0 for 0-, 1- and 3-D inputs, axis 1 otherwise (torch also
            warns that this is deprecated; striate does not warn).

    Shape:
        any -> the same shape.
    """

    def _kernel(self, x):
        return FS.softmax_forward(x, dim=self._axis(x))

    def _grad(self, dy, cache):
        return FS.softmax_backward(dy, cache)


class LogSoftmax(_SoftmaxBase):
    """log(softmax(x)) along ``dim``, computed as x - max - log(sum(exp(x - max))).

    Args:
        dim: as :class:`Softmax` (None: torch's legacy implicit rule).

    Shape:
        any -> the same shape.
    """

    def _kernel(self, x):
        return FS.log_softmax_forward(x, dim=self._axis(x))

    def _grad(self, dy, cache):
        return FS.log_softmax_backward(dy, cache)


class PReLU(Module):
    """x for x > 0, weight[c] * x otherwise, with a learned slope per channel (axis 1).

    Args:
        num_parameters: 1 (one shared slope) or the number of channels C.
        init: the initial slope.
        dtype: parameter dtype (float32 by default).

    Shape:
        (N, C, *) -> the same shape when num_parameters = C > 1; any shape when 1.
    """

    def __init__(self, num_parameters: int = 1, init: float = 0.25, dtype: Any = None) -> None:
        super().__init__()
        if (isinstance(num_parameters, bool) or not isinstance(num_parameters, (int, np.integer))
                or num_parameters < 1):
            raise ConfigError(f"PReLU: num_parameters must be a positive int; received {num_parameters!r}")
        self.num_parameters = int(num_parameters)
        self.init = _real("PReLU", "init", init)
        self.weight = Parameter(np.full(self.num_parameters, self.init, dtype=np.dtype(dtype or np.float32)))

    def forward(self, x: Any) -> np.ndarray:
        x = self._float_input(x, self.weight.data.dtype)
        c = self.num_parameters
        if c > 1 and (x.ndim < 2 or x.shape[1] != c):
            raise ShapeError(
                f"{self.where()} expects input (N, {c}, *) (one slope per channel); "
                f"received {tuple(x.shape)}"
            )
        y, cache = F.prelu_forward(x, self.weight.data)
        self._keep(cache)
        return y

    def backward(self, dy: np.ndarray) -> np.ndarray:
        dx, dw = F.prelu_backward(dy, self._take())
        self.weight.accumulate(dw)
        return dx

    def extra_repr(self) -> str:
        return f"num_parameters={self.num_parameters}"
