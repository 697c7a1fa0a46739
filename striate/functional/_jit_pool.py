"""2x2, stride-2 max pooling with arg-max, compiled at run time (optional, see :mod:`._jit`).

NumPy makes about a dozen passes for a training-mode max pool (three maxima over
stride-2 views, then the arg-max bookkeeping) and four masked writes for its
backward pass; each kernel here makes one.  Each input row pair is loaded as
vectors of 2L values and split into its even and odd columns with a shuffle:

* ``forward``: y = the window's maximum, arg = its offset 2*i + j, the first in
  row-major order on ties, a NaN winning over numbers (the first NaN), as
  :func:`striate.functional.pool.max_pool2d_forward`;
* ``backward``: dx[2r + i, 2t + j] = dy[r, t] where arg == 2*i + j, else 0.

Planes are H x W with H and W even (every input value in exactly one window).
"""

from __future__ import annotations

import ctypes
from functools import lru_cache
from typing import Callable

import numpy as np

from . import _jit
from ._jit import _Builder, _compile, _declare, _scalar
from ._parallel import parallel_kernels

__all__ = ["pool_kernel"]


def _halves(k: _Builder, lo, hi, odd: bool):
    """The even (or odd) lanes of the 2L values lo ++ hi."""
    lanes = k.lanes
    idx = _jit._ir.Constant(_jit._ir.VectorType(_jit._ir.IntType(32), lanes),
                            [2 * q + int(odd) for q in range(lanes)])
    return k.b.shuffle_vector(lo, hi, idx)


