"""Padding layers for imported ONNX graphs: explicit, asymmetric and 'SAME' padding.

ONNX pads each side of each axis separately (a negative pad crops) in four
modes; torch-style layers pad both sides of the spatial axes alike.  An
imported Conv or pooling node with asymmetric padding therefore becomes one of
these layers followed by the striate layer with padding 0.  ``nd_pad_forward``
and ``nd_pad_backward`` are the pure kernel pair; the backward pass folds the
gradient of each border cell back onto the input cell it copied.
Pure NumPy: importing this module does not need the ``onnx`` package.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..errors import ConfigError, ShapeError
from ..functional import pool as FP
from ..nn.module import Module

__all__ = ['nd_pad_forward', 'nd_pad_backward', 'same_pads', 'Pad', 'SamePad', 'AvgPoolExcludePad']

PAD_MODES = ("constant", "reflect", "edge", "wrap")

Pads = tuple[tuple[int, int], ...]


@dataclass(frozen=True)
class NdPadCache:
    """The input shape, the (before, after) pad of every axis and the mode."""

    x_shape: tuple[int, ...]
    pads: Pads
    mode: str


def nd_pad_forward(x: np.ndarray, pads: Pads, *, mode: str = "constant", value: float = 0.0
                   ) -> tuple[np.ndarray, NdPadCache]:
    """Pad (or, with negative amounts, crop) every axis of ``x`` (ONNX Pad).

    Args:
        x: input of any rank and dtype.
        pads: one (before, after) pair per axis; negative values crop.
        mode: 'constant' (fill with ``value``), 'reflect' (mirror without the
            edge), 'edge' (repeat the edge) or 'wrap' (periodic).

    Shape:
        (d0, ...) -> (d0 + before0 + after0, ...).

    Returns:
        (y, cache) for :func:`nd_pad_backward`.
    """
    if mode not in PAD_MODES:
        raise ConfigError(f"pad: mode must be one of {PAD_MODES}; received {mode!r}")
    if len(pads) != x.ndim:
        raise ShapeError(f"pad: {len(pads)} (before, after) pairs for an input of {x.ndim} "
                         f"dimensions {tuple(x.shape)}")
    crop = tuple(slice(max(-b, 0), size - max(-a, 0)) for (b, a), size in zip(pads, x.shape))
    xc = x[crop]
    if any(s < 1 for s in xc.shape) and mode != "constant":
        raise ShapeError(f"pad: {mode} padding of an empty axis; received input {tuple(x.shape)} "
                         f"and pads {pads}")
    widths = [(max(b, 0), max(a, 0)) for b, a in pads]
    if mode == "reflect" and any(max(w) >= s for w, s in zip(widths, xc.shape) if max(w) > 0):
        raise ShapeError(f"pad: reflect padding {pads} needs each pad smaller than the axis; "
                         f"received input {tuple(x.shape)}")
    if mode == "constant":
        y = np.pad(xc, widths, mode="constant", constant_values=np.asarray(value, dtype=x.dtype))
    else:
        y = np.pad(xc, widths, mode=mode)
    return y, NdPadCache(tuple(x.shape), tuple((int(b), int(a)) for b, a in pads), mode)


def _fold_axis(g: np.ndarray, axis: int, before: int, after: int, mode: str) -> np.ndarray:
    """Adjoint of padding one axis: add the border gradients to the cells they copy.

    Shape:
        (..., before + L + after, ...) -> (..., L, ...) on ``axis``.
    """
    size = g.shape[axis] - before - after
    front = np.moveaxis(g, axis, 0)                                   # (before + L + after, ...)
    out = front[before:before + size].copy()                          # (L, ...)
    if mode != "constant" and before + after:
        source = np.pad(np.arange(size), (before, after), mode=mode)  # padded cell -> input cell
        for j in list(range(before)) + list(range(before + size, before + size + after)):
            out[source[j]] += front[j]
    return np.moveaxis(out, 0, axis)


def nd_pad_backward(dy: np.ndarray, cache: NdPadCache) -> np.ndarray:
    """Gradient of :func:`nd_pad_forward`: dx of the input's shape (cropped cells get 0)."""
    g = dy
    for axis, (b, a) in enumerate(cache.pads):
        if b > 0 or a > 0:
            g = _fold_axis(g, axis, max(b, 0), max(a, 0), cache.mode)
    crops = [(max(-b, 0), max(-a, 0)) for b, a in cache.pads]
    if any(c != (0, 0) for c in crops):
        g = np.pad(g, crops)
    return np.ascontiguousarray(g)


