"""A convolution followed by a non-overlapping max-pooling, as one strided GEMM (inference).

With a k x k max-pooling of stride k after a stride-1 convolution, every pooled
value is the maximum of k*k convolution outputs at the offsets (p, q) of its
window.  Output (k*a + p, k*b + q) of a KH x KW kernel reads the padded input at
rows k*a + p + i, columns k*b + q + j, so the k*k outputs of one window are all
outputs of ONE stride-k convolution with a (KH+k-1) x (KW+k-1) kernel and k*k*O
output channels, the kernel of channel (p, q, o) being W[o] shifted by (p, q)::

    Wt[(p, q, o), c, p + i, q + j] = W[o, c, i, j]     (zero elsewhere)

Its GEMM has k*k times more rows (a GEMM with 16 rows runs far below the
machine's rate) and the pooling becomes an elementwise maximum of k*k contiguous
blocks of its output.  Rearranging the input by space-to-depth (each k x k block
of pixels as k*k channels) makes the stride-k convolution a stride-1 one over a
k-times smaller grid, whose im2col columns are whole contiguous runs of the
rearranged input: one copy per column row instead of one per image row.  The
price is more multiply-adds: (KH+k-1)(KW+k-1) / (KH*KW) for the tiled kernel
(1.44 for 5x5 and k = 2) and the grid's margin of KW/k - 1 columns per row, so it
pays where im2col + GEMM is bound by memory, not arithmetic: few column rows
(fashion_cnn's first layer with its pooling: 12.5 -> 7.9 ms for 1,000 images;
BENCHMARKS.md, change 23).
"""

from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import as_strided

from ._parallel import parallel_parts
from .conv import conv2d_forward
from .im2col import Pads
from .pool import max_pool2d_forward

# Slice of the batch per GEMM: about this many bytes of columns and GEMM output
# together, so that both are still in the cache when read back.
SLICE_BYTES = 4 << 20
# Worth it while the stride-1 columns have at most this many rows (C*KH*KW): there
# im2col + GEMM is bound by memory, not arithmetic (measured: 0.5-0.8x the time up to
# 27 rows, even at 72-75, 1.1-2.9x from 144; BENCHMARKS.md, change 23).
MAX_TAPS = 64


def pool_tiled_weight(w: np.ndarray, k: int) -> np.ndarray:
    """The stride-k kernel whose k*k*O channels are W shifted to each offset of a k x k window.

    Shape:
        (O, C, KH, KW) -> (k*k*O, C*(KH+k-1)*(KW+k-1)), rows ordered (p, q, o).
    """
    o, c, kh, kw = w.shape
    wt = np.zeros((k, k, o, c, kh + k - 1, kw + k - 1), dtype=w.dtype)
    for p in range(k):
        for q in range(k):
            wt[p, q, :, :, p:p + kh, q:q + kw] = w
    return wt.reshape(k * k * o, -1)                         # (k*k*O, C*KHt*KWt)


def conv2d_max_pool_fits(w_shape: tuple[int, ...], k: int) -> bool:
    """Whether :func:`conv2d_max_pool_infer` is the faster way for this conv + k x k pooling.

    Few column rows (C*KH*KW): there the stride-1 im2col + GEMM is bound by copying
    columns, and the larger strided GEMM costs less than the columns it saves.
    """
    _, c, kh, kw = w_shape
    return k >= 2 and c * kh * kw <= MAX_TAPS


def _space_to_depth_weight(w: np.ndarray, k: int, kernel: tuple[int, int]) -> np.ndarray:
    """The tiled kernel for the space-to-depth input: rows (p, q, o), columns ((c, a, b), i, j).

    Tap (k*i + a, k*j + b) of the tiled kernel becomes tap (i, j) of channel (c, a, b).

    Shape:
        (O, C, KH, KW) -> (k*k*O, C*k*k*KHs*KWs), kernel = (KHs, KWs) = ceil((KH+k-1) / k), ...
    """
    o, c, kh, kw = w.shape
    khs, kws = kernel
    wt = pool_tiled_weight(w, k).reshape(k * k * o, c, kh + k - 1, kw + k - 1)
    wt = np.pad(wt, ((0, 0), (0, 0), (0, k * khs - kh - k + 1), (0, k * kws - kw - k + 1)))
    wt = wt.reshape(k * k * o, c, khs, k, kws, k).transpose(0, 1, 3, 5, 2, 4)  # (.., C, a, b, i, j)
    return np.ascontiguousarray(wt).reshape(k * k * o, -1)


