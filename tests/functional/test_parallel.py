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