def same_pads(sizes: tuple[int, ...], kernel: tuple[int, ...], stride: tuple[int, ...],
              dilation: tuple[int, ...], lower: bool) -> Pads:
    """ONNX auto_pad SAME_UPPER / SAME_LOWER: pad so that out = ceil(in / stride).

    The total is (out-1)*stride + dilation*(kernel-1) + 1 - in (at least 0); the
    odd cell goes after (SAME_UPPER) or before (SAME_LOWER).
    """
    out = []
    for size, k, s, d in zip(sizes, kernel, stride, dilation):
        total = max((math.ceil(size / s) - 1) * s + d * (k - 1) + 1 - size, 0)
        small, large = total // 2, total - total // 2
        out.append((large, small) if lower else (small, large))
    return tuple(out)


class Pad(Module):
    """Pad or crop chosen axes, each side separately (ONNX Pad).

    Args:
        pads: [axis, before, after] triples; negative axes count from the end,
            negative amounts crop.
        mode: 'constant', 'reflect', 'edge' or 'wrap'.
        value: the fill of 'constant' mode.

    Shape:
        (..., d, ...) -> (..., d + before + after, ...) on each listed axis.
    """

    def __init__(self, pads: Any, mode: str = "constant", value: float = 0.0) -> None:
        super().__init__()
        try:
            self.pads = [[int(a), int(b), int(c)] for a, b, c in pads]
        except (TypeError, ValueError):
            raise ConfigError(f"Pad: pads must be [axis, before, after] triples; received {pads!r}") from None
        if mode not in PAD_MODES:
            raise ConfigError(f"Pad: mode must be one of {PAD_MODES}; received {mode!r}")
        self.mode = mode
        self.value = value.item() if isinstance(value, np.generic) else value

    def _pairs(self, x: np.ndarray) -> Pads:
        pairs = [(0, 0)] * x.ndim
        for axis, before, after in self.pads:
            if not -x.ndim <= axis < x.ndim:
                raise ShapeError(f"{self.where()}: axis {axis} is out of range for input {tuple(x.shape)}")
            if pairs[axis % x.ndim] != (0, 0):
                raise ShapeError(f"{self.where()}: axis {axis % x.ndim} is padded twice; received "
                                 f"pads {self.pads} for input {tuple(x.shape)}")
            pairs[axis % x.ndim] = (before, after)
        return tuple(pairs)

    def forward(self, x: Any) -> np.ndarray:
        x = np.asarray(x)
        y, cache = nd_pad_forward(x, self._pairs(x), mode=self.mode, value=self.value)
        self._keep((cache, x.dtype))
        return y

    def backward(self, dy: np.ndarray) -> np.ndarray | None:
        cache, dtype = self._take()
        if dtype.kind != "f":
            return None
        return nd_pad_backward(np.asarray(dy, dtype=dtype), cache)

    def extra_repr(self) -> str:
        s = f"pads={self.pads}, mode={self.mode!r}"
        return s + (f", value={self.value}" if self.mode == "constant" and self.value != 0 else "")


class SamePad(Module):
    """Pad the spatial axes (2, 3, ...) as ONNX auto_pad SAME_UPPER / SAME_LOWER, at run time.

    Args:
        kernel_size, stride, dilation: tuples, one entry per spatial axis.
        lower: SAME_LOWER (the odd cell before) instead of SAME_UPPER (after).
        value: the fill (0 before a convolution, -inf before max pooling).

    Shape:
        (N, C, *S) -> (N, C, *S'), S' such that a 'valid' window of the layer
        after it gives ceil(S / stride) outputs.
    """

    def __init__(self, kernel_size: Any, stride: Any, dilation: Any, lower: bool = False,
                 value: float = 0.0) -> None:
        super().__init__()
        self.kernel_size = tuple(int(k) for k in kernel_size)
        self.stride = tuple(int(s) for s in stride)
        self.dilation = tuple(int(d) for d in dilation)
        if not len(self.kernel_size) == len(self.stride) == len(self.dilation):
            raise ConfigError(f"SamePad: kernel_size, stride and dilation must have the same "
                              f"length; received {kernel_size!r}, {stride!r}, {dilation!r}")
        self.lower, self.value = bool(lower), float(value)

    def forward(self, x: Any) -> np.ndarray:
        x = np.asarray(x)
        nd = len(self.kernel_size)
        if x.ndim != nd + 2:
            raise ShapeError(f"{self.where()} expects input (N, C, {nd} spatial axes); "
                             f"received {tuple(x.shape)}")
        spatial = same_pads(x.shape[2:], self.kernel_size, self.stride, self.dilation, self.lower)
        y, cache = nd_pad_forward(x, ((0, 0), (0, 0)) + spatial, value=self.value)
        self._keep(cache)
        return y

    def backward(self, dy: np.ndarray) -> np.ndarray:
        return nd_pad_backward(dy, self._take())

    def extra_repr(self) -> str:
        return (f"kernel_size={self.kernel_size}, stride={self.stride}, "
                f"{'SAME_LOWER' if self.lower else 'SAME_UPPER'}")


