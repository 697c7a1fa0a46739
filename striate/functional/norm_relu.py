"""Batch norm followed by ReLU (optionally after adding a residual), as one operation.

relu(batch_norm(x) [+ residual]) is how every convolution of a ResNet ends (and
conv -> BN -> ReLU is the pattern of most CNNs).  Fused, the ReLU costs no pass
of its own: with the compiled kernels (:mod:`.norm_jit`) the affine pass applies
it, and without a residual the backward pass recomputes its mask from the batch
norm's input, so nothing extra is stored.  Without the kernels (or for inputs they
do not take) the two operations run one after the other, with the same results.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import ShapeError
from . import norm_jit
from .activation import MaskCache, mask_backward, relu_forward
from .norm import (BatchNormCache, _per_channel, backward_compiled, batch_norm_backward,
                   batch_norm_forward, compiled_affine)

__all__ = ["BatchNormReluCache", "batch_norm_relu_forward", "batch_norm_relu_backward"]


@dataclass(frozen=True)
class BatchNormReluCache:
    """The batch norm's cache and what the ReLU's gradient needs (one of the two)."""

    norm: BatchNormCache
    pre: tuple[np.ndarray, np.ndarray] | None   # (scale, shift): the mask is recomputed from x
    mask: MaskCache | None                      # the ReLU's mask, when it was stored
    residual: bool                              # a residual was added before the ReLU


def batch_norm_relu_forward(x: np.ndarray, mean: np.ndarray, var: np.ndarray,
                            weight: np.ndarray | None, bias: np.ndarray | None, *,
                            eps: float = 1e-5, batch_stats: bool = True,
                            centred: np.ndarray | None = None,
                            residual: np.ndarray | None = None
                            ) -> tuple[np.ndarray, BatchNormReluCache]:
    """y = relu((x - mean) / sqrt(var + eps) * weight + bias [+ residual]), per channel.

    Args:
        x, mean, var, weight, bias, eps, batch_stats, centred: as
            :func:`striate.functional.norm.batch_norm_forward`.
        residual: added after the batch norm and before the ReLU (a residual block's
            shortcut), x's shape; or None.

    Shape:
        (N, C, *)[, (N, C, *)] -> (N, C, *).

    Returns:
        (y, cache) for :func:`batch_norm_relu_backward`.
    """
    if residual is not None and residual.shape != x.shape:
        raise ShapeError(f"batch_norm_relu: the residual {tuple(residual.shape)} must have the "
                         f"input's shape {tuple(x.shape)}")
    r = None if residual is None else residual.astype(x.dtype, copy=False)
    if centred is None and x.size > 0 and norm_jit.ready(*([x] if r is None else [x, r])):
        scale, shift, cache = compiled_affine(x, mean, var, weight, bias, eps=eps,
                                              batch_stats=batch_stats)
        y, mask = norm_jit.affine_relu(x, mean, scale, shift, r)
        if mask is None:
            return y, BatchNormReluCache(cache, (scale, shift), None, False)
        return y, BatchNormReluCache(cache, None, MaskCache(mask), True)
    y, cache = batch_norm_forward(x, mean, var, weight, bias, eps=eps, batch_stats=batch_stats,
                                  centred=centred)
    if r is not None:
        y += r
    y, relu = relu_forward(y, inplace=True)
    return y, BatchNormReluCache(cache, None, relu, r is not None)


def batch_norm_relu_backward(dy: np.ndarray, cache: BatchNormReluCache
                             ) -> tuple[np.ndarray, np.ndarray | None, np.ndarray | None,
                                        np.ndarray | None]:
    """Gradients of batch_norm_relu_forward.

    Returns:
        (dx (N, C, *), dresidual (N, C, *) or None, dweight (C,) or None, dbias (C,) or None);
        dresidual is the gradient at the ReLU's input (the same for both summands).
    """
    norm = cache.norm
    if cache.pre is not None:                              # compiled, mask recomputed from x
        dy = np.ascontiguousarray(dy, dtype=norm.x.dtype)
        if norm_jit.ready(dy, norm.x):
            dx, dw, db = backward_compiled(dy, norm, cache.pre)
            return dx, None, dw, db
        scale, shift = cache.pre                           # the kernels were switched off since
        nd = dy.ndim
        pre = (norm.x - _per_channel(norm.mean, nd)) * _per_channel(scale, nd) + _per_channel(shift, nd)
        g = mask_backward(dy, MaskCache(pre > 0))
    else:
        g = mask_backward(dy, cache.mask)
    dx, dw, db = batch_norm_backward(g, norm)
    return dx, (g if cache.residual else None), dw, db

