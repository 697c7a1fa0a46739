"""Splitting memory-bound passes over threads gives the same bits as one thread."""

import numpy as np
import pytest

from striate.errors import ConfigError
from striate.functional import _parallel as P
from striate.functional.conv import conv2d_backward, conv2d_forward
from striate.functional.im2col import col2im, im2col


@pytest.fixture
def threads():
    saved = P.get_num_threads()
    yield P.set_num_threads
    P.set_num_threads(saved)


def test_parallel_for_covers_every_item_once(threads):
    threads(3)
    seen = np.zeros(10, dtype=int)

    def mark(start, stop):
        seen[start:stop] += 1

    P.parallel_for(mark, 10, elements=P.MIN_ELEMENTS)
    assert seen.tolist() == [1] * 10


def test_parallel_for_runs_small_jobs_inline(threads):
    threads(4)
    calls = []
    P.parallel_for(lambda a, b: calls.append((a, b)), 8, elements=10)
    assert calls == [(0, 8)]


def test_parallel_for_reraises_a_worker_error(threads):
    threads(2)

    def fail(start, stop):
        if start > 0:
            raise ValueError("boom")

    with pytest.raises(ValueError, match="boom"):
        P.parallel_for(fail, 4, elements=P.MIN_ELEMENTS)


def test_set_num_threads_refuses_zero():
    with pytest.raises(ConfigError, match="received 0"):
        P.set_num_threads(0)


