"""Worker threads that run compiled kernels without the GIL (optional, with llvmlite).

Handing a Python function to a pool thread costs ~50-75 us on this project's
virtual machines (measured: a parallel_for of an empty function), mostly the
GIL passing back and forth between the threads; a resnet20 training step makes
~170 such hand-offs.  The compiled kernels need no Python, so here each worker
thread enters a compiled loop (``worker_loop``, GIL released) that spins on its
control block for the next list of kernel calls, runs them and marks them done:
a hand-off then costs a few microseconds (measured: 2.4 us for a round trip).
After SPIN_BUDGET idle iterations (well under a millisecond) a worker goes back to
Python and sleeps on a condition variable, so idle threads do not burn a core (nor
hold it from BLAS's threads).  Forked children start their own workers.

A call list is int64 words: [count, (function address, argument count, arguments...)
...]; every argument is a pointer or an int64 (passed alike on x86-64 and AArch64),
at most MAX_ARGS of them.
"""

from __future__ import annotations

import ctypes
import os
import threading
from functools import lru_cache
from typing import Any, Callable, Sequence

import numpy as np

from . import _jit

__all__ = ["available", "address", "run_parts"]

MAX_ARGS = 24
SPIN_BUDGET = 10_000            # pause iterations before a worker sleeps (measured: 1,000 to
                                # 200,000; more made fashion_cnn slower, BLAS's threads wait)
# control block words
SEQ, SEEN, CALLS, STOP = 0, 1, 2, 3

Call = tuple[Any, Sequence[int]]      # (compiled ctypes function, its int64 arguments)


def available() -> bool:
    return _jit.jit_available()


def address(fn: Any) -> int:
    """The machine address of a compiled ctypes function."""
    return ctypes.cast(fn, ctypes.c_void_p).value


def _emit_calls(ir, b, fn, calls_ptr) -> None:
    """IR: run the call list at ``calls_ptr`` (see the module docstring)."""
    i64 = ir.IntType(64)
    count = b.load(calls_ptr)
    head = fn.append_basic_block("calls.head")
    body = fn.append_basic_block("calls.body")
    end = fn.append_basic_block("calls.end")
    pre = b.block
    b.branch(head)
    b.position_at_end(head)
    k = b.phi(i64)
    pos = b.phi(i64)
    k.add_incoming(ir.Constant(i64, 0), pre)
    pos.add_incoming(ir.Constant(i64, 1), pre)
    b.cbranch(b.icmp_signed("<", k, count), body, end)
    b.position_at_end(body)
    target = b.load(b.gep(calls_ptr, [pos]))
    nargs = b.load(b.gep(calls_ptr, [b.add(pos, ir.Constant(i64, 1))]))
    args_at = b.add(pos, ir.Constant(i64, 2))
    after = fn.append_basic_block("calls.next")
    switch = b.switch(nargs, after)
    for n in range(MAX_ARGS + 1):
        case = fn.append_basic_block(f"calls.n{n}")
        switch.add_case(ir.Constant(i64, n), case)
        b.position_at_end(case)
        ftype = ir.FunctionType(ir.VoidType(), [i64] * n)
        callee = b.inttoptr(target, ftype.as_pointer())
        args = [b.load(b.gep(calls_ptr, [b.add(args_at, ir.Constant(i64, a))])) for a in range(n)]
        b.call(callee, args)
        b.branch(after)
    b.position_at_end(after)
    k.add_incoming(b.add(k, ir.Constant(i64, 1)), after)
    pos.add_incoming(b.add(args_at, nargs), after)
    b.branch(head)
    b.position_at_end(end)


def _worker_loop_ir(ir, module, spin_pause) -> None:
    """i64 worker_loop(i64* ctrl, i64 budget): run each new call list posted to ``ctrl``;
    return 1 on stop, 0 after ``budget`` idle iterations."""
    i64 = ir.IntType(64)
    fn = ir.Function(module, ir.FunctionType(i64, [ir.PointerType(i64), i64]), name="worker_loop")
    ctrl, budget = fn.args
    word = {name: ir.Constant(i64, at) for name, at in (("seq", SEQ), ("seen", SEEN),
                                                         ("calls", CALLS), ("stop", STOP))}
    b = ir.IRBuilder(fn.append_basic_block("entry"))
    head, idle, work, go = (fn.append_basic_block(n) for n in ("head", "idle", "work", "go"))
    entry = b.block
    b.branch(head)
    b.position_at_end(head)                         # a new sequence number: work; else spin
    spins = b.phi(i64)
    spins.add_incoming(ir.Constant(i64, 0), entry)
    seq = b.load_atomic(b.gep(ctrl, [word["seq"]]), "acquire", 8)
    b.cbranch(b.icmp_signed("!=", seq, b.load(b.gep(ctrl, [word["seen"]]))), work, idle)
    b.position_at_end(idle)
    spin_pause(b)
    more = b.add(spins, ir.Constant(i64, 1))
    spins.add_incoming(more, idle)
    quiet = fn.append_basic_block("quiet")
    b.cbranch(b.icmp_signed("<", more, budget), head, quiet)
    b.position_at_end(quiet)
    b.ret(ir.Constant(i64, 0))
    b.position_at_end(work)
    stop = fn.append_basic_block("stop")
    b.cbranch(b.icmp_signed("!=", b.load(b.gep(ctrl, [word["stop"]])), ir.Constant(i64, 0)), stop, go)
    b.position_at_end(stop)
    b.ret(ir.Constant(i64, 1))
    b.position_at_end(go)
    _emit_calls(ir, b, fn, b.inttoptr(b.load(b.gep(ctrl, [word["calls"]])), ir.PointerType(i64)))
    b.store_atomic(seq, b.gep(ctrl, [word["seen"]]), "release", 8)
    spins.add_incoming(ir.Constant(i64, 0), b.block)
    b.branch(head)


