"""Convolution kernels that treat a whole plane as one row, for maps narrower than a vector.

The kernels of :mod:`._jit` vectorise along an output row: an 8-pixel row fills half
of a 16-lane float32 vector.  For a stride-1 convolution whose output is as wide as
its input (OW = W, "same" padding along the width), output position p = oh*W + ow
reads, for tap (i, j), input position p + (i*dh - pt)*W + (j*dw - pl) of the same
plane: the plane is one long row and a vector holds L/W rows.  A lane loads only
where its input column ow + j*dw - pl and its input row oh + i*dh - pt fall inside
the input (masked loads: zero padding without a copy).  W is a power of two below
the vector's L lanes, so every vector starts at a multiple of W: the column masks
and the taps' offsets are constants, compiled in with W and the padding.

* ``flat_forward``: y[n, o, p] = bias[o] + sum_{c,i,j} w[o, c, i, j] * x[n, c, p + ...],
  OB output channels x T vectors in registers, the taps unrolled;
* ``flat_weight``: dw[o, c, i, j] += sum_{n,p} dy[n, o, p] * x[n, c, p + ...], OB x KH x KW
  vector accumulators, images innermost (the masks of a vector column computed once).
"""

from __future__ import annotations

import ctypes
from functools import lru_cache
from typing import Callable

from . import _jit, _jit_stats
from ._jit import _Builder, _compile, _hsum, _scalar

__all__ = ["flat_fits", "flat_forward_kernel", "flat_weight_kernel"]


def flat_fits(dtype: str, width: int, out_width: int) -> bool:
    """Whether the flat kernels serve rows of ``width`` columns: a power of two narrower than
    a vector, and an output as wide as the input."""
    lanes = _jit.LANES[dtype]
    return out_width == width and 0 < width < lanes and lanes % width == 0


def _masks(k: _Builder, start, kh: int, kw: int, dh: int, dw: int, pt: int, pl: int, width: int, hh):
    """(rows, cols) for the vector at flat position ``start`` (a multiple of L): rows[i] the
    lanes whose input row is inside for kernel row i (run time), cols[j] those whose input
    column is for kernel column j (constants: lane l sits in column l mod W)."""
    b = k.b
    plane = b.mul(hh, k.const(width))
    rows = [k.window(b.add(start, k.const((i * dh - pt) * width)), plane) for i in range(kh)]
    mask_type = k.all_lanes.type
    cols = [_jit._ir.Constant(mask_type, [int(0 <= lane % width + j * dw - pl < width)
                                          for lane in range(k.lanes)]) for j in range(kw)]
    return rows, cols


def _tap_offset(i: int, j: int, dh: int, dw: int, pt: int, pl: int, width: int) -> int:
    """(i*dh - pt)*W + j*dw - pl: where tap (i, j) of flat output p reads, relative to p."""
    return (i * dh - pt) * width + j * dw - pl


@lru_cache(maxsize=None)
def flat_forward_kernel(dtype: str, kh: int, kw: int, dh: int, dw: int, ob: int, lanes: int,
                        tile: int, width: int, pt: int, pl: int, stats: bool = False) -> Callable:
    """The compiled flat forward kernel (see the module docstring) for rows of ``width``
    columns and top/left padding ``pt``, ``pl``.

    C signature: ``f(x, w, bias, y, n0, n1, o0, o1, C, O, H, OH)`` computes images
    n0..n1-1 and output channels o0..o1-1 (o1 - o0 a multiple of ``ob``) of
    y (N, O, OH, W) from x (N, C, H, W), w (O, C, KH, KW) and bias (O,); ``stats=True``:
    one more argument ``st``, the per-plane sums of y and y^2 (:mod:`._jit_stats`).
    """
    _check(width, lanes)
    ir = _jit._ir
    scalar = _scalar(dtype)
    module = ir.Module(name=f"conv_flat_fwd_{dtype}_{kh}x{kw}")
    fp, i64 = ir.PointerType(scalar), ir.IntType(64)
    extra = [ir.PointerType(ir.DoubleType())] if stats else []
    fn = ir.Function(module, ir.FunctionType(ir.VoidType(), [fp] * 4 + [i64] * 8 + extra),
                     name="flat_forward")
    x, w, bias, y, n0, n1, o0, o1, cc, oo, hh, oh_n = fn.args[:12]
    st = fn.args[-1] if stats else None
    for a in (x, w, bias, y):
        a.add_attribute("noalias")
    k = _Builder(fn, scalar, lanes)
    b = k.b
    acc = b.alloca(ir.ArrayType(k.vec, ob * tile))
    slot = [b.gep(acc, [k.const(0), k.const(q)]) for q in range(ob * tile)]
    plane, out_plane = b.mul(hh, k.const(width)), b.mul(oh_n, k.const(width))
    offsets = [[k.const(_tap_offset(i, j, dh, dw, pt, pl, width)) for j in range(kw)] for i in range(kh)]

    def per_image(n):
        def per_block(o_start):
            def per_tile(p0):
                starts = [b.add(p0, k.const(t * lanes)) for t in range(tile)]
                masks = [_masks(k, s, kh, kw, dh, dw, pt, pl, width, hh) for s in starts]
                for q in slot:
                    b.store(k.zero, q)

                def per_channel(c):
                    base = b.mul(k.index(n, cc, c), plane)
                    wbase = b.mul(k.index(o_start, cc, c), k.const(kh * kw))
                    sums = [b.load(q) for q in slot]
                    for i in range(kh):
                        for j in range(kw):
                            xs = [b.call(k.mload, [k.vptr(x, b.add(b.add(base, starts[t]), offsets[i][j])),
                                                   k.align, b.and_(masks[t][0][i], masks[t][1][j]), k.zero])
                                  for t in range(tile)]
                            for o in range(ob):
                                at = b.add(b.add(wbase, b.mul(k.const(o * kh * kw), cc)),  # w[o_start+o, c,
                                           k.const(i * kw + j))                              #   i, j]
                                wv = k.splat(b.load(b.gep(w, [at])))
                                for t in range(tile):
                                    sums[o * tile + t] = b.call(k.fma, [wv, xs[t], sums[o * tile + t]])
                    for q, v in zip(slot, sums):
                        b.store(v, q)
                k.loop(k.const(0), cc, 1, "c", per_channel)
                for o in range(ob):
                    shift = k.splat(b.load(b.gep(bias, [b.add(o_start, k.const(o))])))
                    plane_o = k.index(n, oo, b.add(o_start, k.const(o)))
                    sums = _jit_stats.zero_sums() if stats else None
                    for t in range(tile):
                        value, m = b.fadd(b.load(slot[o * tile + t]), shift), k.mask(starts[t], out_plane)
                        b.call(k.mstore, [value, k.vptr(y, b.add(b.mul(plane_o, out_plane), starts[t])),
                                          k.align, m])
                        if stats:
                            sums = _jit_stats.add_vector(k, value, m, sums)
                    if stats:
                        _jit_stats.add_to_plane(k, st, plane_o, sums)
            k.loop(k.const(0), out_plane, tile * lanes, "p", per_tile)
        k.loop(o0, o1, ob, "ob", per_block)
    k.loop(n0, n1, 1, "n", per_image)
    b.ret_void()
    return _compile(module, "flat_forward", [ctypes.c_void_p] * 4 + [ctypes.c_int64] * 8
                    + [ctypes.c_void_p] * len(extra))


