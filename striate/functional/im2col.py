"""im2col / col2im: turn sliding windows into columns of a matrix and back.

A convolution becomes one matrix multiply over these columns.  The window view
is built with ``as_strided`` (no copy); the only copy is the one that lays the
columns out contiguously for the GEMM.
"""

from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import as_strided

from ._parallel import parallel_for

Pads = tuple[tuple[int, int], tuple[int, int]]


def out_size(size: int, k: int, stride: int, pad: int, dilation: int = 1) -> int:
    """Output length of a sliding window: floor((size + pad - d*(k-1) - 1) / stride) + 1.

    ``pad`` is the total padding (before + after).
    """
    return (size + pad - dilation * (k - 1) - 1) // stride + 1


def pad2d(x: np.ndarray, pads: Pads, value: float = 0.0) -> np.ndarray:
    """Pad the last two axes of (N, C, H, W) by ((top, bottom), (left, right))."""
    (pt, pb), (pl, pr) = pads
    if pt == pb == pl == pr == 0:
        return x
    n, c, h, w = x.shape
    xp = np.full((n, c, h + pt + pb, w + pl + pr), value, dtype=x.dtype)
    xp[:, :, pt:pt + h, pl:pl + w] = x
    return xp


def windows(xp: np.ndarray, kernel: tuple[int, int], stride: tuple[int, int],
            dilation: tuple[int, int], out_hw: tuple[int, int]) -> np.ndarray:
    """A read-only strided view of every window of a padded (N, C, Hp, Wp) array.

    Returns:
        view of shape (N, C, KH, KW, OH, OW); element [n, c, i, j, oh, ow] is
        xp[n, c, oh*sh + i*dh, ow*sw + j*dw].
    """
    n, c = xp.shape[:2]
    s_n, s_c, s_h, s_w = xp.strides
    kh, kw = kernel
    oh, ow = out_hw
    return as_strided(
        xp,
        shape=(n, c, kh, kw, oh, ow),
        strides=(s_n, s_c, s_h * dilation[0], s_w * dilation[1], s_h * stride[0], s_w * stride[1]),
        writeable=False,
    )


def im2col(xp: np.ndarray, kernel: tuple[int, int], stride: tuple[int, int],
           dilation: tuple[int, int], out_hw: tuple[int, int]) -> np.ndarray:
    """Columns of a padded input for a convolution GEMM.

    Shape:
        xp (N, C, Hp, Wp) -> (N, C*KH*KW, OH*OW)
    """
    n, c = xp.shape[:2]
    view = windows(xp, kernel, stride, dilation, out_hw)  # (N, C, KH, KW, OH, OW)
    cols = np.empty(view.shape, dtype=xp.dtype)               # (N, C, KH, KW, OH, OW)

    def copy(start: int, stop: int) -> None:
        np.copyto(cols[start:stop], view[start:stop])

    parallel_for(copy, n, cols.size)
    return cols.reshape(n, c * kernel[0] * kernel[1], out_hw[0] * out_hw[1])  # (N, C*KH*KW, OH*OW)


def col2im(dcols: np.ndarray, padded_shape: tuple[int, int, int, int],
           kernel: tuple[int, int], stride: tuple[int, int],
           dilation: tuple[int, int], out_hw: tuple[int, int]) -> np.ndarray:
    """Scatter-add columns back into a padded input: the adjoint of :func:`im2col`.

    Shape:
        dcols (N, C*KH*KW, OH*OW) -> (N, C, Hp, Wp)
    """
    n, c, hp, wp = padded_shape
    kh, kw = kernel
    oh, ow = out_hw
    sh, sw = stride
    dh, dw = dilation
    d6 = dcols.reshape(n, c, kh, kw, oh, ow)  # (N, C, KH, KW, OH, OW)
    dxp = np.empty(padded_shape, dtype=dcols.dtype)

    def scatter(start: int, stop: int) -> None:
        part, src = dxp[start:stop], d6[start:stop]
        part.fill(0)
        for i in range(kh):
            for j in range(kw):
                h0, w0 = i * dh, j * dw
                part[:, :, h0:h0 + sh * (oh - 1) + 1:sh, w0:w0 + sw * (ow - 1) + 1:sw] += src[:, :, i, j]

    parallel_for(scatter, n, dcols.size)
    return dxp


