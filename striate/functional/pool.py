"""Sliding-window pooling kernels: max and average pooling (LP pooling: pool_lp.py).

Each operation is a pure ``xxx_forward(x, ...) -> (y, cache)`` and
``xxx_backward(dy, cache) -> dx`` pair with PyTorch's exact semantics: its
output-size rule (including ``ceil_mode``), its divisors and its choice of the
first maximum of a window.  The 1-D kernels run the 2-D ones over a height of 1.
Loops run over kernel offsets only (KH*KW passes over strided views; KH + KW
for the separable window sums of average pooling).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import ShapeError
from . import _jit_pool
from ._parallel import parallel_for
from .im2col import pad2d


def pool_out_size(size: int, k: int, stride: int, pad: int, dilation: int = 1,
                  ceil_mode: bool = False) -> int:
    """PyTorch's pooled length.

    out = floor((size + 2*pad - d*(k-1) - 1 [+ stride-1 if ceil_mode]) / stride) + 1,
    and with ``ceil_mode`` the last window must start inside the input or the
    left padding (otherwise it is dropped).
    """
    num = size + 2 * pad - dilation * (k - 1) - 1 + (stride - 1 if ceil_mode else 0)
    out = num // stride + 1
    if ceil_mode and (out - 1) * stride >= size + pad:
        out -= 1
    return out


def _geometry(hw: tuple[int, int], kernel: tuple[int, int], stride: tuple[int, int],
              padding: tuple[int, int], dilation: tuple[int, int], ceil_mode: bool,
              what: str) -> tuple[tuple[int, int], tuple[tuple[int, int], tuple[int, int]]]:
    """Output size and the (before, after) padding that makes every window fit.

    The after-padding exceeds ``padding`` when ``ceil_mode`` adds a last,
    partial window; it is 0 or more rows of the fill value.
    """
    out, pads = [], []
    for size, k, s, p, d in zip(hw, kernel, stride, padding, dilation):
        o = pool_out_size(size, k, s, p, d, ceil_mode)
        if o < 1:
            raise ShapeError(
                f"{what}: kernel {kernel} (dilation {dilation}) is larger than the padded "
                f"input {tuple(h + 2 * q for h, q in zip(hw, padding))}"
            )
        need = (o - 1) * s + d * (k - 1) + 1
        out.append(o)
        pads.append((p, max(need - size - p, 0)))
    return (out[0], out[1]), (pads[0], pads[1])


def _offset_slice(i: int, d: int, s: int, n: int) -> slice:
    """Rows i*d, i*d + s, ..., i*d + s*(n-1) of a padded axis."""
    return slice(i * d, i * d + s * (n - 1) + 1, s)


# ---------------------------------------------------------------------------- max


@dataclass(frozen=True)
class MaxPool2dCache:
    """The argmax of each window as a kernel offset i*KW + j (-1: none) and the geometry."""

    arg: np.ndarray                          # (N, C, OH, OW) int8 (int32 for > 127 offsets)
    x_shape: tuple[int, int, int, int]
    kernel: tuple[int, int]
    stride: tuple[int, int]
    dilation: tuple[int, int]
    pads: tuple[tuple[int, int], tuple[int, int]]


def _first_valid(start: np.ndarray, size: int, k: int, d: int) -> tuple[np.ndarray, np.ndarray]:
    """First kernel offset of each window that lies inside the input, and whether it exists."""
    i0 = (np.maximum(-start, 0) + d - 1) // d
    return i0, (i0 < k) & (start + i0 * d < size)


def max_pool2d_forward(x: np.ndarray, *, kernel_size: tuple[int, int],
                       stride: tuple[int, int], padding: tuple[int, int] = (0, 0),
                       dilation: tuple[int, int] = (1, 1), ceil_mode: bool = False,
                       with_argmax: bool = True) -> tuple[np.ndarray, MaxPool2dCache | None]:
    """2-D max pooling (PyTorch's max_pool2d).

    Padding is -inf, so it is never the maximum.  Ties keep the first maximum in
    row-major window order and a NaN wins (as PyTorch's CPU kernel); a window
    with no value above -inf points at its first in-input position.

    Args:
        x: input (N, C, H, W).
        kernel_size, stride, padding, dilation: (h, w) pairs.
        ceil_mode: use ceil instead of floor for the output size.
        with_argmax: find each window's argmax for backward (False: inference,
            the cache is None).

    Shape:
        (N, C, H, W) -> (N, C, OH, OW),
        OH = floor((H + 2*ph - dh*(KH-1) - 1 [+ sh-1 if ceil_mode]) / sh) + 1.

    Returns:
        (y, cache) for :func:`max_pool2d_backward`.
    """
    n, c, h, w = x.shape
    (kh, kw), (sh, sw), (dh, dw) = kernel_size, stride, dilation
    (oh, ow), pads = _geometry((h, w), kernel_size, stride, padding, dilation, ceil_mode,
                               "max_pool2d")
    if (not with_argmax and (kh, kw, sh, sw, dh, dw) == (2, 2, 2, 2, 1, 1) and padding == (0, 0)
            and h % 2 == 0 and w % 2 == 0 and x.flags.c_contiguous):
        return _max_pool_2x2(x), None
    if (with_argmax and x.flags.c_contiguous
            and _jit_pool.usable(x.dtype, (h, w), kernel_size, stride, padding, dilation)):
        best, arg = _jit_pool.max_pool_2x2(x)                    # one compiled pass
        return best, MaxPool2dCache(arg, (n, c, h, w), (kh, kw), (sh, sw), (dh, dw), pads)
    xp = pad2d(x, pads, value=-np.inf)
    best = np.empty((n, c, oh, ow), dtype=x.dtype)
    arg = np.empty((n, c, oh, ow), dtype=_arg_dtype(kh * kw)) if with_argmax else None
    i0, ok_h = _first_valid(np.arange(oh) * sh - padding[0], h, kh, dh)
    j0, ok_w = _first_valid(np.arange(ow) * sw - padding[1], w, kw, dw)
    k0 = np.where(ok_h[:, None] & ok_w[None, :], i0[:, None] * kw + j0[None, :], -1)  # (OH, OW)

    def run(start: int, stop: int) -> None:
        views = [xp[start:stop, :, _offset_slice(i, dh, sh, oh), _offset_slice(j, dw, sw, ow)]
                 for i in range(kh) for j in range(kw)]               # KH*KW x (n, C, OH, OW)
        _window_max(views, best[start:stop], None if arg is None else arg[start:stop], k0)

    parallel_for(run, n, xp.size)
    if arg is None:
        return best, None
    return best, MaxPool2dCache(arg, (n, c, h, w), (kh, kw), (sh, sw), (dh, dw), pads)


_BLOCK_ROWS = 2048


def _max_pool_2x2(x: np.ndarray) -> np.ndarray:
    """2x2, stride-2 max pooling of a contiguous array with even H and W (no argmax).

    The maximum of each pair of rows first (two contiguous rows of W values), then
    of each pair of neighbours in that half-size array: two passes, the first over
    long contiguous runs, instead of three over four stride-2 views.

    Shape:
        (N, C, H, W) -> (N, C, H/2, W/2)
    """
    n, c, h, w = x.shape
    pairs = x.reshape(n * c * h // 2, 2, w)                          # (R, 2, W) row pairs
    y = np.empty((n, c, h // 2, w // 2), dtype=x.dtype)
    out = y.reshape(len(pairs), w // 2)                              # (R, W/2)

    def run(start: int, stop: int) -> None:
        rows = np.empty((min(_BLOCK_ROWS, stop - start), w), dtype=x.dtype)   # (r, W)
        for a in range(start, stop, _BLOCK_ROWS):       # blocks whose rows stay in the cache
            b = min(a + _BLOCK_ROWS, stop)
            r = rows[:b - a]
            np.maximum(pairs[a:b, 0], pairs[a:b, 1], out=r)
            np.maximum(r[:, 0::2], r[:, 1::2], out=out[a:b])

    parallel_for(run, len(pairs), x.size)
    return y


def _arg_dtype(taps: int) -> type:
    """The narrowest integer type for kernel offsets -1 .. taps-1 (less memory traffic)."""
    return np.int8 if taps <= 127 else np.int32


def _window_max(views: list[np.ndarray], best: np.ndarray, arg: np.ndarray | None,
                k0: np.ndarray) -> None:
    """Max over the window views into ``best`` and (unless None) the first argmax into ``arg``.

    The maximum is a chain of np.maximum (a NaN propagates, as in torch); the first
    offset that attains it is found going over the offsets last-to-first, with
    arithmetic instead of masked writes (branch-free). A NaN's offset wins; a window
    of only padding / -inf points at ``k0``, torch's first in-input offset.
    """
    if len(views) == 1:
        np.copyto(best, views[0])
    else:
        np.maximum(views[0], views[1], out=best)
    for v in views[2:]:
        np.maximum(best, v, out=best)
    if arg is None:
        return
    t = arg.dtype.type
    arg.fill(len(views) - 1)
    for k in range(len(views) - 2, -1, -1):
        tie = views[k] == best
        arg -= tie * (arg - t(k))
    nan = np.isnan(best)
    if nan.any():
        for k in range(len(views) - 1, -1, -1):
            np.copyto(arg, k, where=nan & np.isnan(views[k]))
    empty = best == -np.inf
    if empty.any():
        np.copyto(arg, np.broadcast_to(k0.astype(arg.dtype), arg.shape), where=empty)


def max_pool2d_backward(dy: np.ndarray, cache: MaxPool2dCache) -> np.ndarray:
    """Gradient of max_pool2d_forward: dy goes to each window's argmax (summed where shared).

    Args:
        dy: upstream gradient (N, C, OH, OW).

    Returns:
        dx (N, C, H, W).
    """
    n, c, h, w = cache.x_shape
    (kh, kw), (sh, sw), (dh, dw) = cache.kernel, cache.stride, cache.dilation
    (pt, pb), (pl, pr) = cache.pads
    oh, ow = dy.shape[2:]
    if cache.arg.dtype == np.int8 and _jit_pool.usable(dy.dtype, (h, w), cache.kernel, cache.stride,
                                                       (pt + pb, pl + pr), cache.dilation):
        return _jit_pool.max_pool_2x2_backward(dy, cache.arg, cache.x_shape)
    dxp = np.empty((n, c, h + pt + pb, w + pl + pr), dtype=dy.dtype)
    # Windows that tile the input exactly (e.g. 2x2, stride 2) write each value once.
    tiles = (kh, kw) == (sh, sw) and (dh, dw) == (1, 1) and dxp.shape[2:] == (oh * sh, ow * sw)

    def run(start: int, stop: int) -> None:
        part, g, arg = dxp[start:stop], dy[start:stop], cache.arg[start:stop]
        if not tiles:
            part.fill(0)
        for i in range(kh):
            for j in range(kw):
                region = part[:, :, _offset_slice(i, dh, sh, oh), _offset_slice(j, dw, sw, ow)]
                if tiles:
                    np.multiply(g, arg == i * kw + j, out=region)
                else:
                    region += g * (arg == i * kw + j)

    parallel_for(run, n, dxp.size)
    return np.ascontiguousarray(dxp[:, :, pt:pt + h, pl:pl + w])


def max_pool2d_indices(cache: MaxPool2dCache) -> np.ndarray:
    """PyTorch's ``return_indices`` output: the flat index h*W + w of each argmax (int64)."""
    _, _, h, w = cache.x_shape
    kw = cache.kernel[1]
    (sh, sw), (dh, dw) = cache.stride, cache.dilation
    oh, ow = cache.arg.shape[2:]
    start_h = np.arange(oh) * sh - cache.pads[0][0]
    start_w = np.arange(ow) * sw - cache.pads[1][0]
    arg = cache.arg.astype(np.int64)
    none = arg < 0
    # A window without a finite maximum reports its first non-negative position, as PyTorch.
    i = np.where(none, ((np.maximum(-start_h, 0) + dh - 1) // dh)[:, None], arg // kw)
    j = np.where(none, ((np.maximum(-start_w, 0) + dw - 1) // dw)[None, :], arg % kw)
    return (start_h[:, None] + i * dh) * w + (start_w[None, :] + j * dw)


# ---------------------------------------------------------------------------- average


@dataclass(frozen=True)
class AvgPool2dCache:
    """The divisor of each window (inf for an empty one) and the geometry."""

    div: np.ndarray                          # (OH, OW)
    x_shape: tuple[int, int, int, int]
    kernel: tuple[int, int]
    stride: tuple[int, int]
    pads: tuple[tuple[int, int], tuple[int, int]]


def _window_counts(size: int, k: int, s: int, p: int, out: int) -> tuple[np.ndarray, np.ndarray]:
    """Per output position: window length clipped to [-p, size+p) and to [0, size)."""
    start = np.arange(out) * s - p
    end = np.minimum(start + k, size + p)
    with_pad = end - start
    inside = np.minimum(end, size) - np.maximum(start, 0)
    return with_pad, inside


def avg_pool2d_forward(x: np.ndarray, *, kernel_size: tuple[int, int],
                       stride: tuple[int, int], padding: tuple[int, int] = (0, 0),
                       ceil_mode: bool = False, count_include_pad: bool = True,
                       divisor_override: int | None = None
                       ) -> tuple[np.ndarray, AvgPool2dCache]:
    """2-D average pooling (PyTorch's avg_pool2d, with its exact divisors).

    The sum runs over the window's part inside the input.  The divisor is
    ``divisor_override`` if given; else the window area clipped to the padded
    input [-p, H+p) if ``count_include_pad`` (so a ceil_mode window hanging past
    the padding counts only its part inside it), else the area inside the input.

    Args:
        x: input (N, C, H, W).
        kernel_size, stride, padding: (h, w) pairs.

    Shape:
        (N, C, H, W) -> (N, C, OH, OW),
        OH = floor((H + 2*ph - KH [+ sh-1 if ceil_mode]) / sh) + 1.

    Returns:
        (y, cache) for :func:`avg_pool2d_backward`.
    """
    n, c, h, w = x.shape
    (kh, kw), (sh, sw) = kernel_size, stride
    (oh, ow), pads = _geometry((h, w), kernel_size, stride, padding, (1, 1), ceil_mode,
                               "avg_pool2d")
    pad_h, in_h = _window_counts(h, kh, sh, padding[0], oh)
    pad_w, in_w = _window_counts(w, kw, sw, padding[1], ow)
    if divisor_override is not None:
        div = np.full((oh, ow), float(divisor_override))
    elif count_include_pad:
        div = (pad_h[:, None] * pad_w[None, :]).astype(np.float64)
    else:
        div = (in_h[:, None] * in_w[None, :]).astype(np.float64)
    empty = (in_h[:, None] <= 0) | (in_w[None, :] <= 0)
    div = np.where(empty, np.inf, div).astype(x.dtype)       # (OH, OW)
    xp = pad2d(x, pads)
    rows = np.zeros((n, c, oh, xp.shape[3]), dtype=x.dtype)         # window sums over rows
    for i in range(kh):
        rows += xp[:, :, _offset_slice(i, 1, sh, oh), :]
    total = np.zeros((n, c, oh, ow), dtype=x.dtype)                 # then over columns
    for j in range(kw):
        total += rows[:, :, :, _offset_slice(j, 1, sw, ow)]
    return total / div, AvgPool2dCache(div, (n, c, h, w), (kh, kw), (sh, sw), pads)


def avg_pool2d_backward(dy: np.ndarray, cache: AvgPool2dCache) -> np.ndarray:
    """Gradient of avg_pool2d_forward: dy / divisor spread over each window.

    Returns:
        dx (N, C, H, W).
    """
    n, c, h, w = cache.x_shape
    (kh, kw), (sh, sw) = cache.kernel, cache.stride
    (pt, pb), (pl, pr) = cache.pads
    oh, ow = dy.shape[2:]
    g = dy / cache.div
    rows = np.zeros((n, c, oh, w + pl + pr), dtype=dy.dtype)         # spread over columns
    for j in range(kw):
        rows[:, :, :, _offset_slice(j, 1, sw, ow)] += g
    dxp = np.zeros((n, c, h + pt + pb, w + pl + pr), dtype=dy.dtype)  # then over rows
    for i in range(kh):
        dxp[:, :, _offset_slice(i, 1, sh, oh), :] += rows
    return np.ascontiguousarray(dxp[:, :, pt:pt + h, pl:pl + w])


# ---------------------------------------------------------------------------- 1-D


def max_pool1d_forward(x: np.ndarray, *, kernel_size: int, stride: int, padding: int = 0,
                       dilation: int = 1, ceil_mode: bool = False, with_argmax: bool = True
                       ) -> tuple[np.ndarray, MaxPool2dCache | None]:
    """1-D max pooling: max_pool2d_forward over a height of 1.

    Shape:
        (N, C, L) -> (N, C, L_out), L_out as OW of :func:`max_pool2d_forward`.
    """
    y, cache = max_pool2d_forward(x[:, :, None, :], kernel_size=(1, kernel_size),  # (N, C, 1, L)
                                  stride=(1, stride), padding=(0, padding),
                                  dilation=(1, dilation), ceil_mode=ceil_mode,
                                  with_argmax=with_argmax)
    return y[:, :, 0, :], cache                                          # (N, C, L_out)


def max_pool1d_backward(dy: np.ndarray, cache: MaxPool2dCache) -> np.ndarray:
    """Gradient of max_pool1d_forward: dx (N, C, L)."""
    return max_pool2d_backward(dy[:, :, None, :], cache)[:, :, 0, :]   # (N, C, 1, L_out)


def avg_pool1d_forward(x: np.ndarray, *, kernel_size: int, stride: int, padding: int = 0,
                       ceil_mode: bool = False, count_include_pad: bool = True
                       ) -> tuple[np.ndarray, AvgPool2dCache]:
    """1-D average pooling: avg_pool2d_forward over a height of 1.

    Shape:
        (N, C, L) -> (N, C, L_out), L_out = floor((L + 2*p - K [+ s-1 if ceil_mode]) / s) + 1.
    """
    y, cache = avg_pool2d_forward(x[:, :, None, :], kernel_size=(1, kernel_size),  # (N, C, 1, L)
                                  stride=(1, stride), padding=(0, padding), ceil_mode=ceil_mode,
                                  count_include_pad=count_include_pad)
    return y[:, :, 0, :], cache                                          # (N, C, L_out)


def avg_pool1d_backward(dy: np.ndarray, cache: AvgPool2dCache) -> np.ndarray:
    """Gradient of avg_pool1d_forward: dx (N, C, L)."""
    return avg_pool2d_backward(dy[:, :, None, :], cache)[:, :, 0, :]   # (N, C, 1, L_out)
