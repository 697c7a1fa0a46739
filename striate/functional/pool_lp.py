"""Power-average (LP) pooling: the p-norm of each window, PyTorch's lp_pool1d/lp_pool2d.

Built on the average pooling of x ** p (and, for p = +-inf, the max pooling of |x|)
of :mod:`striate.functional.pool`; the 1-D kernels run the 2-D ones over a height of 1.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .pool import (AvgPool2dCache, MaxPool2dCache, avg_pool2d_backward, avg_pool2d_forward,
                   max_pool2d_backward, max_pool2d_forward)


@dataclass(frozen=True)
class LPPool2dCache:
    """x, the pre-root window sum t, and the inner pooling's cache."""

    x: np.ndarray                            # (N, C, H, W)
    t: np.ndarray | None                     # (N, C, OH, OW); None for p = +-inf
    norm_type: float
    area: int
    inner: AvgPool2dCache | MaxPool2dCache


def lp_pool2d_forward(x: np.ndarray, norm_type: float, *, kernel_size: tuple[int, int],
                      stride: tuple[int, int], ceil_mode: bool = False
                      ) -> tuple[np.ndarray, LPPool2dCache]:
    """2-D power-average pooling, computed exactly as PyTorch's lp_pool2d.

    y = (sign(a) * relu(|a|) * KH*KW) ** (1/p) with a = avg_pool2d(x ** p) (no
    padding, count_include_pad), i.e. the p-norm of each window; the gradient
    is 0 where a == 0.  p = inf is max pooling of |x|, p = -inf the minimum of |x|.

    Shape:
        (N, C, H, W) -> (N, C, OH, OW), OH = floor((H - KH [+ sh-1 if ceil_mode]) / sh) + 1.

    Returns:
        (y, cache) for :func:`lp_pool2d_backward`.
    """
    p = float(norm_type)
    area = kernel_size[0] * kernel_size[1]
    if np.isinf(p):
        sign = 1.0 if p > 0 else -1.0
        m, inner = max_pool2d_forward(sign * np.abs(x), kernel_size=kernel_size, stride=stride,
                                      ceil_mode=ceil_mode)
        return sign * m, LPPool2dCache(x, None, p, area, inner)
    a, inner = avg_pool2d_forward(x ** p, kernel_size=kernel_size, stride=stride,
                                  ceil_mode=ceil_mode)
    t = a * x.dtype.type(area)   # torch's sign(a) * relu(|a|) * area, which is a * area
    with np.errstate(invalid="ignore", divide="ignore"):
        y = t ** (1.0 / p)
    return y, LPPool2dCache(x, t, p, area, inner)


def lp_pool2d_backward(dy: np.ndarray, cache: LPPool2dCache) -> np.ndarray:
    """Gradient of lp_pool2d_forward (0 through windows whose power sum is 0).

    Returns:
        dx (N, C, H, W).
    """
    x, p = cache.x, cache.norm_type
    if cache.t is None:
        sign = 1.0 if p > 0 else -1.0
        g = max_pool2d_backward(sign * dy, cache.inner)     # d/d(sign*|x|)
        return g * sign * np.sign(x)
    with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
        dt = dy * (1.0 / p) * cache.t ** (1.0 / p - 1.0)
        da = np.where(cache.t != 0, dt * x.dtype.type(cache.area), 0).astype(dy.dtype)
        g = avg_pool2d_backward(da, cache.inner)
        return g * p * x ** (p - 1.0)


def lp_pool1d_forward(x: np.ndarray, norm_type: float, *, kernel_size: int, stride: int,
                      ceil_mode: bool = False) -> tuple[np.ndarray, LPPool2dCache]:
    """1-D power-average pooling: lp_pool2d_forward over a height of 1.

    Shape:
        (N, C, L) -> (N, C, L_out), L_out = floor((L - K [+ s-1 if ceil_mode]) / s) + 1.
    """
    y, cache = lp_pool2d_forward(x[:, :, None, :], norm_type, kernel_size=(1, kernel_size),
                                 stride=(1, stride), ceil_mode=ceil_mode)  # (N, C, 1, L)
    return y[:, :, 0, :], cache                                          # (N, C, L_out)


def lp_pool1d_backward(dy: np.ndarray, cache: LPPool2dCache) -> np.ndarray:
    """Gradient of lp_pool1d_forward: dx (N, C, L)."""
    return lp_pool2d_backward(dy[:, :, None, :], cache)[:, :, 0, :]    # (N, C, 1, L_out)
