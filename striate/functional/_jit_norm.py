"""Batch-norm passes compiled at run time (optional, with llvmlite; see :mod:`._jit`).

NumPy spends eight passes over an activation on batch norm's forward pass and
seven on its backward pass, with temporaries; each kernel here makes one pass
over (N*C) planes of P values, plane by plane (channel c = plane index mod C):

* ``moments``: s1[k] = sum_p x[k, p], s2[k] = sum_p x[k, p]^2, accumulated in float64
  (one pass; the variance s2/M - mean^2 then loses digits only when |mean| is ~1e4
  times the standard deviation or more);
* ``sums``: s[k] = sum_p x[k, p];
* ``squares``: s[k] = sum_p (x[k, p] - mean[c])^2;
* ``affine``: y[k, p] = (x[k, p] - mean[c]) * scale[c] + shift[c];
* ``grad_sums``: s1[k] = sum_p dy[k, p], s2[k] = sum_p dy[k, p] * (x[k, p] - mean[c]);
* ``grad_input``: dx[k, p] = a[c] * dy[k, p] - b[c] * (x[k, p] - mean[c]) - d[c].

Fused with the ReLU that follows batch norm (pre = (x - mean) * scale + shift):

* ``affine_relu``: y = relu(pre); its backward recomputes pre, so no mask is kept:
* ``grad_sums_relu``, ``grad_input_relu``: as above with dy replaced by
  g = dy where pre > 0, else 0;
* ``affine_add_relu``: y = relu(pre + r) and mask = (pre + r > 0) as bytes (a
  residual block's last batch norm, shortcut r added before the ReLU).

ReLU keeps NaN (as torch and ``np.maximum``); the mask is False there.

Per-plane sums are returned per plane (added per channel in float64 by the
caller), so results do not depend on how the planes are split over threads.
"""

from __future__ import annotations

import ctypes
from functools import lru_cache
from typing import Callable

from . import _jit, _jit_stats
from ._jit import _Builder, _compile, _hsum, _scalar

__all__ = ["norm_kernel"]

# Vectors per step of the reductions: independent accumulators (more in flight, and
# each lane sums a quarter as many values).
UNROLL = 4

# kernel name -> its pointer arguments, in order (then k0, k1, P, C)
_KINDS = {
    "sums": ("x", "out"),
    "squares": ("x", "mean", "out"),
    "affine": ("x", "mean", "scale", "shift", "y"),
    "grad_sums": ("dy", "x", "mean", "out1", "out2"),
    "grad_input": ("dy", "x", "mean", "a", "b", "d", "dx"),
    "affine_relu": ("x", "mean", "scale", "shift", "y"),
    "affine_add_relu": ("x", "mean", "scale", "shift", "r", "y", "mask"),
    "grad_sums_relu": ("dy", "x", "mean", "scale", "shift", "out1", "out2"),
    "grad_input_relu": ("dy", "x", "mean", "scale", "shift", "a", "b", "d", "dx"),
}


