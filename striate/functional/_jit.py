"""Direct-convolution kernels generated as LLVM IR and compiled at run time (optional).

NumPy cannot express a convolution's inner loop: im2col + GEMM copies the input
KH*KW times and OpenBLAS runs GEMMs with 16 output rows far below its rate.  When
``llvmlite`` (on PyPI, LLVM in a wheel) is installed, this module builds two small
kernels with explicit vector types, compiled for the machine it runs on:

* ``forward``: y[n, o, oh, ow] = bias[o] + sum_{c,i,j} w[o, c, i, j] *
  xp[n, c, s*oh + i*dh, s*ow + j*dw] over a zero-padded input (stride s = 1 or 2).
  A block of OB output channels x R output rows x T vectors of L output columns
  stays in registers while the loop runs over (c, i, j); each input vector loaded
  feeds OB fused multiply-adds, each weight broadcast R*T.
* ``weight``: dw[o, c, i, j] += sum_{n,oh,ow} dy[n, o, oh, ow] * xp[n, c, s*oh + i*dh,
  s*ow + j*dw], with a block of OB x KH x KW vector accumulators (stride 1: output
  rows in pairs, each input row loaded once for both).

Sizes are run-time arguments; only the kernel's shape (KH, KW, dilation, stride,
blocking, the dtype) is compiled in, so a handful of kernels serve every layer.  The
last vector of a row is masked, so any width works.  The batch-norm and max-pool
kernels (:mod:`._jit_norm`, :mod:`._jit_pool`) use the same helpers.  Set
``STRIATE_JIT=0`` to use the NumPy routes only.
"""

from __future__ import annotations

import ctypes
import os
import threading
from functools import lru_cache
from typing import Callable

try:                                                   # optional dependency
    import llvmlite.binding as _llvm
    import llvmlite.ir as _ir
except ModuleNotFoundError:                            # pragma: no cover - exercised without it
    _llvm = _ir = None

__all__ = ["jit_available", "forward_kernel", "weight_kernel", "LANES", "row_blocking"]

# Vector lanes per dtype (one AVX-512 register; LLVM splits them where the CPU has less).
LANES = {"float32": 16, "float64": 8}


def row_blocking(dtype: str, width: int) -> tuple[int, int]:
    """(lanes, vectors) per row tile for output rows of ``width`` columns: little masked waste.

    Two full vectors for wide rows, one for rows about one vector wide, a half-width
    vector for narrow rows (an 8-column row in 16 lanes would waste half of them).
    """
    full = LANES[dtype]
    if width >= full + full // 2:
        return full, 2
    if width >= (3 * full) // 4:
        return full, 1
    return full // 2, 1

_lock = threading.Lock()
_engines: list = []                                    # keep compiled code alive
_target_machine = None


def jit_available() -> bool:
    """True when llvmlite is installed and STRIATE_JIT is not 0/false/no/off."""
    if _llvm is None:
        return False
    return os.environ.get("STRIATE_JIT", "1").strip().lower() not in ("0", "false", "no", "off")


def _machine():
    """The LLVM target machine for this CPU (initialised once)."""
    global _target_machine
    if _target_machine is None:
        _llvm.initialize_native_target()
        _llvm.initialize_native_asmprinter()
        target = _llvm.Target.from_default_triple()
        _target_machine = target.create_target_machine(
            cpu=_llvm.get_host_cpu_name(), features=_llvm.get_host_cpu_features().flatten(), opt=3)
    return _target_machine


def _compile(module, name: str, argtypes: list) -> Callable:
    """Optimise and compile an llvmlite module; the C function ``name`` as a ctypes callable."""
    with _lock:
        tm = _machine()
        parsed = _llvm.parse_assembly(str(module))
        parsed.verify()
        builder = _llvm.create_pass_builder(tm, _llvm.create_pipeline_tuning_options(speed_level=3))
        builder.getModulePassManager().run(parsed, builder)
        engine = _llvm.create_mcjit_compiler(parsed, tm)
        engine.finalize_object()
        _engines.append(engine)
        address = engine.get_function_address(name)
    return ctypes.CFUNCTYPE(None, *argtypes)(address)


