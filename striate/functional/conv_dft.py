"""Stride-1 2-D convolution as products with DFT matrices (the convolution theorem).

In the frequency domain a convolution is a pointwise product, and the sum over
input channels becomes one small matrix multiply per frequency.  For a 5x5
kernel on a 14x14 map these products take about 7x fewer multiplies than im2col
+ GEMM (``KH*KW*OH*OW / (2*Hp*Wp)``; 2.4x with the transforms for fashion_cnn's
second layer), and the backward pass keeps only the input's spectrum instead of
KH*KW copies of the input.

The transforms are plain matrix products too (small, exact DFT matrices in the
input's precision, not an FFT): a (Hp, Wp) 2-D DFT of a map costs a few
``H*W*(Hp + Wp)`` multiply-adds, more than an FFT's, but as large BLAS products
they ran 2-4x faster than ``numpy.fft`` on these small maps, and the matrices
place the zero padding and crop the output for free.  Every step is a linear map, so the
backward pass applies the adjoint of each step in reverse; the gradients are
exact for the computed function, which is the convolution (no wrap-around:
the DFT length is the padded size, so the circular and linear results agree
on every output position).

Layout of the steps (B = Hp * (Wp//2 + 1) frequencies, complex values):

    x (N, C, H, W) --W-DFT--> (N, C, H, Bw) --transpose--> (H, Bw, N, C)
      --H-DFT--> X (B, N, C)
    Y (B, N, O) = X (B, N, C) @ K (B, C, O)       one GEMM per frequency
    Y --inverse H-DFT, first OH rows--> (OH, Bw, N, O) --transpose--> (N, O, OH, Bw)
      --inverse real W-DFT, first OW columns--> y (N, O, OH, OW)

Along W the transform is a real DFT (half the spectrum), written as a real GEMM
whose output columns interleave real and imaginary parts, which is exactly the
memory layout of a complex array.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Callable

import numpy as np

from .im2col import Pads
from ._parallel import MIN_ELEMENTS, get_num_threads, parallel_for, parallel_parts, sum_of_blocks


# Batch chunk size: about this many bytes of spectrum (x's or y's, the larger) per chunk,
# but at least MIN_CHUNK images: the per-frequency products are (images x C) @ (C x O)
# matrix products, slow in BLAS with only a few rows.
CHUNK_BYTES = 2 << 20
MIN_CHUNK = 32


@dataclass(frozen=True)
class DftGeometry:
    """Sizes of one stride-1 convolution in the frequency domain."""

    n: int
    c: int
    o: int
    hw: tuple[int, int]          # input (H, W)
    kernel: tuple[int, int]      # (KH, KW)
    pads: Pads
    dilation: tuple[int, int]

    @property
    def padded(self) -> tuple[int, int]:
        """(Hp, Wp): the DFT lengths."""
        (pt, pb), (pl, pr) = self.pads
        return self.hw[0] + pt + pb, self.hw[1] + pl + pr

    @property
    def out_hw(self) -> tuple[int, int]:
        """(OH, OW) = (Hp - dh*(KH-1), Wp - dw*(KW-1))."""
        hp, wp = self.padded
        return (hp - self.dilation[0] * (self.kernel[0] - 1),
                wp - self.dilation[1] * (self.kernel[1] - 1))

    @property
    def bins(self) -> tuple[int, int]:
        """(Hp, Wp//2 + 1): frequencies kept along H (all) and W (half, the input is real)."""
        hp, wp = self.padded
        return hp, wp // 2 + 1


@dataclass(frozen=True)
class DftConvCache:
    """What conv2d_dft_backward needs: the input's and the kernel's spectra."""

    spec_x: tuple            # ((start, stop, (B, n, C) complex spectrum) per batch part)
    spec_w: np.ndarray       # (B, C, O) complex
    geo: DftGeometry
    has_bias: bool


def _complex_dtype(dtype: np.dtype) -> np.dtype:
    return np.dtype(np.complex128 if dtype == np.float64 else np.complex64)


def _real_dtype(dtype: np.dtype) -> np.dtype:
    return np.dtype(np.float64 if dtype == np.complex128 else np.float32)


def _frozen(a: np.ndarray) -> np.ndarray:
    """``a`` made read-only: the cached matrices are shared by every call."""
    a.setflags(write=False)
    return a


@lru_cache(maxsize=64)
def _w_forward(w_in: int, size: int, offset: int, dtype_str: str) -> np.ndarray:
    """(W, 2*Bw) real: row w, columns (2k, 2k+1) = (cos, -sin)(2*pi*k*(w + offset)/size)."""
    bins = size // 2 + 1
    angle = 2 * np.pi * np.outer(np.arange(w_in) + offset, np.arange(bins)) / size  # (W, Bw)
    out = np.empty((w_in, bins, 2))
    out[..., 0], out[..., 1] = np.cos(angle), -np.sin(angle)
    return _frozen(out.reshape(w_in, 2 * bins).astype(dtype_str))                 # (W, 2*Bw)


@lru_cache(maxsize=64)
def _w_inverse(size: int, keep: int, dtype_str: str) -> np.ndarray:
    """(2*Bw, OW) real: the real inverse DFT of a half spectrum, first ``keep`` outputs."""
    bins = size // 2 + 1
    weight = np.full(bins, 2.0)
    weight[0] = 1.0
    if size % 2 == 0:
        weight[-1] = 1.0                                    # the Nyquist bin has no pair
    angle = 2 * np.pi * np.outer(np.arange(bins), np.arange(keep)) / size  # (Bw, OW)
    out = np.empty((bins, 2, keep))
    out[:, 0] = weight[:, None] * np.cos(angle) / size
    out[:, 1] = -weight[:, None] * np.sin(angle) / size
    return _frozen(out.reshape(2 * bins, keep).astype(dtype_str))         # (2*Bw, OW)


@lru_cache(maxsize=64)
def _h_forward(h_in: int, size: int, offset: int, dtype_str: str) -> np.ndarray:
    """(Hp, H) complex: exp(-2*pi*i*k*(h + offset)/size)."""
    angle = 2 * np.pi * np.outer(np.arange(size), np.arange(h_in) + offset) / size
    return _frozen(np.exp(-1j * angle).astype(dtype_str))


@lru_cache(maxsize=64)
def _h_inverse(size: int, keep: int, dtype_str: str) -> np.ndarray:
    """(OH, Hp) complex: exp(+2*pi*i*k*h/size) / size for the first ``keep`` positions."""
    angle = 2 * np.pi * np.outer(np.arange(keep), np.arange(size)) / size
    return _frozen((np.exp(1j * angle) / size).astype(dtype_str))


@lru_cache(maxsize=64)
def _kernel_matrix(geo_key: tuple, dtype_str: str) -> np.ndarray:
    """(B, KH*KW) complex: the correlation kernel's spectrum, exp(+i*angle) per tap."""
    (hp, wp), (kh, kw), (dh, dw) = geo_key
    bw = wp // 2 + 1
    ah = 2 * np.pi * np.outer(np.arange(hp), np.arange(kh) * dh) / hp     # (Hp, KH)
    aw = 2 * np.pi * np.outer(np.arange(bw), np.arange(kw) * dw) / wp     # (Bw, KW)
    angle = ah[:, None, :, None] + aw[None, :, None, :]                   # (Hp, Bw, KH, KW)
    return _frozen(np.exp(1j * angle).reshape(hp * bw, kh * kw).astype(dtype_str))


def _transpose(src: np.ndarray, axes: tuple[int, ...], split_axis: int) -> np.ndarray:
    """A contiguous transposed copy, split over threads along ``split_axis`` of ``src``."""
    out = np.empty([src.shape[a] for a in axes], dtype=src.dtype)
    dest_axis = axes.index(split_axis)

    def copy(start: int, stop: int) -> None:
        index = [slice(None)] * src.ndim
        index[split_axis] = slice(start, stop)
        dest = [slice(None)] * src.ndim
        dest[dest_axis] = slice(start, stop)
        np.copyto(out[tuple(dest)], src[tuple(index)].transpose(axes))

    parallel_for(copy, src.shape[split_axis], src.size)
    return out


def _spectrum(x: np.ndarray, geo: DftGeometry) -> np.ndarray:
    """(N, C, H, W) real -> (B, N, C) complex: the 2-D DFT of each zero-padded map."""
    n, c, h, w = x.shape
    (pt, _), (pl, _) = geo.pads
    hp, wp = geo.padded
    bh, bw = geo.bins
    cdt = _complex_dtype(x.dtype)
    zw = x.reshape(n * c * h, w) @ _w_forward(w, wp, pl, x.dtype.str)   # (N*C*H, 2*Bw)
    zw = zw.view(cdt).reshape(n, c, h, bw)                              # (N, C, H, Bw)
    zt = _transpose(zw, (2, 3, 0, 1), 0)                                # (H, Bw, N, C)
    spec = _h_forward(h, hp, pt, cdt.str) @ zt.reshape(h, bw * n * c)   # (Hp, Bw*N*C)
    return spec.reshape(bh * bw, n, c)                                  # (B, N, C)


def _spectrum_adjoint(g: np.ndarray, geo: DftGeometry, out: np.ndarray) -> None:
    """Adjoint of :func:`_spectrum`: (B, n, C) complex -> out (n, C, H, W) real."""
    n, c, h, w = out.shape
    (pt, _), (pl, _) = geo.pads
    hp, wp = geo.padded
    bw = geo.bins[1]
    fh = _h_forward(h, hp, pt, g.dtype.str)                             # (Hp, H)
    zt = fh.conj().T @ g.reshape(hp, bw * n * c)                        # (H, Bw*n*C)
    zw = _transpose(zt.reshape(h, bw, n, c), (2, 3, 0, 1), 2)           # (n, C, H, Bw)
    real = zw.reshape(n * c * h, bw).view(_real_dtype(g.dtype))         # (n*C*H, 2*Bw)
    fw = _w_forward(w, wp, pl, real.dtype.str)                          # (W, 2*Bw)
    np.matmul(real, fw.T, out=out.reshape(n * c * h, w))                # (n*C*H, W)


def _output(spec_y: np.ndarray, geo: DftGeometry, out: np.ndarray) -> None:
    """(B, n, O) complex -> out (n, O, OH, OW) real: inverse 2-D DFT, first OH x OW positions."""
    n, o, oh, ow = out.shape
    hp, wp = geo.padded
    bw = geo.bins[1]
    cdt = spec_y.dtype
    u = _h_inverse(hp, oh, cdt.str) @ spec_y.reshape(hp, bw * n * o)     # (OH, Bw*n*O)
    ut = _transpose(u.reshape(oh, bw, n, o), (2, 3, 0, 1), 2)           # (n, O, OH, Bw)
    real = ut.reshape(n * o * oh, bw).view(_real_dtype(cdt))            # (n*O*OH, 2*Bw)
    np.matmul(real, _w_inverse(wp, ow, real.dtype.str), out=out.reshape(n * o * oh, ow))


def _output_adjoint(dy: np.ndarray, geo: DftGeometry) -> np.ndarray:
    """Adjoint of :func:`_output`: (N, O, OH, OW) real -> (B, N, O) complex."""
    n, o, oh, ow = dy.shape
    hp, wp = geo.padded
    bh, bw = geo.bins
    cdt = _complex_dtype(dy.dtype)
    g = dy.reshape(n * o * oh, ow) @ _w_inverse(wp, ow, dy.dtype.str).T  # (N*O*OH, 2*Bw)
    g = g.view(cdt).reshape(n, o, oh, bw)                                # (N, O, OH, Bw)
    gt = _transpose(g, (2, 3, 0, 1), 0)                                  # (OH, Bw, N, O)
    gi = _h_inverse(hp, oh, cdt.str)                                     # (OH, Hp)
    spec = gi.conj().T @ gt.reshape(oh, bw * n * o)                      # (Hp, Bw*N*O)
    return spec.reshape(bh * bw, n, o)                                   # (B, N, O)


def _kernel_spectrum(w: np.ndarray, geo: DftGeometry) -> np.ndarray:
    """(O, C, KH, KW) real -> (B, C, O) complex: spectrum of the correlation kernel."""
    o, c, kh, kw = w.shape
    mk = _kernel_matrix((geo.padded, geo.kernel, geo.dilation), _complex_dtype(w.dtype).str)
    spec = mk @ w.reshape(o * c, kh * kw).T                              # (B, O*C)
    return np.ascontiguousarray(spec.reshape(-1, o, c).transpose(0, 2, 1))  # (B, C, O)


def dft_conv_costs(geo: DftGeometry, itemsize: int = 4) -> tuple[float, float]:
    """Estimated cost (multiply-add equivalents) of one forward pass: (im2col + GEMM, DFT route).

    A cost model fitted to timings of 20 convolution shapes on 2 threads
    (BENCHMARKS.md, change 16), not exact:

    * im2col: the GEMM's multiply-adds, divided by its efficiency, which drops for
      few output channels (a GEMM with 16 rows runs at about 60% of one with 64);
    * DFT route: the transforms' multiply-adds plus the per-frequency products'
      (4 real per complex), the latter multiplied by 32 / images-per-chunk when a
      chunk has fewer than 32 images (those products are (images x C) @ (C x O)
      matrix products, slow in BLAS with few rows).
    """
    n, c, o = geo.n, geo.c, geo.o
    (h, w), hp, (oh, ow) = geo.hw, geo.padded[0], geo.out_hw
    bh, bw = geo.bins
    direct = n * c * o * geo.kernel[0] * geo.kernel[1] * oh * ow / min(1.0, 0.5 + o / 128)
    transforms = (n * c * (h * w * 2 * bw + 4 * h * hp * bw)       # spectrum of x
                  + n * o * (4 * oh * hp * bw + oh * 2 * bw * ow))  # inverse to y
    chunk = min((b - a for a, b in _chunks(geo, itemsize)), default=1)
    products = 4 * bh * bw * n * c * o * max(1.0, MIN_CHUNK / chunk)
    return float(direct), float(transforms + products)


def conv2d_dft_forward(x: np.ndarray, w: np.ndarray, b: np.ndarray | None, *,
                       padding: Pads = ((0, 0), (0, 0)), dilation: tuple[int, int] = (1, 1),
                       post: Callable[[np.ndarray], np.ndarray] | None = None
                       ) -> tuple[np.ndarray, DftConvCache]:
    """Stride-1, groups-1 conv2d (cross-correlation) through the frequency domain.

    The batch is cut into equal chunks (about CHUNK_BYTES of spectrum, at least
    MIN_CHUNK images), spread over the threads; each chunk goes through all steps.

    Args:
        x: input (N, C, H, W), float32 or float64.
        w: weight (O, C, KH, KW).
        b: bias (O,) or None.
        padding: ((top, bottom), (left, right)) zero padding.
        dilation: (dh, dw).
        post: applied to each chunk's output while it is in the cache (fused inference,
            see :func:`striate.functional.conv.conv2d_infer`); y is then post's output.
            The bias is added after ``post``, which must commute with adding a constant
            per channel (max- and average-pooling do).

    Shape:
        (N, C, H, W) -> (N, O, OH, OW), OH = H + top + bottom - dh*(KH-1) (likewise OW);
        with ``post`` (N, O, PH, PW).

    Returns:
        (y, cache) for :func:`conv2d_dft_backward`; y equals conv2d_forward's to rounding.
    """
    n, c, h, wd = x.shape
    o = w.shape[0]
    geo = DftGeometry(n, c, o, (h, wd), (w.shape[2], w.shape[3]), padding, dilation)
    spec_w = _kernel_spectrum(w.astype(x.dtype, copy=False), geo)       # (B, C, O)
    full_hw = geo.out_hw
    out_hw = post_output_hw(post, full_hw, x.dtype)
    y = np.empty((n, o) + tuple(out_hw), dtype=x.dtype)

    def chunk(start: int, stop: int) -> tuple[int, int, np.ndarray]:
        spec_x = _spectrum(x[start:stop], geo)                           # (B, n, C)
        if post is None:
            _output(np.matmul(spec_x, spec_w), geo, out=y[start:stop])    # (n, O, OH, OW)
        else:
            full = np.empty((stop - start, o) + full_hw, dtype=x.dtype)
            _output(np.matmul(spec_x, spec_w), geo, out=full)           # (n, O, OH, OW)
            y[start:stop] = post(full)                                   # (n, O, PH, PW)
            if b is not None:                          # after ``post``: on the smaller array
                y[start:stop] += b.reshape(1, o, 1, 1)
        return start, stop, spec_x

    # Chunks of the batch small enough for their spectra to stay in the CPU's cache.
    chunks = _chunks(geo, x.itemsize)

    def part(first: int, last: int) -> list:
        return [chunk(*chunks[i]) for i in range(first, last)]

    parts = [p for group in parallel_parts(part, len(chunks), x.size + y.size) for p in group]
    if b is not None and post is None:
        y += b.reshape(1, o, 1, 1)
    return y, DftConvCache(tuple(parts), spec_w, geo, b is not None)


def conv2d_dft_backward(dy: np.ndarray, cache: DftConvCache, *, need_dx: bool = True
                        ) -> tuple[np.ndarray | None, np.ndarray, np.ndarray | None]:
    """Gradients of conv2d_dft_forward: each step's adjoint, in reverse order.

    Returns:
        (dx (N, C, H, W) or None, dw (O, C, KH, KW), db (O,) or None).
    """
    geo = cache.geo
    kh, kw = geo.kernel
    dy = np.ascontiguousarray(dy)
    spec_w_h = cache.spec_w.conj().transpose(0, 2, 1)                    # (B, O, C)
    dx = np.empty((geo.n, geo.c) + geo.hw, dtype=dy.dtype) if need_dx else None

    def one(start: int, stop: int, spec_x: np.ndarray) -> np.ndarray:
        spec_g = _output_adjoint(dy[start:stop], geo)                    # (B, n, O)
        if dx is not None:                                               # Y = X @ K: dX = dY @ K^H
            _spectrum_adjoint(np.matmul(spec_g, spec_w_h), geo, out=dx[start:stop])
        return np.matmul(spec_x.conj().transpose(0, 2, 1), spec_g)       # dK = X^H @ dY (B, C, O)

    # Split along the forward pass's parts (its spectra are cut that way).
    count = len(cache.spec_x)
    spec_dw = sum_of_blocks(lambda i: one(*cache.spec_x[i]), count, MIN_ELEMENTS * count)
    if spec_dw is None:                                                  # an empty batch
        spec_dw = np.zeros_like(cache.spec_w)                            # (B, C, O)
    mk = _kernel_matrix((geo.padded, geo.kernel, geo.dilation), spec_dw.dtype.str)  # (B, KH*KW)
    dw = (mk.conj().T @ spec_dw.reshape(mk.shape[0], -1)).real           # (KH*KW, C*O)
    dw = np.ascontiguousarray(dw.reshape(kh, kw, geo.c, geo.o).transpose(3, 2, 0, 1))
    db = dy.sum(axis=(0, 2, 3)) if cache.has_bias else None
    return dx, dw, db


def post_output_hw(post: Callable[[np.ndarray], np.ndarray] | None, hw: tuple[int, int],
                   dtype: np.dtype) -> tuple[int, int]:
    """The (H, W) that ``post`` maps a (H, W) output to, from one 1x1-channel probe call."""
    return hw if post is None else tuple(post(np.zeros((1, 1) + tuple(hw), dtype=dtype)).shape[2:])


def _chunks(geo: DftGeometry, itemsize: int) -> list[tuple[int, int]]:
    """Equal batch chunks of at most ~CHUNK_BYTES of spectrum (x's or y's, the larger),
    at least MIN_CHUNK images, as many as a multiple of the threads."""
    n = geo.n
    if n == 0:
        return []
    per_image = geo.bins[0] * geo.bins[1] * max(geo.c, geo.o) * 2 * itemsize
    threads = min(get_num_threads(), n)
    most = max(1, min(n, max(MIN_CHUNK, CHUNK_BYTES // per_image)))
    count = threads * -(-n // (threads * most))                # ceil, rounded up to the threads
    bounds = [n * i // count for i in range(count + 1)]
    return [(a, b) for a, b in zip(bounds[:-1], bounds[1:]) if b > a]