class AvgPoolExcludePad(Module):
    """Average pooling with asymmetric or SAME padding that divides by the in-input count.

    ONNX AveragePool with count_include_pad=0: each window averages only the
    cells inside the input.  Computed as avg_pool(pad(x)) / avg_pool(pad(1)),
    both with zero padding and the same window divisors, so the ratio is the
    mean over the input cells.

    Args:
        kernel_size, stride: one entry per spatial axis (1 or 2 axes).
        pads: (before, after) per spatial axis, or None for ``same``.
        same: 'upper' or 'lower' for ONNX SAME_UPPER / SAME_LOWER (pads at run time).

    Shape:
        (N, C, *S) -> (N, C, *S_out).
    """

    def __init__(self, kernel_size: Any, stride: Any, pads: Any = None, same: str | None = None) -> None:
        super().__init__()
        self.kernel_size = tuple(int(k) for k in kernel_size)
        self.stride = tuple(int(s) for s in stride)
        nd = len(self.kernel_size)
        if nd not in (1, 2) or len(self.stride) != nd:
            raise ConfigError(f"AvgPoolExcludePad: needs 1 or 2 spatial axes; received "
                              f"kernel_size={kernel_size!r}, stride={stride!r}")
        if (pads is None) == (same is None) or same not in (None, "upper", "lower"):
            raise ConfigError(f"AvgPoolExcludePad: give pads or same='upper'/'lower'; received "
                              f"pads={pads!r}, same={same!r}")
        self.pads = None if pads is None else [[int(b), int(a)] for b, a in pads]
        self.same = same

    def _pool(self, x: np.ndarray) -> tuple[np.ndarray, Any]:
        """avg_pool2d (count_include_pad, no padding) over (N, C, H, W) or (N, C, L)."""
        k, s = self.kernel_size, self.stride
        if len(k) == 1:
            return FP.avg_pool1d_forward(x, kernel_size=k[0], stride=s[0])
        return FP.avg_pool2d_forward(x, kernel_size=k, stride=s)

    def forward(self, x: Any) -> np.ndarray:
        x = self._float_input(x)
        nd = len(self.kernel_size)
        self._check_ndim(x, ("N", "C", "H", "W") if nd == 2 else ("N", "C", "L"))
        if self.pads is None:
            spatial = same_pads(x.shape[2:], self.kernel_size, self.stride, (1,) * nd,
                                self.same == "lower")
        else:
            spatial = tuple(tuple(p) for p in self.pads)
        pads = ((0, 0), (0, 0)) + spatial
        xp, pad_cache = nd_pad_forward(x, pads)
        if any(size < k for size, k in zip(xp.shape[2:], self.kernel_size)):
            raise ShapeError(f"{self.where()}: kernel {self.kernel_size} is larger than the "
                             f"padded input; received {tuple(x.shape)}")
        total, pool_cache = self._pool(xp)
        ones, _ = nd_pad_forward(np.ones((1, 1) + x.shape[2:], dtype=x.dtype), pads)
        count, _ = self._pool(ones)                                   # (1, 1, *S_out)
        self._keep((pad_cache, pool_cache, count))
        return total / count

    def backward(self, dy: np.ndarray) -> np.ndarray:
        pad_cache, pool_cache, count = self._take()
        g = dy / count
        if len(self.kernel_size) == 1:
            dxp = FP.avg_pool1d_backward(g, pool_cache)
        else:
            dxp = FP.avg_pool2d_backward(g, pool_cache)
        return nd_pad_backward(dxp, pad_cache)

    def extra_repr(self) -> str:
        pads = f"pads={self.pads}" if self.same is None else f"same={self.same!r}"
        return f"kernel_size={self.kernel_size}, stride={self.stride}, {pads}"
