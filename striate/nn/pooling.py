"""Sliding-window pooling layers: MaxPool, AvgPool and LPPool in 1-D and 2-D.

torch.nn's names, arguments and defaults; exact forward and backward passes
(striate.functional.pool).  The adaptive and global pooling layers live in
:mod:`striate.nn.adaptive_pooling` and are re-exported here.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from ..errors import ConfigError, ShapeError
from ..functional import pool as F
from ..functional import pool_lp as FLP
from ..functional._utils import ntuple
from . import adaptive_pooling
from .adaptive_pooling import *  # noqa: F401,F403
from .module import Module, is_grad_enabled

__all__ = ['MaxPool1d', 'MaxPool2d', 'AvgPool1d', 'AvgPool2d', 'LPPool1d', 'LPPool2d',
           *adaptive_pooling.__all__]


class _PoolNd(Module):
    """Shared argument checks and input checks of the sliding-window pools."""

    _nd = 2

    def __init__(self, kernel_size: Any, stride: Any = None, padding: Any = 0,
                 dilation: Any = 1, ceil_mode: bool = False) -> None:
        super().__init__()
        name, nd = type(self).__name__, self._nd
        self.kernel_size = ntuple(kernel_size, nd, f"{name} kernel_size")
        self.stride = self.kernel_size if stride is None else ntuple(stride, nd, f"{name} stride")
        self.padding = ntuple(padding, nd, f"{name} padding", minimum=0)
        self.dilation = ntuple(dilation, nd, f"{name} dilation")
        self.ceil_mode = bool(ceil_mode)
        if any(p > k // 2 for p, k in zip(self.padding, self.kernel_size)):
            raise ConfigError(
                f"{name}: padding must be at most half of kernel_size (as in PyTorch); "
                f"received padding={padding!r} with kernel_size={kernel_size!r}"
            )

    def _input(self, x: Any) -> np.ndarray:
        """Check dtype, rank and that at least one window fits; return the array."""
        x = self._float_input(x)
        self._check_ndim(x, ("N", "C", "H", "W") if self._nd == 2 else ("N", "C", "L"))
        for size, k, s, p, d in zip(x.shape[2:], self.kernel_size, self.stride, self.padding,
                                    self.dilation):
            if F.pool_out_size(size, k, s, p, d, self.ceil_mode) < 1:
                raise ShapeError(
                    f"{self.where()}: kernel {self.kernel_size} (dilation {self.dilation}) is "
                    f"larger than the padded input; received input {tuple(x.shape)} with "
                    f"padding {self.padding}"
                )
        return x

    def extra_repr(self) -> str:
        s = f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}"
        if self.dilation != (1,) * self._nd:
            s += f", dilation={self.dilation}"
        return s + f", ceil_mode={self.ceil_mode}"


# ---------------------------------------------------------------------------- max


class MaxPool2d(_PoolNd):
    """2-D max pooling over (N, C, H, W).

    Args:
        kernel_size: int or (h, w) window size.
        stride: int or (h, w); None (default) means kernel_size.
        padding: implicit -inf padding on both sides, at most kernel_size // 2.
        dilation: spacing between window elements.
        return_indices: also return the flat index h*W + w of each maximum.
        ceil_mode: ceil instead of floor in the output size (a last, partial
            window that starts inside the input or the left padding).

    Shape:
        (N, C, H, W) -> (N, C, H_out, W_out), H_out = floor((H + 2*padding -
        dilation*(kernel-1) - 1 [+ stride-1 if ceil_mode]) / stride) + 1.

    Returns:
        y, or (y, indices int64) when return_indices.
    """

    _nd = 2

    def __init__(self, kernel_size: Any, stride: Any = None, padding: Any = 0, dilation: Any = 1,
                 return_indices: bool = False, ceil_mode: bool = False) -> None:
        super().__init__(kernel_size, stride, padding, dilation, ceil_mode)
        self.return_indices = bool(return_indices)

    def forward(self, x: Any) -> np.ndarray | tuple[np.ndarray, np.ndarray]:
        x = self._input(x)
        argmax = self.return_indices or is_grad_enabled()          # inference needs no argmax
        if self._nd == 2:
            y, cache = F.max_pool2d_forward(
                x, kernel_size=self.kernel_size, stride=self.stride, padding=self.padding,
                dilation=self.dilation, ceil_mode=self.ceil_mode, with_argmax=argmax)
        else:
            y, cache = F.max_pool1d_forward(
                x, kernel_size=self.kernel_size[0], stride=self.stride[0],
                padding=self.padding[0], dilation=self.dilation[0], ceil_mode=self.ceil_mode,
                with_argmax=argmax)
        self._keep(cache)
        if self.return_indices:
            idx = F.max_pool2d_indices(cache)                     # (N, C, OH, OW)
            return y, (idx if self._nd == 2 else idx[:, :, 0, :])  # (N, C, L_out)
        return y

    def backward(self, dy: np.ndarray) -> np.ndarray:
        cache = self._take()
        if self._nd == 2:
            return F.max_pool2d_backward(dy, cache)
        return F.max_pool1d_backward(dy, cache)


class MaxPool1d(MaxPool2d):
    """1-D max pooling over (N, C, L).

    Args:
        as :class:`MaxPool2d`, with int (or 1-tuple) kernel_size, stride, padding, dilation.

    Shape:
        (N, C, L) -> (N, C, L_out), L_out = floor((L + 2*padding - dilation*(kernel-1) - 1
        [+ stride-1 if ceil_mode]) / stride) + 1.
    """

    _nd = 1


# ---------------------------------------------------------------------------- average


class AvgPool2d(_PoolNd):
    """2-D average pooling over (N, C, H, W), with PyTorch's divisors.

    Args:
        kernel_size: int or (h, w) window size.
        stride: int or (h, w); None (default) means kernel_size.
        padding: implicit zero padding on both sides, at most kernel_size // 2.
        ceil_mode: ceil instead of floor in the output size.
        count_include_pad: divide by the window area inside the padded input
            (True) or inside the input only (False).
        divisor_override: if given (a non-zero int), the divisor of every window.

    Shape:
        (N, C, H, W) -> (N, C, H_out, W_out),
        H_out = floor((H + 2*padding - kernel [+ stride-1 if ceil_mode]) / stride) + 1.
    """

    _nd = 2

    def __init__(self, kernel_size: Any, stride: Any = None, padding: Any = 0,
                 ceil_mode: bool = False, count_include_pad: bool = True,
                 divisor_override: int | None = None) -> None:
        super().__init__(kernel_size, stride, padding, 1, ceil_mode)
        d = divisor_override
        if d is not None and (isinstance(d, bool) or not isinstance(d, (int, np.integer))
                              or d == 0):
            raise ConfigError(
                f"{type(self).__name__}: divisor_override must be None or a non-zero int; "
                f"received {divisor_override!r}"
            )
        self.count_include_pad = bool(count_include_pad)
        self.divisor_override = None if divisor_override is None else int(divisor_override)

    def forward(self, x: Any) -> np.ndarray:
        x = self._input(x)
        if self._nd == 2:
            y, cache = F.avg_pool2d_forward(
                x, kernel_size=self.kernel_size, stride=self.stride, padding=self.padding,
                ceil_mode=self.ceil_mode, count_include_pad=self.count_include_pad,
                divisor_override=self.divisor_override)
        else:
            y, cache = F.avg_pool1d_forward(
                x, kernel_size=self.kernel_size[0], stride=self.stride[0],
                padding=self.padding[0], ceil_mode=self.ceil_mode,
                count_include_pad=self.count_include_pad)
        self._keep(cache)
        return y

    def backward(self, dy: np.ndarray) -> np.ndarray:
        cache = self._take()
        if self._nd == 2:
            return F.avg_pool2d_backward(dy, cache)
        return F.avg_pool1d_backward(dy, cache)

    def extra_repr(self) -> str:
        s = super().extra_repr() + f", count_include_pad={self.count_include_pad}"
        if self.divisor_override is not None:
            s += f", divisor_override={self.divisor_override}"
        return s


class AvgPool1d(AvgPool2d):
    """1-D average pooling over (N, C, L).

    Args:
        kernel_size, stride, padding, ceil_mode, count_include_pad: as :class:`AvgPool2d`
        (ints or 1-tuples); there is no divisor_override, as in torch.nn.AvgPool1d.

    Shape:
        (N, C, L) -> (N, C, L_out),
        L_out = floor((L + 2*padding - kernel [+ stride-1 if ceil_mode]) / stride) + 1.
    """

    _nd = 1

    def __init__(self, kernel_size: Any, stride: Any = None, padding: Any = 0,
                 ceil_mode: bool = False, count_include_pad: bool = True) -> None:
        super().__init__(kernel_size, stride, padding, ceil_mode, count_include_pad)


# ---------------------------------------------------------------------------- LP


class LPPool2d(_PoolNd):
    """2-D power-average pooling: the p-norm of each window, (sum x**p) ** (1/p).

    Computed as PyTorch does: avg_pool2d(x**p) * kernel area, then ** (1/p); so
    with ceil_mode a partial window is scaled by area / (its clipped area).  The
    gradient is 0 through a window whose power sum is 0.  p = inf is max pooling
    of |x|, p = -inf the minimum of |x|.  Negative x with fractional p gives NaN.

    Args:
        norm_type: p, a non-zero number or +-inf.
        kernel_size: int or (h, w).
        stride: int or (h, w); None (default) means kernel_size.
        ceil_mode: ceil instead of floor in the output size.

    Shape:
        (N, C, H, W) -> (N, C, H_out, W_out),
        H_out = floor((H - kernel [+ stride-1 if ceil_mode]) / stride) + 1.
    """

    _nd = 2

    def __init__(self, norm_type: float, kernel_size: Any, stride: Any = None,
                 ceil_mode: bool = False) -> None:
        super().__init__(kernel_size, stride, 0, 1, ceil_mode)
        if isinstance(norm_type, bool) or not isinstance(norm_type, (int, float, np.number)) \
                or math.isnan(norm_type) or norm_type == 0:
            raise ConfigError(
                f"{type(self).__name__}: norm_type must be a non-zero number (or inf); "
                f"received {norm_type!r}"
            )
        self.norm_type = norm_type

    def forward(self, x: Any) -> np.ndarray:
        x = self._input(x)
        if self._nd == 2:
            y, cache = FLP.lp_pool2d_forward(x, self.norm_type, kernel_size=self.kernel_size,
                                           stride=self.stride, ceil_mode=self.ceil_mode)
        else:
            y, cache = FLP.lp_pool1d_forward(x, self.norm_type, kernel_size=self.kernel_size[0],
                                           stride=self.stride[0], ceil_mode=self.ceil_mode)
        self._keep(cache)
        return y

    def backward(self, dy: np.ndarray) -> np.ndarray:
        cache = self._take()
        if self._nd == 2:
            return FLP.lp_pool2d_backward(dy, cache)
        return FLP.lp_pool1d_backward(dy, cache)

    def extra_repr(self) -> str:
        return (f"norm_type={self.norm_type}, kernel_size={self.kernel_size}, "
                f"stride={self.stride}, ceil_mode={self.ceil_mode}")


class LPPool1d(LPPool2d):
    """1-D power-average pooling over (N, C, L).

    Args:
        as :class:`LPPool2d`, with int (or 1-tuple) kernel_size and stride.

    Shape:
        (N, C, L) -> (N, C, L_out),
        L_out = floor((L - kernel [+ stride-1 if ceil_mode]) / stride) + 1.
    """

    _nd = 1
