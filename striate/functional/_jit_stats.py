"""Per-plane sums of a convolution kernel's outputs, for the batch norm that follows.

A forward kernel built with ``stats=True`` (:func:`._jit.forward_kernel`,
:func:`._jit_flat.flat_forward_kernel`) adds, as it stores each output vector,
the vector and its square to float64 accumulators, and after each tile adds their
lane sums to ``st[2 * (n * O + o)]`` and ``st[2 * (n * O + o) + 1]``: the sums of
y and y^2 over plane (n, o).  Batch norm's moments then cost no pass over y.
Each plane is one thread's, and its tiles are added in order: the sums do not
depend on the thread count.
"""

from __future__ import annotations

from . import _jit
from ._jit import _Builder, _hsum

__all__ = ["zero_sums", "add_vector", "add_to_plane", "wide_parts", "fma_wide"]

WIDE = 8                                    # float64 lanes of the accumulators


def _wide_type():
    return _jit._ir.VectorType(_jit._ir.DoubleType(), WIDE)


def zero_sums() -> list:
    """[sum, sum of squares] accumulators, zero."""
    zero = _jit._ir.Constant(_wide_type(), [0.0] * WIDE)
    return [zero, zero]


def fma_wide(module):
    """llvm.fma on WIDE float64 lanes, declared in ``module``."""
    return _jit._declare(module, f"llvm.fma.v{WIDE}f64", _wide_type(), [_wide_type()] * 3)


def wide_parts(k: _Builder, v) -> list:
    """The kernel vector v as float64 vectors of WIDE lanes (float32 lanes widened; a vector of
    fewer lanes padded with zeros)."""
    b = k.b
    ir = _jit._ir
    if k.lanes < WIDE:                                      # (4 float64 lanes) zeros after
        lanes = list(range(k.lanes)) + [k.lanes] * (WIDE - k.lanes)
        parts = [b.shuffle_vector(v, k.zero, ir.Constant(ir.VectorType(ir.IntType(32), WIDE), lanes))]
    elif k.lanes == WIDE:
        parts = [v]
    else:
        parts = [b.shuffle_vector(v, v, ir.Constant(ir.VectorType(ir.IntType(32), WIDE),
                                                     list(range(WIDE * h, WIDE * h + WIDE))))
                 for h in range(k.lanes // WIDE)]
    if isinstance(k.scalar, ir.FloatType):
        parts = [b.fpext(p, _wide_type()) for p in parts]
    return parts


def add_vector(k: _Builder, value, mask, sums: list) -> list:
    """sums + (value, value^2) over the lanes in ``mask`` (the others count as 0)."""
    b = k.b
    fma = fma_wide(b.module)
    s1, s2 = sums
    for part in wide_parts(k, b.select(mask, value, k.zero)):
        s1 = b.fadd(s1, part)
        s2 = b.call(fma, [part, part, s2])
    return [s1, s2]


def add_to_plane(k: _Builder, st, plane, sums: list) -> None:
    """st[2 * plane] += lane sum of sums[0]; st[2 * plane + 1] += that of sums[1]."""
    b = k.b
    for r, s in enumerate(sums):
        at = b.gep(st, [b.add(b.mul(plane, k.const(2)), k.const(r))])
        b.store(b.fadd(b.load(at), _hsum(b, s, WIDE, _jit._ir.DoubleType())), at)
