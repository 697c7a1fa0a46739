"""Convolution kernels (1-D and 2-D): pure forward/backward pairs with a typed cache."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

from ..errors import ConfigError, ShapeError
from .conv_dft import (DftConvCache, DftGeometry, conv2d_dft_backward, conv2d_dft_forward,
                       dft_conv_costs, post_output_hw)
from ._parallel import parallel_parts, sum_of_blocks
from .conv_jit import (JitConvCache, conv2d_jit_backward, conv2d_jit_forward, jit_eligible,
                       jit_faster, jit_takes)
from .norm import channel_sum
from .im2col import Pads, col2im_cm, im2col_cm, out_size, to_batch_major, to_channel_major


# im2col columns up to this size are kept for the backward pass; larger ones are
# recomputed there from the input, which is KH*KW times smaller (ResNet's first
# stages at batch 128: 75 MB of columns per 3x3 conv against 8 MB of input).
KEEP_COLS_BYTES = 32 << 20

ALGORITHMS = ("auto", "im2col", "dft", "jit")

# "auto" takes the DFT route when im2col's estimated cost is at least these times the
# DFT route's (conv_dft.dft_conv_costs), fitted to 20 shapes timed on 2 threads
# (BENCHMARKS.md, change 16): in training the backward pass of im2col (col2im or a
# second im2col of dy) costs relatively more than the DFT route's adjoints.
DFT_MIN_RATIO_TRAIN = 0.8
DFT_MIN_RATIO_INFER = 0.9
# Largest padded side for the DFT route: its transforms grow as the side squared per pixel.
DFT_MAX_SIDE = 128
# Largest kernel spectrum (B x C x O complex values) for the DFT route: for many channels it
# outgrows the columns of im2col (VGG's 512 -> 512 3x3 at 14x14: 302 MB, twice in backward).
DFT_MAX_KERNEL_BYTES = 64 << 20


@dataclass(frozen=True)
class Conv2dCache:
    """What conv2d_backward needs: the columns (or the input to rebuild them), the weight
    and the geometry."""

    cols: np.ndarray | None   # (C*KH*KW, N*OH*OW), or None when larger than KEEP_COLS_BYTES
    x: np.ndarray | None      # (N, C, H, W) when cols is None
    w: np.ndarray             # (O, C/G, KH, KW)
    x_shape: tuple[int, int, int, int]
    pads: Pads
    stride: tuple[int, int]
    dilation: tuple[int, int]
    groups: int
    has_bias: bool


def conv2d_output_hw(hw: tuple[int, int], kernel: tuple[int, int], stride: tuple[int, int],
                     pads: Pads, dilation: tuple[int, int]) -> tuple[int, int]:
    """(OH, OW) with OH = floor((H + pt + pb - d*(KH-1) - 1) / s) + 1."""
    return (
        out_size(hw[0], kernel[0], stride[0], pads[0][0] + pads[0][1], dilation[0]),
        out_size(hw[1], kernel[1], stride[1], pads[1][0] + pads[1][1], dilation[1]),
    )


def conv2d_forward(x: np.ndarray, w: np.ndarray, b: np.ndarray | None, *,
                   stride: tuple[int, int] = (1, 1), padding: Pads = ((0, 0), (0, 0)),
                   dilation: tuple[int, int] = (1, 1), groups: int = 1, algorithm: str = "auto"
                   ) -> tuple[np.ndarray, Conv2dCache | DftConvCache]:
    """2-D cross-correlation (PyTorch's conv2d) as im2col + one GEMM for the whole batch,
    or, for stride-1 convolutions where it does fewer multiply-adds, through the
    frequency domain (:mod:`striate.functional.conv_dft`).

    Args:
        x: input (N, C, H, W).
        w: weight (O, C/groups, KH, KW).
        b: bias (O,) or None.
        stride, dilation: (sh, sw), (dh, dw).
        padding: ((top, bottom), (left, right)) zero padding.
        groups: channels are split into this many independent groups.
        algorithm: "im2col", "dft" or "jit" (stride 1, groups 1 only) or "auto" (the cheaper
            for a training step, see :func:`choose_algorithm`).

    Shape:
        (N, C, H, W) -> (N, O, OH, OW),
        OH = floor((H + top + bottom - dh*(KH-1) - 1) / sh) + 1 (and likewise OW).

    Returns:
        (y, cache) for :func:`conv2d_backward`.
    """
    n, c, h, wd = x.shape
    o, cg, kh, kw = w.shape
    g = groups
    if cg * g != c:
        raise ShapeError(f"conv2d: weight expects {cg * g} input channels; received {c}")
    oh, ow = conv2d_output_hw((h, wd), (kh, kw), stride, padding, dilation)
    if oh < 1 or ow < 1:
        raise ShapeError(
            f"conv2d: kernel {(kh, kw)} (dilation {dilation}) is larger than the padded input "
            f"{(h + sum(padding[0]), wd + sum(padding[1]))}"
        )
    route = conv2d_route(x, w, stride, padding, dilation, g, algorithm, training=True)
    if route == "dft":
        return conv2d_dft_forward(x, w, b, padding=padding, dilation=dilation)
    if route == "jit":
        return conv2d_jit_forward(x, w, b, stride=stride[0], padding=padding, dilation=dilation)
    cols = im2col_cm(x, padding, (kh, kw), stride, dilation, (oh, ow))  # (C*KH*KW, N*OH*OW)
    y2 = _weight_matmul(w, cols, g)                            # (O, N*OH*OW)
    if b is not None:
        y2 += b.reshape(o, 1)
    y = to_batch_major(y2, n).reshape(n, o, oh, ow)            # (N, O, OH, OW)
    keep = cols.nbytes <= KEEP_COLS_BYTES
    cache = Conv2dCache(cols if keep else None, None if keep else x, w, (n, c, h, wd),
                        padding, stride, dilation, g, b is not None)
    return y, cache


def choose_algorithm(x: np.ndarray, w: np.ndarray, stride: tuple[int, int], padding: Pads,
                     dilation: tuple[int, int], groups: int, algorithm: str, *,
                     training: bool) -> str:
    """"im2col", "dft" or "jit" for one convolution; ``algorithm`` "auto" picks the fastest.

    The compiled kernels ("jit", :mod:`striate.functional.conv_jit`) need llvmlite; "auto"
    takes them where they were measured faster (:func:`conv_jit.jit_faster`).  Otherwise the DFT
    route needs stride 1, groups 1, a kernel larger than 1x1 and float32/64 data; "auto"
    also keeps im2col for padded sides above DFT_MAX_SIDE and kernel spectra above
    DFT_MAX_KERNEL_BYTES, and otherwise takes the DFT route when im2col's estimated cost
    (:func:`dft_conv_costs`) is at least DFT_MIN_RATIO_TRAIN (training) or
    DFT_MIN_RATIO_INFER (inference) times the DFT route's.
    """
    if algorithm not in ALGORITHMS:
        raise ConfigError(f"conv2d: algorithm must be one of {ALGORITHMS}; received {algorithm!r}")
    if algorithm == "im2col":
        return "im2col"
    if algorithm == "jit" or (algorithm == "auto" and jit_eligible(x, w, stride, padding, dilation, groups)):
        if _jit_choice(x, w, stride, padding, dilation, groups, algorithm, training):
            return "jit"
    return _numpy_route(x, w, stride, padding, dilation, groups, algorithm, training)


def conv2d_route(x: np.ndarray, w: np.ndarray, stride: tuple[int, int], padding: Pads,
                 dilation: tuple[int, int], groups: int, algorithm: str, *, training: bool) -> str:
    """The route that runs for this input: :func:`choose_algorithm`'s (from the shapes), except
    that "jit" gives way to "im2col" for an input it does not take (``conv_jit.jit_takes``)."""
    route = choose_algorithm(x, w, stride, padding, dilation, groups, algorithm, training=training)
    return "im2col" if route == "jit" and not jit_takes(x, stride) else route


def _numpy_route(x: np.ndarray, w: np.ndarray, stride: tuple[int, int], padding: Pads,
                 dilation: tuple[int, int], groups: int, algorithm: str, training: bool) -> str:
    """"im2col" or "dft" ("auto": by estimated cost, see :func:`choose_algorithm`)."""
    n, c, h, wd = x.shape
    kh, kw = w.shape[2:]
    geo = DftGeometry(n, c, w.shape[0], (h, wd), (kh, kw), padding, dilation)
    eligible = (tuple(stride) == (1, 1) and groups == 1 and x.dtype == w.dtype
                and x.dtype in (np.float32, np.float64))
    if algorithm == "dft":
        if not eligible:
            raise ConfigError(
                f"conv2d: algorithm 'dft' needs stride (1, 1), groups 1 and float32/float64 input "
                f"and weight of one dtype; received stride {tuple(stride)}, groups {groups}, "
                f"dtypes {x.dtype}/{w.dtype}")
        return "dft"
    kernel_bytes = geo.bins[0] * geo.bins[1] * c * w.shape[0] * 2 * x.itemsize
    if (not eligible or n == 0 or kh * kw == 1 or max(geo.padded) > DFT_MAX_SIDE
            or kernel_bytes > DFT_MAX_KERNEL_BYTES):
        return "im2col"
    direct, dft = dft_conv_costs(geo, x.itemsize)
    threshold = DFT_MIN_RATIO_TRAIN if training else DFT_MIN_RATIO_INFER
    return "dft" if direct >= threshold * dft else "im2col"


def _jit_choice(x: np.ndarray, w: np.ndarray, stride: tuple[int, int], padding: Pads,
                dilation: tuple[int, int], groups: int, algorithm: str, training: bool) -> bool:
    """Whether to take the compiled kernels: as asked ("jit"), or where faster ("auto")."""
    if algorithm == "jit":
        if not jit_eligible(x, w, stride, padding, dilation, groups):
            raise ConfigError(
                "conv2d: algorithm 'jit' needs llvmlite (and STRIATE_JIT not 0), stride (1, 1) "
                "(padding at most dilation*(kernel-1)) or (2, 2) (no dilation), groups 1, a "
                "kernel larger than 1x1 and float32/float64 input and weight of one dtype; "
                f"received stride {tuple(stride)}, groups {groups}, kernel {tuple(w.shape[2:])}, "
                f"padding {padding}, dtypes {x.dtype}/{w.dtype}")
        return True
    return jit_faster(x, w, stride, padding, dilation, training)


def _weight_matmul(w: np.ndarray, cols: np.ndarray, g: int) -> np.ndarray:
    """W @ cols per group: (O, C/G, KH, KW), (C*KH*KW, M) -> (O, M)."""
    o, k = w.shape[0], w[0].size
    if g == 1:
        return w.reshape(o, k) @ cols                          # (O, M)
    y = np.matmul(w.reshape(g, o // g, k), cols.reshape(g, k, -1))  # (G, O/G, M)
    return y.reshape(o, -1)                                    # (O, M)


# Inference works through the batch in slices whose columns stay in the CPU cache.
INFER_COLS_BYTES = 8 << 20
# Images per block of the weight gradient's stacked products (_weight_grad), used while
# dW has at most WGRAD_STACK_MAX entries: one large GEMM with so small an output runs on
# few cores; for larger dW the per-image products are the slower (BENCHMARKS.md, change 26).
WGRAD_BLOCK = 16
WGRAD_STACK_MAX = 8192


def conv2d_infer(x: np.ndarray, w: np.ndarray, b: np.ndarray | None, *,
                 stride: tuple[int, int] = (1, 1), padding: Pads = ((0, 0), (0, 0)),
                 dilation: tuple[int, int] = (1, 1), groups: int = 1, algorithm: str = "auto",
                 post: Callable[[np.ndarray], np.ndarray] | None = None) -> np.ndarray:
    """conv2d_forward without a cache, for inference: the same output, less memory.

    The batch goes through im2col + GEMM a slice at a time, so the columns of a
    slice (about INFER_COLS_BYTES) are still in the cache when the GEMM reads them,
    instead of one (N, C*KH*KW, OH*OW) array many times the cache's size (the DFT
    route works in chunks of its own).  Each thread takes whole slices, with BLAS
    at one thread: no hand-off between the threads inside a slice.

    Args:
        post: applied to the output slice by slice while it is still in the cache
            (fused inference: a max-pooling).  It must work on the last two axes,
            independently for every pair of leading indices: it gets slices as
            (n, O, OH, OW) or, from the im2col route, channel-major (O, n, OH, OW).
            The bias is added after it, so it must commute with adding a constant
            per channel (max- and average-pooling do).

    Shape:
        as :func:`conv2d_forward`: (N, C, H, W) -> (N, O, OH, OW); with ``post``
        (N, O, PH, PW), where post maps (OH, OW) to (PH, PW).
    """
    n = x.shape[0]
    o, cg, kh, kw = w.shape
    oh, ow = conv2d_output_hw(x.shape[2:], (kh, kw), stride, padding, dilation)
    route = "im2col"
    if oh >= 1 and ow >= 1 and x.shape[1] == cg * groups:
        route = conv2d_route(x, w, stride, padding, dilation, groups, algorithm, training=False)
    if route == "dft":
        return conv2d_dft_forward(x, w, b, padding=padding, dilation=dilation, post=post)[0]
    if route == "jit":
        y = conv2d_jit_forward(x, w, b, stride=stride[0], padding=padding, dilation=dilation,
                               keep=False)[0]
        return y if post is None else post(y)
    per_image = cg * groups * kh * kw * max(oh, 1) * max(ow, 1) * x.itemsize
    step = max(1, INFER_COLS_BYTES // max(per_image, 1))
    if oh < 1 or ow < 1 or x.shape[1] != cg * groups or (post is None and step >= n):
        return conv2d_forward(x, w, b, stride=stride, padding=padding, dilation=dilation,
                              groups=groups, algorithm="im2col")[0]   # (or its shape error)
    dtype = np.result_type(x, w)
    out_hw = post_output_hw(post, (oh, ow), dtype)
    y = np.empty((n, o) + tuple(out_hw), dtype=dtype)

    starts = range(0, n, step)          # the same slices whatever the thread count

    def run(first: int, last: int) -> None:
        for start in starts[first:last]:
            xs = x[start:start + step]
            if post is None:
                y[start:start + len(xs)] = conv2d_forward(xs, w, b, stride=stride, padding=padding,
                                                          dilation=dilation, groups=groups,
                                                          algorithm="im2col")[0]
            else:
                y[start:start + len(xs)] = _slice_then_post(xs, w, b, stride, padding, dilation,
                                                            groups, (oh, ow), post)

    parallel_parts(run, len(starts), x.size + y.size)   # whole slices per thread, BLAS on one each
    return y


def _slice_then_post(x: np.ndarray, w: np.ndarray, b: np.ndarray | None, stride: tuple[int, int],
                     padding: Pads, dilation: tuple[int, int], groups: int,
                     out_hw: tuple[int, int], post: Callable[[np.ndarray], np.ndarray]
                     ) -> np.ndarray:
    """im2col + GEMM of one slice, ``post`` on the channel-major result, then batch-major.

    Shape:
        (n, C, H, W) -> (n, O, PH, PW)
    """
    n, o = x.shape[0], w.shape[0]
    cols = im2col_cm(x, padding, w.shape[2:], stride, dilation, out_hw)  # (C*KH*KW, n*OH*OW)
    y2 = _weight_matmul(w, cols, groups)                                 # (O, n*OH*OW)
    pooled = post(y2.reshape((o, n) + tuple(out_hw)))                    # (O, n, PH, PW)
    if b is not None:                                  # after ``post``: on the smaller array
        pooled += b.reshape(o, 1, 1, 1)
    ph, pw = pooled.shape[2:]
    return to_batch_major(pooled.reshape(o, n * ph * pw), n).reshape(n, o, ph, pw)


def conv2d_backward(dy: np.ndarray, cache: Conv2dCache | DftConvCache | JitConvCache, *,
                    need_dx: bool = True
                    ) -> tuple[np.ndarray | None, np.ndarray, np.ndarray | None]:
    """Gradients of conv2d_forward.

    Args:
        dy: upstream gradient (N, O, OH, OW).
        cache: from :func:`conv2d_forward`.
        need_dx: False skips the input gradient (a first layer in training).

    Returns:
        (dx (N, C, H, W) or None, dw (O, C/G, KH, KW), db (O,) or None).
    """
    if isinstance(cache, DftConvCache):
        return conv2d_dft_backward(dy, cache, need_dx=need_dx)
    if isinstance(cache, JitConvCache):
        return conv2d_jit_backward(dy, cache, need_dx=need_dx)
    w, g = cache.w, cache.groups
    n, c, h, wd = cache.x_shape
    o, cg, kh, kw = w.shape
    oh, ow = dy.shape[2], dy.shape[3]
    k = cg * kh * kw
    cols = cache.cols
    if cols is None:                                              # rebuilt: less memory kept
        cols = im2col_cm(cache.x, cache.pads, (kh, kw), cache.stride, cache.dilation, (oh, ow))
    db = channel_sum(dy) if cache.has_bias else None              # (O,)
    dy2 = None
    if g == 1 and o * k <= WGRAD_STACK_MAX:
        dw = _weight_grad(dy, cols)                               # (O, C*KH*KW)
    else:
        dy2 = to_channel_major(dy)                                # (O, N*OH*OW)
        dw = np.matmul(dy2.reshape(g, o // g, -1),                # (G, O/G, N*OH*OW)
                       cols.reshape(g, k, -1).transpose(0, 2, 1))  # (G, O/G, Cg*KH*KW)
    cols = None                                                   # free before the dx pass
    if not need_dx:
        return None, dw.reshape(w.shape), db
    # dx as a convolution of dy copies N*O*KH*KW*H*W values; col2im adds N*C*KH*KW*OH*OW
    # with a slower strided read-add-write per value: take the convolution up to O = 2C
    # (ResNet's 3x3 convs, fashion_cnn's conv2; not a 1 -> 16 first layer).
    full = _full_pads(cache) if kh * kw > 1 and o <= 2 * c else None
    if full is not None:
        return _input_grad_as_conv(dy, cache, full), dw.reshape(w.shape), db
    if dy2 is None:
        dy2 = to_channel_major(dy)                                # (O, N*OH*OW)
    if g == 1:
        dcols = w.reshape(o, k).T @ dy2                           # (C*KH*KW, N*OH*OW)
    else:
        dcols = np.matmul(w.reshape(g, o // g, k).transpose(0, 2, 1),
                          dy2.reshape(g, o // g, -1))             # (G, Cg*KH*KW, N*OH*OW)
    (pt, pb), (pl, pr) = cache.pads
    padded = (n, c, h + pt + pb, wd + pl + pr)
    dxp = col2im_cm(dcols.reshape(c * kh * kw, -1), padded, (kh, kw),  # (C*KH*KW, N*OH*OW)
                    cache.stride, cache.dilation, (oh, ow))
    dx = np.ascontiguousarray(dxp[:, :, pt:pt + h, pl:pl + wd])
    return dx, dw.reshape(w.shape), db


def _weight_grad(dy: np.ndarray, cols: np.ndarray) -> np.ndarray:
    """dW = sum over images of dy[n] @ cols[:, n]^T, from batch-major dy (no channel-major copy).

    Threads take blocks of WGRAD_BLOCK images: a stack of per-image products (numpy
    hands each image's column block, a strided slice, to BLAS as it is), summed per
    block, then the block sums in order, so the result does not depend on the thread
    count.  Against one ``dy2 @ cols.T`` after a channel-major copy of dy: 0.89 ->
    0.60 ms for fashion_cnn's first layer, 2.2 -> 1.0 ms for resnet20's
    (BENCHMARKS.md, change 25).

    Shape:
        dy (N, O, OH, OW), cols (K, N*OH*OW) -> (O, K)
    """
    n, o = dy.shape[:2]
    if n == 0:
        return np.zeros((o, cols.shape[0]), dtype=np.result_type(dy, cols))
    d3 = dy.reshape(n, o, -1)                                      # (N, O, P)
    c3 = cols.reshape(cols.shape[0], n, -1)                        # (K, N, P)

    def block(i: int) -> np.ndarray:
        a, b = i * WGRAD_BLOCK, min((i + 1) * WGRAD_BLOCK, n)
        stack = np.matmul(d3[a:b], c3[:, a:b].transpose(1, 2, 0))      # (b-a, O, K)
        return stack.sum(axis=0)

    return sum_of_blocks(block, -(-n // WGRAD_BLOCK), dy.size + cols.size)


def _full_pads(cache: Conv2dCache) -> Pads | None:
    """Padding of dy that turns dx into a plain stride-1 convolution, or None if impossible.

    dx[h] = sum_i dy[h + pt - i*d] w[i] is a correlation of dy, padded by d*(K-1) - pt
    before and d*(K-1) - pb after, with the flipped kernel (stride 1 only).
    """
    if cache.stride != (1, 1):
        return None
    kh, kw = cache.w.shape[2:]
    (pt, pb), (pl, pr) = cache.pads
    dh, dw = cache.dilation
    pads = ((dh * (kh - 1) - pt, dh * (kh - 1) - pb), (dw * (kw - 1) - pl, dw * (kw - 1) - pr))
    return pads if min(min(p) for p in pads) >= 0 else None


def _input_grad_as_conv(dy: np.ndarray, cache: Conv2dCache, pads: Pads) -> np.ndarray:
    """dx of a stride-1 conv as a convolution of dy: one im2col copy instead of col2im's
    KH*KW strided scatter-adds (2-3x faster for 3x3 and 5x5 kernels)."""
    w, g = cache.w, cache.groups
    o, cg, kh, kw = w.shape
    w_t = w.reshape(g, o // g, cg, kh, kw).transpose(0, 2, 1, 3, 4)     # (G, Cg, O/G, KH, KW)
    w_t = np.ascontiguousarray(w_t.reshape(g * cg, o // g, kh, kw)[:, :, ::-1, ::-1])  # flipped
    return conv2d_infer(dy, w_t, None, padding=pads, dilation=cache.dilation, groups=g)