def _space_to_depth(x: np.ndarray, padding: Pads, k: int, hs: int, ws: int,
                    tail: int) -> np.ndarray:
    """Zero-padded x, each k x k block of pixels as k*k channels, channel-major, flat.

    Element [c, a, b, n, r, s] of the result (viewed as (C, k, k, N, Hs, Ws)) is the
    padded input's pixel (k*r + a, k*s + b) of channel c, image n (0 outside);
    ``tail`` more zeros follow, so that shifted runs may read past the end.

    Shape:
        (N, C, H, W) -> (C*k*k*N*Hs*Ws + tail,)
    """
    n, c, h, w = x.shape
    (pt, _), (pl, _) = padding
    flat = np.zeros(c * k * k * n * hs * ws + tail, dtype=x.dtype)
    blocks = flat[:c * k * k * n * hs * ws].reshape(c, k, k, n, hs, ws)   # (C, k, k, N, Hs, Ws)
    for a in range(k):
        r0, r1 = -(-(pt - a) // k), min(hs, -(-(pt + h - a) // k))         # rows inside x
        for b in range(k):
            s0, s1 = -(-(pl - b) // k), min(ws, -(-(pl + w - b) // k))
            if r1 > r0 and s1 > s0:
                src = x[:, :, k * r0 + a - pt::k, k * s0 + b - pl::k][:, :, :r1 - r0, :s1 - s0]
                blocks[:, a, b, :, r0:r1, s0:s1] = src.transpose(1, 0, 2, 3)
    return flat


def _shifted_runs(flat: np.ndarray, channels: int, kernel: tuple[int, int], ws: int,
                  run: int) -> np.ndarray:
    """Columns of a stride-1 convolution over a flat channel-major grid: one copy per row.

    Row (ch, i, j) is the ``run`` values of channel ch starting at i*Ws + j: every
    output position of every image at once (positions past a row's or image's end
    read the neighbours: garbage, cropped later).

    Shape:
        (channels*run + tail,) -> (channels*KH*KW, run)
    """
    kh, kw = kernel
    e = flat.itemsize
    view = as_strided(flat, shape=(channels, kh, kw, run), strides=(run * e, ws * e, e, e),
                      writeable=False)                               # (ch, KH, KW, run)
    cols = np.empty(view.shape, dtype=flat.dtype)
    np.copyto(cols, view)
    return cols.reshape(channels * kh * kw, run)                    # (ch*KH*KW, run)


def _conv_then_pool(x: np.ndarray, w: np.ndarray, b: np.ndarray | None, padding: Pads,
                    k: int) -> np.ndarray:
    """The plain route: im2col convolution, then the pooling (for inputs with inf or NaN)."""
    y, _ = conv2d_forward(x, w, b, padding=padding, algorithm="im2col")
    return max_pool2d_forward(y, kernel_size=(k, k), stride=(k, k), with_argmax=False)[0]


def conv2d_max_pool_infer(x: np.ndarray, w: np.ndarray, b: np.ndarray | None, *,
                          padding: Pads, k: int) -> np.ndarray:
    """conv2d (stride 1, no dilation, one group), then max_pool2d(k, stride k), no cache.

    The input is first rearranged by space-to-depth (each k x k block of pixels as k*k
    channels), which turns the stride-k convolution into a stride-1 one whose columns
    are whole contiguous runs of the rearranged input (one copy per column row).

    Args:
        x: input (N, C, H, W).
        w: weight (O, C, KH, KW).
        b: bias (O,) or None; added after the pooling (max(a + b) = max(a) + b).
        padding: ((top, bottom), (left, right)) zero padding of the convolution.
        k: the pooling's kernel size and stride (floor mode, no padding).

    Shape:
        (N, C, H, W) -> (N, O, PH, PW) with OH = H + top + bottom - KH + 1,
        PH = floor(OH / k) (likewise PW).

    Returns:
        the pooled output, equal to the convolution then the pooling up to rounding
        (slices of the batch with an inf or NaN take that plain route instead).
    """
    n, c, h, wd = x.shape
    o, _, kh, kw = w.shape
    (pt, pb), (pl, pr) = padding
    ph, pw = (h + pt + pb - kh + 1) // k, (wd + pl + pr - kw + 1) // k
    khs, kws = -(-(kh + k - 1) // k), -(-(kw + k - 1) // k)       # kernel on the k x k grid
    hs = max(-(-(h + pt + pb) // k), ph + khs - 1)                 # rearranged input's size
    ws = max(-(-(wd + pl + pr) // k), pw + kws - 1)
    dtype = np.result_type(x, w)
    wt = _space_to_depth_weight(w.astype(dtype, copy=False), k, (khs, kws))
    y = np.empty((n, o, ph, pw), dtype=dtype)
    per_image = (wt.shape[1] + wt.shape[0]) * hs * ws * wt.itemsize   # columns + GEMM output
    step = max(1, SLICE_BYTES // max(per_image, 1))
    tail = (khs - 1) * ws + kws - 1

    def one(xs: np.ndarray, out: np.ndarray) -> None:
        m = len(xs)
        if not np.isfinite(xs).all():        # the zero taps of Wt would turn an inf into NaN
            out[...] = _conv_then_pool(xs, w, b, padding, k)
            return
        flat = _space_to_depth(xs.astype(dtype, copy=False), padding, k, hs, ws, tail)
        cols = _shifted_runs(flat, c * k * k, (khs, kws), ws, m * hs * ws)
        full = (wt @ cols).reshape(k * k, o, m * hs * ws)          # (k*k, O, m*Hs*Ws)
        best = full[0]
        for part in full[1:]:
            np.maximum(best, part, out=best)                       # (O, m*Hs*Ws)
        if b is not None:
            best += b.astype(dtype, copy=False).reshape(o, 1)
        grid = best.reshape(o, m, hs, ws)[:, :, :ph, :pw]          # (O, m, PH, PW)
        np.copyto(out, grid.transpose(1, 0, 2, 3))

    starts = range(0, n, step)              # the same slices whatever the thread count

    def run(first: int, last: int) -> None:
        for start in starts[first:last]:
            one(x[start:start + step], y[start:start + step])

    parallel_parts(run, len(starts), x.size + y.size)              # whole slices per thread
    return y