class _Builder:
    """Helpers around an llvmlite IRBuilder for counted loops and vector operations."""

    def __init__(self, fn, scalar, lanes: int) -> None:
        self.fn, self.scalar, self.lanes = fn, scalar, lanes
        self.i64 = _ir.IntType(64)
        self.vec = _ir.VectorType(scalar, lanes)
        self.b = _ir.IRBuilder(fn.append_basic_block("entry"))
        module = fn.module
        suffix = f"v{lanes}{'f32' if isinstance(scalar, _ir.FloatType) else 'f64'}"
        self.fma = _declare(module, f"llvm.fma.{suffix}", self.vec, [self.vec] * 3)
        mask = _ir.VectorType(_ir.IntType(1), lanes)
        ptr = _ir.PointerType(self.vec)
        self.mstore = _declare(module, f"llvm.masked.store.{suffix}.p0", _ir.VoidType(),
                               [self.vec, ptr, _ir.IntType(32), mask])
        self.mload = _declare(module, f"llvm.masked.load.{suffix}.p0", self.vec,
                              [ptr, _ir.IntType(32), mask, self.vec])
        byte_vec = _ir.VectorType(_ir.IntType(8), lanes)      # masks stored as bytes (bool)
        self.mstore_bytes = _declare(module, f"llvm.masked.store.v{lanes}i8.p0", _ir.VoidType(),
                                     [byte_vec, _ir.PointerType(byte_vec), _ir.IntType(32), mask])
        self.align = _ir.Constant(_ir.IntType(32), 4 if isinstance(scalar, _ir.FloatType) else 8)
        self.lane_ids = _ir.Constant(_ir.VectorType(self.i64, lanes), list(range(lanes)))
        self.all_lanes = _ir.Constant(mask, [1] * lanes)
        self.no_lanes = _ir.Constant(mask, [0] * lanes)
        self.zero = _ir.Constant(self.vec, [0.0] * lanes)

    def const(self, v: int):
        return _ir.Constant(self.i64, v)

    def loop(self, lo, hi, step: int, name: str, body: Callable) -> None:
        """for (i = lo; i < hi; i += step) body(i)."""
        b = self.b
        pre = b.block
        head = self.fn.append_basic_block(name + ".head")
        inside = self.fn.append_basic_block(name + ".body")
        end = self.fn.append_basic_block(name + ".end")
        b.branch(head)
        b.position_at_end(head)
        i = b.phi(self.i64, name=name)
        i.add_incoming(lo, pre)
        b.cbranch(b.icmp_signed("<", i, hi), inside, end)
        b.position_at_end(inside)
        body(i)
        nxt = b.add(i, self.const(step))
        i.add_incoming(nxt, b.block)
        b.branch(head)
        b.position_at_end(end)

    def index(self, *terms):
        """Horner form: ((t0 * s1 + t1) * s2 + t2)...; terms alternate value, size, value..."""
        b = self.b
        acc = terms[0]
        for k in range(1, len(terms), 2):
            acc = b.add(b.mul(acc, terms[k]), terms[k + 1])
        return acc

    def strided_load(self, base, offset, stride: int):
        """L values base[offset + stride*l] (stride 1 or 2: the even lanes of two loads)."""
        b = self.b
        first = b.load(self.vptr(base, offset), align=1)
        if stride == 1:
            return first
        second = b.load(self.vptr(base, b.add(offset, self.const(self.lanes))), align=1)
        even = _ir.Constant(_ir.VectorType(_ir.IntType(32), self.lanes),
                            [2 * q for q in range(self.lanes)])
        return b.shuffle_vector(first, second, even)

    def vptr(self, base, offset):
        return self.b.bitcast(self.b.gep(base, [offset]), _ir.PointerType(self.vec))

    def splat(self, scalar, vec_type=None):
        """A vector (of ``vec_type``, default the kernel's float vector) with every lane ``scalar``."""
        b = self.b
        vt = vec_type or self.vec
        one = b.insert_element(_ir.Constant(vt, _ir.Undefined), scalar, _ir.Constant(_ir.IntType(32), 0))
        return b.shuffle_vector(one, _ir.Constant(vt, _ir.Undefined),
                                _ir.Constant(_ir.VectorType(_ir.IntType(32), self.lanes), [0] * self.lanes))

    def mask(self, start, limit):
        """Lanes start .. start+L-1 that are below ``limit``."""
        b = self.b
        starts = b.add(self.splat(start, self.lane_ids.type), self.lane_ids)
        return b.icmp_signed("<", starts, self.splat(limit, self.lane_ids.type))


