"""The compiled direct-convolution route (striate.functional.conv_jit; needs llvmlite)."""

import numpy as np
import pytest

from striate import nn
from striate.errors import ConfigError
from striate.functional import _parallel as P
from striate.functional import conv as C
from striate.functional import conv_jit as CJ
from striate.gradcheck import gradcheck
from tests.nn.test_fusion import _both, _randomise_bn
from tests.util import torch_or_skip

pytest.importorskip("llvmlite")

# (N, C, H, W), (O, KH, KW), padding, dilation: odd widths (masked last vectors), channel
# counts that leave a remainder after the 8-channel blocks, 1xK kernels (conv1d), dilation.
CASES = [
    ((2, 3, 7, 9), (5, 3, 3), ((1, 1), (1, 1)), (1, 1)),
    ((3, 16, 32, 32), (16, 3, 3), ((1, 1), (1, 1)), (1, 1)),
    ((5, 1, 28, 28), (16, 5, 5), ((2, 2), (2, 2)), (1, 1)),
    ((2, 3, 10, 13), (9, 3, 3), ((2, 2), (2, 2)), (2, 2)),
    ((4, 6, 14, 14), (7, 3, 3), ((0, 2), (2, 1)), (1, 1)),
    ((3, 4, 1, 21), (6, 1, 3), ((0, 0), (0, 0)), (1, 3)),
    ((2, 2, 6, 40), (3, 2, 2), ((1, 0), (0, 1)), (1, 1)),
    # maps 8 or 4 wide with output rows as wide: the flat kernels (float32; float64 at 4)
    ((3, 5, 8, 8), (10, 3, 3), ((1, 1), (1, 1)), (1, 1)),
    ((2, 4, 6, 4), (9, 3, 3), ((2, 0), (1, 1)), (1, 1)),
    ((2, 3, 8, 8), (8, 5, 5), ((2, 2), (2, 2)), (1, 1)),
    ((2, 3, 5, 8), (8, 3, 3), ((2, 2), (2, 2)), (2, 2)),
]


def _data(case, dtype, seed=0):
    (n, c, h, w), (o, kh, kw), pads, dil = case
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, c, h, w)).astype(dtype)
    wt = rng.standard_normal((o, c, kh, kw)).astype(dtype)
    b = rng.standard_normal(o).astype(dtype)
    return x, wt, b, pads, dil


@pytest.mark.parametrize("dtype,tol", [(np.float64, 1e-12), (np.float32, 2e-5)])
@pytest.mark.parametrize("case", CASES)
def test_matches_the_im2col_route(case, dtype, tol):
    x, w, b, pads, dil = _data(case, dtype)
    y, cache = C.conv2d_forward(x, w, b, padding=pads, dilation=dil, algorithm="jit")
    ref, ref_cache = C.conv2d_forward(x, w, b, padding=pads, dilation=dil, algorithm="im2col")
    assert isinstance(cache, CJ.JitConvCache) and y.dtype == dtype and y.shape == ref.shape
    scale = np.abs(ref).max()
    np.testing.assert_allclose(y, ref, rtol=0, atol=tol * scale)
    dy = np.random.default_rng(1).standard_normal(y.shape).astype(dtype)
    for got, want in zip(C.conv2d_backward(dy, cache), C.conv2d_backward(dy, ref_cache)):
        assert got.dtype == dtype
        np.testing.assert_allclose(got, want, rtol=0, atol=tol * np.abs(want).max())
    np.testing.assert_allclose(C.conv2d_infer(x, w, b, padding=pads, dilation=dil, algorithm="jit"),
                               ref, rtol=0, atol=tol * scale)


@pytest.mark.parametrize("case", CASES[:4])
def test_matches_torch(case):
    torch = torch_or_skip()
    x, w, b, pads, dil = _data(case, np.float64, seed=2)
    (pt, pb), (pl, pr) = pads
    tx = torch.from_numpy(x).requires_grad_()
    tw, tb = torch.from_numpy(w).requires_grad_(), torch.from_numpy(b).requires_grad_()
    ty = torch.nn.functional.conv2d(torch.nn.functional.pad(tx, (pl, pr, pt, pb)), tw, tb, dilation=dil)
    y, cache = CJ.conv2d_jit_forward(x, w, b, padding=pads, dilation=dil)
    dy = np.random.default_rng(3).standard_normal(y.shape)
    ty.backward(torch.from_numpy(dy))
    dx, dw, db = CJ.conv2d_jit_backward(dy, cache)
    for got, want in ((y, ty.detach().numpy()), (dx, tx.grad.numpy()), (dw, tw.grad.numpy()),
                      (db, tb.grad.numpy())):
        np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-10)