@lru_cache(maxsize=None)
def flat_weight_kernel(dtype: str, kh: int, kw: int, dh: int, dw: int, ob: int, lanes: int,
                       width: int, pt: int, pl: int) -> Callable:
    """The compiled flat weight-gradient kernel (see the module docstring).

    C signature: ``f(x, dy, dw, n0, n1, o0, o1, C, O, H, OH)`` adds, for output channels
    o0..o1-1 (o1 - o0 a multiple of ``ob``), the sum over images n0..n1-1 to
    dw (O, C, KH, KW); dy is (N, O, OH, W).
    """
    _check(width, lanes)
    ir = _jit._ir
    scalar = _scalar(dtype)
    module = ir.Module(name=f"conv_flat_wgrad_{dtype}_{kh}x{kw}")
    fp, i64 = ir.PointerType(scalar), ir.IntType(64)
    fn = ir.Function(module, ir.FunctionType(ir.VoidType(), [fp] * 3 + [i64] * 8), name="flat_weight")
    x, dy, dwt, n0, n1, o0, o1, cc, oo, hh, oh_n = fn.args
    for a in (x, dy, dwt):
        a.add_attribute("noalias")
    k = _Builder(fn, scalar, lanes)
    b = k.b
    count = ob * kh * kw
    acc = b.alloca(ir.ArrayType(k.vec, count))
    slot = [b.gep(acc, [k.const(0), k.const(q)]) for q in range(count)]
    plane, out_plane = b.mul(hh, k.const(width)), b.mul(oh_n, k.const(width))
    offsets = [[k.const(_tap_offset(i, j, dh, dw, pt, pl, width)) for j in range(kw)] for i in range(kh)]

    def per_block(o_start):
        def per_channel(c):
            for q in slot:
                b.store(k.zero, q)

            def per_vector(p0):                     # masks once per vector column
                rows, cols = _masks(k, p0, kh, kw, dh, dw, pt, pl, width, hh)
                m = k.mask(p0, out_plane)

                def per_image(n):
                    sums = [b.load(q) for q in slot]
                    grads = [b.call(k.mload, [k.vptr(dy, b.add(b.mul(k.index(n, oo, b.add(o_start, k.const(o))),
                                                                     out_plane), p0)),
                                              k.align, m, k.zero]) for o in range(ob)]
                    base = b.add(b.mul(k.index(n, cc, c), plane), p0)
                    for i in range(kh):
                        for j in range(kw):
                            xv = b.call(k.mload, [k.vptr(x, b.add(base, offsets[i][j])), k.align,
                                                  b.and_(b.and_(rows[i], cols[j]), m), k.zero])
                            for o in range(ob):
                                q = (o * kh + i) * kw + j
                                sums[q] = b.call(k.fma, [grads[o], xv, sums[q]])
                    for q, v in zip(slot, sums):
                        b.store(v, q)
                k.loop(n0, n1, 1, "n", per_image)
            k.loop(k.const(0), out_plane, lanes, "p", per_vector)
            for o in range(ob):
                for q in range(kh * kw):
                    total = _hsum(b, b.load(slot[o * kh * kw + q]), lanes, scalar)
                    at = b.gep(dwt, [b.add(b.mul(k.index(b.add(o_start, k.const(o)), cc, c),
                                                 k.const(kh * kw)), k.const(q))])
                    b.store(b.fadd(b.load(at), total), at)
        k.loop(k.const(0), cc, 1, "c", per_channel)
    k.loop(o0, o1, ob, "ob", per_block)
    b.ret_void()
    return _compile(module, "flat_weight", [ctypes.c_void_p] * 3 + [ctypes.c_int64] * 8)


def _check(width: int, lanes: int) -> None:
    if not (0 < width < lanes and lanes % width == 0):
        raise ValueError(f"flat kernels: the width must be a power of two below {lanes}; "
                         f"received {width}")
