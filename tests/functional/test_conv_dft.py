"""The DFT convolution route: naive-loop and PyTorch references, finite differences,
batch chunks and threads, the automatic choice, and its errors."""

from __future__ import annotations

import numpy as np
import pytest

import striate
from striate.errors import ConfigError
from striate.functional import _parallel as P
from striate.functional import conv as FC
from striate.functional import conv_dft as D
from tests.util import assert_close, torch_or_skip

# (N, C, O, H, W, (KH, KW), ((top, bottom), (left, right)), (dh, dw))
GEOMETRIES = [
    (2, 3, 4, 9, 7, (5, 3), ((2, 1), (0, 3)), (1, 1)),      # asymmetric padding, odd Wp
    (2, 3, 4, 10, 11, (3, 3), ((1, 1), (2, 2)), (2, 1)),    # dilation
    (1, 2, 3, 6, 6, (3, 3), ((0, 0), (0, 0)), (1, 1)),      # no padding, even Wp
    (3, 4, 2, 1, 12, (1, 5), ((0, 0), (2, 2)), (1, 1)),     # a height of 1 (Conv1d)
    (2, 2, 2, 2, 2, (3, 3), ((1, 1), (1, 1)), (1, 1)),      # 2x2 maps
]


def naive_conv(x, w, b, pads, dilation):
    """Cross-correlation by loops over output positions and taps (float64)."""
    (pt, pb), (pl, pr) = pads
    xp = np.pad(x, ((0, 0), (0, 0), (pt, pb), (pl, pr)))
    n, c, hp, wp = xp.shape
    o, _, kh, kw = w.shape
    dh, dw = dilation
    oh, ow = hp - dh * (kh - 1), wp - dw * (kw - 1)
    y = np.zeros((n, o, oh, ow))
    for i in range(kh):
        for j in range(kw):
            patch = xp[:, :, i * dh:i * dh + oh, j * dw:j * dw + ow]          # (N, C, OH, OW)
            y += np.einsum("nchw,oc->nohw", patch, w[:, :, i, j])
    return y + (0 if b is None else b.reshape(1, -1, 1, 1))


def _data(geo, dtype=np.float64, seed=0):
    n, c, o, h, wd, k, pads, dil = geo
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, c, h, wd)).astype(dtype)
    w = rng.standard_normal((o, c) + k).astype(dtype)
    b = rng.standard_normal(o).astype(dtype)
    return x, w, b, pads, dil


@pytest.mark.parametrize("geo", GEOMETRIES)
def test_forward_matches_a_naive_loop(geo):
    x, w, b, pads, dil = _data(geo)
    y, _ = D.conv2d_dft_forward(x, w, b, padding=pads, dilation=dil)
    np.testing.assert_allclose(y, naive_conv(x, w, b, pads, dil), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("geo", GEOMETRIES)
def test_gradients_match_finite_differences(geo):
    x, w, b, pads, dil = _data(geo, seed=1)

    def fn(x, w, b):
        return D.conv2d_dft_forward(x, w, b, padding=pads, dilation=dil)

    assert striate.gradcheck(fn, x, w, b, backward=D.conv2d_dft_backward) < 1e-7


@pytest.mark.parametrize("geo", GEOMETRIES)
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_matches_torch_forward_and_backward(geo, dtype):
    torch = torch_or_skip()
    x, w, b, pads, dil = _data(geo, dtype, seed=2)
    y, cache = D.conv2d_dft_forward(x, w, b, padding=pads, dilation=dil)
    dy = np.random.default_rng(3).standard_normal(y.shape).astype(dtype)
    dx, dw, db = D.conv2d_dft_backward(dy, cache)
    tx, tw, tb = (torch.from_numpy(a).requires_grad_() for a in (x, w, b))
    (pt, pb), (pl, pr) = pads
    ty = torch.nn.functional.conv2d(torch.nn.functional.pad(tx, (pl, pr, pt, pb)), tw, tb, dilation=dil)
    ty.backward(torch.from_numpy(dy))
    for ours, ref, what in [(y, ty, "y"), (dx, tx.grad, "dx"), (dw, tw.grad, "dw"), (db, tb.grad, "db")]:
        assert ours.dtype == dtype
        assert_close(ours, ref.detach().numpy(), dtype, what)


def test_no_input_gradient_and_no_bias():
    x, w, _, pads, dil = _data(GEOMETRIES[0])
    y, cache = D.conv2d_dft_forward(x, w, None, padding=pads, dilation=dil)
    dy = np.ones_like(y)
    dx, dw, db = D.conv2d_dft_backward(dy, cache, need_dx=False)
    _, dw_ref, _ = D.conv2d_dft_backward(dy, cache)
    assert dx is None and db is None
    np.testing.assert_array_equal(dw, dw_ref)


@pytest.fixture
def threads():
    saved = P.get_num_threads()
    yield P.set_num_threads
    P.set_num_threads(saved)


@pytest.mark.parametrize("count", [1, 2, 3])
def test_batch_chunks_and_threads_give_the_same_result(monkeypatch, threads, count):
    rng = np.random.default_rng(4)
    x = rng.standard_normal((7, 6, 12, 12))
    w = rng.standard_normal((5, 6, 3, 3))
    dy = rng.standard_normal((7, 5, 12, 12))
    pads = ((1, 1), (1, 1))
    threads(1)
    y1, c1 = D.conv2d_dft_forward(x, w, None, padding=pads)
    grads1 = D.conv2d_dft_backward(dy, c1)
    threads(count)
    monkeypatch.setattr(P, "MIN_ELEMENTS", 1)
    monkeypatch.setattr(D, "CHUNK_BYTES", 2 * 14 * 8 * 6 * 2 * 8)        # two images a chunk
    monkeypatch.setattr(D, "MIN_CHUNK", 1)
    y2, c2 = D.conv2d_dft_forward(x, w, None, padding=pads)
    grads2 = D.conv2d_dft_backward(dy, c2)
    chunks = [p[:2] for p in c2.spec_x]
    assert len(c1.spec_x) == 1 and chunks[0][0] == 0 and chunks[-1][1] == 7
    assert all(a[1] == b[0] for a, b in zip(chunks, chunks[1:]))          # contiguous, in order
    assert max(b - a for a, b in chunks) == 2 and len(chunks) % count == 0  # <= 2 images each
    np.testing.assert_allclose(y2, y1, rtol=1e-12, atol=1e-12)
    for a, b in zip(grads2[:2], grads1[:2]):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-12)


