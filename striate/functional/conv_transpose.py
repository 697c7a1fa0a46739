"""Transposed convolution kernels (1-D and 2-D): pure forward/backward pairs.

A transposed convolution is the input-gradient of a convolution: its forward
multiplies the input by the transposed weight (``cols = W^T @ x``) and
scatter-adds the columns into the output with :func:`col2im`; its input
gradient is an ordinary convolution of ``dy`` (im2col, then a GEMM).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import ShapeError
from .im2col import Pads, col2im, im2col, pad2d


@dataclass(frozen=True)
class ConvTranspose2dCache:
    """What conv_transpose2d_backward needs: the input, the weight and the geometry."""

    x: np.ndarray             # (N, C_in, H, W)
    w: np.ndarray             # (C_in, C_out/G, KH, KW)
    pads: Pads
    stride: tuple[int, int]
    dilation: tuple[int, int]
    groups: int
    has_bias: bool


def conv_transpose2d_output_hw(hw: tuple[int, int], kernel: tuple[int, int],
                               stride: tuple[int, int], pads: Pads,
                               output_padding: tuple[int, int],
                               dilation: tuple[int, int]) -> tuple[int, int]:
    """(OH, OW) with OH = (H-1)*sh - top - bottom + dh*(KH-1) + output_padding + 1."""
    return tuple(  # type: ignore[return-value]
        (size - 1) * s - p0 - p1 + d * (k - 1) + op + 1
        for size, k, s, (p0, p1), op, d in zip(hw, kernel, stride, pads, output_padding, dilation)
    )


def conv_transpose2d_forward(x: np.ndarray, w: np.ndarray, b: np.ndarray | None, *,
                             stride: tuple[int, int] = (1, 1),
                             padding: Pads = ((0, 0), (0, 0)),
                             output_padding: tuple[int, int] = (0, 0),
                             dilation: tuple[int, int] = (1, 1), groups: int = 1
                             ) -> tuple[np.ndarray, ConvTranspose2dCache]:
    """2-D transposed convolution (PyTorch's conv_transpose2d) as a GEMM + col2im.

    Args:
        x: input (N, C_in, H, W).
        w: weight (C_in, C_out/groups, KH, KW) (PyTorch's layout).
        b: bias (C_out,) or None.
        stride, dilation: (sh, sw), (dh, dw).
        padding: ((top, bottom), (left, right)): rows/columns cropped from the
            full output (PyTorch's ``padding=p`` is ((p, p), (p, p))).
        output_padding: (oph, opw) extra rows/columns added at the bottom/right.
            Any value >= 0 is computed exactly; PyTorch's rule (smaller than
            stride or dilation) is enforced by the layer.
        groups: channels are split into this many independent groups.

    Shape:
        (N, C_in, H, W) -> (N, C_out, OH, OW),
        OH = (H-1)*sh - top - bottom + dh*(KH-1) + oph + 1 (and likewise OW).

    Returns:
        (y, cache) for :func:`conv_transpose2d_backward`.
    """
    n, c, h, wd = x.shape
    cin, og, kh, kw = w.shape
    g = groups
    if cin != c or c % g:
        raise ShapeError(
            f"conv_transpose2d: weight expects {cin} input channels in {g} groups; received {c}"
        )
    oh, ow = conv_transpose2d_output_hw((h, wd), (kh, kw), stride, padding, output_padding, dilation)
    if oh < 1 or ow < 1:
        raise ShapeError(
            f"conv_transpose2d: input {(h, wd)} gives an empty output {(oh, ow)} "
            f"(padding {padding}, kernel {(kh, kw)})"
        )
    k = og * kh * kw
    x4 = x.reshape(n, g, c // g, h * wd)                      # (N, G, C_in/G, H*W)
    w3 = w.reshape(g, c // g, k)                              # (G, C_in/G, C_out/G*KH*KW)
    cols = np.matmul(w3.transpose(0, 2, 1), x4)               # (N, G, C_out/G*KH*KW, H*W)
    (pt, pb), (pl, pr) = padding
    canvas = (n, og * g, oh + pt + pb, ow + pl + pr)
    full = col2im(cols.reshape(n, og * g * kh * kw, h * wd),  # (N, C_out*KH*KW, H*W)
                  canvas, (kh, kw), stride, dilation, (h, wd))
    y = np.ascontiguousarray(full[:, :, pt:pt + oh, pl:pl + ow])  # (N, C_out, OH, OW)
    if b is not None:
        y += b.reshape(1, og * g, 1, 1)
    return y, ConvTranspose2dCache(x, w, padding, stride, dilation, g, b is not None)


def conv_transpose2d_backward(dy: np.ndarray, cache: ConvTranspose2dCache
                              ) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """Gradients of conv_transpose2d_forward.

    dx is an ordinary strided convolution of ``dy`` with the same weight; dw
    pairs the input with the columns of ``dy``.

    Args:
        dy: upstream gradient (N, C_out, OH, OW).
        cache: from :func:`conv_transpose2d_forward`.

    Returns:
        (dx (N, C_in, H, W), dw (C_in, C_out/G, KH, KW), db (C_out,) or None).
    """
    x, w, g = cache.x, cache.w, cache.groups
    n, c, h, wd = x.shape
    _, og, kh, kw = w.shape
    k = og * kh * kw
    db = dy.sum(axis=(0, 2, 3)) if cache.has_bias else None
    dyp = pad2d(dy, cache.pads)                               # (N, C_out, Hc, Wc) canvas
    dcols = im2col(dyp, (kh, kw), cache.stride, cache.dilation, (h, wd))  # (N, C_out*KH*KW, H*W)
    dcols = dcols.reshape(n, g, k, h * wd)                    # (N, G, C_out/G*KH*KW, H*W)
    x4 = x.reshape(n, g, c // g, h * wd)                      # (N, G, C_in/G, H*W)
    w3 = w.reshape(g, c // g, k)                              # (G, C_in/G, C_out/G*KH*KW)
    dx = np.matmul(w3, dcols).reshape(n, c, h, wd)            # (N, C_in, H, W)
    dw = np.matmul(x4, dcols.transpose(0, 1, 3, 2)).sum(axis=0)  # (G, C_in/G, C_out/G*KH*KW)
    return dx, dw.reshape(w.shape), db


@dataclass(frozen=True)
class ConvTranspose1dCache:
    """conv_transpose1d is conv_transpose2d over a height of 1; this wraps that cache."""

    inner: ConvTranspose2dCache


def conv_transpose1d_forward(x: np.ndarray, w: np.ndarray, b: np.ndarray | None, *,
                             stride: int = 1, padding: tuple[int, int] = (0, 0),
                             output_padding: int = 0, dilation: int = 1, groups: int = 1
                             ) -> tuple[np.ndarray, ConvTranspose1dCache]:
    """1-D transposed convolution (PyTorch's conv_transpose1d).

    Args:
        x: input (N, C_in, L).
        w: weight (C_in, C_out/groups, K).
        b: bias (C_out,) or None.
        padding: (before, after) cropped from the full output.
        output_padding: extra positions added at the end.

    Shape:
        (N, C_in, L) -> (N, C_out, L_out),
        L_out = (L-1)*stride - before - after + dilation*(K-1) + output_padding + 1.

    Returns:
        (y, cache) for :func:`conv_transpose1d_backward`.
    """
    y, cache = conv_transpose2d_forward(
        x[:, :, None, :], w[:, :, None, :], b,                # (N, C_in, 1, L), (C_in, Og, 1, K)
        stride=(1, stride), padding=((0, 0), padding), output_padding=(0, output_padding),
        dilation=(1, dilation), groups=groups,
    )
    return y[:, :, 0, :], ConvTranspose1dCache(cache)         # (N, C_out, L_out)


def conv_transpose1d_backward(dy: np.ndarray, cache: ConvTranspose1dCache
                              ) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """Gradients of conv_transpose1d_forward: (dx (N, C_in, L), dw (C_in, C_out/G, K), db)."""
    dx, dw, db = conv_transpose2d_backward(dy[:, :, None, :], cache.inner)  # (N, C_out, 1, L_out)
    return dx[:, :, 0, :], dw[:, :, 0, :], db
