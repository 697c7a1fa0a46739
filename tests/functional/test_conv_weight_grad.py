"""The convolution's weight gradient: stacked per-image products or one GEMM, same values."""

import numpy as np
import pytest

from striate.functional import conv as C
from striate.functional import _parallel as P
from striate.functional.im2col import im2col_cm, to_channel_major


@pytest.mark.parametrize("n", [0, 1, 17, 40])
def test_stacked_products_equal_one_gemm(n):
    rng = np.random.default_rng(5)
    x = rng.standard_normal((n, 3, 9, 7))
    dy = rng.standard_normal((n, 4, 9, 7))
    cols = im2col_cm(x, ((1, 1), (1, 1)), (3, 3), (1, 1), (1, 1), (9, 7))   # (27, n*63)
    ref = to_channel_major(dy) @ cols.T if n else np.zeros((4, 27))
    np.testing.assert_allclose(C._weight_grad(dy, cols), ref, rtol=1e-12, atol=1e-12)


def test_backward_routes_agree_and_do_not_depend_on_threads(monkeypatch):
    rng = np.random.default_rng(6)
    x = rng.standard_normal((37, 6, 10, 10)).astype(np.float32)
    w = rng.standard_normal((8, 6, 3, 3)).astype(np.float32)
    y, cache = C.conv2d_forward(x, w, rng.standard_normal(8).astype(np.float32),
                                padding=((1, 1), (1, 1)), algorithm="im2col")
    dy = rng.standard_normal(y.shape).astype(np.float32)
    assert 8 * 54 <= C.WGRAD_STACK_MAX                              # the stacked route by default
    grads = {}
    for threads in (1, 3):
        P.set_num_threads(threads)
        try:
            grads[threads] = C.conv2d_backward(dy, cache)
        finally:
            P.set_num_threads(P._default_threads())
    np.testing.assert_array_equal(grads[1][1], grads[3][1])          # dW in fixed blocks: bit for bit
    np.testing.assert_array_equal(grads[1][2], grads[3][2])
    # (dx may take the DFT route at one thread count and not the other: the cost model
    # counts chunks per thread)
    np.testing.assert_allclose(grads[1][0], grads[3][0], rtol=1e-5, atol=1e-4)
    monkeypatch.setattr(C, "WGRAD_STACK_MAX", 0)                     # one GEMM
    dx, dw, db = C.conv2d_backward(dy, cache)
    np.testing.assert_allclose(dw, grads[1][1], rtol=1e-5, atol=1e-4)
    np.testing.assert_allclose(dx, grads[1][0], rtol=1e-5, atol=1e-4)
    np.testing.assert_allclose(db, dy.sum(axis=(0, 2, 3)), rtol=1e-5, atol=1e-4)