def _declare(module, name: str, ret, args):
    """The function ``name`` of ``module``, declared on first use."""
    if name in module.globals:
        return module.globals[name]
    return _ir.Function(module, _ir.FunctionType(ret, args), name=name)


def _scalar(dtype: str):
    return _ir.FloatType() if dtype == "float32" else _ir.DoubleType()


def _ctype(dtype: str):
    return ctypes.c_float if dtype == "float32" else ctypes.c_double


@lru_cache(maxsize=None)
def forward_kernel(dtype: str, kh: int, kw: int, dh: int, dw: int, ob: int, lanes: int,
                   tile: int, stride: int = 1, rows: int = 1) -> Callable:
    """The compiled forward kernel for one kernel shape, dilation, block shape and dtype.

    C signature: ``f(xp, w, bias, y, n0, n1, o0, o1, C, O, Hp, Wp, OH, OW)`` computes
    images n0..n1-1 and output channels o0..o1-1 (o1 - o0 a multiple of ``ob``) of
    y (N, O, OH, OW) from xp (N, C, Hp, Wp) (allocated with at least
    ``4 * LANES + (KW - 1) * dw`` elements after it), w (O, C, KH, KW) and bias (O,),
    ``ob`` output channels x ``rows`` output rows x ``tile`` vectors of ``lanes`` columns
    at a time (two rows for narrow maps: each weight loaded serves twice as many vectors).
    With ``stride`` 2 (both axes, one row) each input vector is the even lanes of two loads.
    """
    scalar = _scalar(dtype)
    module = _ir.Module(name=f"conv_fwd_{dtype}_{kh}x{kw}")
    fp, i64 = _ir.PointerType(scalar), _ir.IntType(64)
    fn = _ir.Function(module, _ir.FunctionType(_ir.VoidType(), [fp] * 4 + [i64] * 10), name="forward")
    xp, w, bias, y, n0, n1, o0, o1, cc, oo, hp, wp, oh_n, ow_n = fn.args
    for a in (xp, w, bias, y):
        a.add_attribute("noalias")
    k = _Builder(fn, scalar, lanes)
    b = k.b
    vectors = rows * tile                                # per output channel
    acc = b.alloca(_ir.ArrayType(k.vec, ob * vectors))
    slot = [b.gep(acc, [k.const(0), k.const(q)]) for q in range(ob * vectors)]
    taps = k.const(kh * kw)

    def per_image(n):
        def per_block(o_start):
            def per_row(oh):
                valid = [None] + [b.select(b.icmp_signed("<", b.add(oh, k.const(r)), oh_n),
                                           k.all_lanes, k.no_lanes) for r in range(1, rows)]

                def per_tile(ow0):
                    for q in range(ob * vectors):
                        b.store(k.zero, slot[q])

                    def per_channel(c):
                        def per_kernel_row(i):
                            row = k.index(n, cc, c, hp, b.add(b.mul(oh, k.const(stride)),
                                                              b.mul(i, k.const(dh))),
                                          wp, b.mul(ow0, k.const(stride)))
                            wrow = b.add(b.mul(k.index(o_start, cc, c), taps), b.mul(i, k.const(kw)))
                            sums = [b.load(q) for q in slot]
                            for j in range(kw):
                                xs = [k.strided_load(xp, b.add(row, k.const(j * dw + t * lanes * stride)),
                                                     stride) for t in range(tile)]
                                for r in range(1, rows):            # row oh + r (masked if past OH)
                                    row_r = b.add(row, b.mul(wp, k.const(r)))
                                    xs += [b.call(k.mload, [k.vptr(xp, b.add(row_r, k.const(j * dw + t * lanes))),
                                                            k.align, valid[r], k.zero])
                                           for t in range(tile)]
                                for o in range(ob):                 # W[o_start + o, c, i, j]
                                    at = b.add(b.add(wrow, b.mul(k.const(o), b.mul(cc, taps))),
                                               k.const(j))
                                    wv = k.splat(b.load(b.gep(w, [at])))
                                    for v in range(vectors):
                                        q = o * vectors + v
                                        sums[q] = b.call(k.fma, [wv, xs[v], sums[q]])
                            for q in range(ob * vectors):
                                b.store(sums[q], slot[q])
                        k.loop(k.const(0), k.const(kh), 1, "i", per_kernel_row)
                    k.loop(k.const(0), cc, 1, "c", per_channel)
                    for o in range(ob):                         # the bias last, as y = W x + b
                        shift = k.splat(b.load(b.gep(bias, [b.add(o_start, k.const(o))])))
                        for r in range(rows):
                            base = k.index(n, oo, b.add(o_start, k.const(o)), oh_n,
                                           b.add(oh, k.const(r)), ow_n, ow0)
                            for t in range(tile):
                                m = k.mask(b.add(ow0, k.const(t * lanes)), ow_n)
                                if r:
                                    m = b.and_(m, valid[r])
                                b.call(k.mstore, [b.fadd(b.load(slot[o * vectors + r * tile + t]), shift),
                                                  k.vptr(y, b.add(base, k.const(t * lanes))), k.align, m])
                k.loop(k.const(0), ow_n, tile * lanes, "ow", per_tile)
            k.loop(k.const(0), oh_n, rows, "oh", per_row)
        k.loop(o0, o1, ob, "ob", per_block)
    k.loop(n0, n1, 1, "n", per_image)
    b.ret_void()
    ptr = ctypes.c_void_p
    return _compile(module, "forward", [ptr] * 4 + [ctypes.c_int64] * 10)


