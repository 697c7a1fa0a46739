"""The native worker pool (striate.functional._native): compiled kernels run on pool
threads without Python, woken by spinning or, after idling, by a condition variable."""

import multiprocessing
import time

import numpy as np
import pytest

pytest.importorskip("llvmlite")

from striate.functional import _jit, _native  # noqa: E402
from striate.functional import _parallel as P  # noqa: E402
from striate.functional._jit_norm import norm_kernel  # noqa: E402

if not _jit.jit_available():
    pytest.skip("STRIATE_JIT is 0", allow_module_level=True)


def _plane_sums(parts_bounds, x):
    """Per-plane sums of x (planes, P) by the compiled 'sums' kernel, one part per range."""
    out = np.full(len(x), np.nan)
    kernel = norm_kernel("sums", "float64")
    parts = [[(kernel, (x.ctypes.data, out.ctypes.data, a, b, x.shape[1], 1))] for a, b in parts_bounds]
    _native.run_parts(parts)
    return out


def test_every_part_runs_once_on_its_own_range():
    x = np.random.default_rng(0).standard_normal((30, 257))
    out = _plane_sums([(0, 7), (7, 19), (19, 30)], x)           # two pool threads
    np.testing.assert_allclose(out, x.sum(axis=1), rtol=1e-12)


def test_a_worker_that_went_to_sleep_is_woken():
    x = np.random.default_rng(1).standard_normal((8, 100))
    _plane_sums([(0, 4), (4, 8)], x)
    time.sleep(0.05)                                            # past the spin budget: asleep
    assert all(w.sleeping for w in _native._workers[:1])
    out = _plane_sums([(0, 4), (4, 8)], x)
    np.testing.assert_allclose(out, x.sum(axis=1), rtol=1e-12)


def test_parallel_kernels_gives_the_split_of_parallel_for():
    x = np.random.default_rng(2).standard_normal((64, 4096))
    out = np.zeros(64)
    kernel = norm_kernel("sums", "float64")
    seen = []

    def calls(start, stop):
        seen.append((start, stop))
        return [(kernel, (x.ctypes.data, out.ctypes.data, start, stop, 4096, 1))]

    P.set_num_threads(3)
    try:
        P.parallel_kernels(calls, 64, x.size)
    finally:
        P.set_num_threads(P._default_threads())
    assert seen == [(0, 21), (21, 42), (42, 64)]
    np.testing.assert_allclose(out, x.sum(axis=1), rtol=1e-12)


def _child(queue):
    x = np.arange(12.0).reshape(4, 3)
    queue.put(_plane_sums([(0, 2), (2, 4)], x).tolist())


def test_a_forked_child_starts_its_own_workers():
    _plane_sums([(0, 1), (1, 2)], np.ones((2, 3)))             # the parent's workers exist
    ctx = multiprocessing.get_context("fork")
    queue = ctx.Queue()
    proc = ctx.Process(target=_child, args=(queue,))
    proc.start()
    proc.join(30)
    assert proc.exitcode == 0
    assert queue.get(timeout=5) == [3.0, 12.0, 21.0, 30.0]


def test_too_many_arguments_are_refused():
    with pytest.raises(ValueError, match="at most 24"):
        _native._encode([(norm_kernel("sums", "float64"), tuple(range(25)))])


def test_two_threads_splitting_at_once_both_finish():
    """The workers serve one split at a time; a second thread's split runs its parts itself."""
    import threading

    x = np.random.default_rng(3).standard_normal((40, 5000))
    results, errors = {}, []

    def work(name):
        try:
            for _ in range(50):
                results[name] = _plane_sums([(0, 13), (13, 27), (27, 40)], x)
        except Exception as exc:                      # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(k,)) for k in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors and not any(t.is_alive() for t in threads)
    for out in results.values():
        np.testing.assert_allclose(out, x.sum(axis=1), rtol=1e-12)
