"""2-D convolution with compiled direct kernels, stride 1 or 2 (the "jit" route; needs llvmlite).

Forward: the kernel of :mod:`striate.functional._jit` computes every output
directly, a block of output channels x output columns at a time in vector
registers: no im2col columns, no GEMM.  Stride 1 reads the input as it is (loads
outside it are masked off: the zero padding costs no copy); stride 2 reads a
zero-padded copy.  Backward:

* dx is a stride-1 convolution of dy, padded by d*(K-1) - pad on each side, with
  the kernel flipped and its channel axes swapped: the same forward kernel (stride
  2: four such convolutions, one per pixel parity);
* dw comes from the weight kernel, over fixed blocks of images (about
  WGRAD_BLOCK_BYTES each; each block's sum in its own buffer, the blocks added in
  order), so the result does not depend on the thread count;
* db is the per-channel sum of dy.

The cache keeps the input itself (stride 1; like torch, backward needs it unchanged)
or its padded copy (stride 2), never KH*KW copies.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from . import _jit
from ._jit_flat import flat_fits, flat_forward_kernel, flat_weight_kernel
from ._jit_wgrad import weight_kernel
from ._parallel import parallel_for, parallel_kernels, sum_in_order
from .im2col import Pads
from .norm import channel_sum

# Output channels per block of the forward kernel (its registers hold OB x T vectors).
FORWARD_BLOCK = 8
# "auto" takes the compiled kernels where they were measured faster than both NumPy routes
# (BENCHMARKS.md, changes 27, 32, 37, 40): output rows of at least JIT_MIN_WIDTH columns in
# training (JIT_MIN_WIDTH_INFER in inference), few column rows (C*KH*KW <= JIT_MAX_TAPS:
# first layers) or power-of-two rows narrower than a vector (the flat kernels); stride 2 always.
JIT_MIN_WIDTH = 16
JIT_MIN_WIDTH_INFER = 12
JIT_MAX_TAPS = 32
# Output rows per tile of the forward kernel when a row is at most one vector wide.
NARROW_ROWS = 2
# Images per block of the weight gradient (also the unit of its thread split): about this
# many bytes of input and dy per block (they stay in the cache while the kernel goes over
# every channel pair), 4 to 32 images (measured: 4 -> 8 images 5-40% faster, change 33).
WGRAD_BLOCK_BYTES = 1 << 20
# Vector accumulators of the weight kernel (2 output channels x taps); larger kernels take
# several passes over groups of kernel rows (5x5: 2 + 2 + 1 rows; measured 1.8x faster
# than one pass with 1 x 25 accumulators, change 42).
WGRAD_ACCUMULATORS = 24


@dataclass(frozen=True)
class JitConvCache:
    """What conv2d_jit_backward needs: the input (stride 1) or its padded copy (stride 2, flat,
    with a tail) and the geometry."""

    xp: np.ndarray                       # stride 1: the input (N, C, H, W); stride 2: the
    x_shape: tuple[int, int, int, int]   # zero-padded input (N*C*Hp*Wp + tail,); (N, C, H, W)
    w: np.ndarray                        # (O, C, KH, KW)
    pads: Pads
    dilation: tuple[int, int]
    has_bias: bool
    stride: int = 1


def jit_eligible(x: np.ndarray, w: np.ndarray, stride: tuple[int, int], padding: Pads,
                 dilation: tuple[int, int], groups: int) -> bool:
    """Whether the jit route can run this convolution (and its backward pass)."""
    kh, kw = w.shape[2:]
    (pt, pb), (pl, pr) = padding
    dh, dw = dilation
    if not (_jit.jit_available() and groups == 1 and x.dtype == w.dtype
            and x.dtype in (np.float32, np.float64) and kh * kw > 1):
        return False
    if tuple(stride) == (2, 2):                  # stride 2: no dilation, any padding
        return tuple(dilation) == (1, 1)
    return (tuple(stride) == (1, 1)
            and min(dh * (kh - 1) - pt, dh * (kh - 1) - pb,
                    dw * (kw - 1) - pl, dw * (kw - 1) - pr) >= 0)


def jit_faster(x: np.ndarray, w: np.ndarray, stride: tuple[int, int], padding: Pads,
               dilation: tuple[int, int], training: bool) -> bool:
    """Whether the compiled kernels beat the NumPy routes here (an eligible convolution).

    The output width decides (the kernels vectorise along it), or a small C*KH*KW.
    """
    c, (kh, kw) = x.shape[1], w.shape[2:]
    ow = (x.shape[3] + sum(padding[1]) - dilation[1] * (kw - 1) - 1) // stride[1] + 1
    if stride[1] == 2:                       # measured faster, forward and backward (change 40)
        return True
    if flat_fits(x.dtype.name, x.shape[3], ow):   # narrow maps, planes as one row (change 37)
        return True
    return ow >= (JIT_MIN_WIDTH if training else JIT_MIN_WIDTH_INFER) or c * kh * kw <= JIT_MAX_TAPS


def jit_takes(x: np.ndarray, stride: tuple[int, int]) -> bool:
    """False for a stride-2 convolution of an input holding inf or NaN (its compiled backward
    reads past the rows' ends, where 0 * inf would be NaN): im2col takes those."""
    return tuple(stride) == (1, 1) or bool(np.isfinite(x).all())


def _padded(x: np.ndarray, pads: Pads, kw: int, dw: int) -> np.ndarray:
    """x zero-padded into a flat buffer with room for the kernels' last vector reads.

    Shape:
        (N, C, H, W) -> (N*C*Hp*Wp + tail,)
    """
    n, c, h, w = x.shape
    (pt, pb), (pl, pr) = pads
    hp, wp = h + pt + pb, w + pl + pr
    tail = 4 * _jit.LANES[x.dtype.name] + (kw - 1) * dw
    flat = np.zeros(n * c * hp * wp + tail, dtype=x.dtype)
    grid = flat[:n * c * hp * wp].reshape(n, c, hp, wp)            # (N, C, Hp, Wp)

    def copy(start: int, stop: int) -> None:
        grid[start:stop, :, pt:pt + h, pl:pl + w] = x[start:stop]

    parallel_for(copy, n, x.size)
    return flat


def _run_forward(src: np.ndarray, x_shape: tuple[int, ...], w: np.ndarray, b: np.ndarray,
                 pads: Pads, dilation: tuple[int, int], stride: int = 1,
                 sums: np.ndarray | None = None) -> np.ndarray:
    """The forward kernel, the batch split over the threads.

    ``src``: stride 1, the input (N, C, H, W) itself (the kernel masks the padding);
    stride 2, its zero-padded copy from :func:`_padded`.  ``sums``: a zeroed (N, O, 2)
    float64 array that receives the sums of y and y^2 per plane.
    """
    stats = sums is not None
    n, c, h, wd = x_shape
    o, _, kh, kw = w.shape
    (pt, pb), (pl, pr) = pads
    hp, wp = h + pt + pb, wd + pl + pr
    oh = (hp - dilation[0] * (kh - 1) - 1) // stride + 1
    ow = (wp - dilation[1] * (kw - 1) - 1) // stride + 1
    y = np.empty((n, o, oh, ow), dtype=w.dtype)
    w = np.ascontiguousarray(w)
    b = np.ascontiguousarray(b, dtype=w.dtype)
    dt = w.dtype.name
    shape = (dt, kh, kw, dilation[0], dilation[1])
    if stride == 1 and flat_fits(dt, wd, ow):           # narrow maps: planes as one row
        lanes = _jit.LANES[dt]
        tile = 1 if oh * ow <= lanes else 2
        block = flat_forward_kernel(*shape, FORWARD_BLOCK, lanes, tile, wd, pt, pl, stats)
        single = flat_forward_kernel(*shape, 1, lanes, tile, wd, pt, pl, stats)
        dims = (c, o, h, oh)
    else:
        lanes, tile = _jit.row_blocking(dt, ow)
        rows = NARROW_ROWS if tile == 1 and stride == 1 else 1   # narrow rows: rows per tile
        edges = stride == 1
        block = _jit.forward_kernel(*shape, FORWARD_BLOCK, lanes, tile, stride, rows, edges, stats)
        single = _jit.forward_kernel(*shape, 1, lanes, tile, stride, rows, edges, stats)
        dims = (c, o, h, wd, oh, ow, pt, pl) if edges else (c, o, hp, wp, oh, ow)
    if stats:
        dims = dims + (sums.ctypes.data,)
    main = o - o % FORWARD_BLOCK
    ptrs = (src.ctypes.data, w.ctypes.data, b.ctypes.data, y.ctypes.data)

    def calls(start: int, stop: int) -> list:
        return ([(block, (*ptrs, start, stop, 0, main, *dims))] if main else []) + \
               ([(single, (*ptrs, start, stop, main, o, *dims))] if main < o else [])

    parallel_kernels(calls, n, n * (c + o) * hp * wp)
    return y


def conv2d_jit_forward(x: np.ndarray, w: np.ndarray, b: np.ndarray | None, *,
                       stride: int = 1, padding: Pads = ((0, 0), (0, 0)),
                       dilation: tuple[int, int] = (1, 1), keep: bool = True,
                       moments: bool = False) -> tuple:
    """Groups-1 conv2d (cross-correlation) with the compiled direct kernel, stride 1 or 2.

    Args:
        x: input (N, C, H, W), float32 or float64 (finite for stride 2: its backward
            kernel reads past the rows' ends where dy is 0, and 0 * inf is NaN).
        w: weight (O, C, KH, KW) of x's dtype.
        b: bias (O,) or None.
        stride: 1, or 2 along both axes (then no dilation).
        padding: ((top, bottom), (left, right)) zero padding.
        dilation: (dh, dw).
        keep: return the cache for the backward pass (False: inference, None).
        moments: also return y's per-channel mean and biased variance (float64), summed
            while y is written (for a batch norm on y: no pass of its own).

    Shape:
        (N, C, H, W) -> (N, O, OH, OW),
        OH = floor((H + top + bottom - dh*(KH-1) - 1) / stride) + 1 (likewise OW).

    Returns:
        (y, cache) for :func:`conv2d_jit_backward`, or (y, cache, (mean, var)) with
        ``moments``; y equals conv2d_forward's to rounding.
    """
    kw = w.shape[3]
    xp = np.ascontiguousarray(x) if stride == 1 else _padded(x, padding, kw, dilation[1])
    bias = np.zeros(w.shape[0], dtype=w.dtype) if b is None else b.astype(w.dtype, copy=False)
    sums = np.zeros((x.shape[0], w.shape[0], 2)) if moments else None      # (N, O, 2) float64
    y = _run_forward(xp, x.shape, w, bias, padding, dilation, stride, sums)
    cache = JitConvCache(xp, tuple(x.shape), w, padding, tuple(dilation), b is not None,
                         stride) if keep else None
    if not moments:
        return y, cache
    count = max(y.size // y.shape[1], 1)
    total = sums.sum(axis=0)                                       # (O, 2), added in order
    mean = total[:, 0] / count
    return y, cache, (mean, np.maximum(total[:, 1] / count - mean * mean, 0.0))


def conv2d_jit_backward(dy: np.ndarray, cache: JitConvCache, *, need_dx: bool = True
                        ) -> tuple[np.ndarray | None, np.ndarray, np.ndarray | None]:
    """Gradients of conv2d_jit_forward.

    Returns:
        (dx (N, C, H, W) or None, dw (O, C, KH, KW), db (O,) or None).
    """
    dy = np.ascontiguousarray(dy, dtype=cache.w.dtype)
    dw = _weight_grad(dy, cache)
    db = channel_sum(dy) if cache.has_bias else None
    if not need_dx:
        return None, dw, db
    if cache.stride == 2:
        return _strided_input_grad(dy, cache), dw, db
    w = cache.w
    o, c, kh, kw = w.shape
    dh, dwl = cache.dilation
    (pt, pb), (pl, pr) = cache.pads
    full = ((dh * (kh - 1) - pt, dh * (kh - 1) - pb), (dwl * (kw - 1) - pl, dwl * (kw - 1) - pr))
    w_t = np.ascontiguousarray(w.transpose(1, 0, 2, 3)[:, :, ::-1, ::-1])   # (C, O, KH, KW) flipped
    dx = _run_forward(dy, dy.shape, w_t, np.zeros(c, dtype=w.dtype), full, cache.dilation)
    return dx, dw, db


def _weight_grad(dy: np.ndarray, cache: JitConvCache) -> np.ndarray:
    """dw from the weight kernel, in fixed image blocks summed in order.

    Shape:
        dy (N, O, OH, OW) -> (O, C, KH, KW)
    """
    n, c, h, wd = cache.x_shape
    o, _, kh, kw = cache.w.shape
    (pt, pb), (pl, pr) = cache.pads
    hp, wp = h + pt + pb, wd + pl + pr
    oh, ow = dy.shape[2:]
    dt = dy.dtype.name
    lanes = _jit.row_blocking(dt, ow)[0]
    shape = (dt, kh, kw, cache.dilation[0], cache.dilation[1])
    edges = cache.stride == 1                       # the input itself, edges masked
    if edges and flat_fits(dt, wd, ow):             # narrow maps: planes as one row
        lanes = _jit.LANES[dt]
        ob = 3 if kh * kw <= 9 else (2 if kh * kw <= 12 else 1)   # 3 x 9 accumulators: 1.25x
        passes = [(flat_weight_kernel(*shape, ob, lanes, wd, pt, pl),
                   flat_weight_kernel(*shape, 1, lanes, wd, pt, pl))]
        dims = (c, o, h, oh)
    else:
        ob = 2                                      # 2 x (rows x KW) accumulators per pass
        step = max(1, min(kh, WGRAD_ACCUMULATORS // (ob * kw)))
        passes = [(weight_kernel(*shape, ob, lanes, cache.stride, edges, (i, min(i + step, kh))),
                   weight_kernel(*shape, 1, lanes, cache.stride, edges, (i, min(i + step, kh))))
                  for i in range(0, kh, step)]
        dims = (c, o, h, wd, oh, ow, pt, pl) if edges else (c, o, hp, wp, oh, ow)
    main = o - o % ob
    per_image = (c * hp * wp + o * oh * ow) * dy.itemsize
    images = min(32, max(4, WGRAD_BLOCK_BYTES // max(per_image, 1)))   # depends on shapes only
    count = -(-n // images)
    parts = np.zeros((count, o, c, kh, kw), dtype=dy.dtype)          # one sum per image block
    src, grads, out = cache.xp.ctypes.data, dy.ctypes.data, parts.ctypes.data
    part_bytes = parts[0].nbytes if count else 0

    def calls(first: int, last: int) -> list:
        todo = []
        for i in range(first, last):
            ptrs = (src, grads, out + i * part_bytes)
            start, stop = i * images, min((i + 1) * images, n)
            for block, single in passes:
                if main:
                    todo.append((block, (*ptrs, start, stop, 0, main, *dims)))
                if main < o:
                    todo.append((single, (*ptrs, start, stop, main, o, *dims)))
        return todo

    parallel_kernels(calls, count, dy.size * c)
    total = sum_in_order(list(parts))                               # first to last
    return np.zeros((o, c, kh, kw), dtype=dy.dtype) if total is None else total


def _strided_input_grad(dy: np.ndarray, cache: JitConvCache) -> np.ndarray:
    """dx of a stride-2 convolution: four stride-1 convolutions of dy, one per pixel parity.

    Input pixel Y = 2a + p (row; columns alike) sits at padded row Y + pt and meets the
    taps i = 2u + P, P = (p + pt) mod 2, through dy[a + s - u], s = (p + pt - P) / 2: a
    stride-1 correlation of dy with the sub-kernel W[:, :, P::2, Q::2] flipped (channel
    axes swapped), top padding (KU - 1) - s (negative: rows cropped).  The forward kernel
    computes each from dy itself (loads outside it masked); the four results interleave.

    Shape:
        dy (N, O, OH, OW) -> dx (N, C, H, W)
    """
    n, c, h, wd = cache.x_shape
    (pt, _), (pl, _) = cache.pads
    oh, ow = dy.shape[2:]
    dx = np.empty((n, c, h, wd), dtype=dy.dtype)
    for p in range(2):
        for q in range(2):
            rows, cols = len(range(p, h, 2)), len(range(q, wd, 2))
            big_p, big_q = (p + pt) % 2, (q + pl) % 2
            sub = cache.w[:, :, big_p::2, big_q::2]                       # (O, C, KU, KV)
            ku, kv = sub.shape[2:]
            if rows == 0 or cols == 0:
                continue
            if ku == 0 or kv == 0:
                dx[:, :, p::2, q::2] = 0
                continue
            top, left = ku - 1 - (p + pt - big_p) // 2, kv - 1 - (q + pl - big_q) // 2
            pads = ((top, rows + ku - 1 - oh - top), (left, cols + kv - 1 - ow - left))
            w_t = np.ascontiguousarray(sub.transpose(1, 0, 2, 3)[:, :, ::-1, ::-1])  # (C, O, KU, KV)
            grad = _run_forward(dy, dy.shape, w_t, np.zeros(c, dtype=dy.dtype), pads,
                                (1, 1))                                      # (N, C, rows, cols)
            dx[:, :, p::2, q::2] = grad
    return dx