@lru_cache(maxsize=None)
def weight_kernel(dtype: str, kh: int, kw: int, dh: int, dw: int, ob: int, lanes: int,
                  stride: int = 1, pairs: bool = True) -> Callable:
    """The compiled weight-gradient kernel for one kernel shape, dilation, block and dtype.

    C signature: ``f(xp, dy, dw, n0, n1, o0, o1, C, O, Hp, Wp, OH, OW)`` adds, for
    output channels o0..o1-1 (o1 - o0 a multiple of ``ob``), the sum over images
    n0..n1-1 to dw (O, C, KH, KW).  Reads outside a row are masked (exact even next
    to an inf).  ``pairs=False``: one output row at a time even where pairs would do
    (a single long row: the wide layout of :mod:`.conv_wide`).
    """
    scalar = _scalar(dtype)
    module = _ir.Module(name=f"conv_wgrad_{dtype}_{kh}x{kw}")
    fp, i64 = _ir.PointerType(scalar), _ir.IntType(64)
    fn = _ir.Function(module, _ir.FunctionType(_ir.VoidType(), [fp] * 3 + [i64] * 10), name="weight")
    xp, dy, dwt, n0, n1, o0, o1, cc, oo, hp, wp, oh_n, ow_n = fn.args
    for a in (xp, dy, dwt):
        a.add_attribute("noalias")
    k = _Builder(fn, scalar, lanes)
    b = k.b
    count = ob * kh * kw
    acc = b.alloca(_ir.ArrayType(k.vec, count))
    slot = [b.gep(acc, [k.const(0), k.const(q)]) for q in range(count)]
    taps = k.const(kh * kw)

    def per_block(o_start):
        def per_channel(c):
            for q in range(count):
                b.store(k.zero, slot[q])

            def per_image(n):
                def per_rows(oh):                       # output rows oh and oh + 1 (if any)
                    def per_vector(ow0):
                        m = k.mask(ow0, ow_n)
                        second = b.icmp_signed("<", b.add(oh, k.const(1)), oh_n)
                        m2 = b.and_(m, b.select(second, k.all_lanes, k.no_lanes))
                        sums = [b.load(q) for q in slot]
                        grads = [[b.call(k.mload, [k.vptr(dy, k.index(n, oo, b.add(o_start, k.const(o)),
                                                                      oh_n, b.add(oh, k.const(r)),
                                                                      ow_n, ow0)),
                                                   k.align, mr, k.zero]) for o in range(ob)]
                                 for r, mr in ((0, m), (1, m2))]
                        # input row oh + i serves output row oh (tap i) and oh + 1 (tap i - 1)
                        for i in range(kh + 1):
                            row = k.index(n, cc, c, hp, b.add(oh, k.const(i)), wp, ow0)
                            for j in range(kw):
                                xv = b.call(k.mload, [k.vptr(xp, b.add(row, k.const(j * dw))),
                                                      k.align, m if i < kh else m2, k.zero])
                                for o in range(ob):
                                    for r, tap in ((0, i), (1, i - 1)):
                                        if 0 <= tap < kh:
                                            q = (o * kh + tap) * kw + j
                                            sums[q] = b.call(k.fma, [grads[r][o], xv, sums[q]])
                        for q in range(count):
                            b.store(sums[q], slot[q])
                    k.loop(k.const(0), ow_n, lanes, "ow", per_vector)

                def per_row(oh):
                    def per_vector(ow0):
                        m = k.mask(ow0, ow_n)
                        sums = [b.load(q) for q in slot]
                        grads = [b.call(k.mload, [k.vptr(dy, k.index(n, oo, b.add(o_start, k.const(o)),
                                                                     oh_n, oh, ow_n, ow0)),
                                                  k.align, m, k.zero]) for o in range(ob)]
                        for i in range(kh):
                            row = k.index(n, cc, c, hp, b.add(b.mul(oh, k.const(stride)),
                                                              k.const(i * dh)),
                                          wp, b.mul(ow0, k.const(stride)))
                            for j in range(kw):
                                if stride == 1:
                                    xv = b.call(k.mload, [k.vptr(xp, b.add(row, k.const(j * dw))),
                                                          k.align, m, k.zero])
                                else:                   # lanes past the row are 0 in dy
                                    xv = k.strided_load(xp, b.add(row, k.const(j * dw)), stride)
                                for o in range(ob):
                                    q = (o * kh + i) * kw + j
                                    sums[q] = b.call(k.fma, [grads[o], xv, sums[q]])
                        for q in range(count):
                            b.store(sums[q], slot[q])
                    k.loop(k.const(0), ow_n, lanes, "ow", per_vector)

                if pairs and dh == 1 and stride == 1:   # rows in pairs: each input row loaded once
                    k.loop(k.const(0), oh_n, 2, "oh", per_rows)
                else:
                    k.loop(k.const(0), oh_n, 1, "oh", per_row)
            k.loop(n0, n1, 1, "n", per_image)
            for o in range(ob):
                for q in range(kh * kw):
                    total = _hsum(b, b.load(slot[o * kh * kw + q]), lanes, scalar)
                    at = b.gep(dwt, [b.add(b.mul(k.index(b.add(o_start, k.const(o)), cc, c), taps),
                                           k.const(q))])
                    b.store(b.fadd(b.load(at), total), at)
        k.loop(k.const(0), cc, 1, "c", per_channel)
    k.loop(o0, o1, ob, "ob", per_block)
    b.ret_void()
    ptr = ctypes.c_void_p
    return _compile(module, "weight", [ptr] * 3 + [ctypes.c_int64] * 10)


def _hsum(b, vec, lanes: int, scalar):
    """The sum of a vector's lanes, as a fixed tree of halvings (deterministic)."""
    width = lanes
    while width > 1:
        half = width // 2
        lo = b.shuffle_vector(vec, vec, _ir.Constant(_ir.VectorType(_ir.IntType(32), half),
                                                     list(range(half))))
        hi = b.shuffle_vector(vec, vec, _ir.Constant(_ir.VectorType(_ir.IntType(32), half),
                                                     list(range(half, width))))
        vec = b.fadd(lo, hi)
        width = half
    return b.extract_element(vec, _ir.Constant(_ir.IntType(32), 0))