def test_finite_difference_gradients():
    rng = np.random.default_rng(4)
    layer = nn.Conv2d(3, 5, 3, padding=1, dilation=(1, 2), dtype=np.float64, rng=rng)
    x = rng.standard_normal((2, 3, 6, 19))
    assert C.choose_algorithm(x, layer.weight.data, (1, 1), layer._pads, (1, 2), 1, "auto",
                              training=True) == "jit"
    assert gradcheck(layer, x) < 1e-7


def test_first_layer_skips_dx_and_an_empty_batch_works():
    x, w, b, pads, dil = _data(CASES[2], np.float32)
    y, cache = CJ.conv2d_jit_forward(x, w, b, padding=pads)
    dx, dw, db = CJ.conv2d_jit_backward(np.ones_like(y), cache, need_dx=False)
    assert dx is None and dw.shape == w.shape
    np.testing.assert_allclose(db, np.full(16, y[0, 0].size * len(x)), rtol=1e-6)
    empty, cache = CJ.conv2d_jit_forward(x[:0], w, b, padding=pads)
    assert empty.shape == (0, 16, 28, 28)
    dx, dw, db = CJ.conv2d_jit_backward(empty, cache)
    assert dx.shape == (0, 1, 28, 28) and not dw.any() and not db.any()


def test_weight_gradient_does_not_depend_on_the_thread_count():
    x, w, b, pads, dil = _data(((19, 4, 12, 12), (6, 3, 3), ((1, 1), (1, 1)), (1, 1)), np.float32)
    y, cache = CJ.conv2d_jit_forward(x, w, b, padding=pads)
    dy = np.random.default_rng(5).standard_normal(y.shape).astype(np.float32)
    grads = []
    for threads in (1, 3):
        P.set_num_threads(threads)
        try:
            grads.append(CJ.conv2d_jit_backward(dy, cache))
        finally:
            P.set_num_threads(P._default_threads())
    for a, b2 in zip(grads[0], grads[1]):
        np.testing.assert_array_equal(a, b2)


def test_bad_requests_name_what_the_route_needs(monkeypatch):
    x = np.zeros((1, 2, 8, 8), np.float32)
    w = np.zeros((2, 2, 3, 3), np.float32)
    with pytest.raises(ConfigError, match=r"'jit' needs llvmlite.*received stride \(3, 3\)"):
        C.conv2d_forward(x, w, None, stride=(3, 3), algorithm="jit")
    with pytest.raises(ConfigError, match=r"'jit' needs llvmlite.*received stride \(2, 2\)"):
        C.conv2d_forward(x, w, None, stride=(2, 2), dilation=(2, 2), algorithm="jit")
    with pytest.raises(ConfigError, match=r"kernel \(1, 1\)"):
        C.conv2d_forward(x, w[:, :, :1, :1], None, algorithm="jit")
    with pytest.raises(ConfigError, match=r"padding \(\(3, 3\), \(3, 3\)\)"):
        C.conv2d_forward(x, w, None, padding=((3, 3), (3, 3)), algorithm="jit")
    with pytest.raises(ConfigError, match=r"dtypes float32/float64"):
        C.conv2d_forward(x, w.astype(np.float64), None, algorithm="jit")
    monkeypatch.setenv("STRIATE_JIT", "0")
    with pytest.raises(ConfigError, match=r"'jit' needs llvmlite \(and STRIATE_JIT not 0\)"):
        C.conv2d_forward(x, w, None, algorithm="jit")
    assert C.choose_algorithm(np.zeros((8, 16, 32, 32), np.float32), np.zeros((16, 16, 3, 3), np.float32),
                              (1, 1), ((1, 1), (1, 1)), (1, 1), 1, "auto", training=True) != "jit"


def test_auto_takes_it_for_wide_rows_or_few_column_rows():
    def route(x_shape, w_shape, training):
        x, w = np.zeros(x_shape, np.float32), np.zeros(w_shape, np.float32)
        p = w_shape[2] // 2
        return C.choose_algorithm(x, w, (1, 1), ((p, p), (p, p)), (1, 1), 1, "auto", training=training)

    assert route((128, 16, 32, 32), (16, 16, 3, 3), True) == "jit"      # resnet20 stage 1
    assert route((100, 1, 28, 28), (16, 1, 5, 5), True) == "jit"        # fashion_cnn conv1
    assert route((100, 16, 14, 14), (32, 16, 5, 5), True) == "dft"      # narrow rows: DFT
    assert route((100, 16, 14, 14), (32, 16, 5, 5), False) == "jit"     # inference: jit
    assert route((128, 64, 8, 8), (64, 64, 3, 3), True) == "jit"        # 8 columns: flat kernels
    assert route((128, 64, 8, 8), (64, 64, 3, 3), False) == "jit"
    assert route((128, 64, 12, 12), (64, 64, 3, 3), True) != "jit"     # 12: not a power of two