def test_the_cache_keeps_spectra_not_columns():
    """The backward pass needs the input's spectrum (~Hp*Wp/2 complex per map), not
    KH*KW copies of the input: for fashion_cnn's second conv 3.3x less memory."""
    x = np.zeros((100, 16, 14, 14), dtype=np.float32)
    w = np.zeros((32, 16, 5, 5), dtype=np.float32)
    _, cache = D.conv2d_dft_forward(x, w, None, padding=((2, 2), (2, 2)))
    kept = sum(p[2].nbytes for p in cache.spec_x)
    assert kept == 18 * 10 * 100 * 16 * 8
    assert kept * 3.3 < 16 * 25 * 100 * 196 * 4                          # im2col's columns


# ---------------------------------------------------------------- automatic choice


@pytest.fixture(autouse=True)
def _numpy_routes_only(monkeypatch):
    """These tests are about the NumPy routes (and auto's choice between them): no compiled kernels."""
    monkeypatch.setenv("STRIATE_JIT", "0")


def _choice(shape, w_shape, stride=(1, 1), pad=0, groups=1, training=True, dtype=np.float32):
    x = np.zeros(shape, dtype=dtype)
    w = np.zeros(w_shape, dtype=dtype)
    return FC.choose_algorithm(x, w, stride, ((pad, pad), (pad, pad)), (1, 1), groups, "auto",
                               training=training)


def test_auto_takes_the_dft_route_where_it_saves_work():
    assert _choice((100, 16, 14, 14), (32, 16, 5, 5), pad=2) == "dft"        # fashion_cnn conv2
    assert _choice((128, 64, 8, 8), (64, 64, 3, 3), pad=1) == "dft"          # resnet20 stage 3
    assert _choice((100, 1, 28, 28), (16, 1, 5, 5), pad=2) == "im2col"       # one input channel
    assert _choice((128, 16, 32, 32), (16, 16, 3, 3), pad=1, training=True) == "dft"
    assert _choice((128, 16, 32, 32), (16, 16, 3, 3), pad=1, training=False) == "im2col"


@pytest.mark.parametrize("kwargs", [dict(stride=(2, 2)), dict(groups=2), dict(dtype=np.float16)])
def test_auto_keeps_im2col_where_the_dft_route_cannot_go(kwargs):
    w_shape = (32, 8 if kwargs.get("groups") else 16, 5, 5)
    assert _choice((100, 16, 14, 14), w_shape, pad=2, **kwargs) == "im2col"


