"""Run NumPy's BLAS on one thread while striate splits a job over its own threads.

Two threads that call a multi-threaded OpenBLAS at once fight over its thread
pool: a stride-1 DFT convolution split over the batch into two halves ran 5x
slower than unsplit, and 1.8x faster once BLAS ran one thread per caller.  NumPy
does not expose the setting, so this module finds the OpenBLAS library that NumPy
loaded (the one in its wheel's ``numpy.libs``/``.dylibs`` folder) and calls its
``set_num_threads`` through ctypes, as threadpoolctl does.  Where that is not
possible (another BLAS, another build), :func:`one_blas_thread` yields False and
callers run their job unsplit.
"""

from __future__ import annotations

import ctypes
import glob
import os
import threading
from contextlib import contextmanager
from typing import Iterator

__all__ = ["blas_threads_controllable", "one_blas_thread", "restart_blas_threads"]

# (set, get) symbol names: scipy-openblas wheels (NumPy >= 2), then plain OpenBLAS.
_SYMBOLS = (
    ("scipy_openblas_set_num_threads64_", "scipy_openblas_get_num_threads64_"),
    ("scipy_openblas_set_num_threads", "scipy_openblas_get_num_threads"),
    ("openblas_set_num_threads64_", "openblas_get_num_threads64_"),
    ("openblas_set_num_threads", "openblas_get_num_threads"),
)

_lock = threading.Lock()
_found: tuple | None = None
_searched = False


def _library_paths() -> list[str]:
    import numpy
    base = os.path.dirname(numpy.__file__)
    folders = [base + ".libs", os.path.join(base, ".dylibs")]      # Linux/Windows, macOS wheels
    paths: list[str] = []
    for folder in folders:
        for pattern in ("*openblas*.so*", "*openblas*.dylib", "*openblas*.dll"):
            paths.extend(sorted(glob.glob(os.path.join(folder, pattern))))
    return paths


def _functions() -> tuple | None:
    """(set_num_threads, get_num_threads) of NumPy's OpenBLAS, or None."""
    global _found, _searched
    with _lock:
        if _searched:
            return _found
        _searched = True
        for path in _library_paths():
            try:
                lib = ctypes.CDLL(path)           # already loaded by NumPy: same handle
            except OSError:
                continue
            for set_name, get_name in _SYMBOLS:
                setter, getter = getattr(lib, set_name, None), getattr(lib, get_name, None)
                if setter is not None and getter is not None:
                    setter.argtypes, setter.restype = [ctypes.c_int], None
                    getter.argtypes, getter.restype = [], ctypes.c_int
                    _found = (setter, getter)
                    return _found
        return None


def blas_threads_controllable() -> bool:
    """True when striate can set NumPy's BLAS thread count."""
    return _functions() is not None


@contextmanager
def one_blas_thread() -> Iterator[bool]:
    """Within the block BLAS uses one thread per caller; yields False if it cannot be set.

    The setting is process-wide, restored on exit: two threads that run striate at
    the same time can see each other's setting (slower for a while, never wrong).
    """
    funcs = _functions()
    if funcs is None:
        yield False
        return
    setter, getter = funcs
    previous = getter()
    setter(1)
    try:
        yield True
    finally:
        setter(previous)


def restart_blas_threads() -> bool:
    """Make NumPy's loaded OpenBLAS re-read its environment and stop its threads.

    Its settings read from the environment at load time (``OPENBLAS_THREAD_TIMEOUT``)
    then apply from the next multi-threaded call on, which starts the threads anew.
    Must not run while another thread is inside a BLAS call (``import striate`` calls it).

    Returns:
        True if both OpenBLAS entry points were found and called.
    """
    for path in _library_paths():
        try:
            lib = ctypes.CDLL(path)               # already loaded by NumPy: same handle
        except OSError:
            continue
        read_env = getattr(lib, "openblas_read_env", None)
        shutdown = getattr(lib, "blas_thread_shutdown_", None)
        if read_env is None or shutdown is None:
            continue
        read_env.argtypes, read_env.restype = [], None
        shutdown.argtypes, shutdown.restype = [], ctypes.c_int
        with _lock:
            read_env()
            shutdown()
        return True
    return False