def test_fused_inference_with_the_jit_route_equals_layer_by_layer():
    rng = np.random.default_rng(6)
    model = nn.Sequential(nn.Conv2d(1, 8, 5, padding=2, dtype=np.float64, rng=rng),
                          nn.BatchNorm2d(8, dtype=np.float64), nn.ReLU(), nn.MaxPool2d(2),
                          nn.Conv2d(8, 8, 3, padding=1, dtype=np.float64, rng=rng), nn.ReLU(),
                          nn.Flatten())
    _randomise_bn(model, rng)
    unfused, fused = _both(model, rng.standard_normal((5, 1, 28, 28)))
    np.testing.assert_allclose(fused, unfused, rtol=1e-11, atol=1e-11)


STRIDED = [
    ((2, 3, 9, 11), (5, 3, 3), ((1, 1), (1, 1))),
    ((3, 16, 32, 32), (32, 3, 3), ((1, 1), (1, 1))),
    ((2, 4, 13, 10), (6, 5, 5), ((2, 2), (2, 2))),
    ((2, 5, 7, 6), (9, 3, 3), ((0, 0), (0, 0))),
    ((2, 2, 12, 12), (3, 4, 4), ((1, 2), (0, 1))),
    ((2, 6, 16, 16), (8, 3, 3), ((1, 1), (1, 1))),       # dy 8 wide: flat kernels for dx
    ((2, 3, 10, 9), (4, 2, 2), ((0, 0), (0, 0))),        # 1x1 sub-kernels
]


@pytest.mark.parametrize("dtype,tol", [(np.float64, 1e-12), (np.float32, 2e-5)])
@pytest.mark.parametrize("case", STRIDED)
def test_stride_two_matches_the_im2col_route(case, dtype, tol):
    x, w, b, pads, _ = _data(case + ((1, 1),), dtype)
    kw = dict(stride=(2, 2), padding=pads)
    y, cache = C.conv2d_forward(x, w, b, algorithm="jit", **kw)
    ref, ref_cache = C.conv2d_forward(x, w, b, algorithm="im2col", **kw)
    assert isinstance(cache, CJ.JitConvCache) and cache.stride == 2 and y.shape == ref.shape
    np.testing.assert_allclose(y, ref, rtol=0, atol=tol * np.abs(ref).max())
    dy = np.random.default_rng(8).standard_normal(y.shape).astype(dtype)
    for got, want in zip(C.conv2d_backward(dy, cache), C.conv2d_backward(dy, ref_cache)):
        np.testing.assert_allclose(got, want, rtol=0, atol=tol * np.abs(want).max())


def test_stride_two_with_an_inf_takes_the_im2col_route():
    x, w, b, pads, _ = _data(STRIDED[1] + ((1, 1),), np.float32)
    x[1, 2, 5, 5] = np.inf
    y, cache = C.conv2d_forward(x, w, b, stride=(2, 2), padding=pads, algorithm="jit")
    assert not isinstance(cache, CJ.JitConvCache)
    ref, _ = C.conv2d_forward(x, w, b, stride=(2, 2), padding=pads, algorithm="im2col")
    np.testing.assert_array_equal(y, ref)


def test_stride_two_finite_differences():
    rng = np.random.default_rng(9)
    layer = nn.Conv2d(3, 4, 3, stride=2, padding=1, dtype=np.float64, rng=rng)
    x = rng.standard_normal((2, 3, 11, 34))
    assert C.choose_algorithm(x, layer.weight.data, (2, 2), layer._pads, (1, 1), 1, "auto",
                              training=True) == "jit"
    assert gradcheck(layer, x) < 1e-7