def _interleave(k: _Builder, even, odd, second: bool):
    """The first (or second) L values of even[0], odd[0], even[1], odd[1], ..."""
    lanes = k.lanes
    start = lanes // 2 if second else 0
    idx = []
    for q in range(start, start + lanes // 2):
        idx += [q, lanes + q]
    return k.b.shuffle_vector(even, odd, _jit._ir.Constant(
        _jit._ir.VectorType(_jit._ir.IntType(32), lanes), idx))


@lru_cache(maxsize=None)
def pool_kernel(kind: str, dtype: str) -> Callable:
    """The compiled 2x2 max-pool kernel, ``kind`` "forward" or "backward".

    C signatures: forward ``f(x, y, arg, k0, k1, H, W)``, backward ``f(dy, arg, dx, k0, k1,
    H, W)``, over planes k0..k1-1 (x and dx planes H x W, y, dy and arg (int8) H/2 x W/2).
    """
    ir = _jit._ir
    lanes, scalar = _jit.LANES[dtype], _scalar(dtype)
    module = ir.Module(name=f"maxpool2_{kind}_{dtype}")
    fp, bp, i64 = ir.PointerType(scalar), ir.PointerType(ir.IntType(8)), ir.IntType(64)
    sig = [fp, fp, bp] if kind == "forward" else [fp, bp, fp]
    fn = ir.Function(module, ir.FunctionType(ir.VoidType(), sig + [i64] * 4), name=kind)
    p0, p1, p2, k0, k1, hh, ww = fn.args
    for a in (p0, p1, p2):
        a.add_attribute("noalias")
    k = _Builder(fn, scalar, lanes)
    b = k.b
    byte_vec = ir.VectorType(ir.IntType(8), lanes)
    mask_t = ir.VectorType(ir.IntType(1), lanes)
    bptr = ir.PointerType(byte_vec)
    one = ir.Constant(ir.IntType(32), 1)
    store8 = _declare(module, f"llvm.masked.store.v{lanes}i8.p0", ir.VoidType(),
                      [byte_vec, bptr, ir.IntType(32), mask_t])
    load8 = _declare(module, f"llvm.masked.load.v{lanes}i8.p0", byte_vec,
                     [bptr, ir.IntType(32), mask_t, byte_vec])
    oh, ow = b.sdiv(hh, k.const(2)), b.sdiv(ww, k.const(2))

    def offsets(code: int):
        return ir.Constant(byte_vec, [code] * lanes)

    def per_plane(plane):
        in_base = b.mul(plane, b.mul(hh, ww))
        out_base = b.mul(plane, b.mul(oh, ow))

        def per_row(r):
            rows = [b.add(in_base, b.mul(b.add(b.mul(r, k.const(2)), k.const(i)), ww)) for i in (0, 1)]
            out_row = b.add(out_base, b.mul(r, ow))

            def per_vector(t0):
                m_out = k.mask(t0, ow)
                col = b.mul(t0, k.const(2))
                m_lo, m_hi = k.mask(col, ww), k.mask(b.add(col, k.const(lanes)), ww)
                at_out = b.add(out_row, t0)
                if kind == "forward":
                    forward_vector(rows, col, m_lo, m_hi, m_out, at_out)
                else:
                    backward_vector(rows, col, m_lo, m_hi, m_out, at_out)
            k.loop(k.const(0), ow, lanes, "t", per_vector)
        k.loop(k.const(0), oh, 1, "r", per_row)

    def forward_vector(rows, col, m_lo, m_hi, m_out, at_out):
        taps = []
        for row in rows:
            at = b.add(row, col)
            lo = b.call(k.mload, [k.vptr(p0, at), k.align, m_lo, k.zero])
            hi = b.call(k.mload, [k.vptr(p0, b.add(at, k.const(lanes))), k.align, m_hi, k.zero])
            taps += [_halves(k, lo, hi, False), _halves(k, lo, hi, True)]
        best, arg = taps[0], offsets(0)
        for code, v in enumerate(taps[1:], start=1):
            bigger = b.fcmp_ordered(">", v, best)
            nan_over = b.and_(b.fcmp_unordered("uno", v, v), b.fcmp_ordered("ord", best, best))
            take = b.or_(bigger, nan_over)
            best = b.select(take, v, best)
            arg = b.select(take, offsets(code), arg)
        b.call(k.mstore, [best, k.vptr(p1, at_out), k.align, m_out])
        b.call(store8, [arg, b.bitcast(b.gep(p2, [at_out]), bptr), one, m_out])

    def backward_vector(rows, col, m_lo, m_hi, m_out, at_out):
        g = b.call(k.mload, [k.vptr(p0, at_out), k.align, m_out, k.zero])
        arg = b.call(load8, [b.bitcast(b.gep(p1, [at_out]), bptr), one, m_out, offsets(-1)])
        parts = [b.select(b.icmp_signed("==", arg, offsets(code)), g, k.zero) for code in range(4)]
        for i, row in enumerate(rows):
            at = b.add(row, col)
            even, odd = parts[2 * i], parts[2 * i + 1]
            b.call(k.mstore, [_interleave(k, even, odd, False), k.vptr(p2, at), k.align, m_lo])
            b.call(k.mstore, [_interleave(k, even, odd, True), k.vptr(p2, b.add(at, k.const(lanes))),
                              k.align, m_hi])

    k.loop(k0, k1, 1, "plane", per_plane)
    b.ret_void()
    return _compile(module, kind, [ctypes.c_void_p] * 3 + [ctypes.c_int64] * 4)


def usable(dtype, hw: tuple, kernel: tuple, stride: tuple, padding: tuple, dilation: tuple) -> bool:
    """Whether the compiled 2x2 kernels can pool planes of size ``hw`` (even sides, float)."""
    return (_jit.jit_available() and tuple(kernel) == (2, 2) and tuple(stride) == (2, 2)
            and tuple(padding) == (0, 0) and tuple(dilation) == (1, 1)
            and np.dtype(dtype) in (np.float32, np.float64) and hw[0] % 2 == 0 and hw[1] % 2 == 0)


def max_pool_2x2(x):
    """(y, arg) of the 2x2, stride-2 max pool of x (N, C, H, W): y (N, C, H/2, W/2), arg int8."""
    n, c, h, w = x.shape
    y = np.empty((n, c, h // 2, w // 2), dtype=x.dtype)
    arg = np.empty((n, c, h // 2, w // 2), dtype=np.int8)
    kernel = pool_kernel("forward", x.dtype.name)

    def calls(start: int, stop: int) -> list:
        return [(kernel, (x.ctypes.data, y.ctypes.data, arg.ctypes.data, start, stop, h, w))]

    parallel_kernels(calls, n * c, x.size)
    return y, arg


def max_pool_2x2_backward(dy, arg, x_shape: tuple):
    """dx (N, C, H, W) of max_pool_2x2: dy at each window's arg-max, 0 elsewhere."""
    n, c, h, w = x_shape
    dy = np.ascontiguousarray(dy)
    dx = np.empty(x_shape, dtype=dy.dtype)
    kernel = pool_kernel("backward", dy.dtype.name)

    def calls(start: int, stop: int) -> list:
        return [(kernel, (dy.ctypes.data, arg.ctypes.data, dx.ctypes.data, start, stop, h, w))]

    parallel_kernels(calls, n * c, dx.size)
    return dx