def test_auto_keeps_im2col_where_few_images_meet_many_channels(threads):
    """Per-frequency products of a few images are slow GEMMs: measured 2.5x slower than
    im2col for (16, 512, 7, 7) 3x3 and 2x for (8, 64, 112, 112) on 2 threads, where each
    thread takes half the batch (BENCHMARKS.md)."""
    threads(2)
    assert _choice((16, 512, 7, 7), (512, 512, 3, 3), pad=1) == "im2col"
    assert _choice((16, 256, 14, 14), (256, 256, 3, 3), pad=1) == "im2col"
    assert _choice((8, 64, 112, 112), (64, 64, 3, 3), pad=1) == "im2col"
    assert _choice((1, 64, 28, 28), (64, 64, 5, 5), pad=2, training=False) == "im2col"
    assert _choice((64, 64, 28, 28), (64, 64, 5, 5), pad=2, training=False) == "dft"


def test_auto_keeps_im2col_for_1x1_kernels_large_maps_and_large_kernel_spectra():
    assert _choice((8, 64, 14, 14), (64, 64, 1, 1)) == "im2col"
    assert _choice((1, 64, 200, 200), (64, 64, 5, 5), pad=2) == "im2col"    # side > DFT_MAX_SIDE
    # VGG's 512 -> 512 at 14x14, batch 64: the cost model prefers the DFT route, but its
    # kernel spectrum, 16 x 9 x 512 x 512 complex64 = 302 MB, exceeds DFT_MAX_KERNEL_BYTES.
    x, w = np.zeros((64, 512, 14, 14), np.float32), np.zeros((512, 512, 3, 3), np.float32)
    geo = D.DftGeometry(64, 512, 512, (14, 14), (3, 3), ((1, 1), (1, 1)), (1, 1))
    direct, dft = D.dft_conv_costs(geo)
    assert direct >= FC.DFT_MIN_RATIO_TRAIN * dft
    assert FC.choose_algorithm(x, w, (1, 1), ((1, 1), (1, 1)), (1, 1), 1, "auto",
                               training=True) == "im2col"


def test_forcing_the_dft_route_on_a_strided_conv_is_an_error():
    x = np.zeros((1, 2, 8, 8), dtype=np.float32)
    w = np.zeros((2, 2, 3, 3), dtype=np.float32)
    with pytest.raises(ConfigError, match=r"'dft' needs stride \(1, 1\).*received stride \(2, 2\)"):
        FC.conv2d_forward(x, w, None, stride=(2, 2), algorithm="dft")
    with pytest.raises(ConfigError, match=r"one of \('auto', 'im2col', 'dft', 'jit'\); received 'fft'"):
        FC.conv2d_forward(x, w, None, algorithm="fft")


@pytest.mark.parametrize("algorithm", ["im2col", "dft"])
def test_both_routes_agree_through_conv2d_forward_backward_and_infer(algorithm):
    rng = np.random.default_rng(5)
    x = rng.standard_normal((3, 4, 10, 9))
    w = rng.standard_normal((6, 4, 3, 3))
    b = rng.standard_normal(6)
    pads = ((1, 1), (1, 1))
    ref = naive_conv(x, w, b, pads, (1, 1))
    y, cache = FC.conv2d_forward(x, w, b, padding=pads, algorithm=algorithm)
    assert isinstance(cache, D.DftConvCache) == (algorithm == "dft")
    np.testing.assert_allclose(y, ref, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(FC.conv2d_infer(x, w, b, padding=pads, algorithm=algorithm), ref,
                               rtol=1e-12, atol=1e-12)
    dx, dw, db = FC.conv2d_backward(np.ones_like(y), cache)
    np.testing.assert_allclose(db, np.full(6, y[:, 0].size), rtol=1e-12)
    dx_ref = FC.conv2d_backward(np.ones_like(y), FC.conv2d_forward(x, w, b, padding=pads,
                                                                   algorithm="im2col")[1])[0]
    np.testing.assert_allclose(dx, dx_ref, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("algorithm", ["im2col", "dft", "auto"])
def test_an_empty_batch_gives_empty_outputs_and_zero_gradients(algorithm):
    """As torch: a batch of 0 images convolves to 0 outputs, and every gradient is 0."""
    x = np.zeros((0, 16, 14, 14), dtype=np.float32)
    w = np.ones((32, 16, 5, 5), dtype=np.float32)
    b = np.ones(32, dtype=np.float32)
    pads = ((2, 2), (2, 2))
    y, cache = FC.conv2d_forward(x, w, b, padding=pads, algorithm=algorithm)
    assert y.shape == (0, 32, 14, 14)
    assert FC.conv2d_infer(x, w, b, padding=pads, algorithm=algorithm).shape == (0, 32, 14, 14)
    dx, dw, db = FC.conv2d_backward(np.zeros(y.shape, dtype=np.float32), cache)
    assert dx.shape == x.shape and dw.shape == w.shape and db.shape == (32,)
    assert not dw.any() and not db.any()