@pytest.mark.parametrize("stride", [1, 2])
def test_im2col_col2im_and_conv_are_identical_split_or_not(threads, stride):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((9, 8, 40, 40)).astype(np.float32)     # cols > MIN_ELEMENTS
    w = rng.standard_normal((8, 8, 3, 3)).astype(np.float32)
    out = {}
    for n in (1, 3):
        threads(n)
        cols = im2col(x, (3, 3), (stride, stride), (1, 1), ((40 - 3) // stride + 1,) * 2)
        back = col2im(cols, x.shape, (3, 3), (stride, stride), (1, 1), ((40 - 3) // stride + 1,) * 2)
        y, cache = conv2d_forward(x, w, None, stride=(stride, stride), padding=((1, 1), (1, 1)))
        dx, dw, _ = conv2d_backward(np.ones_like(y), cache)
        out[n] = (cols, back, y, dx, dw)
    assert cols.size > P.MIN_ELEMENTS
    for a, b in zip(out[1], out[3]):
        np.testing.assert_array_equal(a, b)
    # col2im(ones) counts how many windows cover each pixel: 9 in the interior for stride 1.
    if stride == 1:
        assert out[1][1][0, 0, 5, 5] == pytest.approx(9 * x[0, 0, 5, 5])


@pytest.mark.parametrize("kernel,stride", [(2, 2), (3, 2)])
def test_max_pool_is_identical_split_or_not(threads, kernel, stride):
    from striate.functional.pool import max_pool2d_backward, max_pool2d_forward

    rng = np.random.default_rng(1)
    x = rng.standard_normal((6, 8, 64, 64)).astype(np.float32)
    x[0, 0, :2, :2] = 1.0                                              # a tie: the first offset wins
    out = {}
    for n in (1, 3):
        threads(n)
        y, cache = max_pool2d_forward(x, kernel_size=(kernel,) * 2, stride=(stride,) * 2)
        dx = max_pool2d_backward(np.ones_like(y), cache)
        out[n] = (y, cache.arg, dx)
    for a, b in zip(out[1], out[3]):
        np.testing.assert_array_equal(a, b)
    assert out[1][1][0, 0, 0, 0] == 0 and out[1][2][0, 0, 0, 0] == 1 and out[1][2][0, 0, 0, 1] == 0


def test_max_pool_with_more_than_127_offsets_keeps_int32_argmax():
    from striate.functional.pool import max_pool2d_backward, max_pool2d_forward

    x = np.random.default_rng(2).standard_normal((2, 3, 13, 13))
    y, cache = max_pool2d_forward(x, kernel_size=(12, 12), stride=(1, 1))     # 144 offsets
    assert cache.arg.dtype == np.int32
    ref = np.array([[[[x[n, c, i:i + 12, j:j + 12].max() for j in range(2)] for i in range(2)]
                     for c in range(3)] for n in range(2)])
    np.testing.assert_array_equal(y, ref)
    dx = max_pool2d_backward(np.ones_like(y), cache)
    for n in range(2):
        for c in range(3):
            for i in range(2):
                for j in range(2):
                    win = x[n, c, i:i + 12, j:j + 12]
                    a, b = np.unravel_index(np.argmax(win), win.shape)
                    assert dx[n, c, i + a, j + b] >= 1
    assert dx.sum() == pytest.approx(y.size)


def test_batch_norm_and_relu_are_identical_split_or_not(threads):
    from striate.functional.activation import mask_backward, relu_forward
    from striate.functional.norm import batch_centred_moments, batch_norm_backward, batch_norm_forward

    rng = np.random.default_rng(3)
    x = (rng.standard_normal((8, 16, 40, 40)) * 3 + 1).astype(np.float32)
    dy = rng.standard_normal(x.shape).astype(np.float32)
    w, b = rng.standard_normal(16).astype(np.float32), rng.standard_normal(16).astype(np.float32)
    out = {}
    for n in (1, 3):
        threads(n)
        centred, mean, var = batch_centred_moments(x)
        y, cache = batch_norm_forward(x, mean, var, w, b, centred=centred)
        dx, dw, db = batch_norm_backward(dy, cache)
        r, rc = relu_forward(y)
        out[n] = (y, dx, dw, db, r, mask_backward(dy, rc))
    for a, c in zip(out[1], out[3]):
        np.testing.assert_allclose(a, c, rtol=1e-6, atol=1e-6)   # partial sums are added in another order
    np.testing.assert_allclose(out[3][0].mean(axis=(0, 2, 3)), b, atol=1e-4)


def test_parallel_sum_adds_the_parts_in_order(threads):
    threads(3)
    parts = []
    total = P.parallel_sum(lambda i, j: (parts.append((i, j)), np.arange(i, j).sum())[1], 9, P.MIN_ELEMENTS)
    assert total == 36 and sorted(parts) == [(0, 3), (3, 6), (6, 9)]


@pytest.mark.parametrize("stride,dilation,pads", [(1, 1, ((1, 1), (1, 1))), (2, 1, ((0, 1), (2, 0))), (1, 2, ((2, 2), (0, 0)))])
def test_channel_major_col2im_is_the_adjoint_of_im2col(threads, stride, dilation, pads):
    """<im2col_cm(x), c> == <x, col2im_cm(c)> restricted to the unpadded input."""
    from striate.functional.im2col import col2im_cm, im2col_cm, out_size

    rng = np.random.default_rng(4)
    x = rng.standard_normal((3, 2, 7, 6))
    oh = out_size(7, 3, stride, sum(pads[0]), dilation)
    ow = out_size(6, 3, stride, sum(pads[1]), dilation)
    cols = im2col_cm(x, pads, (3, 3), (stride, stride), (dilation, dilation), (oh, ow))
    assert cols.shape == (2 * 9, 3 * oh * ow)
    c = rng.standard_normal(cols.shape)
    padded = (3, 2, 7 + sum(pads[0]), 6 + sum(pads[1]))
    back = col2im_cm(c, padded, (3, 3), (stride, stride), (dilation, dilation), (oh, ow))
    inner = back[:, :, pads[0][0]:pads[0][0] + 7, pads[1][0]:pads[1][0] + 6]
    assert np.vdot(cols, c) == pytest.approx(np.vdot(x, inner), rel=1e-12)


def test_parallel_parts_returns_each_parts_result_in_order(threads):
    threads(3)
    parts = P.parallel_parts(lambda a, b: (a, b), 9, elements=P.MIN_ELEMENTS)
    if P.blas_threads_controllable():
        assert parts == [(0, 3), (3, 6), (6, 9)]
    else:                                   # another BLAS: the job runs as one part
        assert parts == [(0, 9)]


def test_a_split_inside_a_part_runs_inline(threads):
    """A nested split must not wait for pool threads that are busy with the outer parts."""
    threads(2)
    inner = []

    def outer(start, stop):
        P.parallel_for(lambda a, b: inner.append((start, a, b)), 4, elements=P.MIN_ELEMENTS)
        return start

    assert P.parallel_parts(outer, 2, elements=P.MIN_ELEMENTS) in ([0, 1], [0])
    assert sorted(inner) in ([(0, 0, 4), (1, 0, 4)], [(0, 0, 4)])


def test_one_blas_thread_sets_and_restores_the_blas_thread_count():
    from striate.functional import _blas

    if not _blas.blas_threads_controllable():
        with _blas.one_blas_thread() as single:
            assert single is False
        return
    setter, getter = _blas._functions()
    before = getter()
    with _blas.one_blas_thread() as single:
        assert single is True and getter() == 1
    assert getter() == before
