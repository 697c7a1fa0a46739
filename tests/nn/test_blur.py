"""BlurPool2d (anti-aliased downsampling) and its padding kernel."""

from __future__ import annotations

import numpy as np
import pytest

import striate
from striate import nn
from striate.errors import ConfigError, DTypeError, ShapeError
from striate.functional.blur import (binomial_filter, blur_filter2d, blur_pads, pad_backward,
                                     pad_forward)
from tests.util import assert_close, compare_with_torch, torch_or_skip

TORCH_MODE = {"reflect": "reflect", "replicate": "replicate", "zero": "constant"}


def _numpy_blur(x, filt_size, stride, mode):
    """Direct computation: np.pad, then the weighted sum of shifted copies, then subsample."""
    a = binomial_filter(filt_size)
    f = np.outer(a, a) / a.sum() ** 2
    (pt, pb), (pl, pr) = blur_pads(filt_size)
    xp = np.pad(x, ((0, 0), (0, 0), (pt, pb), (pl, pr)),
                mode={"reflect": "reflect", "replicate": "edge", "zero": "constant"}[mode])
    h, w = x.shape[2:]
    k = filt_size
    out = sum(f[i, j] * xp[:, :, i:i + h, j:j + w] for i in range(k) for j in range(k))
    return out[:, :, ::stride, ::stride]


