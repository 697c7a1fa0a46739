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
