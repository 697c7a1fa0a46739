"""The compiled weight-gradient kernel of the direct convolution (see :mod:`._jit`).

``weight``: dw[o, c, i, j] += sum_{n,oh,ow} dy[n, o, oh, ow] * xp[n, c, s*oh + i*dh,
s*ow + j*dw], with a block of OB output channels x (kernel rows of this pass) x KW
vector accumulators; the masks of a column of vectors are computed once, outside the
image and row loops, and rows whose taps all fall inside the input skip the row
checks.  Large kernels run in several passes over groups of kernel rows.
"""

from __future__ import annotations

import ctypes
from functools import lru_cache
from typing import Callable

from ._jit import (_Builder, _columns_inside, _compile, _hsum, _inner_rows, _ir, _origin,
                   _scalar)

__all__ = ["weight_kernel"]


@lru_cache(maxsize=None)
def weight_kernel(dtype: str, kh: int, kw: int, dh: int, dw: int, ob: int, lanes: int,
                  stride: int = 1, edges: bool = False, rows: tuple[int, int] | None = None
                  ) -> Callable:
    """The compiled weight-gradient kernel for one kernel shape, dilation, block and dtype.

    C signature: ``f(xp, dy, dw, n0, n1, o0, o1, C, O, Hp, Wp, OH, OW)`` adds, for
    output channels o0..o1-1 (o1 - o0 a multiple of ``ob``), the sum over images
    n0..n1-1 to dw (O, C, KH, KW).  Reads outside a row are masked (exact even next
    to an inf).  ``edges=True`` (stride 1): xp is the unpadded input, with ``pt, pl``
    as two more arguments, as :func:`forward_kernel`.  ``rows=(i0, i1)``: only the taps of
    kernel rows i0..i1-1 (large kernels in several passes, each with OB x (i1-i0) x KW
    accumulators in the registers).
    """
    i0, i1 = rows or (0, kh)
    if edges and stride != 1:
        raise ValueError("weight_kernel: edges=True needs stride 1")
    scalar = _scalar(dtype)
    module = _ir.Module(name=f"conv_wgrad_{dtype}_{kh}x{kw}")
    fp, i64 = _ir.PointerType(scalar), _ir.IntType(64)
    fn = _ir.Function(module, _ir.FunctionType(_ir.VoidType(), [fp] * 3 + [i64] * (12 if edges else 10)),
                      name="weight")
    xp, dy, dwt, n0, n1, o0, o1, cc, oo, hp, wp, oh_n, ow_n = fn.args[:13]
    pt, pl = fn.args[13:] if edges else (None, None)
    for a in (xp, dy, dwt):
        a.add_attribute("noalias")
    k = _Builder(fn, scalar, lanes)
    b = k.b
    group = (i1 - i0) * kw                             # taps per output channel in this pass
    count = ob * group
    acc = b.alloca(_ir.ArrayType(k.vec, count))
    slot = [b.gep(acc, [k.const(0), k.const(q)]) for q in range(count)]
    taps = k.const(kh * kw)

    def per_block(o_start):
        def dy_vector(n, o, oh, ow0, m):
            at = k.index(n, oo, b.add(o_start, k.const(o)), oh_n, oh, ow_n, ow0)
            return b.call(k.mload, [k.vptr(dy, at), k.align, m, k.zero])

        def x_vector(n, c, top, left, j, m, inside, rows_checked=True):
            """Input row ``top`` from column ``left + j*dw``, lanes ``m`` (and inside the input;
            ``rows_checked=False``: the row is known to be inside)."""
            row = k.index(n, cc, c, hp, top, wp, left)
            if edges:
                m = b.and_(k.row_inside(top, hp, m) if rows_checked else m, inside[j])
            return b.call(k.mload, [k.vptr(xp, b.add(row, k.const(j * dw))), k.align, m, k.zero])

        def one_row(c, n, oh, ow0, m, inside, checked=True):
            sums = [b.load(q) for q in slot]
            grads = [dy_vector(n, o, oh, ow0, m) for o in range(ob)]
            for i in range(i0, i1):
                top, left = _origin(k, b.add(b.mul(oh, k.const(stride)), k.const(i * dh)),
                                    b.mul(ow0, k.const(stride)), pt, pl)
                for j in range(kw):
                    if stride == 1:
                        xv = x_vector(n, c, top, left, j, m, inside, checked)
                    else:                               # lanes past the row are 0 in dy
                        row = k.index(n, cc, c, hp, top, wp, left)
                        xv = k.strided_load(xp, b.add(row, k.const(j * dw)), stride)
                    for o in range(ob):
                        q = o * group + (i - i0) * kw + j
                        sums[q] = b.call(k.fma, [grads[o], xv, sums[q]])
            for q in range(count):
                b.store(sums[q], slot[q])

        if edges:
            lo, hi = _inner_rows(k, pt, hp, oh_n, kh, dh, 1)

        def per_channel(c):
            for q in range(count):
                b.store(k.zero, slot[q])

            def per_column(ow0):                        # the masks of one column of vectors
                m = k.mask(ow0, ow_n)
                inside = _columns_inside(k, ow0, kw, dw, pl, wp)

                def per_image(n):
                    if not edges:
                        k.loop(k.const(0), oh_n, 1, "oh", lambda oh: one_row(c, n, oh, ow0, m, inside))
                        return
                    # rows [0, lo) and [hi, OH) check that their input rows are inside; the
                    # rows between need no check (the input rows of all their taps are)
                    for name, start, stop, checked in (("top", k.const(0), lo, True),
                                                       ("mid", lo, hi, False), ("bottom", hi, oh_n, True)):
                        k.loop(start, stop, 1, name,
                               lambda oh, checked=checked: one_row(c, n, oh, ow0, m, inside, checked))
                k.loop(n0, n1, 1, "n", per_image)
            k.loop(k.const(0), ow_n, lanes, "ow", per_column)
            for o in range(ob):
                for q in range(group):
                    total = _hsum(b, b.load(slot[o * group + q]), lanes, scalar)
                    at = b.gep(dwt, [b.add(b.mul(k.index(b.add(o_start, k.const(o)), cc, c), taps),
                                           k.const(i0 * kw + q))])
                    b.store(b.fadd(b.load(at), total), at)
        k.loop(k.const(0), cc, 1, "c", per_channel)
    k.loop(o0, o1, ob, "ob", per_block)
    b.ret_void()
    ptr = ctypes.c_void_p
    return _compile(module, "weight", [ptr] * 3 + [ctypes.c_int64] * (12 if edges else 10))