def _torch_blur(channels, filt_size, stride, mode):
    """The reference Downsample: F.pad then a depthwise F.conv2d with the buffer ``filt``."""
    torch = torch_or_skip()
    F = torch.nn.functional
    (pt, pb), (pl, pr) = blur_pads(filt_size)

    class Downsample(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.register_buffer("filt", torch.zeros(channels, 1, filt_size, filt_size))

        def forward(self, x):
            xp = F.pad(x, (pl, pr, pt, pb), mode=TORCH_MODE[mode])
            return F.conv2d(xp, self.filt, stride=stride, groups=channels)

    return Downsample()


def test_filters_are_normalised_binomials():
    np.testing.assert_array_equal(binomial_filter(3), [1, 2, 1])
    np.testing.assert_array_equal(binomial_filter(5), [1, 4, 6, 4, 1])
    np.testing.assert_array_equal(binomial_filter(7), [1, 6, 15, 20, 15, 6, 1])
    f = nn.BlurPool2d(2, 3).filt
    assert f.shape == (2, 1, 3, 3) and f.dtype == np.float32
    np.testing.assert_allclose(f[1, 0], np.array([[1, 2, 1], [2, 4, 2], [1, 2, 1]]) / 16.0)
    for k in range(1, 8):
        g = blur_filter2d(k, 1, np.float64)[0, 0]
        assert abs(g.sum() - 1.0) < 1e-12
        np.testing.assert_array_equal(g, g.T)
    assert blur_pads(3) == ((1, 1), (1, 1)) and blur_pads(4) == ((1, 2), (1, 2))


@pytest.mark.parametrize("mode", ["reflect", "replicate", "zero"])
@pytest.mark.parametrize("filt_size", [1, 2, 3, 4, 5, 7])
def test_matches_direct_numpy(mode, filt_size):
    x = np.random.default_rng(filt_size).standard_normal((2, 3, 9, 8))
    for stride in (1, 2, 3):
        y = nn.BlurPool2d(3, filt_size, stride, mode, dtype=np.float64)(x)
        assert y.shape == (2, 3, -(-9 // stride), -(-8 // stride))
        assert_close(y, _numpy_blur(x, filt_size, stride, mode))


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("mode", ["reflect", "replicate", "zero"])
def test_matches_torch(dtype, mode):
    for i, (filt_size, stride, shape) in enumerate([(3, 2, (2, 3, 9, 8)), (5, 2, (1, 2, 7, 7)),
                                                    (4, 3, (2, 2, 6, 11)), (2, 1, (1, 3, 5, 4)),
                                                    (7, 2, (1, 2, 8, 9)), (1, 2, (1, 2, 5, 5))]):
        x = np.random.default_rng(i).standard_normal(shape).astype(dtype)
        layer = nn.BlurPool2d(shape[1], filt_size, stride, mode, dtype=dtype)
        compare_with_torch(layer, _torch_blur(shape[1], filt_size, stride, mode), [x], dtype)


def test_state_dict_holds_the_fixed_filter():
    layer = nn.BlurPool2d(4, 5)
    assert list(layer.state_dict()) == ["filt"]
    assert layer.state_dict()["filt"].shape == (4, 1, 5, 5)
    assert layer.num_parameters() == 0


@pytest.mark.parametrize("mode", ["reflect", "replicate", "zero"])
def test_pad_kernel_gradcheck(mode):
    x = np.random.default_rng(0).standard_normal((2, 2, 4, 5))
    for pads in (((1, 2), (3, 0)), ((0, 0), (2, 1)), ((3, 3), (1, 1))):
        if mode == "reflect" and max(pads[0]) >= 4:
            continue

        def fwd(x, pads=pads):
            return pad_forward(x, pads, mode=mode)

        y, _ = fwd(x)
        assert y.shape == (2, 2, 4 + sum(pads[0]), 5 + sum(pads[1]))
        assert striate.gradcheck(fwd, x, backward=pad_backward, max_per_tensor=None) < 1e-6


def test_pad_kernel_matches_torch_pad():
    torch = torch_or_skip()
    x = np.random.default_rng(0).standard_normal((1, 2, 5, 6))
    for mode in ("reflect", "replicate", "zero"):
        tx = torch.tensor(x, requires_grad=True)
        ty = torch.nn.functional.pad(tx, (2, 1, 3, 4), mode=TORCH_MODE[mode])
        y, cache = pad_forward(x, ((3, 4), (2, 1)), mode=mode)
        dy = np.random.default_rng(1).standard_normal(y.shape)
        ty.backward(torch.from_numpy(dy))
        assert_close(y, ty.detach().numpy(), what=mode)
        assert_close(pad_backward(dy, cache), tx.grad.numpy(), what=mode)


@pytest.mark.parametrize("filt_size,stride,mode", [(3, 2, "reflect"), (5, 2, "replicate"),
                                                   (4, 3, "zero"), (7, 2, "reflect")])
def test_gradcheck(filt_size, stride, mode):
    x = np.random.default_rng(3).standard_normal((2, 2, 8, 7))
    layer = nn.BlurPool2d(2, filt_size, stride, mode)
    assert striate.gradcheck(layer, x, max_per_tensor=80) < 1e-6


def _shift_change(net, base):
    """Relative change of the output when the input moves one pixel left (rows, then columns).

    A one-pixel input shift is a half-cell shift of a stride-2 output, so the
    shifted output is compared with the average of neighbouring cells of the
    unshifted one (linear-interpolation alignment).
    """
    changes = []
    for axis in (2, 3):
        x0 = base[:, :, 4:36, 4:36]
        x1 = np.roll(base, -1, axis=axis)[:, :, 4:36, 4:36]
        y0, y1 = net(x0), net(x1)
        n = y0.shape[axis]
        lo = np.take(y0, range(n - 1), axis=axis)
        hi = np.take(y0, range(1, n), axis=axis)
        aligned = 0.5 * (lo + hi)
        diff = np.take(y1, range(n - 1), axis=axis) - aligned
        changes.append(np.linalg.norm(diff) / np.linalg.norm(aligned))
    return float(np.mean(changes))


@pytest.mark.parametrize("smooth", [False, True])
def test_blurpool_is_more_shift_invariant_than_maxpool(smooth):
    rng = np.random.default_rng(0)
    base = rng.standard_normal((8, 3, 40, 40))
    if smooth:   # a 3x3 box blur: smoother images alias less, the gap narrows
        base = sum(np.roll(base, (i, j), axis=(2, 3)) for i in (-1, 0, 1) for j in (-1, 0, 1)) / 9
    max_net = nn.MaxPool2d(2, 2)
    blur_net = nn.Sequential(nn.MaxPool2d(2, stride=1), nn.BlurPool2d(3, 3, 2))
    blur5_net = nn.Sequential(nn.MaxPool2d(2, stride=1), nn.BlurPool2d(3, 5, 2))
    m, b3, b5 = (_shift_change(net, base) for net in (max_net, blur_net, blur5_net))
    # measured with this seed: noise 0.49 / 0.15 / 0.09; smoothed 0.42 / 0.19 / 0.14
    assert b3 < (0.4 if not smooth else 0.6) * m
    assert b5 < b3


@pytest.mark.parametrize("make,text", [
    (lambda: nn.BlurPool2d(0), "channels"),
    (lambda: nn.BlurPool2d(3, 0), "filt_size"),
    (lambda: nn.BlurPool2d(3, 8), r"filt_size must be an int in \[1, 7\]; received 8"),
    (lambda: nn.BlurPool2d(3, 3, 0), "stride"),
    (lambda: nn.BlurPool2d(3, 3.0), "filt_size"),
    (lambda: nn.BlurPool2d(3, pad_type="circular"), "pad_type.*received 'circular'"),
])
def test_bad_arguments(make, text):
    with pytest.raises(ConfigError, match=text):
        make()


def test_bad_inputs():
    with pytest.raises(ShapeError,
                       match=r"BlurPool2d expects input \(N, 3, H, W\); received \(1, 2, 8, 8\)"):
        nn.BlurPool2d(3)(np.zeros((1, 2, 8, 8)))
    with pytest.raises(ShapeError, match=r"received \(3, 8, 8\)"):
        nn.BlurPool2d(3)(np.zeros((3, 8, 8)))
    with pytest.raises(ShapeError,
                       match=r"BlurPool2d expects .*H, W >= 4.*received \(1, 3, 3, 8\)"):
        nn.BlurPool2d(3, 7)(np.zeros((1, 3, 3, 8)))
    assert nn.BlurPool2d(3, 7, pad_type="zero")(np.zeros((1, 3, 3, 8))).shape == (1, 3, 2, 4)
    with pytest.raises(DTypeError, match="BlurPool2d"):
        nn.BlurPool2d(3)(np.zeros((1, 3, 8, 8), dtype=np.int64))
    with pytest.raises(ShapeError, match="reflect padding"):
        pad_forward(np.zeros((1, 1, 2, 2)), ((2, 2), (0, 0)), mode="reflect")
    with pytest.raises(ConfigError, match="mode"):
        pad_forward(np.zeros((1, 1, 2, 2)), ((0, 0), (0, 0)), mode="wrap")