@lru_cache(maxsize=None)
def norm_kernel(kind: str, dtype: str) -> Callable:
    """The compiled kernel ``kind`` (see the module docstring) for float32 or float64.

    C signature: ``f(*pointers, k0, k1, P, C)``, pointers as named in _KINDS, over
    planes k0..k1-1 of P contiguous values each.
    """
    if kind == "moments":
        return _moments_kernel(dtype)
    names = _KINDS[kind]
    lanes, scalar = _jit.LANES[dtype], _scalar(dtype)
    module = _jit._ir.Module(name=f"bn_{kind}_{dtype}")
    fp, i64 = _jit._ir.PointerType(scalar), _jit._ir.IntType(64)
    bytes_ptr = _jit._ir.PointerType(_jit._ir.IntType(8))
    pointers = [bytes_ptr if n == "mask" else fp for n in names]
    fn = _jit._ir.Function(module, _jit._ir.FunctionType(_jit._ir.VoidType(), pointers + [i64] * 4),
                           name=kind)
    args = dict(zip(names, fn.args))
    k0, k1, pp, cc = fn.args[len(names):]
    for a in args.values():
        a.add_attribute("noalias")
    k = _Builder(fn, scalar, lanes)
    b = k.b
    reductions = {"sums": 1, "squares": 1, "grad_sums": 2, "grad_sums_relu": 2}.get(kind, 0)
    relu = kind.endswith("_relu")
    acc = b.alloca(_jit._ir.ArrayType(k.vec, max(1, reductions * UNROLL)))
    slot = [b.gep(acc, [k.const(0), k.const(q)]) for q in range(max(1, reductions * UNROLL))]

    def per_plane(plane):
        c = b.srem(plane, cc)
        base = b.mul(plane, pp)
        chan = {n: k.splat(b.load(b.gep(args[n], [c]))) for n in ("mean", "scale", "shift", "a", "b", "d")
                if n in args}
        for q in slot:
            b.store(k.zero, q)
        step = lanes * (UNROLL if reductions else 1)

        def per_step(p0):
            sums = [b.load(q) for q in slot]
            for u in range(UNROLL if reductions else 1):
                start = b.add(p0, k.const(u * lanes))
                m = k.mask(start, pp)
                at = b.add(base, start)

                def load(name):
                    return b.call(k.mload, [k.vptr(args[name], at), k.align, m, k.zero])

                def pre_activation():
                    dev = b.fsub(load("x"), chan["mean"])
                    return dev, b.call(k.fma, [dev, chan["scale"], chan["shift"]])

                if relu:
                    _fused_step(k, kind, args, chan, at, m, sums, u, load, pre_activation)
                elif kind == "sums":
                    sums[u] = b.fadd(sums[u], load("x"))
                elif kind == "squares":
                    dev = b.call(k.mload, [k.vptr(args["x"], at), k.align, m, chan["mean"]])
                    dev = b.fsub(dev, chan["mean"])
                    sums[u] = b.call(k.fma, [dev, dev, sums[u]])
                elif kind == "grad_sums":
                    g = load("dy")
                    dev = b.fsub(b.call(k.mload, [k.vptr(args["x"], at), k.align, m, chan["mean"]]),
                                 chan["mean"])
                    sums[u] = b.fadd(sums[u], g)
                    sums[UNROLL + u] = b.call(k.fma, [g, dev, sums[UNROLL + u]])
                elif kind == "affine":
                    dev = b.fsub(load("x"), chan["mean"])
                    out = b.call(k.fma, [dev, chan["scale"], chan["shift"]])
                    b.call(k.mstore, [out, k.vptr(args["y"], at), k.align, m])
                else:                                               # grad_input
                    dev = b.fsub(load("x"), chan["mean"])
                    out = b.fsub(b.fmul(chan["a"], load("dy")), b.call(k.fma, [chan["b"], dev, chan["d"]]))
                    b.call(k.mstore, [out, k.vptr(args["dx"], at), k.align, m])
            for q, v in zip(slot, sums):
                b.store(v, q)
        k.loop(k.const(0), pp, step, "p", per_step)
        outs = ("out",) if reductions == 1 else ("out1", "out2")
        for r, name in enumerate(outs[:reductions]):
            total = b.load(slot[r * UNROLL])
            for u in range(1, UNROLL):
                total = b.fadd(total, b.load(slot[r * UNROLL + u]))
            b.store(_hsum(b, total, lanes, scalar), b.gep(args[name], [plane]))
    k.loop(k0, k1, 1, "plane", per_plane)
    b.ret_void()
    return _compile(module, kind, [ctypes.c_void_p] * len(names) + [ctypes.c_int64] * 4)


