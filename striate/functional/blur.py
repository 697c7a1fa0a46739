"""Anti-aliased downsampling (BlurPool, Zhang 2019) and the padding it needs.

BlurPool low-pass filters each channel with a normalised binomial filter and
then subsamples: a depthwise convolution with stride, run by
:func:`striate.functional.conv.conv2d_forward` with groups=C.  The input is
first padded by ((k-1)//2, ceil((k-1)/2)) on each axis in one of three modes,
a pure forward/backward pair of its own (reflect, replicate, zero).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ..errors import ConfigError, ShapeError
from .conv import Conv2dCache, conv2d_backward, conv2d_forward

PAD_MODES = ("reflect", "replicate", "zero")
_NUMPY_MODE = {"reflect": "reflect", "replicate": "edge", "zero": "constant"}

Pads = tuple[tuple[int, int], tuple[int, int]]


def binomial_filter(filt_size: int) -> np.ndarray:
    """The 1-D binomial filter [C(k-1, 0), ..., C(k-1, k-1)] (unnormalised), e.g. [1, 2, 1]."""
    return np.array([math.comb(filt_size - 1, i) for i in range(filt_size)], dtype=np.float64)


def blur_filter2d(filt_size: int, channels: int, dtype: np.dtype = np.float32) -> np.ndarray:
    """The BlurPool weight: the outer product of the binomial filter, summing to 1, per channel.

    Shape:
        -> (channels, 1, filt_size, filt_size), a depthwise convolution weight.
    """
    a = binomial_filter(filt_size)
    f = np.outer(a, a) / np.sum(a) ** 2                           # (k, k), sums to 1
    return np.broadcast_to(f, (channels, 1, filt_size, filt_size)).astype(dtype)


def blur_pads(filt_size: int) -> Pads:
    """((top, bottom), (left, right)) = ((k-1)//2, ceil((k-1)/2)) on both axes."""
    p = ((filt_size - 1) // 2, filt_size // 2)
    return (p, p)


# ---------------------------------------------------------------------------- padding


@dataclass(frozen=True)
class PadCache:
    """The unpadded shape, the pads and the mode."""

    x_shape: tuple[int, int, int, int]
    pads: Pads
    mode: str


def pad_forward(x: np.ndarray, pads: Pads, *, mode: str = "zero"
                ) -> tuple[np.ndarray, PadCache]:
    """Pad the last two axes of (N, C, H, W), as torch.nn.functional.pad.

    Args:
        x: input (N, C, H, W).
        pads: ((top, bottom), (left, right)), each >= 0.
        mode: 'reflect' (mirror without repeating the edge; pads < the size),
            'replicate' (repeat the edge) or 'zero'.

    Shape:
        (N, C, H, W) -> (N, C, H + top + bottom, W + left + right).

    Returns:
        (y, cache) for :func:`pad_backward`.
    """
    if mode not in _NUMPY_MODE:
        raise ConfigError(f"pad: mode must be one of {PAD_MODES}; received {mode!r}")
    (pt, pb), (pl, pr) = pads
    if mode == "reflect" and (max(pt, pb) >= x.shape[2] or max(pl, pr) >= x.shape[3]):
        raise ShapeError(f"pad: reflect padding {pads} needs each padding smaller than the "
                         f"input size; received input {tuple(x.shape)}")
    y = np.pad(x, ((0, 0), (0, 0), (pt, pb), (pl, pr)), mode=_NUMPY_MODE[mode])
    return y, PadCache(tuple(x.shape), pads, mode)


def _fold_last(g: np.ndarray, before: int, after: int, mode: str) -> np.ndarray:
    """Adjoint of padding the last axis: fold the padded border back onto the input.

    Shape:
        (..., before + L + after) -> (..., L).
    """
    size = g.shape[-1] - before - after
    out = g[..., before:before + size].copy()
    if mode == "reflect":
        # padded position before-1-m mirrors input 1+m; before+size+m mirrors size-2-m
        out[..., 1:before + 1] += g[..., :before][..., ::-1]
        out[..., size - 1 - after:size - 1] += g[..., before + size:][..., ::-1]
    elif mode == "replicate":
        out[..., 0] += g[..., :before].sum(axis=-1)
        out[..., size - 1] += g[..., before + size:].sum(axis=-1)
    return out


def pad_backward(dy: np.ndarray, cache: PadCache) -> np.ndarray:
    """Gradient of pad_forward: dx (N, C, H, W) (border gradients added to their sources)."""
    (pt, pb), (pl, pr) = cache.pads
    g = _fold_last(dy, pl, pr, cache.mode)                           # (N, C, Hp, W)
    g = _fold_last(g.swapaxes(2, 3), pt, pb, cache.mode)            # (N, C, W, H)
    return np.ascontiguousarray(g.swapaxes(2, 3))                    # (N, C, H, W)


# ---------------------------------------------------------------------------- blur pool


@dataclass(frozen=True)
class BlurPool2dCache:
    """The padding's cache and the depthwise convolution's cache."""

    pad: PadCache
    conv: Conv2dCache


def blur_pool2d_forward(x: np.ndarray, filt: np.ndarray, *, stride: int = 2,
                        pad_mode: str = "reflect") -> tuple[np.ndarray, BlurPool2dCache]:
    """Anti-aliased downsampling: pad, depthwise low-pass filter, subsample.

    Args:
        x: input (N, C, H, W).
        filt: depthwise filter (C, 1, k, k), e.g. :func:`blur_filter2d`.
        stride: subsampling factor.
        pad_mode: 'reflect', 'replicate' or 'zero' (see :func:`pad_forward`).

    Shape:
        (N, C, H, W) -> (N, C, OH, OW), OH = floor((H - 1) / stride) + 1 = ceil(H / stride).

    Returns:
        (y, cache) for :func:`blur_pool2d_backward`.
    """
    c = x.shape[1]
    xp, pad_cache = pad_forward(x, blur_pads(filt.shape[-1]), mode=pad_mode)
    y, conv_cache = conv2d_forward(xp, filt, None, stride=(stride, stride), groups=c)
    return y, BlurPool2dCache(pad_cache, conv_cache)


def blur_pool2d_backward(dy: np.ndarray, cache: BlurPool2dCache) -> np.ndarray:
    """Gradient of blur_pool2d_forward with respect to x (the filter is fixed).

    Returns:
        dx (N, C, H, W).
    """
    dxp, _, _ = conv2d_backward(dy, cache.conv)
    return pad_backward(dxp, cache.pad)
