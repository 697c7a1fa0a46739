"""Locally connected 2-D kernel: a convolution whose weights are not shared.

Every output position (oh, ow) has its own filter bank, as in the locally
connected layers of DeepFace (Taigman et al., 2014) and Keras'
``LocallyConnected2D``.  The windows come from :func:`im2col`; the per-position
products are one batched matrix multiply over the OH*OW positions.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import ShapeError
from .im2col import Pads, col2im, im2col, out_size, pad2d


@dataclass(frozen=True)
class LocallyConnected2dCache:
    """What locally_connected2d_backward needs: the columns, the weight and the geometry."""

    cols: np.ndarray          # (OH*OW, N, C*KH*KW), position-major
    w: np.ndarray             # (OH, OW, O, C, KH, KW)
    x_shape: tuple[int, int, int, int]
    pads: Pads
    stride: tuple[int, int]
    has_bias: bool


def locally_connected2d_output_hw(hw: tuple[int, int], kernel: tuple[int, int],
                                  stride: tuple[int, int], pads: Pads) -> tuple[int, int]:
    """(OH, OW) with OH = floor((H + top + bottom - KH) / sh) + 1, as a convolution."""
    return (
        out_size(hw[0], kernel[0], stride[0], pads[0][0] + pads[0][1]),
        out_size(hw[1], kernel[1], stride[1], pads[1][0] + pads[1][1]),
    )


def locally_connected2d_forward(x: np.ndarray, w: np.ndarray, b: np.ndarray | None, *,
                                stride: tuple[int, int] = (1, 1),
                                padding: Pads = ((0, 0), (0, 0))
                                ) -> tuple[np.ndarray, LocallyConnected2dCache]:
    """Unshared-weight 2-D cross-correlation.

    y[n, o, i, j] = b[o, i, j] + sum_{c, p, q} w[i, j, o, c, p, q]
                    * xp[n, c, i*sh + p, j*sw + q], with xp the zero-padded input.

    Args:
        x: input (N, C, H, W).
        w: weight (OH, OW, O, C, KH, KW): one (O, C, KH, KW) filter bank per
            output position.
        b: bias (O, OH, OW) (untied: one per channel and position) or None.
        stride: (sh, sw).
        padding: ((top, bottom), (left, right)) zero padding.

    Shape:
        (N, C, H, W) -> (N, O, OH, OW), OH = floor((H + top + bottom - KH) / sh) + 1
        (and likewise OW); the weight's first two axes must equal (OH, OW).

    Returns:
        (y, cache) for :func:`locally_connected2d_backward`.
    """
    n, c, h, wd = x.shape
    oh, ow, o, cw, kh, kw = w.shape
    if cw != c:
        raise ShapeError(f"locally_connected2d: weight expects {cw} input channels; received {c}")
    got = locally_connected2d_output_hw((h, wd), (kh, kw), stride, padding)
    if got != (oh, ow):
        raise ShapeError(
            f"locally_connected2d: weight is for output positions {(oh, ow)}; input "
            f"{tuple(x.shape)} with padding {padding} and stride {stride} gives {got}"
        )
    p, k = oh * ow, c * kh * kw
    cols = im2col(pad2d(x, padding), (kh, kw), stride, (1, 1), (oh, ow))  # (N, C*KH*KW, OH*OW)
    cols_t = np.ascontiguousarray(cols.transpose(2, 0, 1))   # (OH*OW, N, C*KH*KW)
    w3 = w.reshape(p, o, k)                                   # (OH*OW, O, C*KH*KW)
    y_t = np.matmul(cols_t, w3.transpose(0, 2, 1))            # (OH*OW, N, O)
    y = np.ascontiguousarray(y_t.transpose(1, 2, 0)).reshape(n, o, oh, ow)  # (N, O, OH, OW)
    if b is not None:
        y += b.reshape(1, o, oh, ow)
    return y, LocallyConnected2dCache(cols_t, w, (n, c, h, wd), padding, stride, b is not None)


def locally_connected2d_backward(dy: np.ndarray, cache: LocallyConnected2dCache
                                 ) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """Gradients of locally_connected2d_forward.

    Args:
        dy: upstream gradient (N, O, OH, OW).
        cache: from :func:`locally_connected2d_forward`.

    Returns:
        (dx (N, C, H, W), dw (OH, OW, O, C, KH, KW), db (O, OH, OW) or None).
    """
    cols_t, w = cache.cols, cache.w
    n, c, h, wd = cache.x_shape
    oh, ow, o, _, kh, kw = w.shape
    p, k = oh * ow, c * kh * kw
    db = dy.sum(axis=0) if cache.has_bias else None           # (O, OH, OW)
    dy_t = dy.reshape(n, o, p).transpose(2, 0, 1)             # (OH*OW, N, O)
    dw = np.matmul(dy_t.transpose(0, 2, 1), cols_t)           # (OH*OW, O, C*KH*KW)
    dcols_t = np.matmul(dy_t, w.reshape(p, o, k))             # (OH*OW, N, C*KH*KW)
    dcols = dcols_t.transpose(1, 2, 0)                        # (N, C*KH*KW, OH*OW)
    (pt, pb), (pl, pr) = cache.pads
    padded = (n, c, h + pt + pb, wd + pl + pr)
    dxp = col2im(dcols, padded, (kh, kw), cache.stride, (1, 1), (oh, ow))
    dx = np.ascontiguousarray(dxp[:, :, pt:pt + h, pl:pl + wd])  # (N, C, H, W)
    return dx, dw.reshape(w.shape), db