def test_stride_one_reads_the_input_itself_and_never_past_its_edges():
    """Stride 1 keeps no padded copy (the cache holds x) and masks every load outside x: an
    inf next to the edges reaches only the outputs (and dw taps) whose windows hold it."""
    x, w, _, pads, _ = _data(CASES[0], np.float64)                 # (2, 3, 7, 9), 3x3, pad 1
    x[0, 0, 3, 8] = np.inf                                         # last column, middle row
    x[1, 2, 0, 4] = np.inf                                         # first row
    y, cache = CJ.conv2d_jit_forward(x, w, None, padding=pads)
    assert cache.xp is x
    hit = np.zeros(y.shape, dtype=bool)
    hit[0, :, 2:5, 7:9] = True                                     # outputs whose 3x3 window
    hit[1, :, 0:2, 3:6] = True                                     # holds an inf
    assert np.isinf(y[hit]).all() and np.isfinite(y[~hit]).all()
    dy = np.zeros(y.shape)
    dy[0, :, 0, 0] = 1.0                                          # a corner far from both infs
    dx, dw, _ = CJ.conv2d_jit_backward(dy, cache)
    assert np.isfinite(dx).all()
    ref = C.conv2d_backward(dy, C.conv2d_forward(x, w, None, padding=pads, algorithm="im2col")[1])
    np.testing.assert_allclose(dx, ref[0], rtol=1e-12)
    np.testing.assert_allclose(dw, ref[1], rtol=1e-12)      # 0 * inf: NaN in the same taps
    assert np.isnan(dw).any() and np.isfinite(dw[:, 1]).all()


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_narrow_maps_take_the_flat_kernels(dtype, monkeypatch):
    """Power-of-two widths below a vector (8 float32 / 4 float64 columns) run as one row per
    plane: forward, dx and dw all through the flat kernels, equal to the im2col route."""
    from striate.functional import _jit_flat
    width = 8 if dtype == np.float32 else 4
    calls = []
    for name in ("flat_forward_kernel", "flat_weight_kernel"):
        real = getattr(CJ, name)
        monkeypatch.setattr(CJ, name, lambda *a, real=real, name=name: calls.append(name) or real(*a))
    assert _jit_flat.flat_fits(np.dtype(dtype).name, width, width)
    assert not _jit_flat.flat_fits(np.dtype(dtype).name, width, width - 2)   # narrower output
    x, w, b, pads, dil = _data(((5, 6, width, width), (11, 3, 3), ((1, 1), (1, 1)), (1, 1)), dtype, seed=3)
    y, cache = C.conv2d_forward(x, w, b, padding=pads, algorithm="jit")
    dy = np.random.default_rng(4).standard_normal(y.shape).astype(dtype)
    grads = C.conv2d_backward(dy, cache)
    assert calls.count("flat_forward_kernel") == 4 and calls.count("flat_weight_kernel") == 2
    ref, ref_cache = C.conv2d_forward(x, w, b, padding=pads, algorithm="im2col")
    tol = 2e-5 if dtype == np.float32 else 1e-12
    np.testing.assert_allclose(y, ref, rtol=0, atol=tol * np.abs(ref).max())
    for got, want in zip(grads, C.conv2d_backward(dy, ref_cache)):
        np.testing.assert_allclose(got, want, rtol=0, atol=tol * np.abs(want).max())


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("case", [((4, 5, 9, 13), (10, 3, 3), 1, 1), ((3, 6, 8, 8), (9, 3, 3), 1, 1),
                                  ((3, 4, 14, 14), (7, 5, 5), 1, 2), ((2, 3, 16, 16), (8, 3, 3), 2, 1),
                                  ((2, 3, 8, 8), (4, 3, 3), 2, 1)])
def test_forward_sums_the_moments_of_its_output(case, dtype):
    """moments=True: y's per-channel mean and biased variance, summed while y is written
    (row, narrow-row, flat and stride-2 kernels; float64 with 4-lane vectors)."""
    (n, c, h, w), (o, kh, kw), stride, pad = case
    rng = np.random.default_rng(12)
    x = (rng.standard_normal((n, c, h, w)) + 0.5).astype(dtype)
    wt = rng.standard_normal((o, c, kh, kw)).astype(dtype)
    b = rng.standard_normal(o).astype(dtype)
    y, cache, (mean, var) = CJ.conv2d_jit_forward(x, wt, b, stride=stride, padding=((pad, pad),) * 2,
                                                  moments=True)
    plain, _ = CJ.conv2d_jit_forward(x, wt, b, stride=stride, padding=((pad, pad),) * 2)
    np.testing.assert_array_equal(y, plain)
    y64 = y.astype(np.float64)
    assert mean.dtype == var.dtype == np.float64 and mean.shape == (o,)
    np.testing.assert_allclose(mean, y64.mean(axis=(0, 2, 3)), rtol=1e-12, atol=1e-13)
    np.testing.assert_allclose(var, y64.var(axis=(0, 2, 3)), rtol=1e-11)
    assert isinstance(cache, CJ.JitConvCache)
