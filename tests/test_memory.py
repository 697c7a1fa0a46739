"""striate.memory: glibc keeps freed memory, so repeated large arrays reuse their pages."""

import os
import subprocess
import sys

import numpy as np
import pytest

from striate import memory

glibc = pytest.mark.skipif(not sys.platform.startswith("linux") or not os.path.exists("/proc/self/status"),
                           reason="glibc/Linux only")


def _minor_faults() -> int:
    with open("/proc/self/stat") as f:
        return int(f.read().rsplit(")", 1)[1].split()[7])        # minflt, field 10


@glibc
def test_retained_memory_is_reused_without_page_faults():
    assert memory.retain_freed_memory() is True
    size = 64 * 2**20 // 4                                        # 64 MiB of float32
    a = np.ones(size, dtype=np.float32)
    del a
    before = _minor_faults()
    for _ in range(3):
        b = np.ones(size, dtype=np.float32)                     # touches every page
        del b
    faults = _minor_faults() - before
    # Fresh mmap'd memory would fault every 4 KiB page: 3 * 16384 faults.
    assert faults < 2000, faults


@glibc
@pytest.mark.parametrize("value,expected", [("1", "True"), ("0", "False"), ("off", "False")])
def test_import_applies_it_unless_disabled(value, expected):
    code = "import striate, striate.memory as m; print(m._applied)"
    env = dict(os.environ, STRIATE_RETAIN_MEMORY=value)
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                         cwd=os.path.dirname(os.path.dirname(os.path.abspath(__file__))), timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == expected
