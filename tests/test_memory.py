"""striate.memory: glibc keeps freed memory, so repeated large arrays reuse their pages."""

import ctypes
import ctypes.util
import os
import subprocess
import sys

import numpy as np
import pytest

from striate import memory


class _Mallinfo2(ctypes.Structure):
    _fields_ = [(name, ctypes.c_size_t) for name in
                ("arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks",
                 "uordblks", "fordblks", "keepcost")]


def _mallinfo2():
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        fn = libc.mallinfo2
    except (OSError, AttributeError):
        pytest.skip("glibc >= 2.33 (mallinfo2) only")
    fn.restype = _Mallinfo2
    return fn()


def _mmapped_bytes_while_holding(nbytes: int) -> int:
    a = np.ones(nbytes // 4, dtype=np.float32)
    held = _mallinfo2().hblkhd                     # bytes in separately mmap'd blocks
    del a
    return held


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc/Linux only")
def test_large_arrays_come_from_the_reused_heap_not_fresh_mmaps():
    assert memory.retain_freed_memory() is True
    assert _mmapped_bytes_while_holding(64 * 2**20) < 16 * 2**20   # (blocks mapped before the call stay)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc/Linux only")
@pytest.mark.parametrize("value,applied,mmapped", [("1", True, False), ("0", False, True), ("off", False, True)])
def test_import_applies_it_unless_disabled(value, applied, mmapped):
    code = ("import striate, striate.memory as m, tests.test_memory as t; "
            "print(m._applied, t._mmapped_bytes_while_holding(64 * 2**20) >= 64 * 2**20)")
    env = dict(os.environ, STRIATE_RETAIN_MEMORY=value)
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                         cwd=os.path.dirname(os.path.dirname(os.path.abspath(__file__))), timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == [str(applied), str(mmapped)]


_SPIN_CODE = """
import sys, time
import numpy as np                               # NumPy (and OpenBLAS) first, as users do
if sys.argv[1] == "striate":
    import striate
    from striate.functional import _blas
    supported = bool(_blas._library_paths())
else:
    supported = True
a = np.ones((600, 600), np.float32)
for _ in range(3):
    a @ a
t = time.process_time()
time.sleep(0.3)
print(supported, time.process_time() - t)
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="process CPU time of OpenBLAS threads")
def test_import_after_numpy_still_stops_openblas_threads_from_spinning():
    """OpenBLAS's idle threads spin ~0.1 s of CPU after a multiply; striate's timeout reaches them
    even when NumPy loaded OpenBLAS first (the spin would take a core from striate's threads)."""
    env = {k: v for k, v in os.environ.items() if k != "OPENBLAS_THREAD_TIMEOUT"}
    env["OPENBLAS_NUM_THREADS"] = "2"

    def idle_cpu(which):
        out = subprocess.run([sys.executable, "-c", _SPIN_CODE, which], env=env, capture_output=True,
                             text=True, timeout=120)
        assert out.returncode == 0, out.stderr
        supported, seconds = out.stdout.split()
        return supported == "True", float(seconds)

    supported, with_striate = idle_cpu("striate")
    if not supported:
        pytest.skip("NumPy's BLAS is not a bundled OpenBLAS")
    _, without = idle_cpu("numpy")
    if without < 0.03:
        pytest.skip("this OpenBLAS does not spin after a multiply")
    assert with_striate < 0.03 < without
