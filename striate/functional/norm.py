"""Normalisation kernels: batch normalisation and local response normalisation.

Both work on (N, C, *) arrays with channels on axis 1.  Batch norm's running
statistics are state, so they live in the layer; the kernels here are pure.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from . import norm_jit
from ._parallel import parallel_for, parallel_sum


def _per_channel(v: np.ndarray, ndim: int) -> np.ndarray:
    """A (C,) vector reshaped to broadcast over an ndim-D (N, C, *) array."""
    return v.reshape((1, -1) + (1,) * (ndim - 2))                    # (1, C, 1, ...)


# --------------------------------------------------------------------- batch norm
@dataclass(frozen=True)
class BatchNormCache:
    """What batch_norm_backward needs (xhat = centred * inv_std is not stored)."""

    centred: np.ndarray | None     # (N, C, *) x - mean; None on the compiled path (x, mean kept)
    inv_std: np.ndarray            # (C,) 1 / sqrt(var + eps)
    weight: np.ndarray | None      # (C,) or None (affine=False)
    has_bias: bool
    batch_stats: bool              # mean and var were this batch's own moments
    x: np.ndarray | None = None    # (N, C, *) the input, when centred is None
    mean: np.ndarray | None = None  # (C,) in x's dtype, when centred is None


def _as3d(a: np.ndarray) -> np.ndarray:
    """(N, C, *) -> (N, C, P) with P = prod(*) (1 for (N, C))."""
    return a.reshape(a.shape[0], a.shape[1], int(np.prod(a.shape[2:])))   # (N, C, P); N may be 0


def channel_sum(a: np.ndarray) -> np.ndarray:
    """Sum over every axis but 1, as a matrix-vector product (3x faster than ``sum``).

    Shape:
        (N, C, *) -> (C,).
    """
    a3 = _as3d(a)                                                    # (N, C, P)
    return np.matmul(a3, np.ones(a3.shape[2], dtype=a.dtype)).sum(axis=0)


def channel_dot(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """sum(a * b) over every axis but 1, without the product array (split over threads).

    Shape:
        (N, C, *), (N, C, *) -> (C,).
    """
    a3, b3 = _as3d(a), _as3d(b)                                      # (N, C, P)
    return parallel_sum(lambda i, j: np.einsum("ncp,ncp->c", a3[i:j], b3[i:j]), len(a3), a.size)


def _centre(x: np.ndarray, mean: np.ndarray) -> np.ndarray:
    """x - mean per channel, split over threads."""
    out = np.empty_like(x)
    m = _per_channel(mean.astype(x.dtype, copy=False), x.ndim)

    def run(i: int, j: int) -> None:
        np.subtract(x[i:j], m, out=out[i:j])

    parallel_for(run, len(x), x.size)
    return out


def batch_centred_moments(x: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """x - mean, the per-channel mean and the biased variance (two passes, no x**2 array).

    With the compiled passes (llvmlite installed; :mod:`.norm_jit`) centred is None:
    :func:`batch_norm_forward` then works from x and the mean directly.

    Shape:
        x (N, C, *) -> centred (N, C, *) or None, mean (C,), var (C,).
    """
    if norm_jit.ready(x) and x.size:
        mean, var = norm_jit.moments(x)
        return None, mean, var
    m = x.size // x.shape[1]
    mean = channel_sum(x) / m
    centred = _centre(x, mean)
    var = channel_dot(centred, centred) / m
    return centred, mean, var


def batch_moments(x: np.ndarray) -> tuple[np.ndarray, np.ndarray, int]:
    """Per-channel mean and biased variance over every axis but 1.

    Shape:
        x (N, C, *) -> mean (C,), var (C,); also returns the count
        M = N * prod(*) of values per channel.
    """
    _, mean, var = batch_centred_moments(x)
    return mean, var, x.size // x.shape[1]


def batch_norm_forward(x: np.ndarray, mean: np.ndarray, var: np.ndarray,
                       weight: np.ndarray | None, bias: np.ndarray | None, *,
                       eps: float = 1e-5, batch_stats: bool = True,
                       centred: np.ndarray | None = None
                       ) -> tuple[np.ndarray, BatchNormCache]:
    """y = (x - mean) / sqrt(var + eps) * weight + bias, per channel (axis 1).

    Args:
        x: input (N, C, *).
        mean, var: (C,) statistics: the batch's own (from :func:`batch_centred_moments`,
            training) or running ones (evaluation).
        weight, bias: (C,) affine parameters, or None.
        eps: added to the variance.
        batch_stats: whether mean and var are x's own moments; backward then
            differentiates through them as well.
        centred: x - mean if already computed (saves a pass).

    Shape:
        (N, C, *) -> (N, C, *).

    Returns:
        (y, cache) for :func:`batch_norm_backward`.
    """
    nd = x.ndim
    if centred is None and norm_jit.ready(x):                      # one compiled pass
        scale, shift, cache = compiled_affine(x, mean, var, weight, bias, eps=eps,
                                              batch_stats=batch_stats)
        return norm_jit.affine(x, mean, scale, shift), cache
    inv_std = 1.0 / np.sqrt(var + eps)
    if centred is None:
        centred = _centre(x, mean)
    scale = inv_std if weight is None else weight * inv_std
    scale = _per_channel(scale.astype(x.dtype, copy=False), nd)
    shift = None if bias is None else _per_channel(bias.astype(x.dtype, copy=False), nd)
    y = np.empty_like(centred)

    def run(i: int, j: int) -> None:
        np.multiply(centred[i:j], scale, out=y[i:j])                # one pass: xhat * weight
        if shift is not None:
            y[i:j] += shift

    parallel_for(run, len(x), x.size)
    cache = BatchNormCache(centred, inv_std, weight, bias is not None, batch_stats)
    return y, cache


def compiled_affine(x: np.ndarray, mean: np.ndarray, var: np.ndarray, weight: np.ndarray | None,
                    bias: np.ndarray | None, *, eps: float, batch_stats: bool
                    ) -> tuple[np.ndarray, np.ndarray, BatchNormCache]:
    """The compiled path's per-channel (scale, shift), in x's dtype, and its cache (x, mean).

    y = (x - mean) * scale + shift; fused kernels recompute that from the same vectors.
    """
    c = x.shape[1]
    inv_std = 1.0 / np.sqrt(var + eps)
    scale = inv_std if weight is None else weight * inv_std
    shift = np.zeros(c) if bias is None else bias
    scale, shift = (np.ascontiguousarray(np.broadcast_to(v, (c,)), dtype=x.dtype) for v in (scale, shift))
    mean_x = np.asarray(mean, dtype=x.dtype)
    return scale, shift, BatchNormCache(None, inv_std, weight, bias is not None, batch_stats, x, mean_x)


def batch_norm_backward(dy: np.ndarray, cache: BatchNormCache
                        ) -> tuple[np.ndarray, np.ndarray | None, np.ndarray | None]:
    """Gradients of batch_norm_forward.

    With batch statistics (training) the mean and variance depend on x:
    dx = inv_std * (g - mean(g) - xhat * mean(g * xhat)), g = dy * weight;
    with fixed statistics (evaluation) dx = g * inv_std.

    Returns:
        (dx (N, C, *), dweight (C,) or None, dbias (C,) or None).
    """
    if cache.centred is None:
        dy = np.ascontiguousarray(dy, dtype=cache.x.dtype)
        if norm_jit.ready(dy, cache.x):
            return backward_compiled(dy, cache)
        cache = replace(cache, centred=_centre(cache.x, cache.mean))
    nd = dy.ndim
    centred, inv_std = cache.centred, cache.inv_std
    # Two per-channel sums give dweight, dbias and (training) both mean terms: with
    # a = weight * inv_std, M values per channel and xhat = centred * inv_std,
    # dx = a * dy - a * sum(dy) / M - centred * a * inv_std * sum(dy * xhat) / M.
    need_dx_xhat = cache.weight is not None or cache.batch_stats
    s_dy_xhat = channel_dot(dy, centred) * inv_std if need_dx_xhat else None   # (C,)
    s_dy = channel_sum(dy) if cache.has_bias or cache.batch_stats else None
    a = inv_std if cache.weight is None else cache.weight * inv_std
    scale = _per_channel(a.astype(dy.dtype, copy=False), nd)
    if cache.batch_stats:
        m = dy.size // dy.shape[1]
        k_centred = _per_channel((a * inv_std * s_dy_xhat / m).astype(dy.dtype, copy=False), nd)
        k_const = _per_channel((a * s_dy / m).astype(dy.dtype, copy=False), nd)
    dx = np.empty_like(dy)

    def run(i: int, j: int) -> None:
        np.multiply(dy[i:j], scale, out=dx[i:j])
        if cache.batch_stats:
            shift = centred[i:j] * k_centred
            shift += k_const
            dx[i:j] -= shift

    parallel_for(run, len(dy), dy.size)
    dweight = None if cache.weight is None else s_dy_xhat
    dbias = s_dy if cache.has_bias else None
    return dx, dweight, dbias


def backward_compiled(dy: np.ndarray, cache: BatchNormCache,
                      relu: tuple[np.ndarray, np.ndarray] | None = None
                      ) -> tuple[np.ndarray, np.ndarray | None, np.ndarray | None]:
    """batch_norm_backward from x and the mean: one pass for the two sums, one for dx.

    ``relu=(scale, shift)``: the gradient of relu(batch norm) (from
    :func:`compiled_affine`'s vectors; the ReLU's mask is recomputed from x).
    """
    inv_std = cache.inv_std.astype(np.float64)
    s_dy, s_dy_dev = norm_jit.grad_sums(dy, cache.x, cache.mean, relu)   # float64 (C,)
    s_dy_xhat = s_dy_dev * inv_std
    a = inv_std if cache.weight is None else cache.weight * inv_std
    if cache.batch_stats:
        m = dy.size // dy.shape[1]
        k_dev, k_const = a * inv_std * s_dy_xhat / m, a * s_dy / m
    else:
        k_dev = k_const = np.zeros_like(a)
    dx = norm_jit.grad_input(dy, cache.x, cache.mean, a, k_dev, k_const, relu)
    dt = dy.dtype
    dweight = None if cache.weight is None else s_dy_xhat.astype(dt)
    dbias = s_dy.astype(dt) if cache.has_bias else None
    return dx, dweight, dbias


# --------------------------------------------------------------------- local response norm
@dataclass(frozen=True)
class LocalResponseNormCache:
    """The input, the denominator's base k + alpha/size * sum(x^2), and the options."""

    x: np.ndarray                  # (N, C, *)
    base: np.ndarray               # (N, C, *)
    size: int
    alpha: float
    beta: float