def _wait_done_ir(ir, module, spin_pause) -> None:
    """void wait_done(i64* ctrl, i64 seq): spin until ctrl[SEEN] == seq."""
    i64 = ir.IntType(64)
    fn = ir.Function(module, ir.FunctionType(ir.VoidType(), [ir.PointerType(i64), i64]), name="wait_done")
    ctrl, seq = fn.args
    b = ir.IRBuilder(fn.append_basic_block("entry"))
    head, wait, done = (fn.append_basic_block(n) for n in ("head", "wait", "done"))
    b.branch(head)
    b.position_at_end(head)
    seen = b.load_atomic(b.gep(ctrl, [ir.Constant(i64, SEEN)]), "acquire", 8)
    b.cbranch(b.icmp_signed("==", seen, seq), done, wait)
    b.position_at_end(wait)
    spin_pause(b)
    b.branch(head)
    b.position_at_end(done)
    b.ret_void()


@lru_cache(maxsize=None)
def _functions() -> tuple[Callable, Callable, Callable]:
    """(worker_loop, wait_done, run_calls) compiled once."""
    ir = _jit._ir
    i64 = ir.IntType(64)
    module = ir.Module(name="striate_native_pool")
    pause = _jit._declare(module, "llvm.x86.sse2.pause", ir.VoidType(), []) \
        if "x86" in _jit._llvm.get_default_triple() else None

    def spin_pause(b):
        if pause is not None:
            b.call(pause, [])

    _worker_loop_ir(ir, module, spin_pause)
    _wait_done_ir(ir, module, spin_pause)
    fn = ir.Function(module, ir.FunctionType(ir.VoidType(), [ir.PointerType(i64)]), name="run_calls")
    b = ir.IRBuilder(fn.append_basic_block("entry"))
    _emit_calls(ir, b, fn, fn.args[0])
    b.ret_void()
    with _jit._lock:
        parsed = _jit._llvm.parse_assembly(str(module))
        parsed.verify()
        engine = _jit._llvm.create_mcjit_compiler(parsed, _jit._machine())
        engine.finalize_object()
        _jit._engines.append(engine)
    ptr = ctypes.c_void_p
    return (ctypes.CFUNCTYPE(ctypes.c_int64, ptr, ctypes.c_int64)(engine.get_function_address("worker_loop")),
            ctypes.CFUNCTYPE(None, ptr, ctypes.c_int64)(engine.get_function_address("wait_done")),
            ctypes.CFUNCTYPE(None, ptr)(engine.get_function_address("run_calls")))


def _encode(calls: Sequence[Call]) -> np.ndarray:
    """The call list as int64 words (kept alive by the caller while it runs)."""
    words = [len(calls)]
    for fn, args in calls:
        if len(args) > MAX_ARGS:
            raise ValueError(f"native call with {len(args)} arguments; at most {MAX_ARGS}")
        words += [address(fn), len(args), *[int(a) for a in args]]
    return np.array(words, dtype=np.int64)


class _Worker:
    """One pool thread: a control block and the thread that runs worker_loop on it."""

    def __init__(self) -> None:
        self.ctrl = np.zeros(8, dtype=np.int64)
        self.cond = threading.Condition()
        self.sleeping = False
        self.worker_loop = _functions()[0]                 # compiled here, not in the thread
        self.thread = threading.Thread(target=self._loop, name="striate-native", daemon=True)
        self.thread.start()

    def _loop(self) -> None:
        worker_loop = self.worker_loop
        ptr = self.ctrl.ctypes.data
        while True:
            if worker_loop(ptr, SPIN_BUDGET):                  # GIL released while it spins
                return
            with self.cond:
                self.sleeping = True
                while self.ctrl[SEQ] == self.ctrl[SEEN] and not self.ctrl[STOP]:
                    self.cond.wait(0.1)            # (notified; the timeout is a safety net)
                self.sleeping = False

    def post(self, words: np.ndarray) -> int:
        self.ctrl[CALLS] = words.ctypes.data
        seq = int(self.ctrl[SEQ]) + 1
        self.ctrl[SEQ] = seq
        if self.sleeping:
            with self.cond:
                self.cond.notify()
        return seq


_lock = threading.Lock()
_workers: list[_Worker] = []


def _forget_workers() -> None:
    """In a forked child the workers' threads do not exist: start new ones when needed."""
    global _lock, _busy
    _lock, _busy = threading.Lock(), threading.Lock()
    _workers.clear()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_workers)


def _pool(count: int) -> list[_Worker]:
    with _lock:
        while len(_workers) < count:
            _workers.append(_Worker())
        return _workers[:count]


_busy = threading.Lock()          # one split at a time uses the workers


def run_parts(parts: Sequence[Sequence[Call]]) -> None:
    """Run parts[0] on this thread and parts[1:] on the pool's threads, all at once.

    While another thread's split holds the workers, this one runs its parts itself.
    """
    _, wait_done, run_calls = _functions()
    words = [_encode(p) for p in parts]
    if not _busy.acquire(blocking=False):
        for wd in words:
            run_calls(wd.ctypes.data)
        return
    try:
        workers = _pool(len(parts) - 1)
        posted = [(w, w.post(wd)) for w, wd in zip(workers, words[1:])]
        run_calls(words[0].ctypes.data)
        for w, seq in posted:
            wait_done(w.ctrl.ctypes.data, seq)
    finally:
        _busy.release()
