"""A convolution followed by a non-overlapping max-pooling, as one strided GEMM (inference).

With a k x k max-pooling of stride k after a stride-1 convolution, every pooled
value is the maximum of k*k convolution outputs at the offsets (p, q) of its
window.  Output (k*a + p, k*b + q) of a KH x KW kernel reads the padded input at
rows k*a + p + i, columns k*b + q + j, so the k*k outputs of one window are all
outputs of ONE stride-k convolution with a (KH+k-1) x (KW+k-1) kernel and k*k*O
output channels, the kernel of channel (p, q, o) being W[o] shifted by (p, q)::

    Wt[(p, q, o), c, p + i, q + j] = W[o, c, i, j]     (zero elsewhere)

Its im2col columns are (KH+k-1)(KW+k-1) / (k*k*KH*KW) the size of the stride-1
columns (0.36 for 5x5 and k = 2), its GEMM has k*k times more rows (a GEMM with
16 rows runs far below the machine's rate), and the pooling becomes an element-
wise maximum of k*k contiguous blocks of the GEMM's output.  The price is
(KH+k-1)(KW+k-1) / (KH*KW) times the multiply-adds (1.44 for 5x5, 1.78 for
3x3), so it pays where im2col + GEMM is bound by memory, not by arithmetic: few
input and output channels (fashion_cnn's first layer: 12.5 -> 8.8 ms for 1,000
images with its pooling; BENCHMARKS.md, change 23).
"""

from __future__ import annotations

import numpy as np

from ._parallel import parallel_parts
from .im2col import Pads, im2col_cm, to_batch_major

# Slice of the batch per GEMM: about this many bytes of columns and GEMM output
# together, so that both are still in the cache when read back.
SLICE_BYTES = 4 << 20
# Worth it while the stride-1 columns have at most this many rows (C*KH*KW): there
# im2col + GEMM is bound by memory, not arithmetic (measured: faster up to 75 rows,
# slower from 144; BENCHMARKS.md, change 23).
MAX_TAPS = 100


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


def conv2d_max_pool_infer(x: np.ndarray, w: np.ndarray, b: np.ndarray | None, *,
                          padding: Pads, k: int) -> np.ndarray:
    """conv2d (stride 1, no dilation, one group), then max_pool2d(k, stride k), no cache.

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
        the pooled output, equal to the convolution then the pooling up to rounding.
    """
    n, c, h, wd = x.shape
    o, _, kh, kw = w.shape
    (pt, pb), (pl, pr) = padding
    ph, pw = (h + pt + pb - kh + 1) // k, (wd + pl + pr - kw + 1) // k
    wt = pool_tiled_weight(w.astype(np.result_type(x, w), copy=False), k)
    y = np.empty((n, o, ph, pw), dtype=wt.dtype)
    per_image = (wt.shape[1] + wt.shape[0]) * ph * pw * wt.itemsize   # columns + GEMM output
    step = max(1, SLICE_BYTES // max(per_image, 1))

    def one(xs: np.ndarray) -> np.ndarray:
        cols = im2col_cm(xs, padding, (kh + k - 1, kw + k - 1), (k, k), (1, 1), (ph, pw))
        full = (wt @ cols).reshape(k * k, o, -1)               # (k*k, O, n*PH*PW)
        best = full[0]
        for part in full[1:]:
            np.maximum(best, part, out=best)                   # (O, n*PH*PW)
        if b is not None:
            best += b.astype(best.dtype, copy=False).reshape(o, 1)
        return to_batch_major(best, len(xs)).reshape(len(xs), o, ph, pw)

    def run(first: int, last: int) -> None:
        for start in range(first, last, step):
            stop = min(start + step, last)
            y[start:stop] = one(x[start:stop])

    parallel_parts(run, n, x.size + y.size)                    # whole slices per thread
    return y