def channel_window_sum(a: np.ndarray, before: int, after: int) -> np.ndarray:
    """out[:, c] = sum of a[:, c - before .. c + after] (channels outside count as 0).

    Shape:
        (N, C, *) -> (N, C, *).
    """
    c = a.shape[1]
    widths = [(0, 0)] * a.ndim
    widths[1] = (before, after)
    ap = np.pad(a, widths)                                           # (N, C+before+after, *)
    out = np.zeros_like(a)
    for i in range(before + after + 1):                              # loop over window offsets
        out += ap[:, i:i + c]
    return out


def local_response_norm_forward(x: np.ndarray, *, size: int, alpha: float = 1e-4,
                                beta: float = 0.75, k: float = 1.0
                                ) -> tuple[np.ndarray, LocalResponseNormCache]:
    """Normalise each value by its neighbours across channels (AlexNet's LRN), as torch.

    y[:, c] = x[:, c] / (k + alpha/size * sum_{j=c-size//2}^{c+(size-1)//2} x[:, j]^2)^beta,
    channels outside [0, C) counting as 0 (torch pads size//2 before and
    (size-1)//2 after, then averages over the window of ``size``).

    Args:
        x: input (N, C, *) with at least one trailing axis.
        size: number of channels in the window.
        alpha, beta, k: the formula's constants.

    Shape:
        (N, C, *) -> (N, C, *).

    Returns:
        (y, cache) for :func:`local_response_norm_backward`.
    """
    sq_sum = channel_window_sum(x * x, size // 2, (size - 1) // 2)
    base = k + (alpha / size) * sq_sum
    y = x * base ** -beta
    cache = LocalResponseNormCache(x, base, int(size), float(alpha), float(beta))
    return y.astype(x.dtype, copy=False), cache


def local_response_norm_backward(dy: np.ndarray, cache: LocalResponseNormCache) -> np.ndarray:
    """Gradient of local_response_norm_forward.

    dx[j] = dy[j] * base[j]^-beta
            - 2 * alpha * beta / size * x[j] * sum_{c: j in window(c)} dy[c] * x[c] * base[c]^(-beta-1);
    the channels c whose window holds j are j - (size-1)//2 .. j + size//2.

    Returns:
        dx (N, C, *).
    """
    x, base, size, beta = cache.x, cache.base, cache.size, cache.beta
    scale = base ** -beta
    t = dy * x * scale / base
    back = channel_window_sum(t, (size - 1) // 2, size // 2)
    dx = dy * scale - (2.0 * cache.alpha * beta / size) * x * back
    return dx.astype(dy.dtype, copy=False)