def im2col_cm(x: np.ndarray, pads: Pads, kernel: tuple[int, int], stride: tuple[int, int],
              dilation: tuple[int, int], out_hw: tuple[int, int]) -> np.ndarray:
    """Channel-major columns of a zero-padded input: one GEMM for the whole batch.

    Row (c, i, j) holds tap (i, j) of channel c for every output position of every
    image, batch inside: a convolution is then ``W (O, C*KH*KW) @ cols``, one large
    matrix multiply that BLAS runs on all cores, where a stack of per-image products
    pays a thread hand-off per image.  The input is first padded into channel-major
    order (C, N, Hp, Wp), so that each tap is one 4-D block copy.

    Shape:
        x (N, C, H, W) -> (C*KH*KW, N*OH*OW)
    """
    n, c, h, w = x.shape
    (pt, pb), (pl, pr) = pads
    (kh, kw), (oh, ow), (sh, sw), (dh, dw) = kernel, out_hw, stride, dilation
    xt = np.zeros((c, n, h + pt + pb, w + pl + pr), dtype=x.dtype)   # (C, N, Hp, Wp)
    cols = np.empty((c, kh, kw, n, oh, ow), dtype=x.dtype)            # (C, KH, KW, N, OH, OW)

    def copy(start: int, stop: int) -> None:
        xt[:, start:stop, pt:pt + h, pl:pl + w] = x[start:stop].transpose(1, 0, 2, 3)
        for i in range(kh):
            for j in range(kw):
                tap = xt[:, start:stop, i * dh:i * dh + sh * (oh - 1) + 1:sh,
                         j * dw:j * dw + sw * (ow - 1) + 1:sw]           # (C, n, OH, OW)
                np.copyto(cols[:, i, j, start:stop], tap)

    parallel_for(copy, n, cols.size)
    return cols.reshape(c * kh * kw, n * oh * ow)                     # (C*KH*KW, N*OH*OW)


def col2im_cm(dcols: np.ndarray, padded_shape: tuple[int, int, int, int],
              kernel: tuple[int, int], stride: tuple[int, int],
              dilation: tuple[int, int], out_hw: tuple[int, int]) -> np.ndarray:
    """Scatter-add channel-major columns back into a padded input: the adjoint of im2col_cm.

    Shape:
        dcols (C*KH*KW, N*OH*OW) -> (N, C, Hp, Wp)
    """
    n, c, hp, wp = padded_shape
    (kh, kw), (oh, ow), (sh, sw), (dh, dw) = kernel, out_hw, stride, dilation
    d6 = dcols.reshape(c, kh, kw, n, oh, ow)                    # (C, KH, KW, N, OH, OW)
    dxp = np.empty(padded_shape, dtype=dcols.dtype)

    def scatter(start: int, stop: int) -> None:
        part = dxp[start:stop]
        part.fill(0)
        for i in range(kh):
            for j in range(kw):
                h0, w0 = i * dh, j * dw
                tap = d6[:, i, j, start:stop].transpose(1, 0, 2, 3)   # (n, C, OH, OW)
                part[:, :, h0:h0 + sh * (oh - 1) + 1:sh, w0:w0 + sw * (ow - 1) + 1:sw] += tap

    parallel_for(scatter, n, dcols.size)
    return dxp


def to_batch_major(a: np.ndarray, n: int) -> np.ndarray:
    """(O, N*P) channel-major GEMM output -> contiguous (N, O, P) (split over threads).

    Shape:
        (O, N*P) -> (N, O, P)
    """
    o = a.shape[0]
    src = a.reshape(o, n, a.shape[1] // n if n else 0)          # (O, N, P)
    out = np.empty((n, o, src.shape[2]), dtype=a.dtype)         # (N, O, P)

    def copy(start: int, stop: int) -> None:
        np.copyto(out[start:stop], src[:, start:stop].transpose(1, 0, 2))

    parallel_for(copy, n, a.size)
    return out


def to_channel_major(a: np.ndarray) -> np.ndarray:
    """(N, O, *) -> contiguous (O, N*P), the layout of channel-major GEMM operands.

    Shape:
        (N, O, *) -> (O, N*P) with P = prod(*)
    """
    n, o = a.shape[:2]
    src = a.reshape(n, o, int(np.prod(a.shape[2:])))            # (N, O, P)
    out = np.empty((o, n, src.shape[2]), dtype=a.dtype)         # (O, N, P)

    def copy(start: int, stop: int) -> None:
        np.copyto(out[:, start:stop], src[start:stop].transpose(1, 0, 2))

    parallel_for(copy, n, a.size)
    return out.reshape(o, -1)                                   # (O, N*P)