def _fused_step(k: _Builder, kind: str, args: dict, chan: dict, at, m, sums: list, u: int,
                load: Callable, pre_activation: Callable) -> None:
    """One vector of a batch-norm + ReLU kernel (the ``*_relu`` kinds) at offset ``at``."""
    b = k.b
    dev, pre = pre_activation()
    if kind == "affine_add_relu":
        pre = b.fadd(pre, load("r"))
    positive = b.fcmp_ordered(">", pre, k.zero)
    if kind.startswith("affine"):
        # relu keeps NaN: zero only where pre <= 0 (an ordered comparison is false for NaN)
        out = b.select(b.fcmp_ordered("<=", pre, k.zero), k.zero, pre)
        b.call(k.mstore, [out, k.vptr(args["y"], at), k.align, m])
        if kind == "affine_add_relu":
            flags = b.zext(positive, _ir_vector(_jit._ir.IntType(8), k.lanes))
            b.call(k.mstore_bytes, [flags, b.bitcast(b.gep(args["mask"], [at]), flags.type.as_pointer()),
                                    _jit._ir.Constant(_jit._ir.IntType(32), 1), m])
        return
    g = b.select(positive, load("dy"), k.zero)                 # the ReLU's gradient
    if kind == "grad_sums_relu":
        sums[u] = b.fadd(sums[u], g)
        sums[UNROLL + u] = b.call(k.fma, [g, dev, sums[UNROLL + u]])
    else:                                                      # grad_input_relu
        out = b.fsub(b.fmul(chan["a"], g), b.call(k.fma, [chan["b"], dev, chan["d"]]))
        b.call(k.mstore, [out, k.vptr(args["dx"], at), k.align, m])


def _ir_vector(element, lanes: int):
    return _jit._ir.VectorType(element, lanes)


def _moments_kernel(dtype: str) -> Callable:
    """``moments`` (see the module docstring): C signature ``f(x, s1, s2, k0, k1, P, C)``,
    s1 and s2 float64 per plane; float32 vectors are widened to float64 halves."""
    ir = _jit._ir
    lanes, scalar = _jit.LANES[dtype], _scalar(dtype)
    module = ir.Module(name=f"bn_moments_{dtype}")
    f64 = ir.DoubleType()
    fn = ir.Function(module, ir.FunctionType(ir.VoidType(), [ir.PointerType(scalar)]
                                             + [ir.PointerType(f64)] * 2 + [ir.IntType(64)] * 4),
                     name="moments")
    x, out1, out2, k0, k1, pp, _ = fn.args
    for a in (x, out1, out2):
        a.add_attribute("noalias")
    k = _Builder(fn, scalar, lanes)
    b = k.b
    wide = ir.VectorType(f64, 8)
    halves = lanes // 8                                    # float64 vectors per loaded vector
    count = UNROLL * halves
    acc = b.alloca(ir.ArrayType(wide, 2 * count))
    slot = [b.gep(acc, [k.const(0), k.const(q)]) for q in range(2 * count)]
    zero = ir.Constant(wide, [0.0] * 8)

    def per_plane(plane):
        base = b.mul(plane, pp)
        for q in slot:
            b.store(zero, q)

        def per_step(p0):
            sums = [b.load(q) for q in slot]
            for u in range(UNROLL):
                start = b.add(p0, k.const(u * lanes))
                v = b.call(k.mload, [k.vptr(x, b.add(base, start)), k.align, k.mask(start, pp), k.zero])
                for h, part in enumerate(_jit_stats.wide_parts(k, v)):
                    q = u * halves + h
                    sums[q] = b.fadd(sums[q], part)
                    sums[count + q] = b.call(_jit_stats.fma_wide(module), [part, part, sums[count + q]])
            for q, v in zip(slot, sums):
                b.store(v, q)
        k.loop(k.const(0), pp, lanes * UNROLL, "p", per_step)
        for r, out in enumerate((out1, out2)):
            total = b.load(slot[r * count])
            for q in range(1, count):
                total = b.fadd(total, b.load(slot[r * count + q]))
            b.store(_hsum(b, total, 8, f64), b.gep(out, [plane]))
    k.loop(k0, k1, 1, "plane", per_plane)
    b.ret_void()
    return _compile(module, "moments", [ctypes.c_void_p] * 3 + [ctypes.c_int64] * 4)

