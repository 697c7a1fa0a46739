"""Columns above KEEP_COLS_BYTES are rebuilt in backward: same gradients, input kept instead."""

import numpy as np
import pytest

from striate.functional import conv as FC


@pytest.mark.parametrize("groups,stride", [(1, 1), (2, 2)])
def test_rebuilt_columns_give_the_same_gradients(monkeypatch, groups, stride):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((3, 4, 9, 9))
    w = rng.standard_normal((6, 4 // groups, 3, 3))
    b = rng.standard_normal(6)
    kw = dict(stride=(stride, stride), padding=((1, 1), (1, 1)), groups=groups, algorithm="im2col")
    y, kept = FC.conv2d_forward(x, w, b, **kw)
    dy = rng.standard_normal(y.shape)
    assert kept.cols is not None and kept.x is None
    monkeypatch.setattr(FC, "KEEP_COLS_BYTES", 0)
    y2, rebuilt = FC.conv2d_forward(x, w, b, **kw)
    assert rebuilt.cols is None and rebuilt.x is x
    np.testing.assert_array_equal(y, y2)
    for a, c in zip(FC.conv2d_backward(dy, kept), FC.conv2d_backward(dy, rebuilt)):
        np.testing.assert_array_equal(a, c)
