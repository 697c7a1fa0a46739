"""Direct-convolution kernels generated as LLVM IR and compiled at run time (optional).

NumPy cannot express a convolution's inner loop: im2col + GEMM copies the input
KH*KW times and OpenBLAS runs GEMMs with 16 output rows far below its rate.  When
``llvmlite`` (on PyPI, LLVM in a wheel) is installed, this module and its siblings
build small kernels with explicit vector types, compiled for the machine it runs on:

* ``forward``: y[n, o, oh, ow] = bias[o] + sum_{c,i,j} w[o, c, i, j] *
  xp[n, c, s*oh + i*dh, s*ow + j*dw] over a zero-padded input (stride s = 2), or
  over the input itself with the loads outside it masked off (stride 1, ``edges``).
  A block of OB output channels x R output rows x T vectors of L output columns
  stays in registers while the loop runs over (c, i, j); each input vector loaded
  feeds OB fused multiply-adds, each weight broadcast R*T.
* ``weight`` (:mod:`._jit_wgrad`): dw[o, c, i, j] += sum_{n,oh,ow} dy[n, o, oh, ow] *
  xp[n, c, s*oh + i*dh, s*ow + j*dw];
* the flat kernels for maps narrower than a vector (:mod:`._jit_flat`), the sums of
  a forward kernel's outputs for batch norm (:mod:`._jit_stats`).

Rows whose taps all fall inside the input skip the row checks (:func:`_inner_rows`).

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

__all__ = ["jit_available", "forward_kernel", "LANES", "row_blocking"]

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

    def lane_positions(self, start):
        """start + (0, 1, ..., L-1) as 32-bit lanes (positions within a row fit)."""
        b = self.b
        i32 = _ir.IntType(32)
        ids = _ir.Constant(_ir.VectorType(i32, self.lanes), list(range(self.lanes)))
        return b.add(self.splat(b.trunc(start, i32), ids.type), ids)

    def mask(self, start, limit):
        """Lanes start .. start+L-1 that are below ``limit``."""
        b = self.b
        starts = self.lane_positions(start)
        return b.icmp_signed("<", starts, self.splat(b.trunc(limit, _ir.IntType(32)), starts.type))

    def window(self, start, limit):
        """Lanes start .. start+L-1 that are in [0, limit) (start may be negative)."""
        b = self.b
        starts = self.lane_positions(start)
        zero = _ir.Constant(starts.type, [0] * self.lanes)
        return b.and_(b.icmp_signed(">=", starts, zero),
                      b.icmp_signed("<", starts, self.splat(b.trunc(limit, _ir.IntType(32)), starts.type)))

    def row_inside(self, row, height, also=None):
        """All lanes if 0 <= row < height (and the mask ``also``, if given), else none."""
        b = self.b
        ok = b.and_(b.icmp_signed(">=", row, self.const(0)), b.icmp_signed("<", row, height))
        lanes = b.select(ok, self.all_lanes, self.no_lanes)
        return lanes if also is None else b.and_(lanes, also)


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
                   tile: int, stride: int = 1, rows: int = 1, edges: bool = False,
                   stats: bool = False) -> Callable:
    """The compiled forward kernel for one kernel shape, dilation, block shape and dtype.

    C signature: ``f(xp, w, bias, y, n0, n1, o0, o1, C, O, Hp, Wp, OH, OW)`` computes
    images n0..n1-1 and output channels o0..o1-1 (o1 - o0 a multiple of ``ob``) of
    y (N, O, OH, OW) from xp (N, C, Hp, Wp) (zero-padded, allocated with at least
    ``4 * LANES + (KW - 1) * dw`` elements after it), w (O, C, KH, KW) and bias (O,),
    ``ob`` output channels x ``rows`` output rows x ``tile`` vectors of ``lanes`` columns
    at a time (two rows for narrow maps, ``edges`` only: each weight loaded serves twice as
    many vectors).
    With ``stride`` 2 (both axes, one row) each input vector is the even lanes of two loads.

    ``edges=True`` (stride 1): xp is the unpadded input (N, C, H, W), passed as Hp = H and
    Wp = W, with two more arguments ``pt, pl`` (the top and left padding): loads outside
    the input are masked off (read as 0), so no padded copy and no tail are needed.
    ``stats=True``: one more (last) argument ``st`` (N*O*2 float64) receives the sums of
    y and y^2 per plane (:mod:`._jit_stats`).
    """
    if (edges and stride != 1) or (rows != 1 and not edges):
        raise ValueError("forward_kernel: edges=True needs stride 1, rows > 1 needs edges=True")
    from . import _jit_stats                   # (it builds on this module's helpers)
    scalar = _scalar(dtype)
    module = _ir.Module(name=f"conv_fwd_{dtype}_{kh}x{kw}")
    fp, i64 = _ir.PointerType(scalar), _ir.IntType(64)
    sizes = 12 if edges else 10
    extra = [_ir.PointerType(_ir.DoubleType())] if stats else []
    fn = _ir.Function(module, _ir.FunctionType(_ir.VoidType(), [fp] * 4 + [i64] * sizes + extra),
                      name="forward")
    xp, w, bias, y, n0, n1, o0, o1, cc, oo, hp, wp, oh_n, ow_n = fn.args[:14]
    pt, pl = fn.args[14:16] if edges else (None, None)
    st = fn.args[-1] if stats else None
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
            def per_row(oh, checked=True):
                valid = [None] + [b.select(b.icmp_signed("<", b.add(oh, k.const(r)), oh_n),
                                           k.all_lanes, k.no_lanes) for r in range(1, rows)]

                def per_tile(ow0):
                    for q in range(ob * vectors):
                        b.store(k.zero, slot[q])
                    inside = None
                    if edges:       # lanes whose input column ow0 + t*L + l + j*dw - pl is in [0, W)
                        inside = [[k.window(b.sub(b.add(ow0, k.const(j * dw + t * lanes)), pl), wp)
                                   for t in range(tile)] for j in range(kw)]

                    def per_channel(c):
                        def per_kernel_row(i):
                            top = b.add(b.mul(oh, k.const(stride)), b.mul(i, k.const(dh)))
                            left = b.mul(ow0, k.const(stride))
                            if edges:
                                top, left = b.sub(top, pt), b.sub(left, pl)
                            row = k.index(n, cc, c, hp, top, wp, left)
                            wrow = b.add(b.mul(k.index(o_start, cc, c), taps), b.mul(i, k.const(kw)))
                            sums = [b.load(q) for q in slot]
                            if edges:                       # input rows top + r inside [0, H)
                                row_ok = [k.row_inside(b.add(top, k.const(r)), hp, valid[r])
                                          if checked else valid[r] for r in range(rows)]
                            for j in range(kw):
                                if edges:
                                    xs = [b.call(k.mload, [k.vptr(xp, b.add(b.add(row, b.mul(wp, k.const(r))),
                                                                            k.const(j * dw + t * lanes))),
                                                           k.align, _both(b, inside[j][t], row_ok[r]), k.zero])
                                          for r in range(rows) for t in range(tile)]
                                else:
                                    xs = [k.strided_load(xp, b.add(row, k.const(j * dw + t * lanes * stride)),
                                                         stride) for t in range(tile)]
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
                        sums = _jit_stats.zero_sums() if stats else None
                        for r in range(rows):
                            base = k.index(n, oo, b.add(o_start, k.const(o)), oh_n,
                                           b.add(oh, k.const(r)), ow_n, ow0)
                            for t in range(tile):
                                m = k.mask(b.add(ow0, k.const(t * lanes)), ow_n)
                                if r:
                                    m = b.and_(m, valid[r])
                                out = b.fadd(b.load(slot[o * vectors + r * tile + t]), shift)
                                b.call(k.mstore, [out, k.vptr(y, b.add(base, k.const(t * lanes))), k.align, m])
                                if stats:
                                    sums = _jit_stats.add_vector(k, out, m, sums)
                        if stats:
                            _jit_stats.add_to_plane(k, st, k.index(n, oo, b.add(o_start, k.const(o))), sums)
                k.loop(k.const(0), ow_n, tile * lanes, "ow", per_tile)
            if not edges:
                k.loop(k.const(0), oh_n, rows, "oh", per_row)
                return
            lo, hi = _inner_rows(k, pt, hp, oh_n, kh, dh, rows)    # rows between: no row checks
            for name, start, stop, checked in (("top", k.const(0), lo, True), ("mid", lo, hi, False),
                                               ("bottom", hi, oh_n, True)):
                k.loop(start, stop, rows, name, lambda oh, checked=checked: per_row(oh, checked))
        k.loop(o0, o1, ob, "ob", per_block)
    k.loop(n0, n1, 1, "n", per_image)
    b.ret_void()
    ptr = ctypes.c_void_p
    return _compile(module, "forward", [ptr] * 4 + [ctypes.c_int64] * sizes + [ptr] * len(extra))


def _inner_rows(k: _Builder, pt, height, oh_n, kh: int, dh: int, step: int):
    """[lo, hi): the output rows, in steps of ``step`` (1 or 2) output rows from row 0 (stride
    1), whose taps' input rows (oh .. oh + step - 1) + i*dh - pt all lie in [0, height)."""
    if step not in (1, 2):
        raise ValueError(f"_inner_rows: step must be 1 or 2; received {step}")
    b = k.b
    last = b.sub(b.add(height, pt), k.const((kh - 1) * dh + step))       # the largest start
    lo, end = pt, oh_n
    if step == 2:                                         # starts are even: lo up, last down
        lo = b.add(pt, b.and_(pt, k.const(1)))
        last = b.and_(last, k.const(-2))
        end = b.add(oh_n, b.and_(oh_n, k.const(1)))
    lo = _smin(b, _smax(b, lo, k.const(0)), end)          # pt may be negative (cropping)
    hi = _smin(b, _smax(b, lo, b.add(last, k.const(step))), end)
    return lo, hi


def _both(b, mask, also):
    """mask AND also (``also`` None: mask)."""
    return mask if also is None else b.and_(mask, also)


def _smin(b, x, y):
    return b.select(b.icmp_signed("<", x, y), x, y)


def _smax(b, x, y):
    return b.select(b.icmp_signed(">", x, y), x, y)


def _origin(k: _Builder, top, left, pt, pl):
    """(row, column) of a tap's input in the unpadded input (pt, pl None: the padded one)."""
    if pt is None:
        return top, left
    return k.b.sub(top, pt), k.b.sub(left, pl)


def _columns_inside(k: _Builder, ow0, kw: int, dw: int, pl, width) -> list | None:
    """Per tap column j, the lanes whose input column ow0 + l + j*dw - pl is in [0, width)
    (None without edges: pl None)."""
    if pl is None:
        return None
    return [k.window(k.b.sub(k.b.add(ow0, k.const(j * dw)), pl), width) for j in range(kw)]


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
