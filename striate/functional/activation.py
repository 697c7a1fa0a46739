"""Activation kernels: elementwise nonlinearities and PReLU (softmax: softmax.py).

Each activation is a pure pair ``name_forward(x, *, options) -> (y, cache)``
and ``name_backward(dy, cache) -> dx`` (PReLU also returns the weight
gradient).  Outputs keep the input's dtype.  The formulas, including the
gradient chosen at kinks, are PyTorch's (e.g. ReLU's gradient at exactly 0 is
0, ReLU6's is 0 at 0 and 6, LeakyReLU's at 0 is the negative slope).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np

from ._parallel import parallel_for

from .special import erfc

_SQRT1_2 = math.sqrt(0.5)
_INV_SQRT_2PI = 1.0 / math.sqrt(2.0 * math.pi)
_TANH_K = math.sqrt(2.0 / math.pi)         # GELU tanh approximation: sqrt(2/pi)
_TANH_C = 0.044715


# --------------------------------------------------------------------- ReLU family
@dataclass(frozen=True)
class MaskCache:
    """Where the input was on the sloped part: dx = dy * mask (+ slope elsewhere)."""

    mask: np.ndarray          # bool, same shape as x
    slope: float = 0.0        # gradient outside the mask


def relu_forward(x: np.ndarray, *, inplace: bool = False) -> tuple[np.ndarray, MaskCache]:
    """max(x, 0); the gradient at exactly 0 is 0 (as torch).

    Args:
        x: input.
        inplace: overwrite x with the result (x must be the caller's own temporary).

    Shape:
        any -> the same shape.

    Returns:
        (y, cache) for :func:`relu_backward`.
    """
    # Arithmetic, not np.where: np.where on a random mask is ~10x slower (branchy loop).
    positive = np.empty(x.shape, dtype=bool)
    y = x if inplace else np.empty_like(x)
    zero = x.dtype.type(0)

    def run(part: slice) -> None:
        np.greater(x[part], zero, out=positive[part])
        np.maximum(x[part], zero, out=y[part])

    _split(run, x)
    return y, MaskCache(positive)


def _split(run: Callable[[Any], None], x: np.ndarray) -> None:
    """run(part) over slices of axis 0 (threads for large arrays); a 0-D array is one part."""
    if x.ndim == 0:
        run(Ellipsis)
    else:
        parallel_for(lambda i, j: run(slice(i, j)), len(x), x.size)


def leaky_relu_forward(x: np.ndarray, *, negative_slope: float = 0.01
                       ) -> tuple[np.ndarray, MaskCache]:
    """x if x > 0 else negative_slope * x; the gradient at 0 is the slope.

    Args:
        x: input.
        negative_slope: the slope for x <= 0.

    Shape:
        any -> the same shape.

    Returns:
        (y, cache) for :func:`leaky_relu_backward`.
    """
    positive = x > 0
    factor = positive * x.dtype.type(1 - negative_slope) + x.dtype.type(negative_slope)
    return x * factor, MaskCache(positive, float(negative_slope))


def relu6_forward(x: np.ndarray) -> tuple[np.ndarray, MaskCache]:
    """min(max(x, 0), 6); gradient 1 on 0 < x < 6, 0 elsewhere including 0 and 6 (as torch).

    Args:
        x: input.

    Shape:
        any -> the same shape.

    Returns:
        (y, cache) for :func:`relu6_backward`.
    """
    inside = (x > 0) & (x < 6)
    return np.clip(x, 0, 6).astype(x.dtype, copy=False), MaskCache(inside)


def mask_backward(dy: np.ndarray, cache: MaskCache, *, inplace: bool = False) -> np.ndarray:
    """Gradient of relu/leaky_relu/relu6: dy where the mask holds, slope * dy elsewhere.

    ``inplace`` overwrites dy with the result (dy must be the caller's own temporary).
    """
    # Arithmetic on the mask (bool * float), ~10x faster than np.where on random masks.
    if cache.slope == 0.0 and dy.shape == cache.mask.shape:
        dx = dy if inplace else np.empty_like(dy)

        def run(part: slice) -> None:
            np.multiply(dy[part], cache.mask[part], out=dx[part])

        _split(run, dy)
        return dx
    if cache.slope == 0.0:
        return dy * cache.mask
    t = dy.dtype.type
    return dy * (cache.mask * t(1 - cache.slope) + t(cache.slope))


relu_backward = leaky_relu_backward = relu6_backward = mask_backward


# --------------------------------------------------------------------- ELU
@dataclass(frozen=True)
class EluCache:
    """The input and alpha: dx = dy if x > 0 else dy * alpha * exp(x)."""

    x: np.ndarray
    alpha: float


def elu_forward(x: np.ndarray, *, alpha: float = 1.0) -> tuple[np.ndarray, EluCache]:
    """x if x > 0 else alpha * (exp(x) - 1).

    Args:
        x: input.
        alpha: -alpha is the limit for x -> -inf.

    Shape:
        any -> the same shape.

    Returns:
        (y, cache) for :func:`elu_backward`.
    """
    neg = alpha * np.expm1(np.minimum(x, 0))        # no overflow for large positive x
    return np.where(x > 0, x, neg).astype(x.dtype, copy=False), EluCache(x, float(alpha))


def elu_backward(dy: np.ndarray, cache: EluCache) -> np.ndarray:
    """Gradient of elu_forward (alpha at x = 0, as torch)."""
    x = cache.x
    slope = cache.alpha * np.exp(np.minimum(x, 0))
    return np.where(x > 0, dy, dy * slope).astype(dy.dtype, copy=False)


# --------------------------------------------------------------------- sigmoid, tanh
@dataclass(frozen=True)
class OutputCache:
    """The output y; sigmoid and tanh gradients are functions of y alone."""

    y: np.ndarray


def sigmoid_forward(x: np.ndarray) -> tuple[np.ndarray, OutputCache]:
    """1 / (1 + exp(-x)), computed without overflow for any |x|.

    Args:
        x: input.

    Shape:
        any -> the same shape.

    Returns:
        (y, cache) for :func:`sigmoid_backward`.
    """
    e = np.exp(-np.abs(x))                          # in (0, 1]
    y = np.where(x >= 0, 1 / (1 + e), e / (1 + e)).astype(x.dtype, copy=False)
    return y, OutputCache(y)


def sigmoid_backward(dy: np.ndarray, cache: OutputCache) -> np.ndarray:
    """dy * y * (1 - y)."""
    y = cache.y
    return dy * y * (1 - y)


def tanh_forward(x: np.ndarray) -> tuple[np.ndarray, OutputCache]:
    """tanh(x).

    Args:
        x: input.

    Shape:
        any -> the same shape.

    Returns:
        (y, cache) for :func:`tanh_backward`.
    """
    y = np.tanh(x)
    return y, OutputCache(y)


def tanh_backward(dy: np.ndarray, cache: OutputCache) -> np.ndarray:
    """dy * (1 - y^2)."""
    y = cache.y
    return dy * (1 - y * y)


# --------------------------------------------------------------------- hardswish
@dataclass(frozen=True)
class InputCache:
    """The input x, all that hardswish's gradient needs."""

    x: np.ndarray


def hardswish_forward(x: np.ndarray) -> tuple[np.ndarray, InputCache]:
    """x * min(max(x + 3, 0), 6) / 6.

    Args:
        x: input.

    Shape:
        any -> the same shape.

    Returns:
        (y, cache) for :func:`hardswish_backward`.
    """
    y = (x * np.clip(x + 3, 0, 6) / 6).astype(x.dtype, copy=False)
    return y, InputCache(x)


def hardswish_backward(dy: np.ndarray, cache: InputCache) -> np.ndarray:
    """0 for x <= -3, dy * (x/3 + 1/2) for -3 < x < 3, dy for x >= 3 (torch's kinks)."""
    x = cache.x
    slope = np.where(x <= -3, 0, np.where(x < 3, x / 3 + 0.5, 1))
    return (dy * slope).astype(dy.dtype, copy=False)


# --------------------------------------------------------------------- softplus
@dataclass(frozen=True)
class SoftplusCache:
    """The input and the options of the gradient formula."""

    x: np.ndarray
    beta: float
    threshold: float


def softplus_forward(x: np.ndarray, *, beta: float = 1.0, threshold: float = 20.0
                     ) -> tuple[np.ndarray, SoftplusCache]:
    """log(1 + exp(beta*x)) / beta (overflow-free), or x itself where beta*x > threshold.

    Args:
        x: input.
        beta: sharpness (nonzero).
        threshold: above it the function is the identity.

    Shape:
        any -> the same shape.

    Returns:
        (y, cache) for :func:`softplus_backward`.
    """
    bx = x * beta
    y = np.where(bx > threshold, x, np.logaddexp(0, bx) / beta).astype(x.dtype, copy=False)
    return y, SoftplusCache(x, float(beta), float(threshold))


def softplus_backward(dy: np.ndarray, cache: SoftplusCache) -> np.ndarray:
    """dy * sigmoid(beta*x), or dy where beta*x > threshold."""
    bx = cache.x * cache.beta
    s, _ = sigmoid_forward(bx)
    return np.where(bx > cache.threshold, dy, dy * s).astype(dy.dtype, copy=False)


# --------------------------------------------------------------------- GELU
@dataclass(frozen=True)
class GeluCache:
    """The input and Phi(x) (exact) or tanh(inner) (approximate='tanh')."""

    x: np.ndarray
    aux: np.ndarray
    approximate: str


def gelu_forward(x: np.ndarray, *, approximate: str = "none") -> tuple[np.ndarray, GeluCache]:
    """x * Phi(x), Phi the standard normal CDF.

    Args:
        x: input.
        approximate: 'none': Phi(x) = erfc(-x / sqrt(2)) / 2, exact (computed
            in float64); 'tanh': torch's 0.5 * x * (1 + tanh(sqrt(2/pi) * (x + 0.044715 x^3))).

    Shape:
        any -> the same shape.

    Returns:
        (y, cache) for :func:`gelu_backward`.
    """
    if approximate == "tanh":
        t = np.tanh(_TANH_K * (x + _TANH_C * x * x * x))
        return (0.5 * x * (1 + t)).astype(x.dtype, copy=False), GeluCache(x, t, approximate)
    cdf = (0.5 * erfc(-_SQRT1_2 * x.astype(np.float64))).astype(x.dtype, copy=False)  # exact tail
    return x * cdf, GeluCache(x, cdf, approximate)


def gelu_backward(dy: np.ndarray, cache: GeluCache) -> np.ndarray:
    """dy * (Phi(x) + x * phi(x)), or the derivative of the tanh form."""
    x = cache.x
    if cache.approximate == "tanh":
        t = cache.aux
        inner_grad = _TANH_K * (1 + 3 * _TANH_C * x * x)
        return dy * (0.5 * (1 + t) + 0.5 * x * (1 - t * t) * inner_grad)
    pdf = _INV_SQRT_2PI * np.exp(-0.5 * x * x)
    return dy * (cache.aux + x * pdf)


# --------------------------------------------------------------------- PReLU
@dataclass(frozen=True)
class PreluCache:
    """The input and the (broadcastable) weight."""

    x: np.ndarray
    w: np.ndarray             # (C,) or (1,)


def _channel_view(w: np.ndarray, ndim: int) -> np.ndarray:
    """Reshape a (C,) weight to broadcast on axis 1 of an ndim-D input; (1,) stays scalar-like."""
    if w.size == 1 or ndim < 2:
        return w.reshape(())                                           # (1,) -> ()
    return w.reshape((1, -1) + (1,) * (ndim - 2))                      # (1, C, 1, ...)


def prelu_forward(x: np.ndarray, w: np.ndarray) -> tuple[np.ndarray, PreluCache]:
    """x if x > 0 else w[c] * x, w per channel (axis 1) or shared.

    Args:
        x: input.
        w: slopes, (C,) for C = x.shape[1], or (1,) shared.

    Shape:
        x (N, C, *) with w (C,) or (1,); x of any shape with w (1,). Output as x.

    Returns:
        (y, cache) for :func:`prelu_backward`.
    """
    wv = _channel_view(w, x.ndim)
    y = np.where(x > 0, x, wv * x).astype(x.dtype, copy=False)
    return y, PreluCache(x, w)


def prelu_backward(dy: np.ndarray, cache: PreluCache) -> tuple[np.ndarray, np.ndarray]:
    """(dx, dw): dx = dy if x > 0 else w * dy; dw = sum of x * dy where x <= 0."""
    x, w = cache.x, cache.w
    positive = x > 0
    dx = np.where(positive, dy, _channel_view(w, x.ndim) * dy).astype(dy.dtype, copy=False)
    contrib = np.where(positive, 0, x * dy)
    if w.size == 1 or x.ndim < 2:
        dw = np.sum(contrib).reshape(w.shape)                          # (1,)
    else:
        dw = contrib.sum(axis=(0,) + tuple(range(2, x.ndim)))          # (C,)
    return dx, dw.astype(w.dtype, copy=False)
