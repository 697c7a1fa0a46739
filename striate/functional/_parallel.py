"""Split memory-bound NumPy work (copies, scatter-adds, elementwise passes) over threads.

BLAS runs a convolution's matrix multiply on every core, but NumPy runs the
copies around it (im2col, col2im, batch norm, activations) on one.  NumPy
releases the GIL inside those loops, so the same work split over the batch axis
into one slice per core runs in parallel from a small thread pool.

The thread count is ``STRIATE_NUM_THREADS`` if set, else ``OMP_NUM_THREADS`` /
``OPENBLAS_NUM_THREADS`` (what BLAS uses), else the number of cores;
:func:`set_num_threads` changes it at run time (1 turns splitting off).
"""

from __future__ import annotations

import os
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Callable

from . import _native
from ._blas import blas_threads_controllable, one_blas_thread

__all__ = ["get_num_threads", "set_num_threads", "parallel_for", "parallel_sum", "parallel_parts",
           "parallel_kernels", "blas_threads_controllable"]

# Below this many elements per call, a thread hand-off costs more than it saves.
MIN_ELEMENTS = 1 << 17

_lock = threading.Lock()
_pool: ThreadPoolExecutor | None = None
_threads: int | None = None
_region = threading.local()      # .active: this thread runs one part of a split


def _default_threads() -> int:
    for var in ("STRIATE_NUM_THREADS", "OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        value = os.environ.get(var, "").strip()
        if value.isdigit() and int(value) > 0:
            return int(value)
    return os.cpu_count() or 1


def get_num_threads() -> int:
    """Threads used to split memory-bound passes (1: no splitting)."""
    global _threads
    if _threads is None:
        _threads = _default_threads()
    return _threads


def set_num_threads(n: int) -> None:
    """Use ``n`` threads for memory-bound passes from now on (BLAS keeps its own setting)."""
    global _threads, _pool
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        from ..errors import ConfigError
        raise ConfigError(f"set_num_threads: n must be a positive int; received {n!r}")
    with _lock:
        _threads = n
        if _pool is not None:
            _pool.shutdown(wait=False)
            _pool = None


def _executor(n: int) -> ThreadPoolExecutor:
    global _pool
    with _lock:
        if _pool is None:
            _pool = ThreadPoolExecutor(max_workers=n - 1, thread_name_prefix="striate")
        return _pool


def _bounds(n: int, elements: int) -> list[int]:
    """Split points of range(n): one part per thread, or a single part for small jobs."""
    threads = min(get_num_threads(), n)
    if threads <= 1 or elements < MIN_ELEMENTS or getattr(_region, "active", False):
        return [0, n]       # nested splits run inline: the other threads are busy already
    return [n * i // threads for i in range(threads + 1)]


def _in_region(fn: Callable[[int, int], Any]) -> Callable[[int, int], Any]:
    """``fn`` marked as one part of a split, so that splits inside it run inline."""
    def part(start: int, stop: int) -> Any:
        _region.active = True
        try:
            return fn(start, stop)
        finally:
            _region.active = False
    return part


def parallel_sum(fn: Callable[[int, int], Any], n: int, elements: int) -> Any:
    """Sum of ``fn(start, stop)`` over a split of ``range(n)``, added in a fixed order.

    The parts are added first to last whatever order the threads finish in, so
    the result is the same from run to run (for a given thread count).
    """
    bounds = _bounds(n, elements)
    if len(bounds) == 2:
        return fn(0, n)
    pool = _executor(get_num_threads())
    part = _in_region(fn)
    futures = [pool.submit(part, bounds[i], bounds[i + 1]) for i in range(1, len(bounds) - 1)]
    total = part(bounds[0], bounds[1])
    for f in futures:
        total = total + f.result()
    return total


def sum_in_order(arrays: list[Any]) -> Any:
    """arrays[0] + arrays[1] + ..., first to last (None for an empty list)."""
    if not arrays:
        return None
    total = arrays[0]
    for a in arrays[1:]:
        total = total + a
    return total


def sum_of_blocks(block: Callable[[int], Any], count: int, elements: int) -> Any:
    """block(0) + block(1) + ... + block(count - 1), the blocks spread over the threads.

    The caller fixes the blocks and the sum runs first to last, so the result does
    not depend on the thread count; ``block`` may call BLAS (as in :func:`parallel_parts`).
    None when count is 0.
    """
    def part(first: int, last: int) -> list[Any]:
        return [block(i) for i in range(first, last)]

    return sum_in_order([v for group in parallel_parts(part, count, elements) for v in group])


def parallel_for(fn: Callable[[int, int], None], n: int, elements: int) -> None:
    """Call ``fn(start, stop)`` over a split of ``range(n)``, one part per thread.

    Args:
        fn: does the work for items start..stop-1 and writes disjoint output.
        n: number of items (usually the batch size).
        elements: total elements the work touches; small jobs run inline.
    """
    bounds = _bounds(n, elements)
    if len(bounds) == 2:
        fn(0, n)
        return
    pool = _executor(get_num_threads())
    part = _in_region(fn)
    futures = [pool.submit(part, bounds[i], bounds[i + 1]) for i in range(1, len(bounds) - 1)]
    part(bounds[0], bounds[1])
    for f in futures:
        f.result()


def parallel_kernels(calls: Callable[[int, int], list], n: int, elements: int) -> None:
    """Run the compiled-kernel calls ``calls(start, stop)`` (a list of (kernel, int args)) over
    a split of ``range(n)``, as :func:`parallel_for` would run them.

    With llvmlite the pool threads of :mod:`._native` run their parts' kernels without
    Python (a hand-off of a few microseconds instead of ~50-75); the split is the same.
    """
    bounds = _bounds(n, elements)
    if len(bounds) == 2:
        for kernel, args in calls(0, n):
            kernel(*args)
        return
    if _native.available():
        _native.run_parts([calls(bounds[i], bounds[i + 1]) for i in range(len(bounds) - 1)])
        return

    def run(start: int, stop: int) -> None:
        for kernel, args in calls(start, stop):
            kernel(*args)

    parallel_for(run, n, elements)


def parallel_parts(fn: Callable[[int, int], Any], n: int, elements: int) -> list[Any]:
    """``[fn(start, stop) for each part]`` in order, parts run in parallel; ``fn`` may call BLAS.

    While the parts run, BLAS is held at one thread per caller (two callers of a
    multi-threaded OpenBLAS slow each other down several times over).  If the BLAS
    thread count cannot be set, the job runs as one part.
    """
    bounds = _bounds(n, elements)
    if len(bounds) == 2:
        return [fn(0, n)]
    with one_blas_thread() as single:
        if not single:
            return [fn(0, n)]
        pool = _executor(get_num_threads())
        part = _in_region(fn)
        futures = [pool.submit(part, bounds[i], bounds[i + 1]) for i in range(1, len(bounds) - 1)]
        results = [part(bounds[0], bounds[1])]
        results.extend(f.result() for f in futures)
        return results
